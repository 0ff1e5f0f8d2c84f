"""``build(settings, store, policy)`` → :class:`MoneyForwardERP` (registry row ``moneyforward``)."""

from __future__ import annotations

from typing import Any

from renkei.connectors.moneyforward.auth import DbTokenStore, FileTokenStore, TokenStore
from renkei.connectors.moneyforward.checks import check  # noqa: F401  (the registry's connection checks)
from renkei.connectors.moneyforward.client import MoneyForwardClient
from renkei.connectors.moneyforward.connector import MoneyForwardConfig, MoneyForwardERP
from renkei.connectors.moneyforward.settings import MoneyForwardSettings

__all__ = ["SETTINGS", "build", "check", "token_store"]

SETTINGS = MoneyForwardSettings  # ``renkei config`` shows these (secrets hidden)


def token_store(settings: Any, mf: MoneyForwardSettings, store: Any = None) -> TokenStore:
    """The state store (default; shared by every worker, encrypted) or a 0600 file."""
    path = mf.token_file or settings.home / "secrets" / "moneyforward-token.json"
    file_store = FileTokenStore(path)
    if mf.token_store == "file" or store is None:
        return file_store
    return DbTokenStore(store.engine, data_key=settings.personal_data_key(), name=f"moneyforward:{mf.client_id}",
                        fallback=file_store if file_store.path.exists() else None)


def build(settings: Any, store: Any, policy: Any, *, mf: MoneyForwardSettings | None = None) -> MoneyForwardERP:
    if settings is None:
        from renkei.settings import get_settings

        settings = get_settings()
    mf = mf or MoneyForwardSettings()
    from renkei.store.ratelimit import limiter_for

    client = MoneyForwardClient.from_settings(
        mf, token_store=token_store(settings, mf, store),
        limiter_factory=lambda limits: limiter_for(settings, store, f"moneyforward:{mf.client_id}", limits))
    rounding = getattr(getattr(policy, "tax", None), "rounding", None)
    return MoneyForwardERP(client, MoneyForwardConfig(numbering=mf.numbering, partner_suffix=mf.partner_suffix,
                                                      tax_rounding=rounding))
