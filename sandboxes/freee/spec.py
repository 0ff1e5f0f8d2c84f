"""The freee sandbox as a :class:`connectors.registry.SandboxSpec`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from renkei.sandboxes.freee.app import create_app
from renkei.sandboxes.freee.config import FreeeSandboxConfig


class FreeeSandboxSpec:
    name = "freee"
    default_port = 8082

    def app(self, *, seed: str = "demo", **options: Any) -> FastAPI:
        options.setdefault("print_refresh_token", False)
        return create_app(FreeeSandboxConfig(seed=seed, **options))

    def env(self, url: str, app: FastAPI) -> dict[str, str]:
        config = app.state.config
        refresh = app.state.initial_refresh_token
        return {"RENKEI_ERP": "freee", "RENKEI_FREEE_BASE_URL": url, "RENKEI_FREEE_AUTH_URL": url,
                "RENKEI_FREEE_CLIENT_ID": config.client_id, "RENKEI_FREEE_CLIENT_SECRET": config.client_secret,
                "RENKEI_FREEE_REFRESH_TOKEN": refresh, "RENKEI_FREEE_COMPANY_ID": str(config.company_id)}


SPEC = FreeeSandboxSpec()
