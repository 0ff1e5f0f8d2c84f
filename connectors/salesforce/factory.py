"""``build(settings, store, policy)`` for the connector registry: Salesforce from ``RENKEI_SALESFORCE_*``."""

from __future__ import annotations

from typing import Any

from .checks import check  # noqa: F401  (the registry's connection checks)
from .client import SalesforceClient
from .connector import SalesforceCRM
from .settings import SalesforceSettings

SETTINGS = SalesforceSettings  # the registry's settings_class(): RENKEI_SALESFORCE_*


def salesforce_rate_scope(sf: SalesforceSettings) -> str:
    """The org's allocation is per org: one scope per org URL and app (a short digest, never a secret)."""
    import hashlib

    org = (sf.instance_url or sf.login_url or "").rstrip("/")
    return "salesforce:" + hashlib.sha256(f"{org}|{sf.client_id or ''}".encode()).hexdigest()[:12]


def salesforce_limiter_factory(settings: Any, store: Any, sf: SalesforceSettings) -> Any:
    """The shared limiter of the org's daily budget when the limits are shared (``RENKEI_RATE_LIMITS``;
    PostgreSQL store by default), else None (each process reads ``Sforce-Limit-Info`` on its own)."""
    from renkei.store.ratelimit import DbRateLimiter, shared_backend

    engine = getattr(store, "engine", None)
    if settings is None or not shared_backend(settings, engine):
        return None
    return lambda limits: DbRateLimiter(engine, salesforce_rate_scope(sf), limits)


def build(settings: Any = None, store: Any = None, policy: Any = None) -> SalesforceCRM:
    """The Salesforce CRM connector; its settings are its own (:class:`SalesforceSettings`, read from the
    environment), ``settings`` / ``store`` are Renkei's: the org's daily API budget is shared through the
    state store when the limits are shared (the token lives only in memory — Salesforce issues no refresh
    token to server-to-server flows)."""
    sf = SalesforceSettings()
    return SalesforceCRM(SalesforceClient(sf, limiter_factory=salesforce_limiter_factory(settings, store, sf)),
                         lookback_seconds=sf.lookback_seconds)


__all__ = ["build", "salesforce_limiter_factory", "salesforce_rate_scope"]
