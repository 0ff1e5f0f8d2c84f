"""The Money Forward クラウド請求書 sandbox: one FastAPI app serving the invoice API (``/api/v3``) and the
authorization server (``/authorize``, ``/token``) on one port, so one URL is both
``RENKEI_MONEYFORWARD_AUTH_URL`` and (with ``/api/v3``) ``RENKEI_MONEYFORWARD_BASE_URL``.

::

    app = create_app(MoneyForwardSandboxConfig(seed="demo", numbering="manual"))
    app.state.store      # MoneyForwardStore: inspect or bulk-load state
    app.state.auth       # TokenRegistry (issue/inspect tokens)
    app.state.initial_refresh_token
    app.state.faults     # FaultInjector (sandboxes.common.add_faults)
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from renkei.sandboxes.common import Clock, SlidingWindowLimiter, add_faults

from .auth import READ, WRITE, TokenRegistry
from .config import MoneyForwardSandboxConfig
from .errors import MFError, bad_request, fault_body, oauth_error, too_many_requests
from .seed import seed_store
from .store import MoneyForwardStore

__all__ = ["ADMIN_PREFIX", "API_PREFIX", "create_app"]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v3"
ADMIN_PREFIX = "/_sandbox"


class _JSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _paging(request: Request) -> tuple[int, int]:
    errors: dict[str, list[str]] = {}
    values = {}
    for name, default, high in (("page", 1, None), ("per_page", 100, 100)):
        raw = request.query_params.get(name)
        try:
            v = default if raw in (None, "") else int(raw)
        except ValueError:
            errors[name] = ["は整数で入力してください"]
            continue
        if v < 1 or (high is not None and v > high):
            errors[name] = [f"は1以上{'' if high is None else f'{high}以下'}で入力してください"]
        values[name] = v
    if errors:
        raise bad_request("入力内容に誤りがあります。", errors)
    return values["page"], values["per_page"]


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise bad_request("リクエストボディのJSONが不正です。") from None


def create_app(config: MoneyForwardSandboxConfig | None = None) -> FastAPI:
    """Build a fresh sandbox (its own state, tokens, limits and fault RNG)."""
    config = config or MoneyForwardSandboxConfig()
    clock = config.clock or Clock()
    store = MoneyForwardStore(config, clock)
    seed_store(store)
    auth = TokenRegistry(config, clock)
    api_limiter = SlidingWindowLimiter(config.api_limit_per_minute, 60, clock=clock)
    billing_write_limiter = SlidingWindowLimiter(config.billing_writes_per_s, 1, clock=clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if config.print_refresh_token:
            print(f"Money Forward sandbox: client_id={config.client_id} "  # noqa: T201 - the operator needs it
                  f"refresh_token={auth.initial_refresh_token}", flush=True)
        yield

    app = FastAPI(title="Money Forward クラウド請求書 sandbox (API v3)", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.config = config
    app.state.clock = clock
    app.state.store = store
    app.state.auth = auth
    app.state.initial_refresh_token = auth.initial_refresh_token
    app.state.limits = (api_limiter, billing_write_limiter)

    @app.exception_handler(MFError)
    async def mf_error(request: Request, exc: MFError) -> Response:
        return _JSON(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _JSON({"code": "not_found", "message": "Not Found"}, status_code=404)
        return _JSON({"code": "method_not_allowed", "message": "Method Not Allowed"}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:  # pragma: no cover - bug path
        log.exception("moneyforward sandbox: unhandled error on %s %s", request.method, request.url.path)
        return _JSON({"code": "internal_server_error", "message": "Internal Server Error"}, status_code=500)

    def guard(request: Request, *, write: bool = False, listing: bool = False, billing_write: bool = False) -> None:
        store.public_url = str(request.base_url).rstrip("/")
        auth.check(request.headers.get("authorization"), write=write, listing=listing)
        ok, _, retry = api_limiter.try_acquire("api")
        if not ok:
            raise too_many_requests("一定頻度以上のアクセスを検知したため、アクセスを制限しています。", retry)
        if billing_write:
            ok, _, retry = billing_write_limiter.try_acquire("billing")
            if not ok:
                raise too_many_requests("一定頻度以上のアクセスを検知したため、アクセスを制限しています。", retry)

    # -- OAuth -------------------------------------------------------------------------------------
    oauth = APIRouter()

    @oauth.get("/authorize")
    async def authorize(request: Request) -> Response:
        """Authorization-code step without a login page: consent is implied, redirect back with a code."""
        p = request.query_params
        if p.get("client_id") != config.client_id:
            raise oauth_error(400, "invalid_client", "Unknown client_id.")
        if p.get("response_type", "code") != "code":
            raise oauth_error(400, "unsupported_response_type", "Only response_type=code is supported.")
        scope = p.get("scope") or f"{READ} {WRITE}"
        unknown = set(scope.split()) - {READ, WRITE}
        if unknown:
            raise oauth_error(400, "invalid_scope", f"Unknown scope: {' '.join(sorted(unknown))}")
        code = auth.issue_code(scope, p.get("redirect_uri"), p.get("code_challenge"), p.get("code_challenge_method"))
        redirect_uri = p.get("redirect_uri")
        if not redirect_uri:
            return HTMLResponse(f"<html><body><p>認可コード</p><code id='code'>{code}</code></body></html>")
        query = {"code": code} | ({"state": p["state"]} if "state" in p else {})
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}{urlencode(query)}", status_code=302)

    @oauth.post("/token")
    async def token(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise oauth_error(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.")
        form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        header = request.headers.get("authorization") or ""
        if header.lower().startswith("basic "):  # client_secret_basic
            try:
                cid, _, secret = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                raise oauth_error(401, "invalid_client", "Client authentication failed.") from None
            form["client_id"], form["client_secret"] = cid, secret
        return _JSON(auth.grant(form), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # -- API ---------------------------------------------------------------------------------------
    api = APIRouter(prefix=API_PREFIX)

    @api.get("/office")
    async def get_office(request: Request) -> Response:
        guard(request)
        return _JSON(dict(store.office))

    @api.put("/office")
    async def put_office(request: Request) -> Response:
        guard(request, write=True)
        return _JSON(store.update_office(await _body(request)))

    @api.put("/office/registration_code")
    async def put_registration_code(request: Request) -> Response:
        guard(request, write=True)
        return _JSON(store.set_registration_code(await _body(request)))

    @api.delete("/office/registration_code")
    async def delete_registration_code(request: Request) -> Response:
        guard(request, write=True)
        store.delete_registration_code()
        return Response(status_code=204)

    # partners
    @api.get("/partners")
    async def list_partners(request: Request) -> Response:
        guard(request, listing=True)
        page, per_page = _paging(request)
        return _JSON(store.list_partners(dict(request.query_params), page, per_page))

    @api.post("/partners")
    async def post_partner(request: Request) -> Response:
        guard(request, write=True)
        return _JSON(store.create_partner(await _body(request)), status_code=201)

    @api.get("/partners/{partner_id}")
    async def get_partner(request: Request, partner_id: str) -> Response:
        guard(request)
        return _JSON(store.get_partner(partner_id))

    @api.put("/partners/{partner_id}")
    async def put_partner(request: Request, partner_id: str) -> Response:
        guard(request, write=True)
        return _JSON(store.update_partner(partner_id, await _body(request)))

    @api.delete("/partners/{partner_id}")
    async def delete_partner(request: Request, partner_id: str) -> Response:
        guard(request, write=True)
        store.delete_partner(partner_id)
        return Response(status_code=204)

    @api.get("/partners/{partner_id}/departments")
    async def list_departments(request: Request, partner_id: str) -> Response:
        guard(request, listing=True)
        page, per_page = _paging(request)
        return _JSON(store.list_departments(partner_id, page, per_page))

    @api.post("/partners/{partner_id}/departments")
    async def post_department(request: Request, partner_id: str) -> Response:
        guard(request, write=True)
        return _JSON(store.create_department(partner_id, await _body(request)), status_code=201)

    @api.get("/partners/{partner_id}/departments/{department_id}")
    async def get_department(request: Request, partner_id: str, department_id: str) -> Response:
        guard(request)
        return _JSON(store.get_department(partner_id, department_id))

    @api.put("/partners/{partner_id}/departments/{department_id}")
    async def put_department(request: Request, partner_id: str, department_id: str) -> Response:
        guard(request, write=True)
        return _JSON(store.update_department(partner_id, department_id, await _body(request)))

    @api.delete("/partners/{partner_id}/departments/{department_id}")
    async def delete_department(request: Request, partner_id: str, department_id: str) -> Response:
        guard(request, write=True)
        store.delete_department(partner_id, department_id)
        return Response(status_code=204)

    # items
    @api.get("/items")
    async def list_items(request: Request) -> Response:
        guard(request, listing=True)
        page, per_page = _paging(request)
        return _JSON(store.list_items(dict(request.query_params), page, per_page))

    @api.post("/items")
    async def post_item(request: Request) -> Response:
        guard(request, write=True)
        return _JSON(store.create_item(await _body(request)), status_code=201)

    @api.get("/items/{item_id}")
    async def get_item(request: Request, item_id: str) -> Response:
        guard(request)
        return _JSON(store.get_item(item_id))

    @api.put("/items/{item_id}")
    async def put_item(request: Request, item_id: str) -> Response:
        guard(request, write=True)
        return _JSON(store.update_item(item_id, await _body(request)))

    @api.delete("/items/{item_id}")
    async def delete_item(request: Request, item_id: str) -> Response:
        guard(request, write=True)
        store.delete_item(item_id)
        return Response(status_code=204)

    # billings
    @api.post("/invoice_template_billings")
    async def post_billing(request: Request) -> Response:
        guard(request, write=True, billing_write=True)
        return _JSON(store.create_billing(await _body(request)), status_code=201)

    @api.get("/billings")
    async def list_billings(request: Request) -> Response:
        guard(request, listing=True)
        page, per_page = _paging(request)
        return _JSON(store.list_billings(dict(request.query_params), page, per_page))

    @api.get("/billings/{billing_id}.pdf")
    async def billing_pdf(request: Request, billing_id: str) -> Response:
        guard(request)
        b = store.get_billing(billing_id)
        text = f"%PDF-1.4\n% sandbox billing {b['billing_number']} total {b['total_price']}\n%%EOF\n"
        return Response(text.encode("utf-8"), media_type="application/pdf")

    @api.get("/billings/{billing_id}")
    async def get_billing(request: Request, billing_id: str) -> Response:
        guard(request)
        return _JSON(store.get_billing(billing_id))

    @api.put("/billings/{billing_id}")
    async def put_billing(request: Request, billing_id: str) -> Response:
        guard(request, write=True, billing_write=True)
        return _JSON(store.update_billing(billing_id, await _body(request)))

    @api.delete("/billings/{billing_id}")
    async def delete_billing(request: Request, billing_id: str) -> Response:
        guard(request, write=True, billing_write=True)
        store.delete_billing(billing_id)
        return Response(status_code=204)

    @api.get("/billings/{billing_id}/items")
    async def list_billing_items(request: Request, billing_id: str) -> Response:
        guard(request, listing=True)
        page, per_page = _paging(request)
        return _JSON(store.list_billing_items(billing_id, page, per_page))

    @api.post("/billings/{billing_id}/items")
    async def post_billing_item(request: Request, billing_id: str) -> Response:
        guard(request, write=True, billing_write=True)
        return _JSON(store.add_billing_item(billing_id, await _body(request)), status_code=201)

    @api.get("/billings/{billing_id}/items/{item_id}")
    async def get_billing_item(request: Request, billing_id: str, item_id: str) -> Response:
        guard(request)
        return _JSON(store.get_billing_item(billing_id, item_id))

    @api.delete("/billings/{billing_id}/items/{item_id}")
    async def delete_billing_item(request: Request, billing_id: str, item_id: str) -> Response:
        guard(request, write=True, billing_write=True)
        store.delete_billing_item(billing_id, item_id)
        return Response(status_code=204)

    @api.put("/billings/{billing_id}/payment_status")
    async def put_payment_status(request: Request, billing_id: str) -> Response:
        guard(request, write=True, billing_write=True)
        return _JSON(store.set_payment_status(billing_id, await _body(request)))

    @api.get("/sent_histories")
    async def sent_histories(request: Request) -> Response:
        """Read-only in v3 (no e-mail-sending endpoint); the sandbox sends nothing, so the list is empty."""
        guard(request, listing=True)
        page, per_page = _paging(request)
        return _JSON({"data": [], "pagination": {"total_count": 0, "total_pages": 0, "per_page": per_page,
                                                 "current_page": page}})

    # -- sandbox admin (no auth, never faulted) ------------------------------------------------------
    admin = APIRouter(prefix=ADMIN_PREFIX)

    @admin.post("/tokens/access")
    async def admin_access(request: Request) -> Response:
        body = await _body(request)
        return _JSON({"access_token": auth.issue_access_token(body.get("scope") or f"{READ} {WRITE}"),
                      "expires_in": config.access_token_ttl_s})

    @admin.post("/tokens/refresh")
    async def admin_refresh(request: Request) -> Response:
        body = await _body(request)
        return _JSON({"refresh_token": auth.issue_refresh_token(body.get("refresh_token"))})

    @admin.post("/billings/{billing_id}/lock")
    async def admin_lock(request: Request, billing_id: str) -> Response:
        body = await _body(request)
        return _JSON(store.set_locked(billing_id, bool(body.get("locked", True))))

    @admin.post("/billings/{billing_id}/reconcile")
    async def admin_reconcile(request: Request, billing_id: str) -> Response:
        """What a match of the bank line to the 入金予定仕訳 in クラウド会計 does: the billing becomes 入金済み."""
        return _JSON(store.set_payment_status(billing_id, {"payment_status": "2"}))

    @admin.post("/limits/reset")
    async def admin_reset(request: Request) -> Response:
        api_limiter.reset()
        billing_write_limiter.reset()
        auth.token_limiter.reset()
        return _JSON({"ok": True})

    app.include_router(oauth)
    app.include_router(api)
    app.include_router(admin)
    add_faults(app, config.faults, fault_body, exempt_paths=(ADMIN_PREFIX,))
    return app

