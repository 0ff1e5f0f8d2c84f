"""The HubSpot sandbox as a :class:`connectors.registry.SandboxSpec`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from renkei.sandboxes.hubspot.app import create_app
from renkei.sandboxes.hubspot.config import HubSpotSandboxConfig


class HubSpotSandboxSpec:
    name = "hubspot"
    default_port = 8081

    def app(self, *, seed: str = "demo", **options: Any) -> FastAPI:
        return create_app(HubSpotSandboxConfig(seed=seed, **options))

    def env(self, url: str, app: FastAPI) -> dict[str, str]:
        return {"RENKEI_CRM": "hubspot", "RENKEI_HUBSPOT_BASE_URL": url,
                "RENKEI_HUBSPOT_TOKEN": app.state.config.token}


SPEC = HubSpotSandboxSpec()
