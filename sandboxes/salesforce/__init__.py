"""Local Salesforce sandbox: a stateful fake of Salesforce's REST API (OAuth token endpoint, SOQL query /
queryAll with query locators, sObject CRUD and upsert by external ID, sObject Collections, describe, limits,
getUpdated / getDeleted), with Salesforce's error arrays, ``Sforce-Limit-Info`` and daily allocation.

    from renkei.sandboxes.salesforce import SalesforceSandboxConfig, create_app
    from renkei.sandboxes.salesforce.tls import TLSServerThread

    app = create_app(SalesforceSandboxConfig(seed="demo"))
    with TLSServerThread(app) as server:          # simple-salesforce speaks https only
        ...

``app.state.store`` (:class:`SalesforceStore`) loads records without HTTP (``create``, ``merge``).
"""

from .app import create_app
from .config import SalesforceSandboxConfig
from .store import SalesforceStore

__all__ = ["SalesforceSandboxConfig", "SalesforceStore", "create_app"]
