"""HubSpot CRM API client (raw dicts on the wire; canonical mapping lives in :mod:`.mapping`).

Configuration on top of :mod:`connectors.http`: HubSpot's error body, its 429 policies (``DAILY`` →
:class:`QuotaExhausted`, others → wait and retry), and two client-side rate-limit buckets shared by every
thread of one client:

* ``default`` — the per-app 10-second bucket (documented 100 / 10 s on Free/Starter);
* ``search`` — CRM search, 5 requests / s per account, exempt from the 10-second bucket;
* ``daily`` (with ``daily_cap``) — the account's requests per day, a calendar bucket every request takes
  (HubSpot resets it at midnight in the account's time zone): used up → :class:`QuotaExhausted` before
  HubSpot has to answer 429 ``DAILY``.

The client keeps a safety margin under the documented limits (``headroom``, default 10 %): the client-side window is stretched by that fraction, so no *server* window of
the documented length can hold more than the limit even if request arrival times jitter by up to that
fraction of the window.

Object APIs: ``client.companies``, ``.contacts``, ``.deals``, ``.line_items``, ``.products`` (and
``client.objects("quotes")``), each an :class:`ObjectApi`.

Reading:

* :meth:`ObjectApi.changes` — incremental read by last-modified timestamp via search, boundary-safe
  (see its docstring), yielding :class:`~connectors.base.ChangeBatch` with a :class:`Watermark` to commit
  after processing;
* :meth:`ObjectApi.scan_pages` — fast sequential full scan (list endpoint, 100 per page);
* :meth:`ObjectApi.read_all` — concurrent full read that fills *both* rate-limit buckets (list stream
  ascending by id + search streams descending by id, meeting in the middle; see :mod:`benchmarks.hubspot_read`).

The token never appears in logs, errors or recordings: it only ever lives in the ``Authorization`` header
built per attempt by :class:`~connectors.http.BearerAuth`, and is registered with
:func:`~connectors.http.redact`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import httpx

from renkei.connectors.base import ChangeBatch, WriteResult
from renkei.connectors.http import (
    BadRequest, BearerAuth, Conflict, ConnectorError, ErrorInfo, HttpClient, HttpConfig, NotFound, RateLimiter,
    chunked, default_error_parser, parse_retry_after, redact,
)

log = logging.getLogger("renkei.connectors.hubspot")

DEFAULT_BASE_URL = "https://api.hubapi.com"
# Documented limits (Free/Starter). Professional/Enterprise: 190 / 10 s.
DOCUMENTED_LIMITS: dict[str, tuple[int, float]] = {"default": (100, 10.0), "search": (5, 1.0)}
# Safety margin kept under each documented limit (the client-side window is stretched by it): 100 per 11 s,
# search 5 per 1.1 s. Search's 1 s window tolerates only 100 ms of arrival jitter at 10 %; a rare 429 costs
# one retry after 1 s (the whole bucket pauses). For the reference's conservative budget of 4 searches/s
# pass ``headroom={"default": 0.1, "search": 0.25}``.
DEFAULT_HEADROOM: dict[str, float] = {"default": 0.1, "search": 0.1}
# Per account and day (reset at midnight in the account's time zone): Free/Starter 250,000, Professional
# 625,000, Enterprise 1,000,000 (+1,000,000 per API limit increase). Counted client-side as a calendar bucket
# ``daily`` when a cap is given: used up → QuotaExhausted before HubSpot answers 429 DAILY.
DOCUMENTED_DAILY: dict[str, int] = {"free": 250_000, "starter": 250_000, "professional": 625_000,
                                    "enterprise": 1_000_000}
DAY_S = 86400.0
BATCH_LIMIT = 100  # object batch endpoints
SEARCH_PAGE_LIMIT = 200
SEARCH_RESULT_CAP = 10_000  # a search query cannot page beyond 10,000 results
ASSOC_BATCH_READ_LIMIT = 1000
ASSOC_BATCH_CREATE_LIMIT = 2000
MAX_FILTERS_PER_GROUP = 6

OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "products": "0-7", "line_items": "0-8",
                   "quotes": "0-14", "invoices": "0-53"}


def paced_limits(limits: Mapping[str, tuple[int, float]] | None = None,
                 headroom: float | Mapping[str, float] = DEFAULT_HEADROOM, daily_cap: int | None = None
                 ) -> dict[str, tuple]:
    """The client-side buckets: each documented rolling window stretched by its headroom, plus the daily cap
    as a calendar bucket (``(n, 86400, "calendar")``; never stretched — a day is a day). What the client's
    limiter and ``renkei setup`` are built from."""
    limits = DOCUMENTED_LIMITS if limits is None else limits

    def margin(bucket: str) -> float:
        return float(headroom.get(bucket, 0.1)) if isinstance(headroom, Mapping) else float(headroom)

    paced: dict[str, tuple] = {k: (n, w * (1.0 + margin(k))) for k, (n, w) in limits.items()}
    if daily_cap:
        paced["daily"] = (int(daily_cap), DAY_S, "calendar")
    return paced


def modified_property(object_type: str) -> str:
    """Last-modified property used by the incremental read (contacts are the odd one out)."""
    return "lastmodifieddate" if object_type in ("contacts", "0-1") else "hs_lastmodifieddate"


# ---------------------------------------------------------------------------------------------------
# HubSpot-specific HTTP configuration


def parse_hubspot_error(response: httpx.Response) -> ErrorInfo:
    """HubSpot error body: ``status, message, correlationId, category, subCategory, errors[], context``;
    429 bodies carry ``errorType: RATE_LIMIT`` and ``policyName`` (``DAILY`` = the daily cap)."""
    info = default_error_parser(response)
    body = info.details if isinstance(info.details, dict) else {}
    info.category = _s(body.get("category")) or _s(body.get("errorType")) or info.category
    info.code = _s(body.get("subCategory")) or _s(body.get("policyName")) or info.code
    errs = body.get("errors")
    if isinstance(errs, list) and errs and isinstance(errs[0], dict) and errs[0].get("message"):
        extra = "; ".join(str(e.get("message")) for e in errs[:5] if isinstance(e, dict))
        if extra and extra not in info.message:
            info.message = f"{info.message} ({extra})" if info.message else extra
    policy = str(body.get("policyName") or "").upper()
    if response.status_code == 429 and policy == "DAILY":
        info.quota_exhausted = True
    return info


def _s(v: Any) -> str | None:
    return None if v in (None, "") else str(v)


def make_retry_after(search_window_s: float = 1.0, ten_second_fraction: float = 0.5) -> Callable[..., float | None]:
    """Wait after a 429: ``Retry-After`` if sent; else 1 s for the secondly (search) policy; else a fraction
    of ``X-HubSpot-RateLimit-Interval-Milliseconds`` (the rolling window frees slots continuously, so the
    whole window is rarely needed; the shared limiter blocks every thread meanwhile)."""

    def retry_after(response: httpx.Response, error: ConnectorError) -> float | None:
        ra = parse_retry_after(response.headers.get("retry-after"))
        if ra is not None:
            return ra
        policy = (error.code or "").upper()
        if "SECOND" in policy and "TEN" not in policy:
            return search_window_s
        if response.request.url.path.endswith("/search"):
            return search_window_s
        interval = response.headers.get("x-hubspot-ratelimit-interval-milliseconds")
        try:
            window = float(interval) / 1000.0 if interval else 10.0
        except ValueError:
            window = 10.0
        return max(0.2, window * ten_second_fraction)

    return retry_after


class DailyRemaining:
    """Response hook: HubSpot's ``X-HubSpot-RateLimit-Daily-Remaining`` (the account's day, shared with its
    other apps; not sent to OAuth apps) raises the shared daily count so Renkei takes at most what is left —
    written at most every ``every_s`` per process, and on every response once fewer than ``near`` remain."""

    def __init__(self, limiter: Any, key: str = "daily", every_s: float = 5.0, near: int = 1000):
        self.limiter, self.key, self.every_s, self.near = limiter, key, every_s, near
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, response: httpx.Response) -> None:
        value = response.headers.get("x-hubspot-ratelimit-daily-remaining")
        if value is None or not value.strip().isdigit():
            return
        remaining = int(value)
        now = time.monotonic()
        with self._lock:
            if remaining >= self.near and now - self._last < self.every_s:
                return
            self._last = now
        try:
            self.limiter.observe_remaining(self.key, remaining)
        except Exception as exc:  # noqa: BLE001 - the response is good; the next one tries again
            log.warning("could not share HubSpot's daily remaining count: %s", type(exc).__name__)


# ---------------------------------------------------------------------------------------------------
# token sources


def token_from_settings() -> Any:
    """``RENKEI_HUBSPOT_TOKEN`` (via :mod:`renkei.settings` when importable, else the environment)."""
    try:
        from renkei.settings import Settings

        tok = Settings().hubspot_token
        if tok is not None:
            return tok
    except Exception:  # noqa: BLE001 - settings module optional here
        pass
    return os.environ.get("RENKEI_HUBSPOT_TOKEN")


class SecretBlockToken:
    """Token read lazily from a Prefect ``Secret`` block (loaded once, reloaded on a 401).

    Prefect is imported only when the token is first needed."""

    def __init__(self, block_name: str):
        self.block_name = block_name
        self._value: str | None = None
        self._lock = threading.Lock()

    def _load(self) -> str:
        from prefect.blocks.system import Secret  # lazy: no prefect import at module import

        value = Secret.load(self.block_name).get()
        return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)

    def __call__(self) -> str:
        with self._lock:
            if self._value is None:
                self._value = self._load()
            return self._value

    def reload(self) -> bool:
        with self._lock:
            old, self._value = self._value, self._load()
            return self._value != old

    def __repr__(self) -> str:
        return f"SecretBlockToken({self.block_name!r})"


def token_from_secret_block(name: str) -> SecretBlockToken:
    """A token provider for :class:`HubSpotClient` backed by the Prefect Secret block ``name``."""
    return SecretBlockToken(name)


# ---------------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class Watermark:
    """Cursor of an incremental read: last-modified epoch ms, plus the last ``hs_object_id`` when the
    read stopped inside a run of records sharing one timestamp (tie-breaker mode). Encoded as
    ``"<ms>"`` or ``"<ms>:<id>"``; resuming reads ``ts GTE ms`` (or ``ts EQ ms AND id GT id`` first)."""

    ts_ms: int
    after_id: int | None = None

    def encode(self) -> str:
        return f"{self.ts_ms}" if self.after_id is None else f"{self.ts_ms}:{self.after_id}"

    @classmethod
    def decode(cls, value: "Watermark | str | int | datetime | None") -> "Watermark | None":
        if value is None or value == "":
            return None
        if isinstance(value, Watermark):
            return value
        if isinstance(value, datetime):
            dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            return cls(int(dt.timestamp() * 1000))
        if isinstance(value, int):
            return cls(value)
        ts, _, rid = str(value).partition(":")
        return cls(int(ts), int(rid) if rid else None)

    def __str__(self) -> str:
        return self.encode()


@dataclass
class BatchResult:
    """Per-input outcome of a batch write; ``results[i]`` belongs to ``inputs[i]``."""

    results: list[WriteResult[dict]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def errors(self) -> list[WriteResult[dict]]:
        return [r for r in self.results if not r.ok]

    @property
    def succeeded(self) -> list[WriteResult[dict]]:
        return [r for r in self.results if r.ok]


def record_ts_ms(record: Mapping[str, Any], prop: str) -> int:
    """Last-modified epoch ms of a record (property as ms string or ISO date; falls back to updatedAt)."""
    value = (record.get("properties") or {}).get(prop) or record.get("updatedAt")
    return parse_hs_datetime_ms(value)


def parse_hs_datetime_ms(value: Any) -> int:
    if value is None or value == "":
        raise ValueError("missing timestamp")
    s = str(value).strip()
    if s.isdigit():
        return int(s)
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(round(dt.timestamp() * 1000))


# ---------------------------------------------------------------------------------------------------
# client


class HubSpotClient:
    """One HubSpot account. Thread-safe; share it between worker threads (they share its rate limiter).

    ``token`` may be a str, a pydantic ``SecretStr`` or a zero-arg callable (``token_provider``) returning
    either (called per attempt; a callable with a ``reload()`` or ``refresh()`` method is refreshed once on
    a 401). Without both, ``RENKEI_HUBSPOT_TOKEN`` is used.

    ``rate_limits`` are the *documented* limits ``{"default": (n, window_s), "search": (n, window_s)}``;
    ``headroom`` is the safety margin kept under them, one fraction for all buckets or one per bucket
    (default 10 %: ≤ 100 per 11 s, ≤ 5 searches per 1.1 s).
    ``rate_limits=None`` disables client-side limiting (tests against an unlimited sandbox).
    ``daily_cap`` counts the account's daily requests client-side (a calendar bucket ``daily`` every request
    takes; the day of the limiter's ``calendar_offset_s``): used up → :class:`QuotaExhausted` before sending.
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, token: Any = None, *, token_provider: Callable[[], Any] | None = None,
                 rate_limits: Mapping[str, tuple[int, float]] | None | str = "documented",
                 headroom: float | Mapping[str, float] = DEFAULT_HEADROOM,
                 max_workers: int = 4, timeout: float = 30.0, max_attempts: int = 6, backoff_initial: float = 0.5,
                 backoff_max: float = 30.0, api_version: str = "v3", transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] | None = None,
                 limiter_factory: Callable[[dict[str, tuple]], Any] | None = None, daily_cap: int | None = None):
        source = token_provider if token_provider is not None else token
        if source is None:
            source = token_from_settings()
        if source is None:
            raise ValueError("no HubSpot token: pass token=/token_provider= or set RENKEI_HUBSPOT_TOKEN")
        refresh = None
        for name in ("reload", "refresh"):
            fn = getattr(source, name, None)
            if callable(fn):
                refresh = fn
                break
        self.auth = BearerAuth(source, refresh=refresh)
        limits = DOCUMENTED_LIMITS if rate_limits == "documented" else rate_limits
        self.documented_limits = dict(limits) if limits else {}
        paced = paced_limits(limits, headroom, daily_cap) if limits else {}
        # every request also takes a slot of the day's cap (the daily bucket), whichever pace bucket it uses
        self._daily: tuple[str, ...] = ("daily",) if "daily" in paced else ()
        # limiter_factory: the shared limiter of the state store (store.ratelimit.limiter_for) or any other
        # backend with the RateLimiter interface; default the in-process one
        self.rate_limiter = ((limiter_factory(paced) if limiter_factory else RateLimiter(paced)) if paced else None)
        self.max_workers = max(1, int(max_workers))
        self.api_version = api_version
        hooks = ()
        if self._daily and hasattr(self.rate_limiter, "observe_remaining"):
            hooks = (DailyRemaining(self.rate_limiter),)
        cfg = HttpConfig(
            base_url=base_url.rstrip("/"), auth=self.auth, timeout=timeout, max_attempts=max_attempts,
            backoff_initial=backoff_initial, backoff_max=backoff_max, error_parser=parse_hubspot_error,
            retry_after=make_retry_after(), rate_limiter=self.rate_limiter, max_connections=max(10, 2 * self.max_workers + 4),
            transport=transport, response_hooks=hooks, system="hubspot",
        )
        if sleep is not None:
            cfg.sleep = sleep
        self.http = HttpClient(cfg)
        self._apis: dict[str, ObjectApi] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.properties = PropertyManager(self)
        self._pipelines: dict[str, list[dict]] = {}

    # -- plumbing
    def __repr__(self) -> str:
        return f"HubSpotClient(base_url={self.http.config.base_url!r})"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.http.close()

    def __enter__(self) -> "HubSpotClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def stats(self):
        return self.http.stats

    def pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="hubspot")
            return self._pool

    def request(self, method: str, path: str, *, search: bool = False, **kw: Any) -> Any:
        """JSON request; ``search=True`` consumes the search bucket instead of the 10-second one."""
        return self.http.request_json(method, path, buckets=(("search",) if search else ("default",)) + self._daily,
                                      **kw)

    def objects(self, object_type: str) -> "ObjectApi":
        api = self._apis.get(object_type)
        if api is None:
            api = self._apis[object_type] = ObjectApi(self, object_type)
        return api

    companies = property(lambda self: self.objects("companies"))
    contacts = property(lambda self: self.objects("contacts"))
    deals = property(lambda self: self.objects("deals"))
    line_items = property(lambda self: self.objects("line_items"))
    products = property(lambda self: self.objects("products"))

    # -- associations v4
    def read_associations(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[dict]]:
        """``{from_id: [{"toObjectId": .., "associationTypes": [..]}, ...]}`` for every id (empty list when
        none), batched 1,000 per request, following per-input paging."""
        out: dict[str, list[dict]] = {str(i): [] for i in ids}
        pending = [{"id": str(i)} for i in dict.fromkeys(str(i) for i in ids)]
        path = f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
        while pending:
            nxt: list[dict] = []
            for chunk in chunked(pending, ASSOC_BATCH_READ_LIMIT):
                data = self.request("POST", path, json={"inputs": chunk}) or {}
                for item in data.get("results", []):
                    fid = str((item.get("from") or {}).get("id"))
                    out.setdefault(fid, []).extend(item.get("to") or [])
                    after = ((item.get("paging") or {}).get("next") or {}).get("after")
                    if after:
                        nxt.append({"id": fid, "after": after})
                for err in data.get("errors", []) or []:
                    if str(err.get("category", "")).upper() not in ("OBJECT_NOT_FOUND", "NOT_FOUND"):
                        log.warning("association read error: %s", redact(err.get("message")))
            pending = nxt
        return out

    def associate_default(self, from_type: str, from_id: str, to_type: str, to_id: str) -> Any:
        return self.request("PUT", f"/crm/v4/objects/{from_type}/{from_id}/associations/default/{to_type}/{to_id}")

    def associate_batch_default(self, from_type: str, to_type: str, pairs: Iterable[tuple[str, str]]) -> list[Any]:
        out = []
        path = f"/crm/v4/associations/{from_type}/{to_type}/batch/associate/default"
        for chunk in chunked([{"from": {"id": str(a)}, "to": {"id": str(b)}} for a, b in pairs], ASSOC_BATCH_CREATE_LIMIT):
            out.append(self.request("POST", path, json={"inputs": chunk}))
        return out

    def read_deals_with_associations(self, deal_ids: Sequence[str], *, properties: Sequence[str] | None = None,
                                     line_item_properties: Sequence[str] | None = None) -> list[dict]:
        """Deals with ``companies`` (ids, primary first) and ``line_items`` (records) — 3 + ⌈n/100⌉ batched
        calls for any number of deals, never one call per deal."""
        return self.attach_deal_associations(self.deals.batch_read(deal_ids, properties=properties),
                                             line_item_properties=line_item_properties)

    def attach_deal_associations(self, deals: list[dict], *,
                                 line_item_properties: Sequence[str] | None = None) -> list[dict]:
        """Add ``companies`` (ids, primary first) and ``line_items`` (records) to deal records already read
        (e.g. by a search page): 2 association reads + ⌈lines/100⌉ batch reads per call."""
        ids = [d["id"] for d in deals]
        if not ids:
            return deals
        to_company = self.read_associations("deals", "companies", ids)
        to_lines = self.read_associations("deals", "line_items", ids)
        line_ids = list(dict.fromkeys(str(a["toObjectId"]) for v in to_lines.values() for a in v))
        lines = {li["id"]: li for li in self.line_items.batch_read(line_ids, properties=line_item_properties)}
        for d in deals:
            comps = to_company.get(d["id"], [])
            primary = [c for c in comps if any(t.get("typeId") == 5 for t in c.get("associationTypes", []))]
            ordered = primary + [c for c in comps if c not in primary]
            d["companies"] = list(dict.fromkeys(str(c["toObjectId"]) for c in ordered))
            d["line_items"] = [lines[str(a["toObjectId"])] for a in to_lines.get(d["id"], [])
                               if str(a["toObjectId"]) in lines]
        return deals

    # -- pipelines
    def pipelines(self, object_type: str = "deals", *, refresh: bool = False) -> list[dict]:
        if refresh or object_type not in self._pipelines:
            data = self.request("GET", f"/crm/v3/pipelines/{object_type}") or {}
            self._pipelines[object_type] = data.get("results", [])
        return self._pipelines[object_type]

    def stage_probabilities(self, *, refresh: bool = False) -> dict[str, float]:
        """``{stage_id: probability}`` over every deal pipeline (metadata values are strings on the wire)."""
        out: dict[str, float] = {}
        for p in self.pipelines("deals", refresh=refresh):
            for st in p.get("stages", []):
                prob = (st.get("metadata") or {}).get("probability")
                try:
                    out[str(st["id"])] = float(prob) if prob not in (None, "") else 0.0
                except (TypeError, ValueError):
                    out[str(st["id"])] = 0.0
        return out

    def won_stage_ids(self, *, refresh: bool = False) -> set[str]:
        """Stages whose probability is 1.0 (never hard-code ``closedwon``)."""
        return {k for k, v in self.stage_probabilities(refresh=refresh).items() if v == 1.0}


# ---------------------------------------------------------------------------------------------------
# object API


class ObjectApi:
    """CRUD, batch, search and reads for one object type (``companies``, ``deals`` ...)."""

    def __init__(self, client: HubSpotClient, object_type: str):
        self.client = client
        self.object_type = object_type
        self.base = f"/crm/{client.api_version}/objects/{object_type}"
        self.modified_property = modified_property(object_type)

    def __repr__(self) -> str:
        return f"ObjectApi({self.object_type!r})"

    # -- single records
    def get(self, record_id: str, *, properties: Sequence[str] | None = None, associations: Sequence[str] | None = None,
            id_property: str | None = None, archived: bool = False) -> dict:
        return self.client.request("GET", f"{self.base}/{record_id}", params={
            "properties": properties, "associations": associations, "idProperty": id_property,
            "archived": archived or None})

    def create(self, properties: Mapping[str, Any], associations: Sequence[Mapping] | None = None) -> dict:
        body: dict[str, Any] = {"properties": to_wire(properties)}
        if associations:
            body["associations"] = list(associations)
        return self.client.request("POST", self.base, json=body)

    def update(self, record_id: str, properties: Mapping[str, Any], *, id_property: str | None = None) -> dict:
        return self.client.request("PATCH", f"{self.base}/{record_id}", json={"properties": to_wire(properties)},
                                   params={"idProperty": id_property})

    def archive(self, record_id: str) -> None:
        self.client.request("DELETE", f"{self.base}/{record_id}")

    def merge(self, primary_id: str, id_to_merge: str) -> dict:
        """Merge ``id_to_merge`` into ``primary_id``; returns the surviving record (its id may be NEW)."""
        return self.client.request("POST", f"{self.base}/merge",
                                   json={"primaryObjectId": str(primary_id), "objectIdToMerge": str(id_to_merge)})

    # -- list / full scan
    def list_page(self, *, limit: int = 100, after: str | None = None, properties: Sequence[str] | None = None,
                  associations: Sequence[str] | None = None, archived: bool = False) -> dict:
        return self.client.request("GET", self.base, params={
            "limit": limit, "after": after, "properties": properties, "associations": associations,
            "archived": archived or None})

    def scan_pages(self, *, properties: Sequence[str] | None = None, limit: int = 100,
                   associations: Sequence[str] | None = None, archived: bool = False) -> Iterator[list[dict]]:
        """Sequential full scan with the list endpoint (``after`` cursor); one page in memory at a time."""
        after = None
        while True:
            data = self.list_page(limit=limit, after=after, properties=properties, associations=associations,
                                  archived=archived) or {}
            yield data.get("results", [])
            nxt = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not nxt or nxt == after:
                return
            after = nxt

    def iter_all(self, **kw: Any) -> Iterator[dict]:
        for page in self.scan_pages(**kw):
            yield from page

    # -- batch
    def batch_read(self, ids: Sequence[str], *, properties: Sequence[str] | None = None,
                   id_property: str | None = None, archived: bool = False) -> list[dict]:
        """Records for ``ids`` (100 per request, concurrently up to ``max_workers``); missing ids are
        skipped (HubSpot answers 207 with per-id errors)."""
        ids = list(dict.fromkeys(str(i) for i in ids))
        if not ids:
            return []

        def one(chunk: list[str]) -> list[dict]:
            body: dict[str, Any] = {"inputs": [{"id": i} for i in chunk], "properties": list(properties or [])}
            if id_property:
                body["idProperty"] = id_property
            data = self.client.request("POST", f"{self.base}/batch/read", json=body,
                                       params={"archived": archived or None}) or {}
            return data.get("results", [])

        chunks = list(chunked(ids, BATCH_LIMIT))
        if len(chunks) == 1:
            return one(chunks[0])
        out: list[dict] = []
        for res in self.client.pool().map(one, chunks):
            out.extend(res)
        return out

    def batch_create(self, inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Each input is a property dict or ``{"properties": {...}, "associations": [...]}``."""
        items = [dict(i) if "properties" in i else {"properties": dict(i)} for i in inputs]
        for it in items:
            it["properties"] = to_wire(it["properties"])
        return self._batch_write("create", items)

    def batch_update(self, inputs: Sequence[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
                     *, id_property: str | None = None) -> BatchResult:
        """``[{"id": .., "properties": {..}}]`` or ``{id: {..props..}}``."""
        if isinstance(inputs, Mapping):
            inputs = [{"id": k, "properties": v} for k, v in inputs.items()]
        items = []
        for i in inputs:
            it = {"id": str(i["id"]), "properties": to_wire(i["properties"])}
            if id_property:
                it["idProperty"] = id_property
            items.append(it)
        return self._batch_write("update", items)

    def batch_upsert(self, inputs: Sequence[Mapping[str, Any]], *, id_property: str) -> BatchResult:
        """Create-or-update by a unique property: ``[{"id": <unique value>, "properties": {..}}]``
        (``properties`` alone works when it contains ``id_property``)."""
        items, positions, missing = [], [], []
        for n, i in enumerate(inputs):
            props = to_wire(i.get("properties", i))
            key = i.get("id") if "properties" in i else None
            key = key if key is not None else props.get(id_property)
            if key in (None, ""):  # cannot be sent: a per-input failure, not an exception
                missing.append(n)
                continue
            positions.append(n)
            items.append({"id": str(key), "idProperty": id_property, "properties": props})
        sent = self._batch_write("upsert", items).results if items else []
        out: list[WriteResult[dict] | None] = [None] * len(inputs)
        for pos, r in zip(positions, sent):
            r.index = pos
            out[pos] = r
        for n in missing:
            out[n] = WriteResult(index=n, ok=False, error=f"no value for the upsert key {id_property}",
                                 category="MISSING_ID_PROPERTY")
        return BatchResult([r for r in out if r is not None])

    def batch_archive(self, ids: Sequence[str]) -> None:
        for chunk in chunked(list(dict.fromkeys(str(i) for i in ids)), BATCH_LIMIT):
            self.client.request("POST", f"{self.base}/batch/archive", json={"inputs": [{"id": i} for i in chunk]})

    def _batch_write(self, action: str, items: list[dict]) -> BatchResult:
        """Send in chunks of 100, tag every input with ``objectWriteTraceId`` = its index, map each result
        and each error back to its input. A chunk that fails as a whole (4xx) marks all its inputs failed
        instead of raising, so one bad chunk does not hide the others. Everything else propagates: transient
        errors (after the HTTP layer's retries), Unauthorized/Forbidden and QuotaExhausted."""
        results: list[WriteResult[dict] | None] = [None] * len(items)
        for idx, it in enumerate(items):
            it["objectWriteTraceId"] = str(idx)
        chunks = list(chunked(list(range(len(items))), BATCH_LIMIT))

        def send(idxs: list[int]) -> None:
            body = {"inputs": [items[i] for i in idxs]}
            try:
                data = self.client.request("POST", f"{self.base}/batch/{action}", json=body) or {}
            except (BadRequest, NotFound, Conflict) as exc:  # about the inputs: report per input
                for i in idxs:
                    results[i] = WriteResult(index=i, ok=False, error=exc.message, category=exc.category,
                                             status=exc.status, details=exc.details)
                return
            self._map_batch_response(action, items, idxs, data, results)

        if len(chunks) <= 1:
            for c in chunks:
                send(c)
        else:
            list(self.client.pool().map(send, chunks))
        return BatchResult([r if r is not None else WriteResult(index=i, ok=False, error="no result returned for input",
                                                                category="MISSING_RESULT")
                            for i, r in enumerate(results)])

    def _map_batch_response(self, action: str, items: list[dict], idxs: list[int], data: Mapping[str, Any],
                            results: list) -> None:
        """Results/errors → inputs: by echoed ``objectWriteTraceId``; else by id (update) or unique value
        (upsert); else, for creates, in input order (HubSpot returns results in input order)."""
        remaining = list(idxs)
        by_key: dict[str, list[int]] = {}
        for i in idxs:
            if items[i].get("id") is not None:
                by_key.setdefault(str(items[i]["id"]), []).append(i)

        def take(i: int) -> None:
            remaining.remove(i)
            key = items[i].get("id")
            if key is not None and i in by_key.get(str(key), []):
                by_key[str(key)].remove(i)

        for err in data.get("errors", []) or []:
            for i in _error_targets(err, remaining, by_key):
                results[i] = WriteResult(index=i, ok=False, error=redact(err.get("message") or "error"),
                                         category=err.get("category"), status=_int(err.get("status")),
                                         details={k: err.get(k) for k in ("context", "subCategory", "errors") if err.get(k)})
                take(i)
        unmatched: list[dict] = []
        id_prop = items[idxs[0]].get("idProperty") if idxs else None
        for rec in data.get("results", []) or []:
            i = None
            trace = rec.get("objectWriteTraceId")
            if trace is not None and str(trace).isdigit() and int(trace) in remaining:
                i = int(trace)
            elif action == "update" and by_key.get(str(rec.get("id"))):
                i = by_key[str(rec.get("id"))][0]
            elif action == "upsert" and id_prop:
                key = (rec.get("properties") or {}).get(id_prop)
                if key is not None and by_key.get(str(key)):
                    i = by_key[str(key)][0]
            if i is None:
                unmatched.append(rec)
                continue
            results[i] = WriteResult(index=i, ok=True, id=str(rec.get("id")), created=rec.get("new"), value=rec)
            take(i)
        for i, rec in zip(list(remaining), unmatched):
            results[i] = WriteResult(index=i, ok=True, id=str(rec.get("id")), created=rec.get("new"), value=rec)
            take(i)

    # -- search
    def search(self, *, filter_groups: Sequence[Mapping] | None = None, sorts: Sequence[Mapping] | None = None,
               properties: Sequence[str] | None = None, limit: int = SEARCH_PAGE_LIMIT, after: int | str | None = None,
               query: str | None = None) -> dict:
        """One search request (search bucket). Returns ``{total, results, paging?}``."""
        body: dict[str, Any] = {"limit": min(int(limit), SEARCH_PAGE_LIMIT)}
        if filter_groups:
            body["filterGroups"] = [dict(g) for g in filter_groups]
        if sorts:
            body["sorts"] = list(sorts)
        if properties is not None:
            body["properties"] = list(properties)
        if after not in (None, "", 0, "0"):
            body["after"] = str(after)
        if query:
            body["query"] = query
        return self.client.request("POST", f"{self.base}/search", json=body, search=True) or {}

    def search_pages(self, *, filter_groups: Sequence[Mapping] | None = None, sorts: Sequence[Mapping] | None = None,
                     properties: Sequence[str] | None = None, limit: int = SEARCH_PAGE_LIMIT,
                     query: str | None = None) -> Iterator[list[dict]]:
        """Offset-paged search for small result sets; stops at the 10,000 cap (raises if more exist).
        Use :meth:`changes` or :meth:`read_all` for anything large."""
        after = 0
        while True:
            data = self.search(filter_groups=filter_groups, sorts=sorts, properties=properties, limit=limit,
                               after=after, query=query)
            results = data.get("results", [])
            yield results
            nxt = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not nxt or not results:
                return
            if int(nxt) >= SEARCH_RESULT_CAP:
                raise ConnectorError(f"search matches more than {SEARCH_RESULT_CAP} records; narrow the query",
                                     category="SEARCH_CAP")
            after = int(nxt)

    def changes(self, since: "Watermark | str | int | datetime | None" = None, *, properties: Sequence[str] | None = None,
                limit: int = SEARCH_PAGE_LIMIT, lookback_ms: int = 0,
                extra_filters: Sequence[Mapping] = ()) -> Iterator[ChangeBatch[dict]]:
        """Records modified at or after ``since`` in ascending last-modified order, in batches of up to
        ``limit``, each with the :class:`Watermark` to commit once the batch is processed.

        Boundary safety — nothing is lost at page boundaries, at the 10,000 cap, or when many records share
        one timestamp:

        * **Keyset paging.** Every page is a fresh query ``modified GTE <last seen ts>`` sorted ascending
          (``after`` is never used), and ids already yielded *at that timestamp* are dropped. Offset paging
          over a live result set skips a record whenever an already-read record is modified mid-read (the
          set shifts left); keyset queries do not, and they never approach the 10,000 cap. The cost is
          the same one request per page.
        * **Tie-breaker.** When a full page lies entirely on the lower bound's timestamp (≥ ``limit``
          records share it, e.g. a bulk import — possibly more than 10,000), the read switches to
          ``modified EQ ts AND hs_object_id GT <last id>`` sorted by ``hs_object_id``, then continues with
          ``modified GT ts``.
        * **Watermark.** Batches carry ``Watermark(ts)`` (resume with GTE: records at ``ts`` are re-read,
          which is harmless) or, in tie-breaker mode, ``Watermark(ts, last_id)``. Commit it only after the
          batch's work is done.
        * ``lookback_ms`` re-reads a margin before the watermark on resume, for search's indexing lag
          (a write becomes searchable "after a few moments"): set it in flows (e.g. 120_000).
        """
        prop = self.modified_property
        props = list(dict.fromkeys([*(properties or []), prop, "hs_object_id"])) if properties is not None else None
        wm = Watermark.decode(since)
        ts = 0 if wm is None else max(0, wm.ts_ms - lookback_ms)
        tie_after: int | None = wm.after_id if (wm is not None and lookback_ms == 0) else None
        extra = [dict(f) for f in extra_filters]
        if len(extra) > MAX_FILTERS_PER_GROUP - 2:
            raise ValueError("too many extra filters for one filter group")
        seen_at_ts: set[str] = set()  # ids already yielded whose timestamp == ts
        last_batch: ChangeBatch[dict] | None = None

        while True:
            if tie_after is not None:
                # --- tie-breaker within one timestamp: EQ ts, id ascending, keyset on id
                data = self.search(filter_groups=[{"filters": [
                    {"propertyName": prop, "operator": "EQ", "value": str(ts)},
                    {"propertyName": "hs_object_id", "operator": "GT", "value": str(tie_after)}, *extra]}],
                    sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}], properties=props, limit=limit)
                results = data.get("results", [])
                fresh = [r for r in results if str(r["id"]) not in seen_at_ts]
                if results:
                    tie_after = max(int(r["id"]) for r in results)
                if fresh or results:
                    batch = ChangeBatch(records=fresh, watermark=Watermark(ts, tie_after))
                    if fresh:
                        yield batch
                    last_batch = batch
                if len(results) < limit:
                    # done with this timestamp: continue strictly after it
                    tie_after = None
                    ts += 1
                    seen_at_ts = set()
                continue

            data = self.search(filter_groups=[{"filters": [
                {"propertyName": prop, "operator": "GTE", "value": str(ts)}, *extra]}],
                sorts=[{"propertyName": prop, "direction": "ASCENDING"}], properties=props, limit=limit)
            results = data.get("results", [])
            if not results:
                break
            stamped = [(record_ts_ms(r, prop), r) for r in results]
            if len(results) >= limit and all(t == ts for t, _ in stamped):
                # a full page on one timestamp: offsets or GTE cannot get past it → tie-breaker
                tie_after = 0
                continue
            fresh = []
            for t, r in stamped:
                rid = str(r["id"])
                if t < ts:  # out of order (clock skew in the index) — keep, never drop data
                    fresh.append(r)
                    continue
                if t == ts and rid in seen_at_ts:
                    continue
                if t > ts:
                    ts, seen_at_ts = t, set()
                seen_at_ts.add(rid)
                fresh.append(r)
            if not fresh:
                # the page held only records already yielded at ts and fewer than a full page: done
                break
            batch = ChangeBatch(records=fresh, watermark=Watermark(ts), exhausted=len(results) < limit)
            last_batch = batch
            yield batch
            if len(results) < limit:
                break
        if last_batch is not None:
            last_batch.exhausted = True

    # -- concurrent full read
    def read_all(self, *, properties: Sequence[str] | None = None, search_streams: int = 1,
                 use_list: bool = True, queue_pages: int = 8) -> Iterator[list[dict]]:
        """Every (non-archived) record exactly once, as pages, as fast as the rate limits allow.

        Two kinds of stream run in worker threads and meet in the middle of the id space:

        * a **list** stream (10-second bucket, 100 per page) reading ascending ids with the ``after`` cursor;
        * ``search_streams`` **search** streams (search bucket, 200 per page) reading *descending* ids with a
          keyset filter ``hs_object_id LT <lowest id read>`` (never offset-paged, so never near the cap).

        Each record is claimed under a lock: the list stream stops at the first id the search side already
        reached and vice versa, so every id is yielded exactly once and neither stream needs to know the
        id range in advance. Using both buckets roughly doubles throughput over either endpoint alone (see
        ``benchmarks/hubspot_read.py``). ``search_streams > 1`` splits the id range into equal slices, one
        search stream each (worth it when a round trip is longer than 1 / search rate). Pages are handed over through a bounded queue (``queue_pages``) so memory
        does not grow with the record count. Requires the list endpoint to return ascending ids (HubSpot
        does); ``use_list=False`` reads with search only.
        """
        import queue

        props = list(dict.fromkeys([*(properties or []), "hs_object_id"])) if properties is not None else None
        q: "queue.Queue[tuple[str, Any]]" = queue.Queue(maxsize=max(2, queue_pages))
        lock = threading.Lock()
        state = {"list_max": -1, "search_min": None}  # search_min None = search has not started yet
        stop = threading.Event()

        def put(item: tuple[str, Any]) -> None:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def list_stream() -> None:
            after = None
            while not stop.is_set():
                data = self.list_page(limit=100, after=after, properties=props) or {}
                page, done = [], False
                with lock:
                    for r in data.get("results", []):
                        rid = int(r["id"])
                        if state["search_min"] is not None and rid >= state["search_min"]:
                            done = True
                            break
                        state["list_max"] = max(state["list_max"], rid)
                        page.append(r)
                if page:
                    put(("page", page))
                nxt = ((data.get("paging") or {}).get("next") or {}).get("after")
                if done or not nxt or nxt == after:
                    return
                after = nxt

        def search_stream(upper: int | None, lower: int) -> None:
            # ids in (lower, upper), descending, keyset on id. The stream with lower < 0 is the one that
            # meets the list stream: it publishes its lowest id and stops at the list's highest.
            meets = lower < 0
            bound = upper
            while not stop.is_set():
                filters = [{"propertyName": "hs_object_id", "operator": "GT", "value": str(max(lower, 0))}]
                if bound is not None:
                    filters.append({"propertyName": "hs_object_id", "operator": "LT", "value": str(bound)})
                data = self.search(filter_groups=[{"filters": filters}], properties=props,
                                   sorts=[{"propertyName": "hs_object_id", "direction": "DESCENDING"}])
                results = data.get("results", [])
                page, done = [], len(results) < SEARCH_PAGE_LIMIT
                with lock:
                    for r in results:
                        rid = int(r["id"])
                        if meets and use_list and rid <= state["list_max"]:
                            done = True
                            break
                        if meets:
                            state["search_min"] = rid
                        page.append(r)
                if page:
                    put(("page", page))
                if done or not results:
                    return
                bound = int(results[-1]["id"])

        def run(fn: Callable[..., None], *args: Any) -> None:
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
                put(("error", exc))
            finally:
                put(("done", None))

        # Several search streams take equal id slices between the lowest and the highest id (two probe
        # searches); the lowest slice's stream meets the list stream.
        workers: list[tuple[Callable[..., None], tuple]] = []
        if use_list:
            workers.append((list_stream, ()))
        if search_streams <= 1:
            workers.append((search_stream, (None, -1)))
        else:
            def probe(direction: str) -> int | None:
                res = self.search(sorts=[{"propertyName": "hs_object_id", "direction": direction}], limit=1,
                                  properties=["hs_object_id"]).get("results", [])
                return int(res[0]["id"]) if res else None

            top, bottom = probe("DESCENDING"), probe("ASCENDING")
            if top is not None and bottom is not None:
                hi = top + 1  # slices cover [bottom, hi)
                step = max(1, (hi - bottom) // search_streams)
                for k in range(search_streams):
                    upper = None if k == 0 else hi - k * step
                    lower = -1 if k == search_streams - 1 else hi - (k + 1) * step - 1
                    workers.append((search_stream, (upper, lower)))
                    if lower < 0:
                        # ids at or above the lowest slice belong to the other search streams: the list
                        # stream never goes past it, even before its meeting stream has read anything
                        state["search_min"] = upper
            elif use_list:
                workers.append((search_stream, (None, -1)))
        if not workers:
            return
        threads = [threading.Thread(target=run, args=(fn, *args), daemon=True, name=f"hubspot-read-{i}")
                   for i, (fn, args) in enumerate(workers)]
        for t in threads:
            t.start()
        running = len(threads)
        try:
            while running:
                kind, payload = q.get()
                if kind == "page":
                    yield payload
                elif kind == "error":
                    raise payload
                else:
                    running -= 1
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=5)


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _error_targets(err: Mapping[str, Any], remaining: list[int], by_key: dict[str, list[int]]) -> list[int]:
    """Inputs a batch error refers to: by ``objectWriteTraceId`` (top-level or in ``context``), else by id
    (``context.id`` / ``ids``), else — an error naming no input — the only input of a one-input chunk."""
    traces: list[Any] = []
    if err.get("objectWriteTraceId") is not None:
        traces.append(err["objectWriteTraceId"])
    ctx = err.get("context") or {}
    for key in ("objectWriteTraceId", "objectWriteTraceIds"):
        v = ctx.get(key)
        if v is not None:
            traces.extend(v if isinstance(v, list) else [v])
    out = [int(t) for t in traces if str(t).isdigit() and int(t) in remaining]
    if out:
        return list(dict.fromkeys(out))
    for key in ("id", "ids", "objectId"):
        v = ctx.get(key)
        for x in (v if isinstance(v, list) else [v] if v is not None else []):
            cands = [i for i in by_key.get(str(x), []) if i not in out]
            if cands:
                out.append(cands[0])
    if out:
        return out
    return list(remaining) if len(remaining) == 1 else []


def to_wire(properties: Mapping[str, Any]) -> dict[str, str]:
    """Property values are strings on the wire (None → "" clears the value)."""
    out: dict[str, str] = {}
    for k, v in properties.items():
        if v is None:
            out[k] = ""
        elif isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, float):
            raise TypeError(f"float value for {k}: use int yen, Decimal or str")
        else:
            out[k] = str(v)
    return out


from renkei.connectors.hubspot.properties import PropertyManager  # noqa: E402  (cycle: PropertyManager takes a client)
