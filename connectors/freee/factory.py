"""Build the freee connector from Renkei's settings (the registry's ``build`` for ``RENKEI_ERP=freee``)."""

from __future__ import annotations

from typing import Any

from renkei.connectors.freee.checks import check  # noqa: F401  (the registry's connection checks)
from renkei.connectors.freee.auth import DbTokenStore, FileTokenStore, TokenStore
from renkei.connectors.freee.client import ACCOUNTING, IV, FreeeClient, FreeeLimits, is_iv_path
from renkei.connectors.freee.connector import FreeeConnector, FreeeConnectorConfig
from renkei.connectors.http import PaceHooks
from renkei.store.ratelimit import limiter_for


def freee_token_store(settings: Any, store: Any) -> TokenStore:
    """The freee token store of ``settings.token_store``: the state store by default (shared by every worker
    on every host; an existing token file is read while the row is still empty, so the first refresh moves
    it in), or the host-local file."""
    legacy = FileTokenStore(settings.token_store_path)
    if settings.token_store == "file":
        return legacy
    return DbTokenStore(store.engine, data_key=settings.personal_data_key(),
                        name=f"freee:{settings.freee_company_id}",
                        fallback=legacy if legacy.path.exists() else None)


def freee_rate_scope(settings: Any) -> str:
    """freee's limits are per company and app: the shared buckets are ``freee:<company>:…``."""
    return f"freee:{settings.freee_company_id}"


def freee_limits(settings: Any) -> FreeeLimits:
    """The client's pace from the settings (the connector and `renkei setup`'s shared buckets read the same)."""
    return FreeeLimits(accounting_per_s=settings.freee_accounting_per_second,
                       iv_per_minute=settings.freee_iv_per_minute, iv_per_hour=settings.freee_iv_per_hour,
                       iv_window=getattr(settings, "freee_iv_window", "fixed"),
                       daily=getattr(settings, "freee_daily_cap", None))


def freee_pace(settings: Any, store: Any = None, *, max_wait_s: float | None = None) -> PaceHooks:
    """The company's pace for a plain httpx client (the connection check's company read): each request takes
    its slot in the workers' buckets (freee会計 or freee請求書 by path), a 429 blocks them for every process."""
    limits = freee_limits(settings)
    limiter = limiter_for(settings, store, freee_rate_scope(settings), limits.as_dict())
    return PaceHooks(limiter, lambda request: limits.buckets(IV if is_iv_path(request.url.path) else ACCOUNTING),
                     max_wait_s=max_wait_s)


def build(settings: Any, store: Any, policy: Any) -> FreeeConnector:
    if settings.freee_company_id is None:
        raise RuntimeError("RENKEI_FREEE_COMPANY_ID is not set")
    freee = FreeeClient(
        base_url=settings.freee_base_url,
        auth_url=settings.freee_auth_url.rstrip("/") + "/public_api/token",
        client_id=settings.freee_client_id,
        client_secret=settings.freee_client_secret.get_secret_value() if settings.freee_client_secret else None,
        company_id=settings.freee_company_id,
        token_store=freee_token_store(settings, store),
        initial_refresh_token=(settings.freee_refresh_token.get_secret_value()
                               if settings.freee_refresh_token else None),
        limits=freee_limits(settings),
        limiter_factory=lambda limits: limiter_for(settings, store, freee_rate_scope(settings), limits),
    )
    # 手動採番 per the policy until the invoicing task reads the company's settings (it sets both again)
    numbering = getattr(getattr(policy, "invoice_numbering", None), "mode", "manual")
    return FreeeConnector(freee, FreeeConnectorConfig(tax_fraction=policy.tax.rounding,
                                                      send_invoice_number=numbering == "manual"))
