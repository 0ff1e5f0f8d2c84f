"""The freee sandbox as a :class:`connectors.registry.SandboxSpec`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from renkei.sandboxes.freee.app import create_app
from renkei.sandboxes.freee.config import FreeeSandboxConfig


class FreeeSandboxSpec:
    name = "freee"
    default_port = 8082
    demo_options: dict[str, Any] = {"refresh_token": "renkei-demo-refresh-token"}
    # tests: freee請求書's published 30/min would pace a demo-data run for minutes; the env below makes
    # the client pace itself to whatever the sandbox allows
    test_options: dict[str, Any] = {"iv_limit_per_minute": 6000, "iv_limit_per_hour": 360000}

    def app(self, *, seed: str = "demo", **options: Any) -> FastAPI:
        options.setdefault("print_refresh_token", False)
        return create_app(FreeeSandboxConfig(seed=seed, **options))

    def env(self, url: str, app: FastAPI) -> dict[str, str]:
        config = app.state.config
        refresh = app.state.initial_refresh_token
        return {"RENKEI_ERP": "freee", "RENKEI_FREEE_BASE_URL": url, "RENKEI_FREEE_AUTH_URL": url,
                "RENKEI_FREEE_CLIENT_ID": config.client_id, "RENKEI_FREEE_CLIENT_SECRET": config.client_secret,
                "RENKEI_FREEE_REFRESH_TOKEN": refresh, "RENKEI_FREEE_COMPANY_ID": str(config.company_id),
                "RENKEI_FREEE_IV_PER_MINUTE": str(config.iv_limit_per_minute),
                "RENKEI_FREEE_IV_PER_HOUR": str(config.iv_limit_per_hour)}

    def describe(self, url: str, app: FastAPI) -> list[str]:
        return [f"freee sandbox:   {url}  (API and OAuth base URL)",
                f"freee first refresh token: {app.state.initial_refresh_token}"]


SPEC = FreeeSandboxSpec()
