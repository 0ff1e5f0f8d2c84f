"""The Salesforce sandbox as a :class:`connectors.registry.SandboxSpec`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI


class SalesforceSandboxSpec:
    name = "salesforce"
    default_port = 8083

    def app(self, *, seed: str = "demo", **options: Any) -> "FastAPI":
        from .app import create_app
        from .config import SalesforceSandboxConfig

        return create_app(SalesforceSandboxConfig(seed=seed, **options))

    def env(self, url: str, app: "FastAPI") -> dict[str, str]:
        """Client-credentials settings against the sandbox served at ``url`` (it is both the login host and the
        instance)."""
        cfg = app.state.config
        return {
            "RENKEI_CRM": "salesforce",
            "RENKEI_SALESFORCE_LOGIN_URL": url,
            "RENKEI_SALESFORCE_CLIENT_ID": cfg.client_id,
            "RENKEI_SALESFORCE_CLIENT_SECRET": cfg.client_secret,
            "RENKEI_SALESFORCE_USERNAME": cfg.username,
            "RENKEI_SALESFORCE_API_VERSION": cfg.api_version,
        }


SPEC = SalesforceSandboxSpec()

__all__ = ["SPEC", "SalesforceSandboxSpec"]
