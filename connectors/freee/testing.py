"""Test helpers for the freee connector (used by ``tests/connectors/test_freee*.py``; no runtime use).

* :class:`RequestRecorder` — an httpx response hook that keeps every request the client sent (method,
  path, query, JSON body) so contract tests can validate them against freee's OpenAPI files.
* :func:`sandbox_client` — a :class:`FreeeClient` wired to a local sandbox URL with fast test limits.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

from renkei.connectors.freee.auth import FileTokenStore, FreeeAuth, TokenStore
from renkei.connectors.freee.client import FreeeClient, FreeeLimits, is_iv_path

__all__ = ["RecordedRequest", "RequestRecorder", "sandbox_client", "FAST_LIMITS"]

FAST_LIMITS = FreeeLimits(accounting_per_s=None, accounting_per_hour=None, iv_per_minute=None, iv_per_hour=None)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # as freee's spec names it: /api/1/... or /iv/...
    query: dict[str, str]
    body: Any
    status: int

    @property
    def api(self) -> str:
        return "iv" if is_iv_path(self.path) else "accounting"


@dataclass
class RequestRecorder:
    """``response_hooks=[recorder]``: records each exchange (thread-safe)."""

    requests: list[RecordedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, resp: httpx.Response) -> None:
        req = resp.request
        body: Any = None
        if req.content:
            try:
                body = json.loads(req.content)  # plain JSON types, as the spec validator expects
            except ValueError:
                body = req.content.decode("utf-8", "replace")
        rec = RecordedRequest(method=req.method, path=req.url.path,
                              query=dict(parse_qsl(req.url.query.decode() if isinstance(req.url.query, bytes)
                                                   else str(req.url.query), keep_blank_values=True)),
                              body=body, status=resp.status_code)
        with self._lock:
            self.requests.append(rec)


def sandbox_client(url: str, *, client_id: str, client_secret: str, company_id: int, store: TokenStore | str | Path,
                   refresh_token: str | None = None, limits: FreeeLimits = FAST_LIMITS, **kw: Any) -> FreeeClient:
    """A client for a sandbox at ``url`` (token endpoint ``url + /public_api/token``)."""
    if not hasattr(store, "locked"):
        store = FileTokenStore(store)  # type: ignore[arg-type]
    kw.setdefault("backoff_initial", 0.05)
    kw.setdefault("retry_after_max", 2.0)
    kw.setdefault("timeout", 10.0)
    auth = kw.pop("auth", None) or FreeeAuth(client_id=client_id, client_secret=client_secret, store=store,  # type: ignore[arg-type]
                                             token_url=url + "/public_api/token",
                                             initial_refresh_token=refresh_token,
                                             refresh_margin_s=kw.pop("refresh_margin_s", 300.0))
    return FreeeClient(base_url=url, company_id=company_id, auth=auth, limits=limits, **kw)
