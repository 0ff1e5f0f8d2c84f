"""Test helpers for the Money Forward connector (``tests/connectors/test_moneyforward*.py``; no runtime use)."""

from __future__ import annotations

from typing import Any

from renkei.connectors.freee.testing import RecordedRequest, RequestRecorder
from renkei.connectors.moneyforward.auth import MemoryTokenStore, MoneyForwardAuth, TokenStore
from renkei.connectors.moneyforward.client import MoneyForwardClient, MoneyForwardLimits

__all__ = ["FAST_LIMITS", "RecordedRequest", "RequestRecorder", "sandbox_client"]

FAST_LIMITS = MoneyForwardLimits(requests_per_minute=None, billing_writes_per_second=None)


def sandbox_client(url: str, app: Any, *, store: TokenStore | None = None, limits: MoneyForwardLimits = FAST_LIMITS,
                   **kw: Any) -> MoneyForwardClient:
    """A client for the sandbox ``app`` served at ``url`` (API ``url/api/v3``, token ``url/token``)."""
    cfg = app.state.config
    kw.setdefault("backoff_initial", 0.05)
    kw.setdefault("retry_after_max", 2.0)
    kw.setdefault("timeout", 10.0)
    auth = kw.pop("auth", None) or MoneyForwardAuth(
        client_id=cfg.client_id, client_secret=cfg.client_secret, store=store or MemoryTokenStore(),
        token_url=url + "/token", initial_refresh_token=app.state.initial_refresh_token,
        refresh_margin_s=kw.pop("refresh_margin_s", 300.0))
    return MoneyForwardClient(base_url=url + "/api/v3", auth=auth, limits=limits, **kw)
