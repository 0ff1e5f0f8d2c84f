"""The freee sandbox application: one FastAPI app serving freee会計 (``/api/1``), freee請求書 (``/iv``)
and freee's OAuth2 endpoints (``/public_api/token``) on a single port, so one URL can be both
``RENKEI_FREEE_BASE_URL`` and ``RENKEI_FREEE_AUTH_URL``.

::

    app = create_app(FreeeSandboxConfig(seed="demo"))
    app.state.store      # FreeeStore: inspect or bulk-load state
    app.state.auth       # TokenStore (issue/inspect tokens)
    app.state.initial_refresh_token   # the first refresh token (config.refresh_token or generated)
    app.state.limits     # ApiLimits
    app.state.faults     # FaultInjector (sandboxes.common.add_faults)
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from renkei.sandboxes.common import Clock, add_faults

from .auth import TokenStore
from .config import FreeeSandboxConfig
from .context import FreeeJSONResponse, SandboxState
from .errors import Api, FreeeError, bad_request, fault_body, not_found
from .limits import ApiLimits
from .routes_accounting import router as accounting_router
from .routes_auth import admin_router, auth_router
from .routes_iv import router as iv_router
from .seed import seed_store
from .store import FreeeStore

__all__ = ["ADMIN_PREFIX", "create_app"]

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/_sandbox"
"""Sandbox-only admin endpoints: no auth, never rate-limited or faulted."""


def _render_error(request: Request, exc: FreeeError) -> Response:
    headers = dict(getattr(request.state, "freee_headers", {}) or {}) | exc.headers
    return FreeeJSONResponse(exc.body, status_code=exc.status, headers=headers, media_type=exc.media_type)


def create_app(config: FreeeSandboxConfig | None = None) -> FastAPI:
    """Build a fresh sandbox (its own state, tokens, limits and fault RNG)."""
    config = config or FreeeSandboxConfig()
    clock = config.clock or Clock()
    store = FreeeStore(config, clock)
    seed_store(store)
    auth = TokenStore(config, clock)
    limits = ApiLimits(config, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if config.print_refresh_token:
            print(  # noqa: T201 - the operator needs it to configure the connector
                f"freee sandbox: company_id={config.company_id} client_id={config.client_id} "
                f"refresh_token={auth.initial_refresh_token}",
                flush=True,
            )
        yield

    app = FastAPI(
        title="freee sandbox (freee会計 + freee請求書)",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.sandbox = SandboxState(config=config, store=store, auth=auth, limits=limits)
    app.state.config = config
    app.state.clock = clock
    app.state.store = store
    app.state.auth = auth
    app.state.initial_refresh_token = auth.initial_refresh_token
    app.state.limits = limits

    @app.exception_handler(FreeeError)
    async def freee_error(request: Request, exc: FreeeError) -> Response:
        return _render_error(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        api: Api = "iv" if request.url.path.startswith("/iv/") else "accounting"
        if exc.status_code == 404:
            return _render_error(request, not_found(api, "リソースが見つかりません。"))
        error = bad_request(api, f"{request.method} はこのエンドポイントで利用できません。")
        error.status = exc.status_code
        error.body["status_code"] = exc.status_code
        return _render_error(request, error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:  # pragma: no cover - bug path
        log.exception("freee sandbox: unhandled error on %s %s", request.method, request.url.path)
        body = {"status_code": 500, "errors": [{"type": "status", "messages": ["エラーが発生しました。"]}]}
        return FreeeJSONResponse(body, status_code=500)

    @app.middleware("http")
    async def request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers["X-Freee-Request-ID"] = uuid.uuid4().hex
        return response

    app.include_router(auth_router)
    app.include_router(accounting_router)
    app.include_router(iv_router)
    app.include_router(admin_router)
    add_faults(app, config.faults, fault_body, exempt_paths=(ADMIN_PREFIX,))
    return app
