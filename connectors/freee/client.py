"""Thin client for freee会計 (``/api/1``) and freee請求書 (``/iv``) on the shared HTTP layer.

Everything generic (pooling, timeouts, retries with jittered backoff, typed errors, the client-side rate
limiter, the per-attempt auth hook with refresh-once-on-401, redaction) is :mod:`connectors.http`; this
module supplies freee's *configuration* — URLs, error parser, limits, OAuth — and freee's endpoints.

Methods take and return freee's own JSON objects (dicts); :mod:`connectors.freee.mapping` turns them into
the canonical model and :class:`connectors.freee.connector.FreeeConnector` offers the canonical ERP
protocol. JSON numbers with a fraction are parsed as :class:`~decimal.Decimal`, never ``float``.

Errors (from freee's error bodies, see :func:`parse_freee_error`):

* 会計 400/404/409/5xx ``{"status_code", "errors": [{"type": status|validation|error, "messages"}]}``;
  請求書 the same with ``type`` ``bad_request``/``not_found``/…; 401/403 ``{"message", "messages"}``.
* 会計 **403 for too many requests is not a permission error**: classified by its body/headers as
  :class:`~connectors.http.RateLimited` (freee blocks the app for ~10 minutes).
* 請求書 429 → ``RateLimited`` (``meta.reset`` / ``X-RateLimit-Reset`` give the wait).
* The **daily cap** (会計 403 / 請求書 429 with the day's allowance used up) → :class:`QuotaExhausted`:
  never retried; the flow stops cleanly, commits what it did and resumes on the next run.

Exactly once: ``PUT`` calls are idempotent and retried by the HTTP layer. ``POST`` (create) calls go
through :meth:`FreeeClient._create_once`: after an ambiguous failure (timeout, dropped connection, 5xx)
the client first *looks the record up by its natural key* (partner name/code, item code, invoice
reference in ``memo``, deal ``ref_number``, manual-journal ``ref_number``, the new payment on the deal,
the bank line's date/amount/description) and only re-sends when nothing was created.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import httpx

from renkei.connectors.freee.auth import DEFAULT_TOKEN_URL, FileTokenStore, FreeeAuth, TokenStore
from renkei.connectors.http import (
    ConnectorError,
    ErrorInfo,
    HttpClient,
    HttpConfig,
    NotFound,
    Page,
    QuotaExhausted,
    RateLimited,
    RateLimiter,
    ServerError,
    TransientError,
    default_error_parser,
    parse_retry_after,
    redact,
    register_secret,
)

log = logging.getLogger("renkei.connectors.freee")

__all__ = ["FreeeClient", "FreeeLimits", "FreeeAuthHook", "parse_freee_error", "is_iv_path", "token_url_from"]

ACCOUNTING = "accounting"
IV = "iv"


def is_iv_path(path: str) -> bool:
    """freee請求書 paths live under ``/iv`` (会計 under ``/api/1``)."""
    path = path.split("?", 1)[0]
    return "/iv/" in path or path.endswith("/iv")


def token_url_from(auth_url: str) -> str:
    """``https://accounts.secure.freee.co.jp`` → ``…/public_api/token`` (a full token URL is kept)."""
    u = auth_url.rstrip("/")
    return u if u.endswith("/public_api/token") else u + "/public_api/token"


# ---------------------------------------------------------------------------------------------------
# limits


@dataclass(frozen=True)
class FreeeLimits:
    """Client-side pacing (freee-and-moneyforward-api.md §1.4).

    freee会計 publishes no general number (only "excessive access → 403 for ~10 minutes"), so the
    default is a polite ``accounting_per_s`` plus an optional hourly ceiling. freee請求書 publishes
    30/min and 1,500/hour per company. Set a field to ``None`` to switch that window off.
    """

    accounting_per_s: float | None = 5.0
    accounting_per_hour: int | None = None
    iv_per_minute: int | None = 30
    iv_per_hour: int | None = 1500
    # freee請求書's minute and hour: "fixed" windows that reset on the clock (the documented X-Ratelimit-Reset-Minute
    # and X-RateLimit-Reset headers give the moment), or "rolling" (any 60 s / 3,600 s: stricter)
    iv_window: str = "fixed"
    blocked_403_s: float = 600.0  # freee会計's lockout after "too many requests"
    daily: int | None = None  # per company and app, both APIs (3,000 / 5,000 / 10,000 by plan); a calendar day

    def limiter(self) -> RateLimiter:
        return RateLimiter(self.as_dict())

    def as_dict(self) -> dict[str, tuple]:
        """``{bucket: (n, window_s[, "fixed" | "calendar"])}`` — what a limiter (local or shared) is built from."""
        limits: dict[str, tuple] = {}
        if self.accounting_per_s:
            n = max(1, int(round(self.accounting_per_s)))
            limits["accounting"] = (n, n / self.accounting_per_s)
        if self.accounting_per_hour:
            limits["accounting_hour"] = (self.accounting_per_hour, 3600.0)
        iv = ("fixed",) if self.iv_window == "fixed" else ()
        if self.iv_per_minute:
            limits["iv_minute"] = (self.iv_per_minute, 60.0) + iv
        if self.iv_per_hour:
            limits["iv_hour"] = (self.iv_per_hour, 3600.0) + iv
        if self.daily:
            limits["daily"] = (self.daily, 86400.0, "calendar")
        return limits

    def buckets(self, api: str) -> tuple[str, ...]:
        pace = ("accounting", "accounting_hour") if api == ACCOUNTING else ("iv_minute", "iv_hour")
        return pace + ("daily",) if self.daily else pace


# ---------------------------------------------------------------------------------------------------
# errors

_RATE_WORDS = ("too many", "rate limit", "ratelimit", "リクエスト数", "アクセスが集中", "アクセス過多", "上限", "多すぎ",
               "しばらく時間")
_DAILY_WORDS = ("daily", "per day", "1日", "一日", "日次", "本日")


def _messages(body: Any) -> list[str]:
    out: list[str] = []
    if isinstance(body, dict):
        for key in ("message", "messages", "error", "error_description"):
            v = body.get(key)
            if isinstance(v, str) and v:
                out.append(v)
            elif isinstance(v, list):
                out.extend(str(x) for x in v)
        for e in body.get("errors") or []:
            if isinstance(e, dict):
                msgs = e.get("messages")
                if isinstance(msgs, list):
                    out.extend(str(m) for m in msgs)
                elif isinstance(msgs, str):
                    out.append(msgs)
    return list(dict.fromkeys(out))  # de-duplicated, order kept


def _error_types(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    return [str(e.get("type")) for e in body.get("errors") or [] if isinstance(e, dict) and e.get("type")]


def _reset_seconds(body: Any, headers: httpx.Headers) -> float | None:
    """Seconds until ``meta.reset`` / ``X-RateLimit-Reset`` (ISO time or epoch), else ``Retry-After``."""
    ra = parse_retry_after(headers.get("retry-after"))
    if ra is not None:
        return ra
    candidates = []
    if isinstance(body, dict) and isinstance(body.get("meta"), dict):
        candidates.append(body["meta"].get("reset"))
    candidates += [headers.get("x-ratelimit-reset-minute"), headers.get("x-ratelimit-reset")]
    for c in candidates:
        if c in (None, ""):
            continue
        s = str(c)
        try:
            if s.replace(".", "", 1).isdigit():
                v = float(s)
                return max(0.0, v - time.time()) if v > 10**9 else v
            dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            return max(0.0, dt.timestamp() - time.time())
        except ValueError:
            continue
    return None


def _day_exhausted(body: Any, headers: httpx.Headers, text: str) -> bool:
    rem_day = headers.get("x-ratelimit-remaining-day")
    if rem_day is not None and rem_day.strip() == "0":
        return True
    meta = body.get("meta") if isinstance(body, dict) else None
    if isinstance(meta, dict):
        try:
            if int(meta.get("period") or 0) >= 86400 and int(meta.get("remaining") or 0) == 0:
                return True
        except (TypeError, ValueError):
            pass
    low = text.lower()
    return any(w in low for w in _DAILY_WORDS) and any(w in low for w in ("上限", "limit", "cap", "quota"))


def parse_freee_error(response: httpx.Response) -> ErrorInfo:
    """freee's error bodies → :class:`ErrorInfo` (both APIs and the token endpoint).

    * ``message`` — all ``messages`` joined with `` / ``; ``category`` — ``validation`` when any error has
      that type (→ ``ValidationFailed``), else the first type; ``correlation_id`` — ``X-Freee-Request-ID``.
    * 403 whose body or headers speak of too many requests → retryable (the client re-raises it as
      ``RateLimited``; the wait is ~10 minutes unless the response says otherwise).
    * 403 (会計) / 429 (請求書) for the daily cap → ``quota_exhausted``.
    """
    try:
        body: Any = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if body is None:
        info = default_error_parser(response)
    else:
        msgs = _messages(body)
        types = _error_types(body)
        info = ErrorInfo(message=" / ".join(msgs) or response.reason_phrase,
                         category="validation" if "validation" in types else (types[0] if types else None),
                         code=str(body.get("code")) if isinstance(body, dict) and body.get("code") else None,
                         details=body)
    info.correlation_id = response.headers.get("x-freee-request-id") or info.correlation_id
    status = response.status_code
    text = " ".join(_messages(body)) if body is not None else response.text[:500]
    if status in (403, 429):
        if _day_exhausted(body, response.headers, text):
            info.quota_exhausted = True
            info.category = "daily_cap"
            info.message = f"quota exhausted: {info.message}"
            return info
    if status == 429:
        info.retry_after = _reset_seconds(body, response.headers)
    elif status == 403:
        low = text.lower()
        remaining = response.headers.get("x-ratelimit-remaining")
        if any(w in low for w in _RATE_WORDS) or (remaining is not None and remaining.strip() == "0"):
            info.retryable = True
            info.category = "rate_limited"
            info.retry_after = _reset_seconds(body, response.headers)
    return info


# ---------------------------------------------------------------------------------------------------
# auth hook


class FreeeAuthHook:
    """Per-attempt ``Authorization`` header from :class:`FreeeAuth`; ``refresh()`` after a 401.

    The token each thread last sent is remembered (thread-local), so a 401 only refreshes when that
    token is still the current one — a thread whose token was already replaced by another worker just
    retries with the new one instead of burning another refresh token.
    """

    def __init__(self, auth: FreeeAuth):
        self.auth = auth
        self._sent = threading.local()

    def __call__(self) -> Mapping[str, str]:
        token = self.auth.access_token()
        register_secret(token)
        self._sent.token = token
        return {"Authorization": f"Bearer {token}"}

    def refresh(self) -> bool:
        stale = getattr(self._sent, "token", None)
        new = self.auth.force_refresh(stale)
        register_secret(new)
        return True

    def __repr__(self) -> str:
        return f"FreeeAuthHook({self.auth!r})"


# ---------------------------------------------------------------------------------------------------
# the client


def _loads(resp: httpx.Response) -> Any:
    if resp.status_code == 204 or not resp.content:
        return None
    return json.loads(resp.content, parse_float=Decimal)


def _d(v: date | str | None) -> str | None:
    return v.isoformat() if isinstance(v, date) else v


class FreeeClient:
    """freee会計 + freee請求書 for one company (事業所). Thread-safe; share it between workers.

    ``auth_url`` is the OAuth server (``https://accounts.secure.freee.co.jp``) or the full token URL.
    Give ``token_store`` (a :class:`~connectors.freee.auth.TokenStore`) for production; tests may pass a
    ready :class:`FreeeAuth` as ``auth`` instead.
    """

    def __init__(
        self,
        *,
        base_url: str = "https://api.freee.co.jp",
        auth_url: str = DEFAULT_TOKEN_URL,
        client_id: str | None = None,
        client_secret: str | None = None,
        company_id: int,
        token_store: TokenStore | None = None,
        initial_refresh_token: str | None = None,
        auth: FreeeAuth | None = None,
        limits: FreeeLimits = FreeeLimits(),
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_initial: float = 0.5,
        retry_after_max: float = 120.0,
        response_hooks: Sequence[Callable[[httpx.Response], None]] = (),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        refresh_margin_s: float = 300.0,
        limiter_factory: Callable[[dict[str, tuple]], Any] | None = None,
    ):
        if auth is None:
            if token_store is None or client_id is None or client_secret is None:
                raise ValueError("give auth=FreeeAuth(...) or client_id, client_secret and token_store")
            register_secret(client_secret)
            if initial_refresh_token:
                register_secret(initial_refresh_token)
            auth = FreeeAuth(client_id=client_id, client_secret=client_secret, store=token_store,
                             token_url=token_url_from(auth_url), initial_refresh_token=initial_refresh_token,
                             timeout_s=timeout, refresh_margin_s=refresh_margin_s)
        self.auth = auth
        self.company_id = int(company_id)
        self.limits = limits
        self.max_attempts = max_attempts
        self._sleep = sleep
        self._backoff_initial = backoff_initial
        self._retry_after_max = retry_after_max
        # limiter_factory: the shared limiter of the state store (store.ratelimit.limiter_for) or any other
        # backend with the RateLimiter interface; default the in-process one
        self.limiter = limiter_factory(limits.as_dict()) if limiter_factory else limits.limiter()
        self.http = HttpClient(HttpConfig(
            base_url=base_url.rstrip("/"),
            auth=FreeeAuthHook(auth),
            timeout=timeout,
            max_attempts=max_attempts,
            backoff_initial=backoff_initial,
            retry_after_max=retry_after_max,
            error_parser=parse_freee_error,
            rate_limiter=self.limiter,
            default_buckets=limits.buckets(ACCOUNTING),
            response_hooks=(self._on_response, *response_hooks),
            transport=transport,
            sleep=sleep,
            system="freee",
        ))

    @classmethod
    def from_settings(cls, settings: Any = None, *, token_store: TokenStore | None = None, **kw: Any) -> FreeeClient:
        """Build from ``RENKEI_FREEE_*`` settings; the token store defaults to a :class:`FileTokenStore`
        at ``<RENKEI_HOME>/secrets/freee-token.json``; ``RENKEI_FREEE_REFRESH_TOKEN`` seeds it when empty."""
        if settings is None:
            from renkei.settings import get_settings

            settings = get_settings()
        secret = settings.freee_client_secret.get_secret_value() if settings.freee_client_secret else None
        refresh = settings.freee_refresh_token.get_secret_value() if settings.freee_refresh_token else None
        if not (settings.freee_client_id and secret and settings.freee_company_id):
            raise ValueError("RENKEI_FREEE_CLIENT_ID, RENKEI_FREEE_CLIENT_SECRET and RENKEI_FREEE_COMPANY_ID are required")
        return cls(base_url=settings.freee_base_url, auth_url=settings.freee_auth_url,
                   client_id=settings.freee_client_id, client_secret=secret, company_id=settings.freee_company_id,
                   token_store=token_store or FileTokenStore(settings.token_store_path),
                   initial_refresh_token=refresh, **kw)

    def close(self) -> None:
        self.http.close()
        self.auth.close()

    def __enter__(self) -> FreeeClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FreeeClient(base_url={self.http.config.base_url!r}, company_id={self.company_id})"

    @property
    def stats(self) -> Any:
        return self.http.stats

    # -- plumbing -----------------------------------------------------------------------------------

    def _on_response(self, resp: httpx.Response) -> None:
        """Log freee's request id; after a rate-limit 403 block that API's buckets for every thread (the
        HTTP layer does this itself for 429 only)."""
        rid = resp.headers.get("x-freee-request-id")
        if resp.status_code >= 400 and rid:
            log.info("freee %s %s -> %s (request id %s)", resp.request.method, resp.request.url.path,
                     resp.status_code, rid)
        if resp.status_code == 403:
            info = parse_freee_error(resp)
            if info.retryable and not info.quota_exhausted:
                wait = info.retry_after if info.retry_after is not None else self.limits.blocked_403_s
                api = IV if is_iv_path(resp.request.url.path) else ACCOUNTING
                for b in self.limits.buckets(api):
                    self.limiter.penalise(b, min(wait, self._retry_after_max))

    def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None,
              retry: bool = True) -> httpx.Response:
        api = IV if is_iv_path(path) else ACCOUNTING
        try:
            return self.http.request(method, path, params=params, json=json_body, retry=retry,
                                     buckets=self.limits.buckets(api))
        except ServerError as exc:
            if exc.status == 403:  # 会計 "too many requests" 403: rate limited, not a permission problem
                raise RateLimited(exc.message, status=403, category="rate_limited", code=exc.code,
                                  correlation_id=exc.correlation_id, method=exc.method, url=exc.url,
                                  retry_after=exc.retry_after, details=exc.details, system=exc.system) from None
            raise

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None,
                 retry: bool = True) -> Any:
        return _loads(self._send(method, path, params=params, json_body=json_body, retry=retry))

    def _get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params={"company_id": self.company_id, **params})

    def _backoff(self, attempt: int, exc: ConnectorError) -> float:
        cap = min(30.0, self._backoff_initial * 2 ** (attempt - 1))
        wait = random.uniform(0, cap)
        if exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, self._retry_after_max))
        return wait

    def _create_once(self, method: str, path: str, body: Any, find: Callable[[], Any] | None) -> Any:
        """POST exactly once: on an ambiguous failure look the record up before sending again.

        ``RateLimited`` proves the request was not processed → plain retry. Timeouts, dropped
        connections and 5xx may have created the record → ``find()`` first (``None`` = not there).
        Without ``find`` an ambiguous failure is raised to the caller (whose ledger decides).
        """
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._request(method, path, json_body=body, retry=False)
            except TransientError as exc:
                if attempt >= self.max_attempts:
                    raise
                ambiguous = not isinstance(exc, RateLimited)
                if ambiguous and find is None:
                    raise
                self._sleep(self._backoff(attempt, exc))
                if ambiguous:
                    found = find()  # type: ignore[misc]
                    if found is not None:
                        log.info("freee %s %s: found the record after %s; not re-sending", method, path,
                                 type(exc).__name__)
                        return found
        raise AssertionError("unreachable")  # pragma: no cover

    def _pages(self, path: str, key: str, params: Mapping[str, Any], *, limit: int, offset: int = 0,
               total_key: str | None = None) -> Iterator[Page[dict]]:
        """Offset/limit paging; each :class:`Page` carries ``next_cursor`` = the next offset (persist it
        to resume) or ``None`` on the last page."""
        while True:
            data = self._get(path, **params, offset=offset, limit=limit) or {}
            items = list(data.get(key) or [])
            total = None
            if total_key and isinstance(data.get("meta"), dict):
                total = data["meta"].get(total_key)
            nxt = offset + len(items)
            done = len(items) < limit or (total is not None and nxt >= int(total))
            # handed over, not kept: while the consumer works on this page and the next one is read, this
            # generator holds no reference to it (3,000 partners are tens of MB of decoded JSON)
            box = [Page(items=items, next_cursor=None if done else nxt, total=total)]
            data = items = None  # type: ignore[assignment]
            yield box.pop()
            if done:
                return
            offset = nxt

    # -- companies ----------------------------------------------------------------------------------

    def list_companies(self) -> list[dict]:
        """``GET /api/1/companies`` (no ``company_id``)."""
        return (self._request("GET", "/api/1/companies") or {}).get("companies", [])

    def get_company(self, company_id: int | None = None, **flags: Any) -> dict:
        """``GET /api/1/companies/{id}`` — incl. ``tax_fraction`` / ``amount_fraction`` settings."""
        cid = company_id or self.company_id
        return self._request("GET", f"/api/1/companies/{cid}", params=flags or None)["company"]

    # -- partners (取引先) ---------------------------------------------------------------------------

    def list_partners(self, *, keyword: str | None = None, offset: int = 0, limit: int = 50,
                      start_update_date: date | str | None = None, end_update_date: date | str | None = None) -> list[dict]:
        data = self._get("/api/1/partners", keyword=keyword, offset=offset, limit=limit,
                         start_update_date=_d(start_update_date), end_update_date=_d(end_update_date))
        return data.get("partners", [])

    def iter_partner_pages(self, *, keyword: str | None = None, limit: int = 100, offset: int = 0,
                           start_update_date: date | str | None = None,
                           end_update_date: date | str | None = None) -> Iterator[Page[dict]]:
        """All partners, ``limit`` per page (max 3000), ordered by id."""
        return self._pages("/api/1/partners", "partners",
                           {"keyword": keyword, "start_update_date": _d(start_update_date),
                            "end_update_date": _d(end_update_date)}, limit=limit, offset=offset)

    def get_partner(self, partner_id: int | str) -> dict:
        return self._get(f"/api/1/partners/{partner_id}")["partner"]

    def find_partner(self, *, name: str | None = None, code: str | None = None) -> dict | None:
        """Exact match on ``code`` or ``name`` (keyword search narrows, then exact comparison)."""
        kw = code or name
        if not kw:
            raise ValueError("give name or code")
        for page in self.iter_partner_pages(keyword=kw, limit=100):
            for p in page.items:
                if (code and p.get("code") == code) or (not code and name and p.get("name") == name):
                    return p
        return None

    def create_partner(self, partner: Mapping[str, Any]) -> dict:
        """``POST /api/1/partners`` (name is unique in the company — the lookup key after a doubt)."""
        body = {"company_id": self.company_id, **partner}
        find = lambda: ({"partner": p} if (p := self.find_partner(name=body["name"], code=body.get("code"))) else None)  # noqa: E731
        return self._create_once("POST", "/api/1/partners", body, find)["partner"]

    def update_partner(self, partner_id: int | str, partner: Mapping[str, Any]) -> dict:
        body = {"company_id": self.company_id, **partner}
        return self._request("PUT", f"/api/1/partners/{partner_id}", json_body=body)["partner"]

    def upsert_partner_by_code(self, code: str, partner: Mapping[str, Any]) -> tuple[dict, bool]:
        """``PUT /api/1/partners/upsert_by_code`` → (partner, created). Idempotent, safe to retry."""
        inner = {k: v for k, v in partner.items() if k not in ("company_id", "code")}
        resp = self._send("PUT", "/api/1/partners/upsert_by_code",
                          json_body={"company_id": self.company_id, "code": code, "partner": inner})
        return _loads(resp)["partner"], resp.status_code == 201

    # -- items (品目) ---------------------------------------------------------------------------------

    def list_items(self, *, offset: int = 0, limit: int = 50) -> list[dict]:
        return self._get("/api/1/items", offset=offset, limit=limit).get("items", [])

    def iter_item_pages(self, *, limit: int = 100, offset: int = 0) -> Iterator[Page[dict]]:
        return self._pages("/api/1/items", "items", {}, limit=limit, offset=offset)

    def get_item(self, item_id: int | str) -> dict:
        return self._get(f"/api/1/items/{item_id}")["item"]

    def find_item(self, *, code: str | None = None, name: str | None = None) -> dict | None:
        for page in self.iter_item_pages(limit=500):
            for it in page.items:
                if (code and it.get("code") == code) or (not code and name and it.get("name") == name):
                    return it
        return None

    def create_item(self, item: Mapping[str, Any]) -> dict:
        body = {"company_id": self.company_id, **item}
        find = lambda: ({"item": i} if (i := self.find_item(code=body.get("code"), name=body["name"])) else None)  # noqa: E731
        return self._create_once("POST", "/api/1/items", body, find)["item"]

    def update_item(self, item_id: int | str, item: Mapping[str, Any]) -> dict:
        body = {"company_id": self.company_id, **item}
        return self._request("PUT", f"/api/1/items/{item_id}", json_body=body)["item"]

    # -- reference data -----------------------------------------------------------------------------

    def list_taxes(self, *, available: bool | None = None, display_category: str | None = None) -> list[dict]:
        """``GET /api/1/taxes/companies/{company_id}`` (``taxes[]{code, name, name_ja, display_category}``)."""
        params = {"available": available, "display_category": display_category}
        return self._request("GET", f"/api/1/taxes/companies/{self.company_id}", params=params).get("taxes", [])

    def list_account_items(self, *, base_date: date | str | None = None) -> list[dict]:
        return self._get("/api/1/account_items", base_date=_d(base_date)).get("account_items", [])

    def list_walletables(self, *, type: str | None = None) -> list[dict]:  # noqa: A002 - freee's name
        return self._get("/api/1/walletables", type=type).get("walletables", [])

    # -- deals (取引) ---------------------------------------------------------------------------------

    def list_deals(self, *, offset: int = 0, limit: int = 20, **filters: Any) -> tuple[list[dict], int | None]:
        """``GET /api/1/deals`` with freee's filters (``partner_id``, ``type``, ``status``,
        ``start_issue_date`` …, dates as ``date`` or str) → (deals, ``meta.total_count``)."""
        data = self._get("/api/1/deals", offset=offset, limit=limit, **{k: _d(v) for k, v in filters.items()})
        return data.get("deals", []), (data.get("meta") or {}).get("total_count")

    def iter_deal_pages(self, *, limit: int = 100, offset: int = 0, **filters: Any) -> Iterator[Page[dict]]:
        return self._pages("/api/1/deals", "deals", {k: _d(v) for k, v in filters.items()}, limit=limit,
                           offset=offset, total_key="total_count")

    def get_deal(self, deal_id: int | str, *, accruals: str | None = None) -> dict:
        return self._get(f"/api/1/deals/{deal_id}", accruals=accruals)["deal"]

    def find_deal_by_ref(self, ref_number: str, *, issue_date: date | str, type: str | None = None,  # noqa: A002
                         partner_id: int | None = None) -> dict | None:
        for page in self.iter_deal_pages(start_issue_date=issue_date, end_issue_date=issue_date, type=type,
                                         partner_id=partner_id):
            for d in page.items:
                if d.get("ref_number") == ref_number:
                    return d
        return None

    def create_deal(self, deal: Mapping[str, Any]) -> dict:
        """``POST /api/1/deals`` (details, optional payments). With ``ref_number`` (管理番号) the create is
        exactly-once (looked up by ref_number + issue_date after a doubt); without it an ambiguous
        failure is raised."""
        body = {"company_id": self.company_id, **deal}
        find = None
        if body.get("ref_number"):
            def find() -> Any:
                d = self.find_deal_by_ref(body["ref_number"], issue_date=body["issue_date"], type=body.get("type"),
                                          partner_id=body.get("partner_id"))
                return {"deal": d} if d else None
        return self._create_once("POST", "/api/1/deals", body, find)["deal"]

    def update_deal(self, deal_id: int | str, deal: Mapping[str, Any]) -> dict:
        body = {"company_id": self.company_id, **deal}
        return self._request("PUT", f"/api/1/deals/{deal_id}", json_body=body)["deal"]

    def add_deal_payment(self, deal_id: int | str, payment: Mapping[str, Any]) -> dict:
        """``POST /api/1/deals/{id}/payments`` → the deal. Exactly once: the payment ids already on the
        deal are noted first; after a doubt a *new* payment with the same date/amount/account counts."""
        body = {"company_id": self.company_id, **payment}
        before = {p.get("id") for p in self.get_deal(deal_id).get("payments") or []}

        def find() -> Any:
            deal = self.get_deal(deal_id)
            for p in deal.get("payments") or []:
                if (p.get("id") not in before and p.get("amount") == body["amount"] and p.get("date") == body["date"]
                        and str(p.get("from_walletable_id")) == str(body["from_walletable_id"])):
                    return {"deal": deal}
            return None

        return self._create_once("POST", f"/api/1/deals/{deal_id}/payments", body, find)["deal"]

    # -- wallet txns (口座明細) -------------------------------------------------------------------------

    def list_wallet_txns(self, *, offset: int = 0, limit: int = 20, **filters: Any) -> list[dict]:
        """``GET /api/1/wallet_txns`` (``walletable_type``, ``walletable_id``, ``entry_side``,
        ``start_date``, ``end_date``, ``sort_type``)."""
        return self._get("/api/1/wallet_txns", offset=offset, limit=limit,
                         **{k: _d(v) for k, v in filters.items()}).get("wallet_txns", [])

    def iter_wallet_txn_pages(self, *, limit: int = 100, offset: int = 0, **filters: Any) -> Iterator[Page[dict]]:
        return self._pages("/api/1/wallet_txns", "wallet_txns", {k: _d(v) for k, v in filters.items()},
                           limit=limit, offset=offset)

    def create_wallet_txn(self, txn: Mapping[str, Any], *, dedupe: bool = True) -> dict:
        """``POST /api/1/wallet_txns``. With ``dedupe`` a doubt is resolved by looking for a line with the
        same account, date, side, amount and description (bank lines have no id of their own: two truly
        identical lines on one day would be taken as one — pass ``dedupe=False`` to raise instead)."""
        body = {"company_id": self.company_id, **txn}
        find = None
        if dedupe:
            def find() -> Any:
                for page in self.iter_wallet_txn_pages(walletable_type=body["walletable_type"],
                                                       walletable_id=body["walletable_id"],
                                                       start_date=body["date"], end_date=body["date"],
                                                       entry_side=body["entry_side"]):
                    for t in page.items:
                        if t.get("amount") == body["amount"] and (t.get("description") or "") == (body.get("description") or ""):
                            return {"wallet_txn": t}
                return None
        return self._create_once("POST", "/api/1/wallet_txns", body, find)["wallet_txn"]

    # -- manual journals (振替伝票) -----------------------------------------------------------------------

    def list_manual_journals(self, *, offset: int = 0, limit: int = 20, **filters: Any) -> list[dict]:
        return self._get("/api/1/manual_journals", offset=offset, limit=limit,
                         **{k: _d(v) for k, v in filters.items()}).get("manual_journals", [])

    def create_manual_journal(self, journal: Mapping[str, Any]) -> dict:
        """``POST /api/1/manual_journals``; exactly-once via ``ref_number`` (≤ 20 chars) when given."""
        body = {"company_id": self.company_id, **journal}
        find = None
        if body.get("ref_number"):
            def find() -> Any:
                js = self.list_manual_journals(ref_number=body["ref_number"], start_issue_date=body["issue_date"],
                                               end_issue_date=body["issue_date"], limit=100)
                js = [j for j in js if j.get("ref_number") == body["ref_number"]]
                return {"manual_journal": js[0]} if js else None
        return self._create_once("POST", "/api/1/manual_journals", body, find)["manual_journal"]

    # -- freee請求書 invoices -----------------------------------------------------------------------------

    def list_invoices(self, *, offset: int = 0, limit: int = 20, **filters: Any) -> list[dict]:
        """``GET /iv/invoices`` (``partner_ids`` (≤ 3, list or comma string), ``invoice_number``,
        ``subject``, ``start_billing_date`` / ``end_billing_date``, ``payment_status`` …)."""
        return self._get("/iv/invoices", offset=offset, limit=limit,
                         **{k: _d(v) for k, v in filters.items()}).get("invoices", [])

    def iter_invoice_pages(self, *, limit: int = 100, offset: int = 0, **filters: Any) -> Iterator[Page[dict]]:
        return self._pages("/iv/invoices", "invoices", {k: _d(v) for k, v in filters.items()}, limit=limit,
                           offset=offset)

    def get_invoice(self, invoice_id: int | str) -> dict:
        return self._get(f"/iv/invoices/{invoice_id}")["invoice"]

    def find_invoice_by_reference(self, reference: str, *, partner_id: int | str | None = None,
                                  billing_date: date | str | None = None,
                                  start_billing_date: date | str | None = None,
                                  end_billing_date: date | str | None = None) -> dict | None:
        """The invoice whose ``memo`` starts with ``reference`` (our idempotency key), or ``None``.

        freee cannot filter on ``memo``; narrow the scan with ``partner_id`` and the billing date (both
        known when we created it). Returns the list item (call :meth:`get_invoice` for lines)."""
        from renkei.connectors.freee.mapping import invoice_reference

        filters: dict[str, Any] = {}
        if partner_id is not None:
            filters["partner_ids"] = str(partner_id)
        if billing_date is not None:
            start_billing_date = end_billing_date = billing_date
        filters["start_billing_date"] = start_billing_date
        filters["end_billing_date"] = end_billing_date
        for page in self.iter_invoice_pages(**filters):
            for inv in page.items:
                if invoice_reference(inv.get("memo")) == reference:
                    return inv
        return None

    def create_invoice(self, invoice: Mapping[str, Any]) -> dict:
        """``POST /iv/invoices``. Exactly once when ``memo`` carries our reference: after a doubt the
        invoice is looked up by reference, partner and billing date before re-sending."""
        from renkei.connectors.freee.mapping import invoice_reference

        body = {"company_id": self.company_id, **invoice}
        ref = invoice_reference(body.get("memo"))
        find = None
        if ref:
            def find() -> Any:
                inv = self.find_invoice_by_reference(ref, partner_id=body.get("partner_id"),
                                                     billing_date=body["billing_date"])
                return {"invoice": self.get_invoice(inv["id"])} if inv else None
        return self._create_once("POST", "/iv/invoices", body, find)["invoice"]

    def list_invoice_templates(self) -> list[dict]:
        return self._get("/iv/invoices/templates").get("templates", [])


def safe_repr(obj: Any) -> str:
    """Redacted ``repr`` for logging freee payloads."""
    return redact(repr(obj))


__all__ += ["safe_repr", "NotFound", "QuotaExhausted", "RateLimited"]
