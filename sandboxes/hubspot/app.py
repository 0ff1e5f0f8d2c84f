"""FastAPI application of the HubSpot sandbox: HubSpot's real paths, payloads, status codes and error
bodies on top of :class:`~sandboxes.hubspot.store.HubSpotStore`.

Request pipeline (outermost first): injected faults (``sandboxes.common.add_faults``; before anything
else, so an injected 429/5xx has no side effect) → auth (Bearer token) → daily limit → search
per-second limit *or* 10-second rolling limit → route. ``/_sandbox/*`` (admin) and the OpenAPI docs
are exempt from auth, limits and faults.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from renkei.sandboxes.common import Clock, SlidingWindowLimiter, add_faults

from .config import HubSpotSandboxConfig
from .errors import HubSpotError, error_body, fault_error_body, not_found, rate_limit_body, standard_error, validation
from .schema import OBJECT_TYPES, association_type, resolve_object_type
from .store import (
    ASSOC_BATCH_CREATE_MAX,
    ASSOC_BATCH_READ_MAX,
    ASSOC_LIST_PAGE,
    BATCH_MAX_INPUTS,
    LIST_MAX_LIMIT,
    HubSpotStore,
    decode_cursor,
    encode_cursor,
    iso_ms,
)

OBJECT_PREFIXES = ("/crm/v3/objects", "/crm/objects/2026-03", "/crm/objects/2025-09")
EXEMPT_PREFIXES = ("/_sandbox", "/docs", "/openapi.json", "/redoc")
TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"  # the token is in the body, no Bearer header
TEN_SECONDS_MS = 10_000


# --------------------------------------------------------------------------------------------------
# request helpers
# --------------------------------------------------------------------------------------------------


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise validation(f"Invalid input JSON on line {e.lineno}, column {e.colno}: {e.msg}") from None


def _csv_param(request: Request, name: str) -> list[str] | None:
    """Comma-separated and/or repeated query parameter (the SDK repeats, curl users comma-separate)."""
    values = [v for raw in request.query_params.getlist(name) for v in raw.split(",") if v.strip()]
    return [v.strip() for v in values] or None


def _bool_param(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise validation(f"{name} must be an integer, got {raw!r}") from None


def _inputs(body: Any, cap: int) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise validation("Invalid input JSON: expected an object with an 'inputs' array")
    inputs = body["inputs"]
    if len(inputs) > cap:
        raise validation(
            f"Too many inputs: {len(inputs)}. The maximum number of inputs per batch request is {cap}.",
            sub_category="crm.batch.TOO_MANY_INPUTS",
            context={"inputs": [str(len(inputs))], "max": [str(cap)]},
        )
    return inputs


def _now_iso(clock: Clock) -> str:
    return iso_ms(clock.now_ms())


def _batch_response(clock: Clock, started: str, results: list[dict[str, Any]], errors: list[dict[str, Any]],
                    ok_status: int) -> JSONResponse:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                            "completedAt": _now_iso(clock)}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return JSONResponse(body, status_code=207 if errors else ok_status)


# --------------------------------------------------------------------------------------------------
# rate limits
# --------------------------------------------------------------------------------------------------


def _zone(name: str) -> tzinfo:
    """The account time zone; without tz data (no ``tzdata``, no /usr/share/zoneinfo) Asia/Tokyo falls
    back to a fixed +09:00 (Japan has no DST) and anything else to UTC."""
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return timezone(timedelta(hours=9)) if name == "Asia/Tokyo" else timezone.utc


class RateLimits:
    """Per-app 10-second rolling bucket, per-account search per-second bucket, per-account daily cap
    (reset at midnight in the account time zone)."""

    def __init__(self, config: HubSpotSandboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.ten_secondly = SlidingWindowLimiter(config.rate_limit_per_10s, 10.0, clock)
        self.search = SlidingWindowLimiter(config.search_per_second, 1.0, clock)
        self.tz = _zone(config.account_timezone)
        self._day: str | None = None
        self.daily_used = 0

    def _today(self) -> str:
        return datetime.fromtimestamp(self.clock.now_ms() / 1000, tz=self.tz).date().isoformat()

    def daily_remaining(self) -> int:
        if self._today() != self._day:
            return self.config.daily_limit
        return max(0, self.config.daily_limit - self.daily_used)

    def take_daily(self) -> bool:
        if self.config.daily_limit <= 0:
            return True
        today = self._today()
        if today != self._day:
            self._day, self.daily_used = today, 0
        if self.daily_used >= self.config.daily_limit:
            return False
        self.daily_used += 1
        return True

    def reset(self) -> None:
        self.ten_secondly.reset()
        self.search.reset()
        self._day, self.daily_used = None, 0


# --------------------------------------------------------------------------------------------------
# the app
# --------------------------------------------------------------------------------------------------


def create_app(config: HubSpotSandboxConfig | None = None) -> FastAPI:
    """Build the sandbox app. ``app.state.store`` is the :class:`HubSpotStore` (bulk-load records
    without HTTP), ``app.state.config`` the config, ``app.state.clock`` the clock,
    ``app.state.limits`` the rate limiters, ``app.state.faults`` the fault injector."""
    config = config or HubSpotSandboxConfig()
    clock = config.clock or Clock()
    store = HubSpotStore(clock, index_lag_ms=config.index_lag_ms, preserve_merge_id=config.preserve_merge_id,
                         portal_id=config.portal_id)
    from .seed import load_account, load_demo  # local import: seed imports the store

    load_account(store)
    if config.seed == "demo":
        load_demo(store)

    app = FastAPI(title="Renkei HubSpot sandbox", version="1", docs_url="/docs")
    limits = RateLimits(config, clock)
    app.state.store = store
    app.state.config = config
    app.state.clock = clock
    app.state.limits = limits
    app.state.webhooks = None
    if config.webhook_url:  # HubSpot-style automatic delivery of subscribed changes
        from .webhooks import DEFAULT_SUBSCRIPTIONS, Deliverer

        app.state.webhooks = Deliverer(store, config.webhook_url, config.webhook_client_secret,
                                       delay_ms=config.webhook_delay_ms,
                                       subscriptions=config.webhook_subscriptions or DEFAULT_SUBSCRIPTIONS,
                                       duplicate_rate=config.webhook_duplicate_rate,
                                       reorder=config.webhook_reorder).start()

    # ------------------------------------------------------------------ errors

    @app.exception_handler(HubSpotError)
    async def _hubspot_error(request: Request, exc: HubSpotError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(400, f"Invalid input: {exc.errors()}", "VALIDATION_ERROR"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code)

    # ------------------------------------------------------------------ auth + limits

    @app.middleware("http")
    async def _gate(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path.startswith(EXEMPT_PREFIXES) or path == TOKEN_INFO_PATH or not path.startswith(("/crm/", "/oauth/")):
            return await call_next(request)
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if not auth:
            return JSONResponse(error_body(
                401, "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION"), status_code=401)
        if scheme.lower() != "bearer" or token.strip() != config.token:
            return JSONResponse(error_body(
                401, "The OAuth token used to make this call is invalid or expired. Authentication credentials "
                "not found.", "INVALID_AUTHENTICATION", sub_category="INVALID_OAUTH_TOKEN"), status_code=401)

        if config.scopes is not None:
            needed = required_scopes(request.method, path)
            if needed and not (set(needed) & set(config.scopes)):
                return JSONResponse(missing_scopes_body(needed), status_code=403)

        is_search = request.method == "POST" and path.endswith("/search")
        if not limits.take_daily():
            return JSONResponse(rate_limit_body("DAILY"), status_code=429, headers={
                "X-HubSpot-RateLimit-Daily": str(config.daily_limit), "X-HubSpot-RateLimit-Daily-Remaining": "0"})
        if is_search:
            ok, remaining, _ = limits.search.try_acquire("account")
            if not ok:
                return JSONResponse(rate_limit_body("SECONDLY"), status_code=429)
            response = await call_next(request)
            if config.search_rate_limit_headers:
                _limit_headers(response, config, limits, remaining)
            return response
        ok, remaining, _ = limits.ten_secondly.try_acquire(config.token)
        if not ok:
            return JSONResponse(rate_limit_body("TEN_SECONDLY_ROLLING"), status_code=429, headers={
                "X-HubSpot-RateLimit-Max": str(config.rate_limit_per_10s),
                "X-HubSpot-RateLimit-Remaining": "0",
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(TEN_SECONDS_MS),
            })
        response = await call_next(request)
        if config.rate_limit_headers:
            _limit_headers(response, config, limits, remaining)
        return response

    # ------------------------------------------------------------------ routes

    _object_routes(app, store, clock)
    _association_routes(app, store, clock)
    _metadata_routes(app, store)
    _admin_routes(app, store, limits)
    _token_info_route(app, config)

    add_faults(app, config.faults, fault_error_body, exempt_paths=EXEMPT_PREFIXES)
    return app


def required_scopes(method: str, path: str) -> list[str]:
    """Scopes of which one is needed for ``method path`` (reference §1 "Scopes"); [] = none checked."""
    parts = [p for p in path.split("/") if p]
    read = method == "GET" or (method == "POST" and parts[-1] in ("search", "read"))
    rw = "read" if read else "write"

    def objects(name: str) -> list[str]:
        obj = resolve_object_type(name)
        if obj is None:
            return []
        scopes = [f"crm.objects.{obj.name}.{rw}"]
        return scopes + ["e-commerce"] if obj.name in ("products", "line_items") else scopes

    if parts[:3] == ["crm", "v3", "objects"] and len(parts) > 3:
        return objects(parts[3])
    if parts[:2] == ["crm", "objects"] and len(parts) > 3:
        return objects(parts[3])
    if parts[:3] in (["crm", "v4", "objects"], ["crm", "v4", "associations"]) and len(parts) > 3:
        return objects(parts[3])
    if parts[:3] == ["crm", "v3", "properties"] and len(parts) > 3:
        obj = resolve_object_type(parts[3])
        if obj is None:
            return []
        scopes = [f"crm.schemas.{obj.name}.{rw}"]
        return scopes + ["e-commerce"] if obj.name in ("products", "line_items") else scopes
    if parts[:3] == ["crm", "v3", "pipelines"] and len(parts) > 3:
        return objects(parts[3])
    if parts[:3] == ["crm", "v3", "owners"]:
        return ["crm.objects.owners.read"]
    return []


def missing_scopes_body(needed: list[str]) -> dict[str, Any]:
    body = error_body(
        403, "This app hasn't been granted all required scopes to make this call. Read more about required "
        "scopes here: https://developers.hubspot.com/scopes.", "MISSING_SCOPES",
        errors=[{"message": "One or more of the following scopes are required.",
                 "context": {"requiredGranularScopes": needed}}],
        links={"scopes": "https://developers.hubspot.com/scopes"},
    )
    return body


def _limit_headers(response: Response, config: HubSpotSandboxConfig, limits: RateLimits, remaining: int) -> None:
    if config.rate_limit_per_10s > 0:
        response.headers["X-HubSpot-RateLimit-Max"] = str(config.rate_limit_per_10s)
        response.headers["X-HubSpot-RateLimit-Remaining"] = str(remaining)
        response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(TEN_SECONDS_MS)
    if config.daily_limit > 0:
        response.headers["X-HubSpot-RateLimit-Daily"] = str(config.daily_limit)
        response.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(limits.daily_remaining())


# --------------------------------------------------------------------------------------------------
# CRM objects v3
# --------------------------------------------------------------------------------------------------


def _object_routes(app: FastAPI, store: HubSpotStore, clock: Clock) -> None:
    def obj_name(object_type: str) -> str:
        return store.object_type(object_type).name

    async def list_objects(request: Request, object_type: str) -> JSONResponse:
        name = obj_name(object_type)
        limit = min(max(_int_param(request, "limit", 10), 1), LIST_MAX_LIMIT)
        records, next_after = store.list_page(name, limit=limit, after=request.query_params.get("after"),
                                              archived=_bool_param(request, "archived"))
        props = _csv_param(request, "properties")
        assoc = _csv_param(request, "associations")
        hist = _csv_param(request, "propertiesWithHistory")
        body: dict[str, Any] = {"results": [store.record_json(r, props, associations=assoc, with_history=hist)
                                            for r in records]}
        if next_after:
            link = str(request.url.include_query_params(after=next_after))
            body["paging"] = {"next": {"after": next_after, "link": link}}
        return JSONResponse(body)

    async def create_object(request: Request, object_type: str) -> JSONResponse:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise validation("Invalid input JSON: expected an object with 'properties'")
        rec = store.create(obj_name(object_type), body.get("properties") or {}, body.get("associations"))
        return JSONResponse(store.record_json(rec, list(rec.props)), status_code=201)

    async def read_object(request: Request, object_type: str, object_id: str) -> JSONResponse:
        name = obj_name(object_type)
        rec = store.read(name, object_id, id_property=request.query_params.get("idProperty"),
                         archived=_bool_param(request, "archived"))
        return JSONResponse(store.record_json(
            rec, _csv_param(request, "properties"), associations=_csv_param(request, "associations"),
            with_history=_csv_param(request, "propertiesWithHistory")))

    async def update_object(request: Request, object_type: str, object_id: str) -> JSONResponse:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise validation("Invalid input JSON: expected an object with 'properties'")
        rec = store.update(obj_name(object_type), object_id, body.get("properties") or {},
                           id_property=request.query_params.get("idProperty"))
        return JSONResponse(store.record_json(rec, list(rec.props)))

    async def archive_object(request: Request, object_type: str, object_id: str) -> Response:
        store.archive(obj_name(object_type), object_id)  # HubSpot answers 204 even when already gone
        return Response(status_code=204)

    async def search_objects(request: Request, object_type: str) -> JSONResponse:
        return JSONResponse(store.search(obj_name(object_type), await _json_body(request)))

    async def merge_objects(request: Request, object_type: str) -> JSONResponse:
        body = await _json_body(request)
        if not isinstance(body, dict) or not body.get("primaryObjectId") or not body.get("objectIdToMerge"):
            raise validation("primaryObjectId and objectIdToMerge are required")
        rec = store.merge(obj_name(object_type), str(body["primaryObjectId"]), str(body["objectIdToMerge"]))
        return JSONResponse(store.record_json(rec, list(rec.props)))

    async def batch(request: Request, object_type: str, action: str) -> Response:
        name = obj_name(object_type)
        started = _now_iso(clock)
        body = await _json_body(request)
        inputs = _inputs(body, BATCH_MAX_INPUTS)
        if action == "read":
            archived = _bool_param(request, "archived")
            records, errors = store.batch_read(name, inputs, id_property=body.get("idProperty"), archived=archived)
            props = body.get("properties") or None
            hist = body.get("propertiesWithHistory") or None
            results = [store.record_json(r, props, with_history=hist) for r in records]
            return _batch_response(clock, started, results, errors, 200)
        if action in ("create", "update", "upsert"):
            written, errors = store.batch_write(name, action, inputs)
            results = []
            for rec, new in written:
                item = store.record_json(rec, list(rec.props))
                if action == "upsert":
                    item["new"] = new
                results.append(item)
            return _batch_response(clock, started, results, errors, 201 if action == "create" else 200)
        if action == "archive":
            for item in inputs:
                if isinstance(item, dict) and "id" in item:
                    store.archive(name, str(item["id"]))
            return Response(status_code=204)
        raise not_found(f"Unknown batch action {action}")

    for prefix in OBJECT_PREFIXES:
        app.add_api_route(f"{prefix}/{{object_type}}", list_objects, methods=["GET"])
        app.add_api_route(f"{prefix}/{{object_type}}", create_object, methods=["POST"])
        app.add_api_route(f"{prefix}/{{object_type}}/search", search_objects, methods=["POST"])
        app.add_api_route(f"{prefix}/{{object_type}}/merge", merge_objects, methods=["POST"])
        app.add_api_route(f"{prefix}/{{object_type}}/batch/{{action}}", batch, methods=["POST"])
        app.add_api_route(f"{prefix}/{{object_type}}/{{object_id}}", read_object, methods=["GET"])
        app.add_api_route(f"{prefix}/{{object_type}}/{{object_id}}", update_object, methods=["PATCH"])
        app.add_api_route(f"{prefix}/{{object_type}}/{{object_id}}", archive_object, methods=["DELETE"])


# --------------------------------------------------------------------------------------------------
# associations v4
# --------------------------------------------------------------------------------------------------


def _assoc_types_json(types: list[Any]) -> list[dict[str, Any]]:
    return [{"category": a.category, "typeId": a.type_id, "label": a.label} for a in types]


def _association_routes(app: FastAPI, store: HubSpotStore, clock: Clock) -> None:
    def types_pair(from_type: str, to_type: str) -> tuple[Any, Any]:
        return store.object_type(from_type), store.object_type(to_type)

    def default_results(f: Any, from_id: str, t: Any, to_id: str) -> list[dict[str, Any]]:
        added = store.associate(f.name, from_id, t.name, to_id, [])
        a = added[0]
        return [
            {"from": {"id": from_id}, "to": {"id": to_id},
             "associationSpec": {"associationCategory": a.category, "associationTypeId": a.type_id}},
            {"from": {"id": to_id}, "to": {"id": from_id},
             "associationSpec": {"associationCategory": a.category, "associationTypeId": a.inverse_id}},
        ]

    def labels_pair(f: Any, from_id: str, t: Any, to_id: str) -> dict[str, Any]:
        current = dict(store.associations_of(f.name, from_id, t.name)).get(to_id, [])
        return {"fromObjectTypeId": f.type_id, "fromObjectId": int(from_id), "toObjectTypeId": t.type_id,
                "toObjectId": int(to_id), "labels": [a.label for a in current if a.label]}

    def parse_specs(f: Any, t: Any, specs: Any) -> list[int]:
        if not isinstance(specs, list) or not specs:
            raise validation("Body must be a non-empty array of {associationCategory, associationTypeId}")
        ids = []
        for s in specs:
            try:
                category = s["associationCategory"]
                tid = int(s["associationTypeId"])
            except (KeyError, TypeError, ValueError):
                raise validation("associationCategory and associationTypeId are required") from None
            a = association_type(f.name, t.name, tid)
            if a is None or a.category != category:
                raise validation(f"{category} {tid} is not a valid association type from {f.name} to {t.name}",
                                 sub_category="crm.associations.INVALID_ASSOCIATION_TYPE")
            ids.append(tid)
        return ids

    @app.put("/crm/v4/objects/{from_type}/{from_id}/associations/default/{to_type}/{to_id}")
    async def put_default(from_type: str, from_id: str, to_type: str, to_id: str) -> JSONResponse:
        f, t = types_pair(from_type, to_type)
        started = _now_iso(clock)
        return JSONResponse({"status": "COMPLETE", "results": default_results(f, from_id, t, to_id),
                             "startedAt": started, "completedAt": _now_iso(clock)})

    @app.put("/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}/{to_id}")
    async def put_labeled(request: Request, from_type: str, from_id: str, to_type: str, to_id: str) -> JSONResponse:
        f, t = types_pair(from_type, to_type)
        ids = parse_specs(f, t, await _json_body(request))
        store.associate(f.name, from_id, t.name, to_id, ids)
        return JSONResponse(labels_pair(f, from_id, t, to_id), status_code=201)

    @app.delete("/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}/{to_id}")
    async def delete_pair(from_type: str, from_id: str, to_type: str, to_id: str) -> Response:
        f, t = types_pair(from_type, to_type)
        store.unassociate(f.name, from_id, t.name, to_id)
        return Response(status_code=204)

    @app.get("/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}")
    async def list_assoc(request: Request, from_type: str, from_id: str, to_type: str) -> JSONResponse:
        f, t = types_pair(from_type, to_type)
        if not store.record_exists(f.name, from_id):
            raise not_found(f"{f.singular} {from_id} does not exist")
        limit = min(max(_int_param(request, "limit", ASSOC_LIST_PAGE), 1), ASSOC_LIST_PAGE)
        items = store.associations_of(f.name, from_id, t.name)
        start = decode_cursor(request.query_params["after"]) if request.query_params.get("after") else 0
        page = items[start: start + limit]
        body: dict[str, Any] = {"results": [{"toObjectId": int(to_id), "associationTypes": _assoc_types_json(types)}
                                            for to_id, types in page]}
        if start + limit < len(items):
            nxt = encode_cursor(start + limit)
            body["paging"] = {"next": {"after": nxt, "link": str(request.url.include_query_params(after=nxt))}}
        return JSONResponse(body)

    @app.get("/crm/v4/associations/{from_type}/{to_type}/labels")
    async def labels(from_type: str, to_type: str) -> JSONResponse:
        from .schema import association_types_between

        f, t = types_pair(from_type, to_type)
        return JSONResponse({"results": _assoc_types_json(association_types_between(f.name, t.name))})

    @app.post("/crm/v4/associations/{from_type}/{to_type}/batch/read")
    async def batch_read(request: Request, from_type: str, to_type: str) -> JSONResponse:
        f, t = types_pair(from_type, to_type)
        started = _now_iso(clock)
        inputs = _inputs(await _json_body(request), ASSOC_BATCH_READ_MAX)
        results, errors = [], []
        for item in inputs:
            from_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            items = store.associations_of(f.name, from_id, t.name) if store.record_exists(f.name, from_id) else []
            start = decode_cursor(item["after"]) if isinstance(item, dict) and item.get("after") else 0
            page = items[start: start + ASSOC_LIST_PAGE]
            if not page:
                errors.append(standard_error(
                    f"No {t.singular} is associated with {f.singular} {from_id}.", "OBJECT_NOT_FOUND",
                    sub_category="crm.associations.NO_ASSOCIATIONS_FOUND",
                    context={"fromObjectId": [from_id], "toObjectType": [t.singular]}))
                continue
            entry: dict[str, Any] = {"from": {"id": from_id}, "to": [
                {"toObjectId": int(to_id), "associationTypes": _assoc_types_json(types)} for to_id, types in page]}
            if start + ASSOC_LIST_PAGE < len(items):
                entry["paging"] = {"next": {"after": encode_cursor(start + ASSOC_LIST_PAGE)}}
            results.append(entry)
        return _batch_response(clock, started, results, errors, 200)

    @app.post("/crm/v4/associations/{from_type}/{to_type}/batch/create")
    async def batch_create(request: Request, from_type: str, to_type: str) -> JSONResponse:
        f, t = types_pair(from_type, to_type)
        started = _now_iso(clock)
        inputs = _inputs(await _json_body(request), ASSOC_BATCH_CREATE_MAX)
        results, errors = [], []
        for item in inputs:
            try:
                from_id, to_id = str(item["from"]["id"]), str(item["to"]["id"])
                ids = parse_specs(f, t, item.get("types"))
                store.associate(f.name, from_id, t.name, to_id, ids)
                results.append(labels_pair(f, from_id, t, to_id))
            except (KeyError, TypeError):
                errors.append(standard_error("from.id, to.id and types are required", "VALIDATION_ERROR"))
            except HubSpotError as e:
                errors.append(e.as_standard_error())
        return _batch_response(clock, started, results, errors, 201)

    @app.post("/crm/v4/associations/{from_type}/{to_type}/batch/associate/default")
    async def batch_default(request: Request, from_type: str, to_type: str) -> JSONResponse:
        f, t = types_pair(from_type, to_type)
        started = _now_iso(clock)
        inputs = _inputs(await _json_body(request), ASSOC_BATCH_CREATE_MAX)
        results, errors = [], []
        for item in inputs:
            try:
                results.extend(default_results(f, str(item["from"]["id"]), t, str(item["to"]["id"])))
            except (KeyError, TypeError):
                errors.append(standard_error("from.id and to.id are required", "VALIDATION_ERROR"))
            except HubSpotError as e:
                errors.append(e.as_standard_error())
        return _batch_response(clock, started, results, errors, 200)

    @app.post("/crm/v4/associations/{from_type}/{to_type}/batch/archive")
    async def batch_archive(request: Request, from_type: str, to_type: str) -> Response:
        f, t = types_pair(from_type, to_type)
        for item in _inputs(await _json_body(request), ASSOC_BATCH_CREATE_MAX):
            try:
                from_id = str(item["from"]["id"])
                for to in item["to"]:
                    store.unassociate(f.name, from_id, t.name, str(to["id"]))
            except (KeyError, TypeError):
                raise validation("inputs[] need from.id and to[].id") from None
        return Response(status_code=204)

    @app.post("/crm/v4/associations/{from_type}/{to_type}/batch/labels/archive")
    async def batch_labels_archive(request: Request, from_type: str, to_type: str) -> Response:
        f, t = types_pair(from_type, to_type)
        for item in _inputs(await _json_body(request), ASSOC_BATCH_CREATE_MAX):
            try:
                ids = parse_specs(f, t, item["types"])
                store.unassociate(f.name, str(item["from"]["id"]), t.name, str(item["to"]["id"]), ids)
            except (KeyError, TypeError):
                raise validation("inputs[] need from.id, to.id and types") from None
        return Response(status_code=204)


# --------------------------------------------------------------------------------------------------
# properties, pipelines, owners
# --------------------------------------------------------------------------------------------------


def _metadata_routes(app: FastAPI, store: HubSpotStore) -> None:
    @app.get("/crm/v3/properties/{object_type}")
    async def list_properties(request: Request, object_type: str) -> JSONResponse:
        obj = store.object_type(object_type)
        archived = _bool_param(request, "archived")
        return JSONResponse({"results": [store.property_json(p) for p in store.properties[obj.name].values()
                                         if p.archived == archived]})

    @app.post("/crm/v3/properties/{object_type}")
    async def create_property(request: Request, object_type: str) -> JSONResponse:
        pdef = store.create_property(object_type, await _json_body(request))
        return JSONResponse(store.property_json(pdef), status_code=201)

    @app.get("/crm/v3/properties/{object_type}/groups")
    async def list_groups(object_type: str) -> JSONResponse:
        obj = store.object_type(object_type)
        return JSONResponse({"results": [dict(g) for g in store.groups[obj.name].values()]})

    @app.post("/crm/v3/properties/{object_type}/groups")
    async def create_group(request: Request, object_type: str) -> JSONResponse:
        return JSONResponse(store.create_group(object_type, await _json_body(request)), status_code=201)

    @app.get("/crm/v3/properties/{object_type}/groups/{group_name}")
    async def get_group(object_type: str, group_name: str) -> JSONResponse:
        obj = store.object_type(object_type)
        group = store.groups[obj.name].get(group_name)
        if group is None:
            raise not_found(f"Property group {group_name} does not exist on {obj.name}")
        return JSONResponse(dict(group))

    @app.post("/crm/v3/properties/{object_type}/batch/{action}")
    async def batch_properties(request: Request, object_type: str, action: str) -> Response:
        obj = store.object_type(object_type)
        started = _now_iso(store.clock)
        inputs = _inputs(await _json_body(request), BATCH_MAX_INPUTS)
        results, errors = [], []
        for item in inputs:
            try:
                if action == "create":
                    results.append(store.property_json(store.create_property(obj.name, item)))
                elif action == "read":
                    results.append(store.property_json(store.get_property(obj.name, str(item.get("name")))))
                elif action == "archive":
                    store.archive_property(obj.name, str(item.get("name")))
                else:
                    raise not_found(f"Unknown batch action {action}")
            except HubSpotError as e:
                if e.status == 404 and action not in ("create", "read", "archive"):
                    raise
                errors.append(e.as_standard_error())
        if action == "archive":
            return Response(status_code=204)
        return _batch_response(store.clock, started, results, errors, 201 if action == "create" else 200)

    @app.get("/crm/v3/properties/{object_type}/{property_name}")
    async def get_property(request: Request, object_type: str, property_name: str) -> JSONResponse:
        pdef = store.get_property(object_type, property_name, archived=_bool_param(request, "archived"))
        return JSONResponse(store.property_json(pdef))

    @app.patch("/crm/v3/properties/{object_type}/{property_name}")
    async def update_property(request: Request, object_type: str, property_name: str) -> JSONResponse:
        pdef = store.update_property(object_type, property_name, await _json_body(request))
        return JSONResponse(store.property_json(pdef))

    @app.delete("/crm/v3/properties/{object_type}/{property_name}")
    async def archive_property(object_type: str, property_name: str) -> Response:
        store.archive_property(object_type, property_name)
        return Response(status_code=204)

    # pipelines

    def pipelines_of(object_type: str) -> dict[str, Any]:
        obj = resolve_object_type(object_type)
        if obj is None or obj.name not in store.pipelines:
            raise validation(f"Unable to infer pipeline object type from: {object_type}")
        return store.pipelines[obj.name]

    def pipeline(object_type: str, pipeline_id: str) -> Any:
        p = pipelines_of(object_type).get(pipeline_id)
        if p is None:
            raise not_found(f"Unable to find pipeline {pipeline_id}")
        return p

    @app.get("/crm/v3/pipelines/{object_type}")
    async def list_pipelines(object_type: str) -> JSONResponse:
        return JSONResponse({"results": [p.to_json() for p in pipelines_of(object_type).values()]})

    @app.get("/crm/v3/pipelines/{object_type}/{pipeline_id}")
    async def get_pipeline(object_type: str, pipeline_id: str) -> JSONResponse:
        return JSONResponse(pipeline(object_type, pipeline_id).to_json())

    @app.get("/crm/v3/pipelines/{object_type}/{pipeline_id}/stages")
    async def list_stages(object_type: str, pipeline_id: str) -> JSONResponse:
        p = pipeline(object_type, pipeline_id)
        return JSONResponse({"results": [p.stage_json(s) for s in p.stages]})

    @app.get("/crm/v3/pipelines/{object_type}/{pipeline_id}/stages/{stage_id}")
    async def get_stage(object_type: str, pipeline_id: str, stage_id: str) -> JSONResponse:
        p = pipeline(object_type, pipeline_id)
        s = p.stage(stage_id)
        if s is None:
            raise not_found(f"Unable to find stage {stage_id} in pipeline {pipeline_id}")
        return JSONResponse(p.stage_json(s))

    # owners

    async def list_owners(request: Request) -> JSONResponse:
        email = request.query_params.get("email")
        archived = _bool_param(request, "archived")
        owners = [o for o in store.owners.values()
                  if o["archived"] == archived and (not email or o["email"].lower() == email.lower())]
        limit = min(max(_int_param(request, "limit", 100), 1), 500)
        start = decode_cursor(request.query_params["after"]) if request.query_params.get("after") else 0
        body: dict[str, Any] = {"results": owners[start: start + limit]}
        if start + limit < len(owners):
            nxt = encode_cursor(start + limit)
            body["paging"] = {"next": {"after": nxt, "link": str(request.url.include_query_params(after=nxt))}}
        return JSONResponse(body)

    app.add_api_route("/crm/v3/owners", list_owners, methods=["GET"])
    app.add_api_route("/crm/v3/owners/", list_owners, methods=["GET"])

    @app.get("/crm/v3/owners/{owner_id}")
    async def get_owner(owner_id: str) -> JSONResponse:
        owner = store.owners.get(owner_id)
        if owner is None:
            raise not_found(f"Owner {owner_id} not found")
        return JSONResponse(owner)


# --------------------------------------------------------------------------------------------------
# token info
# --------------------------------------------------------------------------------------------------


def all_scopes() -> list[str]:
    """Every scope the sandbox knows (what a token with ``scopes=None`` is granted)."""
    out = {"crm.objects.owners.read", "e-commerce"}
    for obj in OBJECT_TYPES:
        for kind in ("objects", "schemas"):
            out |= {f"crm.{kind}.{obj}.read", f"crm.{kind}.{obj}.write"}
    return sorted(out)


def _token_info_route(app: FastAPI, config: HubSpotSandboxConfig) -> None:
    @app.post(TOKEN_INFO_PATH)
    async def access_token_info(request: Request) -> JSONResponse:
        """A private app's token metadata (``{"tokenKey": ...}`` → ``userId``, ``hubId``, ``appId``,
        ``scopes``), as HubSpot documents it for private apps."""
        body = await _json_body(request)
        key = body.get("tokenKey") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise validation("tokenKey is required")
        if key != config.token:
            return JSONResponse(error_body(401, "The access token is invalid or expired.", "INVALID_AUTHENTICATION",
                                           sub_category="INVALID_OAUTH_TOKEN"), status_code=401)
        scopes = sorted(config.scopes) if config.scopes is not None else all_scopes()
        return JSONResponse({"userId": 1, "hubId": config.portal_id, "appId": 1000001, "scopes": scopes})


# --------------------------------------------------------------------------------------------------
# sandbox admin (no auth, no limits, no faults)
# --------------------------------------------------------------------------------------------------


def _admin_routes(app: FastAPI, store: HubSpotStore, limits: RateLimits) -> None:
    @app.get("/_sandbox/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "sandbox": "hubspot", "time": time.time(),
                "counts": {name: sum(1 for r in store.records[name].values() if not r.archived) for name in OBJECT_TYPES}}

    @app.get("/_sandbox/events")
    async def events(request: Request) -> dict[str, Any]:
        since = _int_param(request, "since", 0)
        return {"results": [e for e in store.events if e["eventId"] > since]}

    @app.post("/_sandbox/webhooks/deliver")
    async def deliver_webhooks(request: Request) -> JSONResponse:
        """Deliver logged events (``eventId > since``, optionally filtered by ``subscriptionTypes``) to
        ``targetUrl`` signed with ``clientSecret``; ``attemptNumber`` > 0 simulates a redelivery."""
        import anyio

        from .webhooks import deliver

        body = await _json_body(request)
        if not isinstance(body, dict) or not body.get("targetUrl") or not body.get("clientSecret"):
            raise validation("targetUrl and clientSecret are required")
        since = int(body.get("since", 0))
        types = set(body.get("subscriptionTypes") or [])
        events = [e for e in store.events if e["eventId"] > since and (not types or e["subscriptionType"] in types)]
        if not events:
            return JSONResponse({"delivered": 0, "lastEventId": since})
        resp = await anyio.to_thread.run_sync(lambda: deliver(
            events, body["targetUrl"], body["clientSecret"], timestamp_ms=store.clock.now_ms(),
            app_id=int(body.get("appId", 54321)), attempt_number=int(body.get("attemptNumber", 0))))
        return JSONResponse({"delivered": len(events), "lastEventId": events[-1]["eventId"],
                             "receiverStatus": resp.status_code})

    @app.post("/_sandbox/rate-limits/reset")
    async def reset_limits() -> Response:
        limits.reset()
        return Response(status_code=204)
