"""FastAPI application of the Salesforce sandbox: Salesforce's REST paths, payloads, status codes, error
arrays, ``Sforce-Limit-Info`` header and OAuth token endpoint on top of :class:`SalesforceStore`.

Request pipeline (outermost first): injected faults (``sandboxes.common.add_faults``) → trailing-slash
normalisation (simple-salesforce sends ``…/sobjects/Account/``) → auth (``Authorization: Bearer``; 401
``INVALID_SESSION_ID``) → daily allocation (403 ``REQUEST_LIMIT_EXCEEDED``) → route. ``GET /services/data/``,
``/services/oauth2/*`` and ``/_sandbox/*`` (admin) are not counted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable
from email.utils import formatdate
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import Response

from renkei.sandboxes.common import Clock, add_faults

from . import soql
from .config import SalesforceSandboxConfig
from .errors import SFError, fault_body, not_found
from .schema import id18
from .store import SalesforceStore, iso, parse_datetime

API_PREFIX = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")
EXEMPT_PREFIXES = ("/_sandbox", "/docs", "/openapi.json", "/redoc", "/services/oauth2")
MIN_VERSION, MAX_VERSION = 31, 66
COLLECTION_MAX = 200
DAY_MS = 86_400_000


def release_label(version: str) -> str:
    """``60.0`` → ``Spring '24`` (three releases a year; v59.0 was Winter '24)."""
    n = int(float(version)) - 59
    season = ("Winter", "Spring", "Summer")[n % 3]
    return f"{season} '{24 + n // 3:02d}"


def _enc(o: Any) -> Any:
    if isinstance(o, Decimal):
        return int(o) if o == o.to_integral_value() and abs(o) < 10 ** 15 and o.as_tuple().exponent >= 0 else float(o)
    raise TypeError(type(o).__name__)


def sf_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, default=_enc, ensure_ascii=False).encode("utf-8"), status_code=status,
                    media_type="application/json;charset=UTF-8", headers=headers)


def _float_money(o: Any) -> Any:
    """Salesforce renders currency/double values as JSON numbers with a fraction (``1000.0``)."""
    if isinstance(o, Decimal):
        return float(o)
    raise TypeError(type(o).__name__)


def sf_records(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, default=_float_money, ensure_ascii=False).encode("utf-8"), status_code=status,
                    media_type="application/json;charset=UTF-8", headers=headers)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SFError(400, "JSON_PARSER_ERROR", f"Unexpected character at [line:{getattr(e, 'lineno', 1)}, "
                      f"column:{getattr(e, 'colno', 1)}]") from None


class DailyAllocation:
    """Rolling 24-hour request count (``DailyApiRequests``)."""

    def __init__(self, limit: int, clock: Clock):
        self.limit = limit
        self.clock = clock
        self.hits: deque[int] = deque()

    def used(self) -> int:
        cutoff = self.clock.now_ms() - DAY_MS
        while self.hits and self.hits[0] <= cutoff:
            self.hits.popleft()
        return len(self.hits)

    def take(self) -> bool:
        if self.limit <= 0:
            self.hits.append(self.clock.now_ms())
            return True
        if self.used() >= self.limit:
            return False
        self.hits.append(self.clock.now_ms())
        return True

    def set_used(self, n: int) -> None:
        now = self.clock.now_ms()
        self.hits = deque([now] * max(0, n))

    def header(self) -> str:
        return f"api-usage={self.used()}/{self.limit or 5_000_000}"


class Cursors:
    """Server-side query locators (``nextRecordsUrl``) with a lifetime and a cap on open ones."""

    def __init__(self, ttl_s: int, max_open: int, clock: Clock, new_id: Callable[[], str]):
        self.ttl_ms = ttl_s * 1000
        self.max_open = max_open
        self.clock = clock
        self.new_id = new_id
        self.open: dict[str, dict] = {}

    def add(self, records: list[dict], batch: int, total: int) -> str:
        loc = self.new_id()
        self.open[loc] = {"records": records, "batch": batch, "total": total, "at": self.clock.now_ms()}
        while len(self.open) > self.max_open:
            self.open.pop(next(iter(self.open)))
        return loc

    def get(self, loc: str) -> dict:
        c = self.open.get(loc)
        if c is None or self.clock.now_ms() - c["at"] > self.ttl_ms:
            self.open.pop(loc, None)
            raise SFError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return c


class TrailingSlash:
    """``…/sobjects/Account/`` → ``…/sobjects/Account`` (simple-salesforce's URLs end in ``/``)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            path = scope.get("path", "")
            if len(path) > 1 and path.endswith("/") and path != "/services/data/":
                scope = dict(scope, path=path.rstrip("/"), raw_path=path.rstrip("/").encode())
        await self.app(scope, receive, send)


def create_app(config: SalesforceSandboxConfig | None = None) -> FastAPI:
    """Build the sandbox app. ``app.state.store`` is the :class:`SalesforceStore`, ``app.state.config`` the
    config, ``app.state.clock`` the clock, ``app.state.daily`` the :class:`DailyAllocation`,
    ``app.state.sessions`` the issued access tokens, ``app.state.faults`` the fault injector."""
    config = config or SalesforceSandboxConfig()
    clock = config.clock or Clock()
    store = SalesforceStore(clock, version=config.api_version, renkei_fields=config.renkei_fields,
                            missing_fields=config.missing_fields, multicurrency=config.multicurrency)
    integration = store.get("User", store.user_id)
    integration["Username"] = config.username
    from .seed import load_demo  # local import: seed imports the store

    if config.seed == "demo":
        load_demo(store)
    daily = DailyAllocation(config.daily_limit, clock)
    counter = iter(range(1, 10 ** 7))
    cursors = Cursors(config.cursor_ttl_s, config.max_cursors, clock, lambda: id18(f"01g5g000{next(counter):07d}"))
    sessions: dict[str, int] = {}
    evaluator = soql.Evaluator(store, store.today)

    app = FastAPI(title="Renkei Salesforce sandbox", version="1", docs_url="/docs")
    app.state.store, app.state.config, app.state.clock = store, config, clock
    app.state.daily, app.state.sessions, app.state.cursors = daily, sessions, cursors

    @app.exception_handler(SFError)
    async def _sf_error(request: Request, exc: SFError) -> Response:
        return sf_json(exc.errors, exc.status, exc.headers)

    @app.exception_handler(404)
    async def _nf(request: Request, exc: Exception) -> Response:
        return sf_json(not_found().errors, 404)

    @app.exception_handler(405)
    async def _method(request: Request, exc: Exception) -> Response:
        return sf_json([{"message": f"HTTP Method '{request.method}' not allowed. Allowed are GET,PATCH,DELETE,HEAD",
                         "errorCode": "METHOD_NOT_ALLOWED"}], 405)

    # ------------------------------------------------------------------ auth + limits
    @app.middleware("http")
    async def _gate(request: Request, call_next: Any) -> Response:
        path = request.url.path
        m = API_PREFIX.match(path)
        if not m:
            return await call_next(request)
        version = m.group(1)
        if not MIN_VERSION <= float(version) <= MAX_VERSION:
            return sf_json(not_found().errors, 404)
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        issued = sessions.get(token.strip()) if scheme.lower() in ("bearer", "oauth") else None
        if issued is None or clock.now_ms() - issued > config.session_lifetime_s * 1000:
            sessions.pop(token.strip(), None)
            return sf_json([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401,
                           {"WWW-Authenticate": 'Token'})
        if not daily.take():
            return sf_json([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403,
                           {"Sforce-Limit-Info": daily.header()})
        response = await call_next(request)
        response.headers["Sforce-Limit-Info"] = daily.header()
        # the org's clock (SystemModstamp's timeline), also when the test clock is frozen; uvicorn's own Date
        # header comes first, this one last
        response.headers["Date"] = formatdate(clock.now_ms() / 1000, usegmt=True)
        return response

    # ------------------------------------------------------------------ OAuth
    @app.post("/services/oauth2/token")
    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            cid, secret = form.get("client_id"), form.get("client_secret")
            basic = request.headers.get("authorization", "")
            if basic.lower().startswith("basic "):
                try:
                    cid, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
                except ValueError:
                    cid = secret = None
            host = request.headers.get("host", "")
            if host.startswith(("login.salesforce.com", "test.salesforce.com")):
                return _oauth_error("invalid_grant", "request not supported on this domain")
            if cid != config.client_id or not secret or not hmac.compare_digest(secret, config.client_secret):
                return _oauth_error("invalid_client", "invalid client credentials")
            return _issue(request)
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            problem = _check_jwt(form.get("assertion", ""), config, store, clock, str(request.base_url).rstrip("/"))
            if problem:
                return _oauth_error(*problem)
            return _issue(request)
        if grant == "password":
            return _oauth_error("invalid_grant", "the username-password flow is disabled for this org; use client "
                                "credentials or the JWT bearer flow")
        return _oauth_error("unsupported_grant_type", "grant type not supported")

    def _issue(request: Request) -> Response:
        token = f"{store.org_id[:15]}!AQ{secrets.token_urlsafe(60)}"
        now = clock.now_ms()
        sessions[token] = now
        base = str(request.base_url).rstrip("/")
        sig = base64.b64encode(hmac.new(config.client_secret.encode(), f"{base}{now}".encode(), hashlib.sha256).digest())
        return sf_json({"access_token": token, "signature": sig.decode(), "scope": "api", "instance_url": base,
                        "id": f"{base}/id/{store.org_id}/{store.user_id}", "token_type": "Bearer", "issued_at": str(now)},
                       headers={"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"})

    @app.post("/services/oauth2/revoke")
    async def revoke(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        sessions.pop(form.get("token", ""), None)
        return Response(status_code=200)

    # ------------------------------------------------------------------ versions and resources
    @app.get("/services/data/")
    @app.get("/services/data")
    async def versions() -> Response:
        return sf_json([{"label": release_label(f"{v}.0"), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                        for v in range(MIN_VERSION, MAX_VERSION + 1)],
                       headers={"Date": formatdate(clock.now_ms() / 1000, usegmt=True)})

    P = "/services/data/v{version}"

    @app.get(P)
    async def resources(version: str) -> Response:
        base = f"/services/data/v{version}"
        return sf_json({k: f"{base}/{k}" for k in ("sobjects", "query", "queryAll", "composite", "limits", "tooling")})

    @app.get(P + "/limits")
    async def limits(version: str) -> Response:
        mx = config.daily_limit or 5_000_000
        return sf_json({"DailyApiRequests": {"Max": mx, "Remaining": max(0, mx - daily.used())},
                        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                        "DailyStreamingApiEvents": {"Max": 10000, "Remaining": 10000},
                        "DataStorageMB": {"Max": 5, "Remaining": 5}, "FileStorageMB": {"Max": 20, "Remaining": 20}})

    def sobject(name: str):
        for k, o in store.schema.items():
            if k.lower() == name.lower():
                return o
        raise SFError(404, "NOT_FOUND", "The requested resource does not exist")

    @app.get(P + "/sobjects")
    async def global_describe(version: str) -> Response:
        return sf_json({"encoding": "UTF-8", "maxBatchSize": 200,
                        "sobjects": [o.basic(version) for o in store.schema.values()]})

    @app.get(P + "/sobjects/{otype}")
    async def basic_info(version: str, otype: str) -> Response:
        o = sobject(otype)
        recent = sorted(store.rows(o.name), key=lambda r: r["LastModifiedDate"] or 0, reverse=True)[:5]
        return sf_records({"objectDescribe": o.basic(version),
                           "recentItems": [store.record_json(o.name, r, ["Id"] + (["Name"] if o.field("Name") else []))
                                           for r in recent]})

    @app.get(P + "/sobjects/{otype}/describe")
    async def describe(version: str, otype: str) -> Response:
        return sf_json(sobject(otype).describe(version))

    @app.post(P + "/sobjects/{otype}")
    async def create(version: str, otype: str, request: Request) -> Response:
        o = sobject(otype)
        body = await _body(request)
        if not isinstance(body, dict):
            raise SFError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of an sObject from START_ARRAY")
        rid = store.create(o.name, body)
        return sf_json({"id": rid, "success": True, "errors": []}, 201)

    def window(request: Request, max_days: int) -> tuple[int, int]:
        try:
            start = parse_datetime(request.query_params["start"])
            end = parse_datetime(request.query_params["end"])
        except (KeyError, ValueError):
            raise SFError(400, "MALFORMED_QUERY", "start and end must be ISO-8601 date-times") from None
        if start < clock.now_ms() - max_days * DAY_MS:
            raise SFError(400, "INVALID_REPLICATION_DATE", f"startDate cannot be more than {max_days} days ago")
        if end < start:
            raise SFError(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
        return start, min(end, store.now())

    @app.get(P + "/sobjects/{otype}/updated")
    async def updated(version: str, otype: str, request: Request) -> Response:
        o = sobject(otype)
        start, end = window(request, 30)
        ids = [r["Id"] for r in store.rows(o.name) if start <= r["SystemModstamp"] <= end]
        if len(ids) > 600_000:
            raise SFError(400, "EXCEEDED_ID_LIMIT", "too many ids; narrow the window")
        return sf_json({"ids": ids, "latestDateCovered": iso(end)})

    @app.get(P + "/sobjects/{otype}/deleted")
    async def deleted(version: str, otype: str, request: Request) -> Response:
        o = sobject(otype)
        start, end = window(request, 15)
        rows = [{"id": rid, "deletedDate": iso(t)} for obj, rid, t in store.deleted_log
                if obj == o.name and start <= t <= end and store.get(obj, rid, include_deleted=True).get("IsDeleted")]
        earliest = min((t for obj, _, t in store.deleted_log if obj == o.name), default=start)
        return sf_json({"deletedRecords": rows, "earliestDateAvailable": iso(earliest), "latestDateCovered": iso(end)})

    @app.get(P + "/sobjects/{otype}/{rid}")
    async def get_record(version: str, otype: str, rid: str, request: Request) -> Response:
        o = sobject(otype)
        if store.resolve_id(rid) is None:
            raise not_found()
        rec = store.get_live(o.name, rid)
        fields = request.query_params.get("fields")
        return sf_records(store.record_json(o.name, rec, [f.strip() for f in fields.split(",")] if fields else None))

    @app.patch(P + "/sobjects/{otype}/{rid}")
    async def update(version: str, otype: str, rid: str, request: Request) -> Response:
        o = sobject(otype)
        body = await _body(request)
        if store.resolve_id(rid) is None:
            raise not_found()
        store.update(o.name, rid, body)
        return Response(status_code=204)

    @app.delete(P + "/sobjects/{otype}/{rid}")
    async def delete(version: str, otype: str, rid: str) -> Response:
        o = sobject(otype)
        if store.resolve_id(rid) is None:
            raise not_found()
        store.delete(o.name, rid)
        return Response(status_code=204)

    @app.post(P + "/sobjects/{otype}/{ext_field}")
    async def create_with_null_id(version: str, otype: str, ext_field: str, request: Request) -> Response:
        o = sobject(otype)
        if ext_field.lower() != "id" or float(version) < 37:
            raise SFError(405, "METHOD_NOT_ALLOWED", "HTTP Method 'POST' not allowed. Allowed are GET,PATCH,DELETE,HEAD")
        rid = store.create(o.name, await _body(request))
        return sf_json({"id": rid, "success": True, "errors": [], "created": True}, 201)

    @app.get(P + "/sobjects/{otype}/{ext_field}/{value}")
    async def get_by_external(version: str, otype: str, ext_field: str, value: str, request: Request) -> Response:
        o = sobject(otype)
        matches = store.find_by_external(o.name, ext_field, value)
        if not matches:
            raise not_found()
        if len(matches) > 1:
            return sf_json([store.attributes(o.name, r["Id"])["url"] for r in matches], 300)
        fields = request.query_params.get("fields")
        return sf_records(store.record_json(o.name, matches[0], [f.strip() for f in fields.split(",")] if fields else None))

    @app.patch(P + "/sobjects/{otype}/{ext_field}/{value}")
    async def upsert(version: str, otype: str, ext_field: str, value: str, request: Request) -> Response:
        o = sobject(otype)
        body = await _body(request)
        if not isinstance(body, dict):
            raise SFError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of an sObject from START_ARRAY")
        f = o.field(ext_field)
        if f is not None and (f.external_id or f.name == "Id"):
            matches = store.find_by_external(o.name, f.name, value)
            if len(matches) > 1:
                return sf_json([store.attributes(o.name, r["Id"])["url"] for r in matches], 300)
        if request.query_params.get("updateOnly", "").lower() == "true" and f is not None \
                and not store.find_by_external(o.name, f.name, value):
            raise not_found()
        rid, created = store.upsert(o.name, ext_field, value, body)
        if created:
            return sf_json({"id": rid, "success": True, "errors": [], "created": True}, 201)
        if float(version) < 46:
            return Response(status_code=204)
        return sf_json({"id": rid, "success": True, "errors": [], "created": False}, 200)

    @app.delete(P + "/sobjects/{otype}/{ext_field}/{value}")
    async def delete_by_external(version: str, otype: str, ext_field: str, value: str) -> Response:
        o = sobject(otype)
        matches = store.find_by_external(o.name, ext_field, value)
        if not matches:
            raise not_found()
        if len(matches) > 1:
            return sf_json([store.attributes(o.name, r["Id"])["url"] for r in matches], 300)
        store.delete(o.name, matches[0]["Id"])
        return Response(status_code=204)

    # ------------------------------------------------------------------ query
    def batch_size(request: Request) -> int:
        opts = request.headers.get("sforce-query-options", "")
        m = re.search(r"batchSize\s*=\s*(\d+)", opts)
        return config.batch_size if not m else max(200, min(2000, int(m.group(1))))

    def page(version: str, loc: str, cur: dict, offset: int) -> Response:
        recs, n = cur["records"], cur["batch"]
        chunk = recs[offset:offset + n]
        body: dict[str, Any] = {"totalSize": cur["total"], "done": offset + n >= len(recs)}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{loc}-{offset + n}"
        body["records"] = chunk
        return sf_records(body)

    async def run_query(version: str, request: Request, include_deleted: bool) -> Response:
        q = request.query_params.get("q")
        if not q:
            raise SFError(400, "MALFORMED_QUERY", "A query string has to be specified")
        parsed = soql.parse(q)
        total, records = evaluator.run(parsed, include_deleted)
        n = batch_size(request)
        if parsed.count or len(records) <= n:
            return sf_records({"totalSize": total, "done": True, "records": records})
        loc = cursors.add(records, n, total)
        return page(version, loc, cursors.get(loc), 0)

    @app.get(P + "/query")
    async def query(version: str, request: Request) -> Response:
        return await run_query(version, request, False)

    @app.get(P + "/queryAll")
    async def query_all(version: str, request: Request) -> Response:
        return await run_query(version, request, True)

    @app.get(P + "/query/{locator}")
    @app.get(P + "/queryAll/{locator}")
    async def query_more(version: str, locator: str) -> Response:
        loc, _, off = locator.rpartition("-")
        if not loc or not off.isdigit():
            raise SFError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return page(version, loc, cursors.get(loc), int(off))

    # ------------------------------------------------------------------ sObject Collections
    def collection(body: Any) -> tuple[list[dict], bool]:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise SFError(400, "JSON_PARSER_ERROR", "expected an object with a 'records' array")
        if len(body["records"]) > COLLECTION_MAX:
            raise SFError(400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {COLLECTION_MAX} "
                          "records into this call")
        return body["records"], bool(body.get("allOrNone", False))

    def run_collection(items: list[Any], all_or_none: bool, op: Callable[[Any], dict]) -> Response:
        results: list[dict] = []

        class Rollback(Exception):
            pass

        try:
            with store.transaction():
                for item in items:
                    try:
                        results.append({"success": True, "errors": [], **op(item)})
                    except SFError as e:
                        if e.code in store.WHOLE_REQUEST_CODES:
                            raise
                        results.append({"id": None, "success": False, "errors": [e.record_error()]})
                if all_or_none and not all(r["success"] for r in results):
                    raise Rollback()
        except Rollback:
            rolled = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back because not "
                      "all records were valid and the request was using AllOrNone header", "fields": []}
            results = [{"id": None, "success": False, "errors": r["errors"] or [rolled]} for r in results]
        # key order as Salesforce renders it
        out = []
        for r in results:
            d = {"id": r.get("id"), "success": r["success"], "errors": r["errors"]}
            if "created" in r:
                d["created"] = r["created"] if r["success"] else False
            out.append(d)
        return sf_json(out)

    def record_type(rec: Any) -> str:
        if not isinstance(rec, dict) or not isinstance(rec.get("attributes"), dict) or not rec["attributes"].get("type"):
            raise SFError(400, "INVALID_TYPE", "sObject type is required in the attributes of every record")
        return sobject(rec["attributes"]["type"]).name

    @app.post(P + "/composite/sobjects")
    async def collection_create(version: str, request: Request) -> Response:
        records, aon = collection(await _body(request))
        types = [record_type(r) for r in records]
        chunks = sum(1 for i, t in enumerate(types) if i == 0 or t != types[i - 1])
        if chunks > 10:
            raise SFError(400, "INVALID_BATCH_SIZE", "the request has more than 10 chunks of records of one type")

        def op(rec: dict) -> dict:
            return {"id": store.create(record_type(rec), rec)}

        return run_collection(records, aon, op)

    @app.patch(P + "/composite/sobjects")
    async def collection_update(version: str, request: Request) -> Response:
        records, aon = collection(await _body(request))
        for r in records:
            record_type(r)

        def op(rec: dict) -> dict:
            obj = record_type(rec)
            rid = next((v for k, v in rec.items() if k.lower() == "id"), None)
            if not rid:
                raise SFError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            if store.resolve_id(rid) is None:
                raise SFError(400, "MALFORMED_ID" if not _idlike(rid) else "INVALID_CROSS_REFERENCE_KEY",
                              f"invalid cross reference id" if _idlike(rid) else f"Id: id value of incorrect type: {rid}",
                              ["Id"])
            rec_obj = store.get(obj, rid, include_deleted=True)
            if rec_obj is None:
                raise SFError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["Id"])
            if rec_obj.get("IsDeleted"):
                raise SFError(400, "ENTITY_IS_DELETED", "entity is deleted", [])
            return {"id": store.update(obj, rid, rec)}

        return run_collection(records, aon, op)

    @app.patch(P + "/composite/sobjects/{otype}/{ext_field}")
    async def collection_upsert(version: str, otype: str, ext_field: str, request: Request) -> Response:
        if float(version) < 46:
            raise not_found()
        o = sobject(otype)
        f = o.field(ext_field)
        if f is None or not (f.external_id or f.name == "Id"):
            raise SFError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {ext_field}")
        records, aon = collection(await _body(request))
        keys = []
        for r in records:
            if record_type(r) != o.name:
                raise SFError(400, "INVALID_TYPE", f"all records of an upsert must be of type {o.name}")
            keys.append(next((str(v).lower() for k, v in r.items() if k.lower() == f.name.lower() and v not in (None, "")), None))
        dupes = {k for k in keys if k is not None and keys.count(k) > 1}
        it = iter(range(len(records)))

        def op(rec: dict) -> dict:
            i = next(it)
            value = next((v for k, v in rec.items() if k.lower() == f.name.lower()), None)
            if value in (None, ""):
                raise SFError(400, "MISSING_ARGUMENT", f"Upsert failed. The external ID field {f.name} has no value.",
                              [f.name])
            if keys[i] in dupes:
                raise SFError(400, "DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {value}", [f.name])
            matches = store.find_by_external(o.name, f.name, str(value))
            if len(matches) > 1:
                raise SFError(300, "DUPLICATE_EXTERNAL_ID", f"more than one record found for external id field: "
                              f"{[m['Id'] for m in matches]}", [f.name])
            body = {k: v for k, v in rec.items() if k.lower() != f.name.lower()}
            if matches:
                return {"id": store.update(o.name, matches[0]["Id"], body), "created": False}
            return {"id": store.create(o.name, {**body, f.name: value}), "created": True}

        return run_collection(records, aon, op)

    @app.delete(P + "/composite/sobjects")
    async def collection_delete(version: str, request: Request) -> Response:
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if len(ids) > COLLECTION_MAX:
            raise SFError(400, "EXCEEDED_ID_LIMIT", f"cannot delete more than {COLLECTION_MAX} records in one call")
        aon = request.query_params.get("allOrNone", "false").lower() == "true"

        def op(rid: str) -> dict:
            real = store.resolve_id(rid)
            obj = store.object_of(real) if real else None
            if obj is None:
                raise SFError(400, "MALFORMED_ID" if not _idlike(rid) else "INVALID_CROSS_REFERENCE_KEY",
                              "invalid cross reference id", [])
            try:
                store.delete(obj, real)
            except SFError as e:
                if e.status == 404:
                    raise SFError(400, "ENTITY_IS_DELETED", "entity is deleted", []) from None
                raise
            return {"id": real}

        return run_collection(ids, aon, op)

    @app.get(P + "/composite/sobjects/{otype}")
    async def collection_retrieve(version: str, otype: str, request: Request) -> Response:
        o = sobject(otype)
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        fields = [f for f in request.query_params.get("fields", "").split(",") if f]
        if not fields:
            raise SFError(400, "MISSING_ARGUMENT", "fields is required")
        out = []
        for rid in ids[:COLLECTION_MAX]:
            rec = store.get(o.name, rid)
            out.append(store.record_json(o.name, rec, fields) if rec else None)
        return sf_records(out)

    # ------------------------------------------------------------------ admin
    @app.get("/_sandbox/health")
    async def health() -> Response:
        return sf_json({"ok": True, "records": {k: len(v) for k, v in store.records.items()}})

    @app.post("/_sandbox/sessions/expire")
    async def expire_sessions() -> Response:
        n = len(sessions)
        sessions.clear()
        return sf_json({"expired": n})

    @app.post("/_sandbox/limits")
    async def set_limits(request: Request) -> Response:
        body = await _body(request)
        if "used" in body:
            daily.set_used(int(body["used"]))
        if "max" in body:
            daily.limit = config.daily_limit = int(body["max"])
        return sf_json({"used": daily.used(), "max": daily.limit})

    @app.post("/_sandbox/merge")
    async def merge(request: Request) -> Response:
        body = await _body(request)
        store.merge(body.get("object", "Account"), body["master"], list(body["losers"]))
        return sf_json({"ok": True})

    app.add_middleware(TrailingSlash)
    add_faults(app, config.faults, fault_body, exempt_paths=("/_sandbox", "/docs", "/openapi.json"))
    return app


def _idlike(v: str) -> bool:
    return isinstance(v, str) and len(v) in (15, 18) and v.isalnum()


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return sf_json({"error": error, "error_description": description}, status)


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _check_jwt(assertion: str, config: SalesforceSandboxConfig, store: SalesforceStore, clock: Clock,
               own_url: str) -> tuple[str, str] | None:
    """Verify a JWT bearer assertion (RS256, iss, sub, aud, exp ≤ 3 min); None when valid."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    parts = assertion.split(".")
    if len(parts) != 3:
        return ("invalid_grant", "invalid assertion")
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except ValueError:
        return ("invalid_grant", "invalid assertion")
    if header.get("alg") != "RS256":
        return ("invalid_grant", "invalid assertion")
    if not config.jwt_public_key_pem:
        return ("invalid_client", "no certificate is uploaded for this app")
    pem = config.jwt_public_key_pem.encode()
    key = (x509.load_pem_x509_certificate(pem).public_key() if b"CERTIFICATE" in pem
           else serialization.load_pem_public_key(pem))
    try:
        key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return ("invalid_grant", "invalid assertion")
    if claims.get("iss") != config.client_id:
        return ("invalid_client_id", "client identifier invalid")
    audiences = {"https://login.salesforce.com", "https://test.salesforce.com", own_url}
    if claims.get("aud") not in audiences:
        return ("invalid_grant", "audience is invalid")
    now_s = clock.now_ms() / 1000
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp < now_s or exp > now_s + 180 + 5:
        return ("invalid_grant", "expired authorization code")
    user = next((u for u in store.rows("User") if u.get("Username") == claims.get("sub")), None)
    if user is None or not user.get("IsActive") or user.get("Username") != config.username:
        return ("invalid_grant", "user hasn't approved this consumer")
    return None
