"""Generic HTTP layer shared by every connector (dlt-style: the connector supplies *config*, not code).

One :class:`HttpClient` per external account wraps an :class:`httpx.Client` (connection pool, timeouts)
and adds:

* **retries** (tenacity) on 429, 5xx and transport errors (connect/read timeouts, dropped connections),
  exponential backoff with full jitter, ``Retry-After`` honoured (or a per-API hook such as HubSpot's
  ``X-HubSpot-RateLimit-Interval-Milliseconds``), configurable max attempts; **no retry** on other 4xx,
  which raise typed :class:`PermanentError` subclasses;
* a **typed error hierarchy** carrying status, API category/code, message and correlation id — never a
  token (everything passes through :func:`redact`);
* a thread-safe client-side **rate limiter** (rolling window per bucket, shared by all threads of one
  client) so concurrent requests fill the allowance when latency is high;
* an **auth hook** called per attempt (a refreshed token is used on retry; on 401 it may refresh once);
* lazy **paging helpers** (cursor and offset) that never hold more than one page.

A connector is configuration::

    client = HttpClient(HttpConfig(
        base_url="https://api.freee.co.jp",
        auth=BearerAuth(token_provider, refresh=refresh_fn),
        error_parser=parse_freee_error,
        rate_limiter=RateLimiter({"default": (300, 300.0)}),
    ))
    data = client.request_json("GET", "/api/1/partners", params={"company_id": 1})

Error classes (``ConnectorError`` is the root)::

    ConnectorError
    ├── TransientError          retryable
    │   ├── RateLimited         429 (not the daily cap)
    │   ├── ServerError         5xx
    │   └── TransportError      timeouts, connection refused/reset, RemoteProtocolError
    ├── PermanentError          not retried
    │   ├── BadRequest          400 / 414 / other 4xx   (ValidationFailed: 422 or an API's validation category)
    │   ├── Unauthorized        401
    │   ├── Forbidden           403
    │   ├── NotFound            404
    │   └── Conflict            409
    └── QuotaExhausted          daily cap reached: stop the run cleanly, do not retry
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, Mapping, Protocol, Sequence, TypeVar, runtime_checkable

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

log = logging.getLogger("renkei.connectors.http")

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------------
# redaction

_SECRETS_LOCK = threading.Lock()
_KNOWN_SECRETS: set[str] = set()
REDACTED = "***REDACTED***"

# names whose values are secrets wherever they appear (query strings, form bodies, JSON bodies, headers)
SECRET_NAMES = (
    "access_token", "refresh_token", "id_token", "client_secret", "client_id_secret", "hapikey", "api_key",
    "apikey", "password", "token", "code", "authorization", "x-api-key", "cookie", "set-cookie",
)
_SECRET_NAME_RE = "|".join(re.escape(n) for n in sorted(SECRET_NAMES, key=len, reverse=True))
# in JSON, "code" is usually an API error code, not an OAuth authorization code: keep it readable
_JSON_SECRET_RE = "|".join(re.escape(n) for n in sorted(set(SECRET_NAMES) - {"code"}, key=len, reverse=True))
_PATTERNS = [
    # Authorization: Bearer xxx / Basic xxx
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/=:]{4,}"), r"\1 " + REDACTED),
    # "access_token": "xxx"  (JSON)
    (re.compile(r'(?i)("(?:' + _JSON_SECRET_RE + r')"\s*:\s*")[^"]*(")'), r"\1" + REDACTED + r"\2"),
    # access_token=xxx  (query / form); a bare "code=" only after ? or & (OAuth authorization code)
    (re.compile(r"(?i)\b(" + _JSON_SECRET_RE + r")=([^&\s\"']+)"), r"\1=" + REDACTED),
    (re.compile(r"(?i)([?&]code)=([^&\s\"']+)"), r"\1=" + REDACTED),
    # HubSpot private-app tokens and personal access keys
    (re.compile(r"\bpat-[a-z0-9]{2,4}-[0-9a-fA-F-]{8,}"), REDACTED),
]


def register_secret(value: str | None) -> None:
    """Remember a secret value so :func:`redact` removes it from any text (tokens are registered by
    :class:`BearerAuth` the first time they are used). Values shorter than 6 characters are ignored."""
    if value and len(value) >= 6:
        with _SECRETS_LOCK:
            _KNOWN_SECRETS.add(value)


def redact(text: Any, secrets: Sequence[str] = ()) -> str:
    """Return ``text`` as a string with bearer tokens, ``access_token=…``-style values, JSON secret
    fields, registered secrets and ``secrets`` replaced by ``***REDACTED***``."""
    s = text if isinstance(text, str) else str(text)
    with _SECRETS_LOCK:
        known = sorted(_KNOWN_SECRETS | {x for x in secrets if x and len(x) >= 6}, key=len, reverse=True)
    for secret in known:
        if secret in s:
            s = s.replace(secret, REDACTED)
    for pattern, repl in _PATTERNS:
        s = pattern.sub(repl, s)
    return s


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Copy of ``headers`` with secret-bearing headers replaced."""
    return {k: (REDACTED if k.lower() in SECRET_NAMES or "secret" in k.lower() else redact(v))
            for k, v in headers.items()}


def redact_url(url: Any) -> str:
    return redact(str(url))


# ---------------------------------------------------------------------------------------------------
# errors


@dataclass
class ErrorInfo:
    """What an API's error body says, parsed by a connector-specific :data:`ErrorParser`."""

    message: str = ""
    category: str | None = None  # API error category, e.g. HubSpot VALIDATION_ERROR
    code: str | None = None  # API error code / sub-category
    correlation_id: str | None = None
    details: Any = None  # parsed body (already redacted) for diagnostics
    retry_after: float | None = None  # seconds, if the body or headers say so
    quota_exhausted: bool = False  # the daily/monthly cap: stop cleanly
    retryable: bool | None = None  # override the status-based classification


ErrorParser = Callable[[httpx.Response], ErrorInfo]


class ConnectorError(Exception):
    """Root of all connector errors. Text is always redacted; no header is ever stored."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, category: str | None = None,
                 code: str | None = None, correlation_id: str | None = None, method: str | None = None,
                 url: str | None = None, retry_after: float | None = None, details: Any = None,
                 system: str | None = None):
        self.message = redact(message)
        self.status = status
        self.category = category
        self.code = code
        self.correlation_id = correlation_id
        self.method = method
        self.url = redact_url(url) if url is not None else None
        self.retry_after = retry_after
        self.details = _redact_obj(details)
        # the registry name of the system whose API (or whose limiter in Renkei) raised it ("hubspot",
        # "freee" ...): set by the HttpClient of that system (HttpConfig.system); callers tell the CRM's
        # errors from the ERP's by it (e.g. whose daily cap ran out)
        self.system = system
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [f"{self.status}" if self.status is not None else None, self.category, self.code]
        head = " ".join(p for p in parts if p)
        where = f" [{self.method} {self.url}]" if self.method and self.url else ""
        cid = f" (correlation_id={self.correlation_id})" if self.correlation_id else ""
        return redact(f"{head + ': ' if head else ''}{self.message}{cid}{where}")

    def __repr__(self) -> str:
        return redact(f"{type(self).__name__}(status={self.status!r}, category={self.category!r}, "
                      f"code={self.code!r}, message={self.message!r}, correlation_id={self.correlation_id!r})")

    def __reduce__(self):  # picklable (Prefect may persist task exceptions)
        return (_rebuild_error, (type(self), self.message, dict(
            status=self.status, category=self.category, code=self.code, correlation_id=self.correlation_id,
            method=self.method, url=self.url, retry_after=self.retry_after, details=self.details,
            system=self.system)))


def _rebuild_error(cls, message, kw):
    return cls(message, **kw)


def _redact_obj(obj: Any) -> Any:
    if obj is None:
        return None
    try:
        return json.loads(redact(json.dumps(obj, ensure_ascii=False, default=str)))
    except (TypeError, ValueError):
        return redact(obj)


class TransientError(ConnectorError):
    retryable = True


class RateLimited(TransientError):
    pass


class ServerError(TransientError):
    pass


class TransportError(TransientError):
    pass


class PermanentError(ConnectorError):
    pass


class BadRequest(PermanentError):
    pass


class ValidationFailed(BadRequest):
    pass


class Unauthorized(PermanentError):
    pass


class Forbidden(PermanentError):
    pass


class NotFound(PermanentError):
    pass


class Conflict(PermanentError):
    pass


class QuotaExhausted(ConnectorError):
    """The daily (or other long-period) cap is reached: the run should stop cleanly and resume later."""


_STATUS_CLASSES: dict[int, type[ConnectorError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 422: ValidationFailed,
    429: RateLimited,
}


def default_error_parser(response: httpx.Response) -> ErrorInfo:
    """Best-effort parse of a JSON error body (``message``/``error``/``error_description``,
    ``category``/``code``, ``correlationId``/``request_id``); treats every field as optional."""
    body: Any = None
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    info = ErrorInfo()
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error_description") or body.get("error") or body.get("detail")
        if isinstance(msg, (dict, list)):
            msg = json.dumps(msg, ensure_ascii=False)
        info.message = str(msg or "")
        info.category = _opt_str(body.get("category") or body.get("errorType") or body.get("type"))
        info.code = _opt_str(body.get("code") or body.get("subCategory"))
        info.correlation_id = _opt_str(body.get("correlationId") or body.get("request_id") or body.get("requestId"))
        info.details = body
    else:
        info.message = response.text[:500]
    if not info.correlation_id:
        for h in ("x-request-id", "x-correlation-id", "x-hubspot-correlation-id"):
            if h in response.headers:
                info.correlation_id = response.headers[h]
                break
    info.retry_after = parse_retry_after(response.headers.get("retry-after"))
    return info


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP-date); None if absent or unparsable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if dt is None:
        return None
    return max(0.0, dt.timestamp() - time.time())


def error_from_response(response: httpx.Response, parser: ErrorParser = default_error_parser) -> ConnectorError:
    """Build the typed error for a non-2xx response."""
    try:
        info = parser(response)
    except Exception:  # noqa: BLE001 - a broken parser must not hide the real error
        info = default_error_parser(response)
    status = response.status_code
    if info.quota_exhausted:
        cls: type[ConnectorError] = QuotaExhausted
    elif info.retryable is True:
        cls = RateLimited if status == 429 else ServerError
    elif status in _STATUS_CLASSES:
        cls = _STATUS_CLASSES[status]
        if cls is BadRequest and (info.category or "").upper() in ("VALIDATION_ERROR", "VALIDATION"):
            cls = ValidationFailed
    elif status >= 500:
        cls = ServerError
    elif status == 408:
        cls = TransportError
    else:
        cls = BadRequest
    if info.retryable is False and issubclass(cls, TransientError):
        cls = BadRequest
    try:
        req: httpx.Request | None = response.request
    except RuntimeError:  # a Response built by hand in a test has no request
        req = None
    return cls(info.message or response.reason_phrase or f"HTTP {status}", status=status,
               category=info.category, code=info.code, correlation_id=info.correlation_id,
               method=req.method if req else None, url=str(req.url) if req else None,
               retry_after=info.retry_after, details=info.details)


# ---------------------------------------------------------------------------------------------------
# auth


@runtime_checkable
class AuthHook(Protocol):
    """Produces request headers; called once per attempt so a rotated token is picked up on retry."""

    def __call__(self) -> Mapping[str, str]: ...


class RefreshableAuth(AuthHook, Protocol):
    def refresh(self) -> bool:
        """Obtain a new credential after a 401; True if a retry is worth it."""
        ...


def _secret_value(v: Any) -> str:
    if v is None:
        return ""
    if hasattr(v, "get_secret_value"):
        return v.get_secret_value()
    return str(v)


class BearerAuth:
    """``Authorization: Bearer <token>``. ``token`` is a str, a pydantic ``SecretStr`` or a zero-arg
    callable returning either (called per attempt). ``refresh`` (optional) is called once on a 401."""

    def __init__(self, token: Any, refresh: Callable[[], Any] | None = None):
        self._token = token
        self._refresh = refresh

    def token(self) -> str:
        t = self._token() if callable(self._token) else self._token
        value = _secret_value(t)
        register_secret(value)
        return value

    def __call__(self) -> Mapping[str, str]:
        value = self.token()
        return {"Authorization": f"Bearer {value}"} if value else {}

    def refresh(self) -> bool:
        if self._refresh is None:
            return False
        new = self._refresh()
        if new is not None and not isinstance(new, bool):
            self._token = new
            register_secret(_secret_value(new))
        return True

    def __repr__(self) -> str:
        return f"BearerAuth(token={REDACTED})"


# ---------------------------------------------------------------------------------------------------
# rate limiting


FIXED_WINDOW_MARGIN_S = 0.001  # a booked slot sits this far inside its window's edge (float sums never land on it)


def fixed_window_wait(oldest: float | None, now: float, window_s: float, edge: float) -> float:
    """Seconds from ``now`` until a request may be stamped in a fixed (clock-aligned) window of ``window_s``
    whose last ``n`` acquisitions — the oldest of them, possibly booked in the future, is ``oldest`` — fill
    the allowance ``n``.

    A request stamped ``a`` counts in every window that ``[a - edge, a + edge]`` touches (it may reach the API
    a little later, or the API's clock may differ a little). A request stamped ``t`` may land in the window
    holding ``t - edge`` or the one holding ``t + edge``; the earlier one is full exactly when the ``n`` most
    recent acquisitions all count in it (``oldest + edge >= its start``), and the later one can only be full
    if the earlier one is. So ``t`` moves to the next window's start plus ``edge`` until one is free."""
    if oldest is None:
        return 0.0
    start = ((now - edge) // window_s) * window_s
    if oldest + edge < start:
        return 0.0
    while oldest + edge >= start:  # whole windows forward (never recomputed from a float sum: no loop forever)
        start += window_s
    return max(0.0, start + edge + FIXED_WINDOW_MARGIN_S - now)


class RateLimiter:
    """Thread-safe rolling-window limiter with one window per bucket.

    ``RateLimiter({"default": (90, 10.0), "search": (4, 1.0)})`` allows at most 90 acquisitions of
    ``default`` in any 10 s and 4 of ``search`` in any 1 s. :meth:`acquire` blocks until a slot is free in
    every requested bucket and records the slot atomically, so any number of threads share the allowance
    (concurrent requests fill it even when each request is slow). :meth:`penalise` blocks a bucket for a
    while after the server answered 429, so every thread backs off, not just the one that got it.
    """

    def __init__(self, limits: Mapping[str, tuple] | None = None, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 quota_wait_s: float = 900.0, wall: Callable[[], float] = time.time, edge_s: float = 0.5):
        # a third element "calendar" marks a cap (e.g. daily): never penalised by a 429, and a wait longer than
        # quota_wait_s raises QuotaExhausted instead of sleeping (here a rolling window of the same length).
        # "fixed" marks a pace whose windows reset on the clock (freee請求書's minute and hour): at most n per
        # UTC-aligned window, a request within edge_s of a boundary counting on both sides of it (the same
        # rule as store.ratelimit's fixed buckets: fixed_window_wait above)
        kinds = {k: (v[2] if len(v) > 2 else "rolling") for k, v in (limits or {}).items()}
        self.caps = {k for k, kind in kinds.items() if kind == "calendar"}
        self.fixed = {k for k, kind in kinds.items() if kind == "fixed"}
        self.limits: dict[str, tuple[int, float]] = {k: (v[0], v[1]) for k, v in (limits or {}).items()}
        self.quota_wait_s = quota_wait_s
        for k, (n, w) in self.limits.items():
            if n < 1 or w <= 0:
                raise ValueError(f"bad limit for {k!r}: {(n, w)}")
        self._events: dict[str, deque[float]] = {k: deque() for k in self.limits}
        self._blocked_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._wall = wall
        self._edge_s = edge_s
        self._sleep = sleep
        self.acquired: dict[str, int] = {k: 0 for k in self.limits}
        self.waited_seconds = 0.0

    def _wait_needed(self, key: str, now: float) -> float:
        wait = max(0.0, self._blocked_until.get(key, 0.0) - now)
        if key not in self.limits:
            return wait
        limit, window = self.limits[key]
        q = self._events[key]
        fixed = key in self.fixed
        keep = window + 2 * self._edge_s if fixed else window
        while q and q[0] <= now - keep:
            q.popleft()
        if len(q) >= limit:
            if fixed:  # on the wall clock (windows are UTC-aligned), the ring's times on the limiter's clock
                shift = self._wall() - now
                wait = max(wait, fixed_window_wait(q[len(q) - limit] + shift, now + shift, window, self._edge_s))
            else:
                wait = max(wait, q[len(q) - limit] + window - now)
        return wait

    def try_acquire(self, *keys: str) -> float:
        """Take a slot in all ``keys`` if possible and return 0.0, else return the seconds to wait."""
        keys = keys or ("default",)
        with self._lock:
            now = self._clock()
            wait = max(self._wait_needed(k, now) for k in keys)
            if wait > 0:
                return wait
            for k in keys:
                if k in self.limits:
                    self._events[k].append(now)
                    self.acquired[k] = self.acquired.get(k, 0) + 1
            return 0.0

    def acquire(self, *keys: str, timeout: float | None = None) -> float:
        """Block until a slot is free in all ``keys``; returns the seconds waited."""
        start = self._clock()
        while True:
            wait = self.try_acquire(*keys)
            if wait <= 0:
                waited = self._clock() - start
                with self._lock:
                    self.waited_seconds += waited
                return waited
            if wait > self.quota_wait_s:
                raise QuotaExhausted(f"rate limit {'/'.join(keys)}: no slot for {wait:.0f}s (cap reached); "
                                     "resume later", retry_after=wait)
            if timeout is not None and self._clock() - start + wait > timeout:
                raise TimeoutError(f"rate limiter: no slot in {keys} within {timeout}s")
            # small jitter so woken threads do not stampede the same instant
            self._sleep(wait + random.uniform(0, 0.002))

    def penalise(self, key: str, seconds: float) -> None:
        """Block ``key`` for ``seconds`` (after a server-side 429). A cap (calendar bucket) is never blocked."""
        if key in self.caps:
            return
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            self._blocked_until[key] = max(self._blocked_until.get(key, 0.0), until)

    def __repr__(self) -> str:
        return f"RateLimiter({self.limits})"


# ---------------------------------------------------------------------------------------------------
# client


@runtime_checkable
class RateLimiterBackend(Protocol):
    """What :class:`HttpClient` needs from a limiter: :class:`RateLimiter` (this process) or
    ``renkei.store.ratelimit.DbRateLimiter`` (every process sharing the state store)."""

    limits: Mapping[str, tuple]

    def try_acquire(self, *keys: str) -> float: ...

    def acquire(self, *keys: str, timeout: float | None = None) -> float: ...

    def penalise(self, key: str, seconds: float) -> None: ...


RetryAfterHook = Callable[[httpx.Response, ConnectorError], "float | None"]
ResponseHook = Callable[[httpx.Response], None]


@dataclass
class HttpConfig:
    """Everything a connector supplies. Only ``base_url`` is required."""

    base_url: str
    auth: AuthHook | None = None
    timeout: float | httpx.Timeout = 30.0
    connect_timeout: float = 10.0
    max_attempts: int = 5  # total attempts including the first
    backoff_initial: float = 0.5  # seconds; exponential with full jitter: U(0, initial * 2**n), capped
    backoff_max: float = 30.0
    retry_after_max: float = 120.0  # never sleep longer than this for one retry
    error_parser: ErrorParser = default_error_parser
    retry_after: RetryAfterHook | None = None  # per-API wait for 429s (None → Retry-After header)
    rate_limiter: "RateLimiterBackend | None" = None  # RateLimiter, or store.ratelimit.DbRateLimiter (shared)
    default_buckets: tuple[str, ...] = ("default",)
    max_connections: int = 20
    headers: Mapping[str, str] = field(default_factory=dict)
    user_agent: str = "renkei/0.1 (+https://github.com/renkei)"
    response_hooks: Sequence[ResponseHook] = ()
    transport: httpx.BaseTransport | None = None  # tests: httpx.MockTransport
    sleep: Callable[[float], None] = time.sleep  # tests: patch out
    system: str | None = None  # registry name of the API's system: set on every error raised (ConnectorError.system)


@dataclass
class RequestStats:
    requests: int = 0  # HTTP exchanges sent (including retries)
    retries: int = 0
    rate_limited: int = 0  # 429 received
    by_status: dict[int, int] = field(default_factory=dict)


class HttpClient:
    """Thread-safe HTTP client for one API account (share it between worker threads)."""

    def __init__(self, config: HttpConfig):
        self.config = config
        timeout = config.timeout if isinstance(config.timeout, httpx.Timeout) else httpx.Timeout(
            config.timeout, connect=min(config.connect_timeout, config.timeout))
        headers = {"User-Agent": config.user_agent, "Accept": "application/json", **dict(config.headers)}
        self._http = httpx.Client(
            base_url=config.base_url, timeout=timeout, headers=headers, transport=config.transport,
            limits=httpx.Limits(max_connections=config.max_connections,
                                max_keepalive_connections=config.max_connections),
        )
        self.rate_limiter = config.rate_limiter
        self.stats = RequestStats()
        self._stats_lock = threading.Lock()
        self._refresh_lock = threading.Lock()

    # -- lifecycle
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpClient(base_url={self.config.base_url!r})"

    # -- requests
    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                data: Any = None, headers: Mapping[str, str] | None = None, buckets: Sequence[str] | None = None,
                retry: bool = True, max_attempts: int | None = None, auth: bool = True) -> httpx.Response:
        """Send with rate limiting, auth and retries; return the 2xx/3xx response or raise a typed error.

        ``buckets`` are the rate-limiter buckets this call consumes (default ``config.default_buckets``).
        ``retry=False`` disables retries for non-idempotent calls whose duplication the caller cannot
        tolerate (the ledger normally makes retries of writes safe)."""
        attempts = max(1, max_attempts or self.config.max_attempts) if retry else 1
        buckets = tuple(buckets) if buckets is not None else self.config.default_buckets
        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            retry=retry_if_exception_type(TransientError),
            wait=self._wait,
            sleep=self.config.sleep,
            reraise=True,
            before_sleep=self._before_sleep,
        )
        try:
            return retrying(self._attempt, method, path, params, json, data, headers, buckets, auth)
        except ConnectorError as exc:  # the limiter's QuotaExhausted too: whose API it is
            if exc.system is None:
                exc.system = self.config.system
            raise

    def request_json(self, method: str, path: str, **kw: Any) -> Any:
        """:meth:`request` and decode JSON (None for an empty body, e.g. 204)."""
        resp = self.request(method, path, **kw)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def get(self, path: str, **kw: Any) -> Any:
        return self.request_json("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request_json("POST", path, **kw)

    def _attempt(self, method, path, params, json_body, data, headers, buckets, use_auth) -> httpx.Response:
        refreshed = False
        while True:
            if self.rate_limiter is not None:
                self.rate_limiter.acquire(*buckets)
            hdrs = dict(headers or {})
            if use_auth and self.config.auth is not None:
                hdrs.update(self.config.auth())
            started = time.monotonic()
            try:
                resp = self._http.request(method, path, params=_clean_params(params), json=json_body,
                                          data=data, headers=hdrs)
            except httpx.TransportError as exc:  # timeouts, connect errors, RemoteProtocolError, ...
                self._count(None)
                url = str(self._http.base_url.join(path))
                log.info("%s %s -> %s", method, redact_url(url), type(exc).__name__)
                raise TransportError(f"{type(exc).__name__}: {exc}", method=method, url=url) from None
            self._count(resp.status_code)
            for hook in self.config.response_hooks:
                hook(resp)
            log.debug("%s %s -> %s in %.0f ms", method, redact_url(resp.request.url), resp.status_code,
                      (time.monotonic() - started) * 1000)
            if resp.status_code < 400:
                return resp
            error = error_from_response(resp, self.config.error_parser)
            if isinstance(error, Unauthorized) and not refreshed and use_auth and _can_refresh(self.config.auth):
                with self._refresh_lock:
                    ok = self.config.auth.refresh()  # type: ignore[union-attr]
                refreshed = True
                if ok:
                    log.info("401 from %s: credential refreshed, retrying once", redact_url(resp.request.url))
                    continue
            if isinstance(error, RateLimited):
                with self._stats_lock:
                    self.stats.rate_limited += 1
                wait = self._rate_limited_wait(resp, error)
                error.retry_after = wait
                if self.rate_limiter is not None:
                    for b in buckets:
                        self.rate_limiter.penalise(b, wait)
            log.info("%s %s -> %s %s", method, redact_url(resp.request.url), resp.status_code,
                     error.category or "")
            raise error

    def _rate_limited_wait(self, resp: httpx.Response, error: ConnectorError) -> float:
        wait = None
        if self.config.retry_after is not None:
            wait = self.config.retry_after(resp, error)
        if wait is None:
            wait = error.retry_after
        if wait is None:
            wait = self.config.backoff_initial
        return min(float(wait), self.config.retry_after_max)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        n = state.attempt_number  # 1 after the first failure
        cap = min(self.config.backoff_max, self.config.backoff_initial * (2 ** (n - 1)))
        backoff = random.uniform(0, cap)  # full jitter
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            # the limiter is already blocked for retry_after; jitter spreads the herd
            return min(self.config.retry_after_max, exc.retry_after + random.uniform(0, 0.1 * exc.retry_after + 0.05))
        if isinstance(exc, ConnectorError) and exc.retry_after is not None:
            return min(self.config.retry_after_max, max(exc.retry_after, backoff))
        return backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        with self._stats_lock:
            self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.warning("retry %d after %s", state.attempt_number, redact(repr(exc)))

    def _count(self, status: int | None) -> None:
        with self._stats_lock:
            self.stats.requests += 1
            if status is not None:
                self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1

    # -- paging
    def paginate(self, method: str, path: str, paginator: "Paginator", *, params: Mapping[str, Any] | None = None,
                 json: Any = None, **kw: Any) -> Iterator["Page"]:
        """Yield pages lazily, asking ``paginator`` how to get the next one."""
        params = dict(params or {})
        body = dict(json) if isinstance(json, Mapping) else json
        state = paginator.init(params, body)
        while True:
            data = self.request_json(method, path, params=params, json=body, **kw)
            page = paginator.page(data, state)
            yield page
            nxt = paginator.advance(page, params, body, state)
            if not nxt:
                return


class PaceTimeout(httpx.TimeoutException):
    """:class:`PaceHooks` found no rate-limit slot within its ``max_wait_s``: the request was not sent."""


class PaceHooks:
    """The pace of :class:`HttpClient` for callers that speak to an API with a plain ``httpx.Client``
    (connection checks, the webhook receiver's reads): ``httpx.Client(event_hooks=PaceHooks(...).hooks)``
    takes the limiter's slot before every request and, after a 429, blocks the request's buckets
    (:meth:`RateLimiterBackend.penalise`). Given the account's shared limiter, such a caller takes its slots
    from the same rows as every worker, so the API's allowance is never spent behind the workers' backs
    (three unpaced preflight reads drew HubSpot 429s in benchmarks/scale_out.py). Event hooks, not a
    transport: the client keeps its own transport and the environment's proxies.

    ``buckets(request)`` names the buckets a request takes; ``retry_after(response)`` is the block after a 429
    (default ``Retry-After``, else 1 s); ``max_wait_s`` bounds the wait for a slot (then :class:`PaceTimeout`,
    the request unsent — for callers that rather go without than wait). A cap used up raises
    :class:`QuotaExhausted` from the limiter, the request unsent."""

    def __init__(self, limiter: "RateLimiterBackend | None", buckets: Callable[[httpx.Request], Sequence[str]], *,
                 retry_after: Callable[[httpx.Response], "float | None"] | None = None,
                 max_wait_s: float | None = None):
        self.limiter, self.buckets, self.retry_after, self.max_wait_s = limiter, buckets, retry_after, max_wait_s

    @property
    def hooks(self) -> dict[str, list[Callable[..., None]]]:
        return {"request": [self.before], "response": [self.after]}

    def before(self, request: httpx.Request) -> None:
        if self.limiter is None:
            return
        keys = tuple(self.buckets(request))
        try:
            self.limiter.acquire(*keys, timeout=self.max_wait_s)
        except TimeoutError:
            raise PaceTimeout(f"no rate-limit slot in {'/'.join(keys)} within {self.max_wait_s:g}s",
                              request=request) from None

    def after(self, response: httpx.Response) -> None:
        if response.status_code != 429 or self.limiter is None:
            return
        response.read()
        wait = self.retry_after(response) if self.retry_after is not None else None
        if wait is None:
            wait = parse_retry_after(response.headers.get("retry-after"))
        for key in self.buckets(response.request):
            self.limiter.penalise(key, 1.0 if wait is None else float(wait))


def _can_refresh(auth: Any) -> bool:
    return auth is not None and callable(getattr(auth, "refresh", None))


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    out: dict[str, Any] = {}
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            v = ",".join(str(x) for x in v)
        elif isinstance(v, bool):
            v = "true" if v else "false"
        out[k] = v
    return out


# ---------------------------------------------------------------------------------------------------
# paging


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: Any = None  # cursor / offset for the following page; None on the last
    total: int | None = None
    raw: Any = None


def _dig(data: Any, path: str | None) -> Any:
    if not path:
        return data
    for part in path.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


class Paginator(Protocol):
    def init(self, params: dict, body: Any) -> dict: ...

    def page(self, data: Any, state: dict) -> Page: ...

    def advance(self, page: Page, params: dict, body: Any, state: dict) -> bool: ...


@dataclass
class CursorPaginator:
    """Cursor in the response (``cursor_path``, e.g. ``paging.next.after``) sent back as ``param``
    (query string, or the JSON body when ``in_body``). Stops when the cursor is absent."""

    items_path: str = "results"
    cursor_path: str = "paging.next.after"
    param: str = "after"
    in_body: bool = False
    total_path: str | None = None

    def init(self, params: dict, body: Any) -> dict:
        return {}

    def page(self, data: Any, state: dict) -> Page:
        return Page(items=list(_dig(data, self.items_path) or []), next_cursor=_dig(data, self.cursor_path),
                    total=_dig(data, self.total_path) if self.total_path else None)

    def advance(self, page: Page, params: dict, body: Any, state: dict) -> bool:
        if page.next_cursor in (None, ""):
            return False
        target = body if self.in_body else params
        if target.get(self.param) == page.next_cursor:  # a server that repeats a cursor would loop forever
            raise ServerError(f"paging cursor did not advance ({self.param})")
        target[self.param] = page.next_cursor
        return True


@dataclass
class OffsetPaginator:
    """``offset``/``limit`` parameters; stops on a short or empty page, or when ``total`` is reached."""

    limit: int = 100
    items_path: str | None = "results"
    offset_param: str = "offset"
    limit_param: str = "limit"
    total_path: str | None = None
    in_body: bool = False
    start: int = 0

    def init(self, params: dict, body: Any) -> dict:
        target = body if self.in_body else params
        target[self.offset_param] = self.start
        target[self.limit_param] = self.limit
        return {"offset": self.start}

    def page(self, data: Any, state: dict) -> Page:
        items = list(_dig(data, self.items_path) or [])
        total = _dig(data, self.total_path) if self.total_path else None
        nxt = state["offset"] + len(items)
        done = len(items) < self.limit or (total is not None and nxt >= int(total))
        return Page(items=items, next_cursor=None if done else nxt, total=total)

    def advance(self, page: Page, params: dict, body: Any, state: dict) -> bool:
        if page.next_cursor is None:
            return False
        state["offset"] = page.next_cursor
        (body if self.in_body else params)[self.offset_param] = page.next_cursor
        return True


def iter_cursor_pages(fetch: Callable[[Any], tuple[list[T], Any]], start: Any = None) -> Iterator[list[T]]:
    """Generic cursor paging: ``fetch(cursor) -> (items, next_cursor)``; stops when next is falsy.
    Only one page is alive at a time."""
    cursor = start
    while True:
        items, nxt = fetch(cursor)
        yield items
        if nxt in (None, "") or nxt == cursor:
            return
        cursor = nxt


def iter_offset_pages(fetch: Callable[[int, int], list[T]], limit: int, start: int = 0,
                      total: int | None = None) -> Iterator[list[T]]:
    """Generic offset paging: ``fetch(offset, limit) -> items``; stops on a short page or at ``total``."""
    offset = start
    while total is None or offset < total:
        items = fetch(offset, limit)
        if items:
            yield items
        if len(items) < limit:
            return
        offset += len(items)


def iter_items(pages: Iterator[Page[T] | list[T]]) -> Iterator[T]:
    """Flatten pages into items (still lazy)."""
    for page in pages:
        yield from (page.items if isinstance(page, Page) else page)


def chunked(seq: Sequence[T] | Iterator[T], size: int) -> Iterator[list[T]]:
    """Split into lists of at most ``size`` (batch endpoints)."""
    buf: list[T] = []
    for x in seq:
        buf.append(x)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


__all__ = [
    "AuthHook", "BadRequest", "BearerAuth", "Conflict", "ConnectorError", "CursorPaginator", "ErrorInfo",
    "ErrorParser", "Forbidden", "HttpClient", "HttpConfig", "NotFound", "OffsetPaginator", "Page", "Paginator",
    "PaceHooks", "PaceTimeout", "PermanentError", "QuotaExhausted", "RateLimited", "RateLimiter", "RateLimiterBackend", "RefreshableAuth", "RequestStats",
    "ServerError", "TransientError", "TransportError", "Unauthorized", "ValidationFailed", "chunked",
    "default_error_parser", "error_from_response", "iter_cursor_pages", "iter_items", "iter_offset_pages",
    "parse_retry_after", "redact", "redact_headers", "redact_url", "register_secret",
]
