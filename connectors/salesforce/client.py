"""Salesforce REST client (raw records on the wire; canonical mapping lives in :mod:`.mapping`).

Configuration on top of :mod:`connectors.http`: Salesforce's error array, ``401 INVALID_SESSION_ID`` →
one re-login, ``403 REQUEST_LIMIT_EXCEEDED`` "TotalRequests" → :class:`QuotaExhausted`, and the daily API
budget read from ``Sforce-Limit-Info`` on every response (:class:`ApiBudget`): once the org has used
``daily_budget_share`` of its allocation the client refuses to send (``QuotaExhausted``) — Renkei stops
before the cap instead of exhausting the org's allocation for every other integration.

Reading: :meth:`SalesforceClient.query_pages` follows ``nextRecordsUrl`` (a path on ``instance_url``, no
parameters); :meth:`SalesforceClient.changes` is the incremental read by ``SystemModstamp`` with the
watermark ``(SystemModstamp, Id)`` — ``ORDER BY SystemModstamp, Id`` and resuming with
``SystemModstamp > t OR (SystemModstamp = t AND Id > id)``, so records sharing one second are never skipped
nor read twice.

Writing: sObject Collections (≤ 200 per call, one API call each) for create / update / upsert by external
ID; per-record errors (``statusCode``) become failed :class:`WriteResult` entries in input order.

JSON numbers are parsed as ``Decimal`` (money is never a float).
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterator, Mapping, Sequence

import httpx

from renkei.connectors.base import ChangeBatch, WriteResult
from renkei.connectors.http import (
    BearerAuth, ConnectorError, ErrorInfo, HttpClient, HttpConfig, QuotaExhausted, chunked, default_error_parser,
)

from .auth import SalesforceAuth
from .settings import SalesforceSettings

log = logging.getLogger("renkei.connectors.salesforce")

COLLECTION_LIMIT = 200
SETTLE_SECONDS = 2  # a SystemModstamp second this far behind the org's clock can get no new writes
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")


# ---------------------------------------------------------------------------------------------------
# errors and limits


def parse_salesforce_error(response: httpx.Response) -> ErrorInfo:
    """``[{"message", "errorCode", "fields"}]`` (REST) or ``{"error", "error_description"}`` (OAuth)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        code = str(first.get("errorCode") or "")
        info = ErrorInfo(message="; ".join(str(e.get("message", "")).strip() for e in body[:5] if isinstance(e, dict)),
                         category=code or None, code=code or None, details=body)
        if code == "REQUEST_LIMIT_EXCEEDED":
            if "totalrequests" in info.message.lower():
                info.quota_exhausted = True  # the daily allocation: stop the run, do not retry
            else:
                info.retryable = True  # concurrent long-running requests: back off and retry
        elif code in ("SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION") and response.status_code >= 500:
            info.retryable = True
        return info
    return default_error_parser(response)


class ServerClock:
    """The org's time as its last response's ``Date`` header said (second resolution)."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def observe(self, response: httpx.Response) -> None:
        values = response.headers.get_list("date")
        if values:
            try:
                self.now = email.utils.parsedate_to_datetime(values[-1]).astimezone(timezone.utc)
            except (TypeError, ValueError):
                pass


class ApiBudget:
    """The org's daily API allocation as Salesforce reports it (``Sforce-Limit-Info: api-usage=used/max``)
    and the share of it Renkei may use.

    Without ``limiter`` the budget is this process's view (each response's report). With ``limiter`` (a
    shared limiter with an ``observed`` bucket ``key``: ``store.ratelimit.DbRateLimiter``) every process
    shares it: each report is written there, each request takes a slot (so two workers between reports count
    each other's requests), and a process that starts when the share is used up stops before sending —
    the bucket lets one probe request through once the last report is old (usage falls as the rolling
    24 hours move on)."""

    OBSERVE_EVERY_S = 1.0  # a shared report is written at most this often, except near the stop

    def __init__(self, share: float = 0.8, max_requests: int | None = None, *, limiter: Any = None,
                 key: str = "daily"):
        self.share = share
        self.max = max_requests
        self.used: int | None = None
        self.limiter, self.key = limiter, key
        self._observed_at = 0.0
        self._lock = threading.Lock()

    @staticmethod
    def limits(share: float, max_requests: int | None, recheck_s: float = 3600.0) -> dict[str, tuple]:
        """The observed bucket of the shared limiter: stop at ``share`` × the allocation (0 = not known
        until the first report); a used-up budget is probed again after ``recheck_s``."""
        return {"daily": (int(max_requests * share) if max_requests else 0, recheck_s, "observed")}

    def observe(self, response: httpx.Response) -> None:
        m = _LIMIT_INFO.search(response.headers.get("sforce-limit-info", ""))
        if not m:
            return
        used, mx = int(m.group(1)), int(m.group(2))
        with self._lock:
            self.used, self.max = used, mx
            now = time.monotonic()
            near = used + 1 >= int(mx * self.share) * 0.9
            due = self.limiter is not None and (near or now - self._observed_at >= self.OBSERVE_EVERY_S)
            if due:
                self._observed_at = now
        if due:
            try:
                self.limiter.observe(self.key, used, int(mx * self.share))
            except Exception as exc:  # noqa: BLE001 - the response is good; the next report tries again
                log.warning("could not share the Salesforce API usage: %s", type(exc).__name__)

    @property
    def stop_at(self) -> int | None:
        return None if self.max is None else int(self.max * self.share)

    def _refused(self) -> QuotaExhausted:
        return QuotaExhausted(
            f"Salesforce daily API budget reached: {self.used}/{self.max} requests used in the last 24 h; "
            f"Renkei stops at {self.share:.0%} ({self.stop_at}) and resumes when usage falls",
            category="DAILY_BUDGET", code="REQUEST_LIMIT_EXCEEDED", system="salesforce")

    def check(self, cost: int = 1) -> None:
        if self.limiter is not None:
            try:
                for _ in range(max(1, cost)):
                    self.limiter.acquire(self.key)
            except QuotaExhausted as exc:
                refused = self._refused()
                refused.retry_after = exc.retry_after
                raise refused from None
            return
        with self._lock:
            if self.used is None or self.max is None:
                return
            if self.used + cost > int(self.max * self.share):
                raise self._refused()

    @property
    def remaining(self) -> int | None:
        if self.used is None or self.max is None:
            return None
        return max(0, int(self.max * self.share) - self.used)


# ---------------------------------------------------------------------------------------------------
# SOQL out of logs and errors: a query names the values it filters on (a phone, a company name), so the
# ``q`` parameter of a query URL is never logged and Salesforce's echo of a query in its error text is cut


_Q_PARAM = re.compile(r"([?&]q=)[^&\s'\"]*")


def scrub_soql(text: Any) -> Any:
    """``…/query?q=SELECT+…`` → ``…/query?q=…``; an error message echoing the query keeps only its
    ``ERROR at Row…`` part."""
    if not isinstance(text, str):
        return text
    if "ERROR at Row" in text:
        text = text[text.index("ERROR at Row"):]
    return _Q_PARAM.sub(r"\1…", text)


class _SoqlLogFilter(logging.Filter):
    """On the HTTP loggers (Renkei's and httpx's request line): URLs lose their ``q=`` value."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("q=" in str(a) for a in record.args
                                                  if isinstance(a, (str, httpx.URL))):
            record.args = tuple(scrub_soql(str(a)) if isinstance(a, (str, httpx.URL)) else a for a in record.args)
        elif not record.args and isinstance(record.msg, str) and "q=" in record.msg:
            # Renkei's log masking (renkei.logmask, installed by the flows) has already merged the arguments
            # into the message when the record was made
            record.msg = scrub_soql(record.msg)
        return True


_FILTER_LOCK = threading.Lock()


def _install_log_filter() -> None:
    with _FILTER_LOCK:
        for name in ("renkei.connectors.http", "httpx"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, _SoqlLogFilter) for f in logger.filters):
                logger.addFilter(_SoqlLogFilter())


# ---------------------------------------------------------------------------------------------------
# watermark


def parse_sf_datetime(value: str) -> datetime:
    """``2026-12-05T14:50:00.000+0000`` → aware UTC datetime."""
    s = value.strip().replace("Z", "+00:00")
    if len(s) >= 5 and s[-5] in "+-" and s[-3] != ":":
        s = s[:-2] + ":" + s[-2:]
    dt = datetime.fromisoformat(s)
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def soql_datetime(dt: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC, whole seconds)."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    """A quoted SOQL string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


@dataclass(frozen=True)
class Watermark:
    """Cursor of an incremental read: the last record's ``SystemModstamp`` and ``Id``. Encoded as
    ``"2026-12-05T14:50:00Z|0015g00000AbCdEAAA"`` (``"…Z"`` alone when no id)."""

    ts: datetime
    after_id: str | None = None

    def encode(self) -> str:
        return soql_datetime(self.ts) + (f"|{self.after_id}" if self.after_id else "")

    @classmethod
    def decode(cls, value: "Watermark | str | datetime | None") -> "Watermark | None":
        if value is None or value == "":
            return None
        if isinstance(value, Watermark):
            return value
        if isinstance(value, datetime):
            return cls(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
        ts, _, rid = str(value).partition("|")
        return cls(parse_sf_datetime(ts), rid or None)

    def __str__(self) -> str:
        return self.encode()


# ---------------------------------------------------------------------------------------------------
# wire values


def to_json_value(v: Any) -> Any:
    """A canonical value as Salesforce JSON (Decimal → number, date → ``YYYY-MM-DD``, datetime → ISO UTC)."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, float):
        raise TypeError("float on the wire: money is int yen or Decimal")
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, datetime):
        dt = v if v.tzinfo else v.replace(tzinfo=timezone.utc)
        return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    if isinstance(v, date):
        return v.isoformat()
    if hasattr(v, "value") and not isinstance(v, (str, int)):  # Enum
        return v.value
    return v


def jsonable(obj: Any) -> Any:
    """A request body with every value passed through :func:`to_json_value`."""
    if isinstance(obj, Mapping):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return to_json_value(obj)


def is_record_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))


def _error_text(errors: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for e in errors:
        fields = e.get("fields") or []
        parts.append(f"{e.get('statusCode') or e.get('errorCode')}: {e.get('message')}"
                     + (f" ({', '.join(fields)})" if fields else ""))
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------------
# client


class SalesforceClient:
    """One Salesforce org. Thread-safe; share it between worker threads."""

    def __init__(self, settings: SalesforceSettings | None = None, *, transport: httpx.BaseTransport | None = None,
                 auth: SalesforceAuth | None = None, max_attempts: int = 5, backoff_initial: float = 0.5,
                 sleep: Any = None, limiter_factory: Any = None):
        self.settings = settings or SalesforceSettings()
        if transport is None and self.settings.ca_bundle is not None:
            transport = httpx.HTTPTransport(verify=str(self.settings.ca_bundle), retries=0)
        self.auth = auth or SalesforceAuth(self.settings, transport=transport, max_attempts=min(3, max_attempts))
        share, known = self.settings.daily_budget_share, self.settings.daily_api_limit
        # limiter_factory: the shared limiter of the state store (store.ratelimit.limiter_for), whose observed
        # bucket every worker shares; without it (or for a per-process store) this process's own view
        limiter = limiter_factory(ApiBudget.limits(share, known)) if limiter_factory is not None else None
        self.budget = ApiBudget(share, known, limiter=limiter if hasattr(limiter, "observe") else None)
        self.server_clock = ServerClock()
        cfg = HttpConfig(base_url="", auth=BearerAuth(self.auth.access_token, refresh=self.auth.refresh),
                         timeout=self.settings.timeout, max_attempts=max_attempts, backoff_initial=backoff_initial,
                         error_parser=parse_salesforce_error,
                         response_hooks=(self.budget.observe, self.server_clock.observe),
                         transport=transport, system="salesforce")
        if sleep is not None:
            cfg.sleep = sleep
        self.http = HttpClient(cfg)
        _install_log_filter()
        self.version = self.settings.api_version
        self._describe: dict[str, dict] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SalesforceClient(version={self.version!r})"

    def close(self) -> None:
        self.http.close()
        self.auth.close()

    @property
    def stats(self):
        return self.http.stats

    # -- plumbing
    def url(self, path: str) -> str:
        if path.startswith("http"):
            return path
        if not path.startswith("/services/"):
            path = f"/services/data/v{self.version}/{path.lstrip('/')}"
        return self.auth.instance_url + path

    def request(self, method: str, path: str, *, cost: int = 1, headers: Mapping[str, str] | None = None,
                **kw: Any) -> tuple[int, Any]:
        """Send (after the daily-budget check); returns ``(status, JSON body with Decimal numbers or None)``."""
        self.budget.check(cost)
        if "json" in kw:
            kw["json"] = jsonable(kw["json"])
        try:
            resp = self.http.request(method, self.url(path), headers=headers, **kw)
        except ConnectorError as exc:
            exc.url = scrub_soql(exc.url)
            exc.message = scrub_soql(exc.message)
            if isinstance(exc.details, list):
                exc.details = [{**d, "message": scrub_soql(d.get("message"))} if isinstance(d, dict) else d
                               for d in exc.details]
            exc.args = (exc.message,)
            raise
        if resp.status_code == 204 or not resp.content:
            return resp.status_code, None
        return resp.status_code, json.loads(resp.content, parse_float=Decimal)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)[1]

    # -- metadata
    def describe(self, sobject: str, *, refresh: bool = False) -> dict:
        with self._lock:
            if not refresh and sobject in self._describe:
                return self._describe[sobject]
        data = self.get(f"sobjects/{sobject}/describe")
        with self._lock:
            self._describe[sobject] = data
        return data

    def fields(self, sobject: str) -> dict[str, dict]:
        """Field describe by lower-case name."""
        return {f["name"].lower(): f for f in self.describe(sobject)["fields"]}

    def limits(self) -> dict:
        return self.get("limits")

    # -- reading
    def query_pages(self, soql: str, *, include_deleted: bool = False,
                    batch_size: int | None = None) -> Iterator[tuple[list[dict], bool]]:
        """``(records, done)`` per page, following ``nextRecordsUrl``."""
        size = batch_size or self.settings.query_batch_size
        headers = {"Sforce-Query-Options": f"batchSize={size}"} if size != 2000 else None
        data = self.get("queryAll" if include_deleted else "query", params={"q": soql}, headers=headers)
        while True:
            done = bool(data.get("done", True))
            yield list(data.get("records") or []), done
            nxt = data.get("nextRecordsUrl")
            if done or not nxt:
                return
            data = self.get(nxt, headers=headers)

    def query_all(self, soql: str, *, include_deleted: bool = False) -> list[dict]:
        return [r for page, _ in self.query_pages(soql, include_deleted=include_deleted) for r in page]

    def changes(self, sobject: str, fields: Sequence[str], since: "Watermark | str | datetime | None" = None, *,
                where: str | None = None, include_deleted: bool = False, lookback_seconds: int = 0,
                batch_size: int | None = None) -> Iterator[ChangeBatch[dict]]:
        """Records changed after ``since`` in ``(SystemModstamp, Id)`` order, one :class:`ChangeBatch` per page with
        the :class:`Watermark` of its last record (commit it once the page is processed).

        Salesforce stamps whole seconds, so many records share one ``SystemModstamp``; the watermark
        ``(t, Id)`` resumes strictly after its record (``SystemModstamp > t OR (SystemModstamp = t AND Id > id)``):
        ties are broken by Id, nothing is skipped or read twice. That is only safe once second ``t`` is over
        on the org's clock (a later write in second ``t`` to a record with a lower Id would be skipped):

        * a page whose response ``Date`` is :data:`SETTLE_SECONDS` past ``t`` gets ``(t, Id)``; an earlier one
          gets ``(t)`` alone (resuming re-reads second ``t``, which is harmless);
        * the last page is *settled*: the client waits (free ``GET /services/data/`` probes, at most
          ``settle_timeout_seconds``) until second ``t`` is over, reads second ``t`` once more and adds what
          was written in it after the main read (new records, or records whose fields changed), so its
          watermark can carry the Id. If the org's clock does not pass ``t`` in time it falls back to ``(t)``.

        ``lookback_seconds`` re-reads that much before the watermark (long transactions commit with an
        earlier ``SystemModstamp``)."""
        wm = Watermark.decode(since)
        conds = []
        if wm is not None:
            if lookback_seconds:
                conds.append(f"SystemModstamp >= {soql_datetime(wm.ts - timedelta(seconds=lookback_seconds))}")
            elif wm.after_id:
                t = soql_datetime(wm.ts)
                conds.append(f"(SystemModstamp > {t} OR (SystemModstamp = {t} AND Id > {soql_string(wm.after_id)}))")
            else:
                conds.append(f"SystemModstamp >= {soql_datetime(wm.ts)}")
        if where:
            conds.append(f"({where})")
        cols = list(dict.fromkeys([*fields, "Id", "SystemModstamp"]))
        soql = (f"SELECT {', '.join(cols)} FROM {sobject}" + (f" WHERE {' AND '.join(conds)}" if conds else "")
                + " ORDER BY SystemModstamp ASC, Id ASC")
        top: datetime | None = None
        at_top: dict[str, dict] = {}  # records of the latest second read so far, by Id
        top_read_open = False  # some of them were read while that second was still running on the org
        for records, done in self.query_pages(soql, include_deleted=include_deleted, batch_size=batch_size):
            if not records:
                continue
            for r in records:
                ts = parse_sf_datetime(r["SystemModstamp"])
                if top is None or ts > top:
                    top, at_top, top_read_open = ts, {}, False
                if ts == top:
                    at_top[r["Id"]] = r
            if at_top and not self._settled(top):
                top_read_open = True
            last = records[-1]
            ts = parse_sf_datetime(last["SystemModstamp"])
            if not done:
                yield ChangeBatch(records, Watermark(ts, last["Id"] if self._settled(ts) else None), False)
                continue
            if self._settled(ts) and not (ts == top and top_read_open):
                yield ChangeBatch(records, Watermark(ts, last["Id"]), True)
                continue
            # the second is still running, or was when part of it was read (on an earlier page): read it again
            late = self._settle_second(sobject, cols, ts, where, include_deleted, at_top)
            if late is None:
                yield ChangeBatch(records, Watermark(ts), True)
                continue
            replaced = {r["Id"]: r for r in late}
            merged = [replaced.pop(r["Id"], r) for r in records] + list(replaced.values())
            top_id = max([*at_top, *(r["Id"] for r in late)], key=lambda i: i[:15])
            yield ChangeBatch(merged, Watermark(ts, top_id), True)

    def _settled(self, ts: datetime) -> bool:
        now = self.server_clock.now
        return now is not None and (now - ts).total_seconds() >= SETTLE_SECONDS

    def _settle_second(self, sobject: str, cols: Sequence[str], ts: datetime, where: str | None,
                       include_deleted: bool, seen: Mapping[str, dict]) -> list[dict] | None:
        """Wait until second ``ts`` is over on the org's clock, then read it again: the records written in it
        after ``seen`` was read (new, or with other values). ``None`` when the clock does not pass ``ts`` within
        ``settle_timeout_seconds``."""
        deadline = time.monotonic() + self.settings.settle_timeout_seconds
        while True:
            self.http.request("GET", self.url("/services/data/"))  # free: not counted against the allocation
            now = self.server_clock.now
            if now is not None and now >= ts + timedelta(seconds=1):
                break
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)
        t = soql_datetime(ts)
        soql = (f"SELECT {', '.join(cols)} FROM {sobject} WHERE SystemModstamp = {t}"
                + (f" AND ({where})" if where else "") + " ORDER BY Id ASC")

        def body(r: Mapping[str, Any]) -> dict:
            return {k: v for k, v in r.items() if k != "attributes"}

        return [r for r in self.query_all(soql, include_deleted=include_deleted)
                if r["Id"] not in seen or body(seen[r["Id"]]) != body(r)]

    def retrieve(self, sobject: str, ids: Sequence[str], fields: Sequence[str]) -> list[dict | None]:
        """``GET composite/sobjects/{type}?ids=…`` (≤ 200 per call); None for ids that do not exist."""
        out: list[dict | None] = []
        for chunk in chunked(list(ids), COLLECTION_LIMIT):
            out.extend(self.get(f"composite/sobjects/{sobject}", params={"ids": ",".join(chunk),
                                                                          "fields": ",".join(fields)}) or [])
        return out

    # -- writing (sObject Collections)
    def _collection(self, method: str, path: str, records: Sequence[Mapping[str, Any]], *,
                    all_or_none: bool = False) -> list[WriteResult[dict]]:
        """One call per ≤ 200 records. Creates are not retried (a lost response must not create twice: the
        caller's next run finds what exists); updates and upserts by external ID are idempotent and are."""
        results: list[WriteResult[dict]] = []
        for start in range(0, len(records), COLLECTION_LIMIT):
            chunk = list(records[start:start + COLLECTION_LIMIT])
            _, data = self.request(method, path, json={"allOrNone": all_or_none, "records": chunk},
                                   retry=method != "POST")
            for i, (rec, res) in enumerate(zip(chunk, data or [])):
                ok = bool(res.get("success"))
                errors = res.get("errors") or []
                results.append(WriteResult(
                    index=start + i, ok=ok, id=res.get("id"), created=res.get("created"), value=dict(rec),
                    error=None if ok else _error_text(errors) or "failed",
                    category=None if ok else (errors[0].get("statusCode") if errors else None),
                    status=None, details=errors or None))
        return results

    def create_records(self, sobject: str, records: Sequence[Mapping[str, Any]], *,
                       all_or_none: bool = False) -> list[WriteResult[dict]]:
        body = [{"attributes": {"type": sobject}, **r} for r in records]
        return self._collection("POST", "composite/sobjects", body, all_or_none=all_or_none)

    def update_records(self, sobject: str, updates: Mapping[str, Mapping[str, Any]], *,
                       all_or_none: bool = False) -> list[WriteResult[dict]]:
        body = [{"attributes": {"type": sobject}, "Id": rid, **fields} for rid, fields in updates.items()]
        return self._collection("PATCH", "composite/sobjects", body, all_or_none=all_or_none)

    def upsert_records(self, sobject: str, external_id_field: str, records: Sequence[Mapping[str, Any]], *,
                       all_or_none: bool = False) -> list[WriteResult[dict]]:
        """Upsert by an External ID field (each record carries its value); ``created`` tells new from updated."""
        body = [{"attributes": {"type": sobject}, **r} for r in records]
        return self._collection("PATCH", f"composite/sobjects/{sobject}/{external_id_field}", body,
                                all_or_none=all_or_none)


__all__ = ["ApiBudget", "COLLECTION_LIMIT", "SETTLE_SECONDS", "ServerClock", "SalesforceClient", "Watermark", "is_record_id", "parse_salesforce_error",
           "parse_sf_datetime", "scrub_soql", "soql_datetime", "soql_string", "to_json_value"]
