"""``build(settings, store, policy)`` for the connector registry: Salesforce from ``RENKEI_SALESFORCE_*``."""

from __future__ import annotations

from typing import Any

from .checks import check  # noqa: F401  (the registry's connection checks)
from .client import SalesforceClient
from .connector import SalesforceCRM
from .settings import SalesforceSettings

SETTINGS = SalesforceSettings  # the registry's settings_class(): RENKEI_SALESFORCE_*


def build(settings: Any = None, store: Any = None, policy: Any = None) -> SalesforceCRM:
    """The Salesforce CRM connector; its settings are its own (:class:`SalesforceSettings`, read from the
    environment), ``settings`` / ``store`` / ``policy`` are Renkei's (unused so far: the token lives only in
    memory — Salesforce issues no refresh token to server-to-server flows)."""
    sf = SalesforceSettings()
    return SalesforceCRM(SalesforceClient(sf), lookback_seconds=sf.lookback_seconds)


__all__ = ["build"]
