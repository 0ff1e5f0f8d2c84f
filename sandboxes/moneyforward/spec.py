"""The Money Forward sandbox as a :class:`connectors.registry.SandboxSpec` (registry row ``moneyforward``)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from fastapi import FastAPI

from .app import API_PREFIX, create_app
from .config import MoneyForwardSandboxConfig

__all__ = ["SPEC", "MoneyForwardSandboxSpec"]


@dataclass(frozen=True)
class MoneyForwardSandboxSpec:
    name: str = "moneyforward"
    default_port: int = 8084
    # ``renkei demo``: a fixed first refresh token
    demo_options = {"refresh_token": "renkei-demo-moneyforward-refresh-token"}  # noqa: RUF012
    # tests: MF's 3 billing writes per second would pace a demo-data run; env() makes the client pace itself
    # to whatever the sandbox allows
    test_options = {"billing_writes_per_s": 100, "api_limit_per_minute": 60000}  # noqa: RUF012

    def app(self, *, seed: str = "demo", **options: Any) -> FastAPI:
        """A fresh sandbox; ``options`` are :class:`MoneyForwardSandboxConfig` fields (``numbering``,
        ``rounding_consumption_tax``, ``registration_code``, ``faults`` ...)."""
        known = {f.name for f in fields(MoneyForwardSandboxConfig)}
        unknown = set(options) - known
        if unknown:
            raise TypeError(f"unknown Money Forward sandbox options: {sorted(unknown)}")
        options.setdefault("print_refresh_token", False)
        return create_app(MoneyForwardSandboxConfig(seed=seed, **options))  # type: ignore[arg-type]

    def env(self, url: str, app: FastAPI) -> dict[str, str]:
        config: MoneyForwardSandboxConfig = app.state.config
        url = url.rstrip("/")
        return {
            "RENKEI_ERP": "moneyforward",
            "RENKEI_MONEYFORWARD_BASE_URL": url + API_PREFIX,
            "RENKEI_MONEYFORWARD_AUTH_URL": url,
            "RENKEI_MONEYFORWARD_CLIENT_ID": config.client_id,
            "RENKEI_MONEYFORWARD_CLIENT_SECRET": config.client_secret,
            "RENKEI_MONEYFORWARD_REFRESH_TOKEN": app.state.initial_refresh_token,
            "RENKEI_MONEYFORWARD_NUMBERING": config.numbering,
            "RENKEI_MONEYFORWARD_REQUESTS_PER_MINUTE": str(config.api_limit_per_minute),
            "RENKEI_MONEYFORWARD_BILLING_WRITES_PER_SECOND": str(config.billing_writes_per_s),
        }

    def describe(self, url: str, app: FastAPI) -> list[str]:
        url = url.rstrip("/")
        return [f"Money Forward sandbox: {url}{API_PREFIX}  (OAuth: {url}/authorize, {url}/token)",
                f"Money Forward first refresh token: {app.state.initial_refresh_token}"]


SPEC = MoneyForwardSandboxSpec()
