"""Local HubSpot CRM API sandbox: a stateful fake of HubSpot's CRM v3 objects, search, batch, merge,
associations v4, properties, pipelines and owners APIs, with HubSpot's rate limits and error bodies.

    from renkei.sandboxes.common import ServerThread
    from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app

    app = create_app(HubSpotSandboxConfig(seed="demo"))
    with ServerThread(app) as server:
        HubSpot(access_token="renkei-sandbox-token", host=server.url).crm.companies.basic_api.get_page()

``app.state.store`` (:class:`HubSpotStore`) loads records without HTTP (``bulk_create``).
"""

from .app import create_app
from .config import HubSpotSandboxConfig
from .store import HubSpotStore

__all__ = ["HubSpotSandboxConfig", "HubSpotStore", "create_app"]
