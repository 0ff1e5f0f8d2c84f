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
        }


SPEC = MoneyForwardSandboxSpec()
