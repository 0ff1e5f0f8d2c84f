"""freee's OAuth2 endpoints (``accounts.secure.freee.co.jp/public_api/...``) and the sandbox admin API."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .context import FreeeJSONResponse, state_of
from .errors import oauth_error

__all__ = ["admin_router", "auth_router"]

auth_router = APIRouter()
admin_router = APIRouter(prefix="/_sandbox")

_OOB = "urn:ietf:wg:oauth:2.0:oob"


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        client_id, _, secret = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return client_id, secret


@auth_router.post("/public_api/token")
async def token(request: Request) -> Response:
    """``grant_type=refresh_token`` (or ``authorization_code``), form-encoded, client credentials in the
    form (client_secret_post) or an HTTP Basic header."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise oauth_error(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.")
    form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
    if "client_id" not in form:
        basic_id, basic_secret = _basic_credentials(request.headers.get("authorization"))
        if basic_id is not None:
            form["client_id"], form["client_secret"] = basic_id, basic_secret or ""
    payload = state_of(request).auth.grant(form)
    return FreeeJSONResponse(payload, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@auth_router.get("/public_api/authorize")
async def authorize(request: Request) -> Response:
    """Authorization-code step without a login page: redirect straight back with a code."""
    state = state_of(request)
    params = request.query_params
    if params.get("client_id") != state.config.client_id:
        raise oauth_error(400, "invalid_client", "Unknown client_id.")
    if params.get("response_type", "code") != "code":
        raise oauth_error(400, "unsupported_response_type", "Only response_type=code is supported.")
    code = state.auth.issue_code()
    redirect_uri = params.get("redirect_uri") or _OOB
    if redirect_uri == _OOB:
        return HTMLResponse(f"<html><body><p>認可コード</p><code id='code'>{code}</code></body></html>")
    query = {"code": code} | ({"state": params["state"]} if "state" in params else {})
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(query)}", status_code=302)


@admin_router.post("/tokens/refresh")
async def admin_refresh_token(request: Request) -> Response:
    """Issue a new refresh token (optionally ``{"refresh_token": "<value>"}`` to choose it)."""
    body = await request.json() if (await request.body()).strip() else {}
    value = state_of(request).auth.issue_refresh_token(body.get("refresh_token"))
    return FreeeJSONResponse({"refresh_token": value})


@admin_router.post("/tokens/access")
async def admin_access_token(request: Request) -> Response:
    """Issue a valid access token directly (tests of other components that do not exercise OAuth)."""
    state = state_of(request)
    return FreeeJSONResponse(
        {"access_token": state.auth.issue_access_token(), "expires_in": state.config.access_token_ttl_s}
    )


@admin_router.post("/limits/reset")
async def admin_reset_limits(request: Request) -> Response:
    state_of(request).limits.reset()
    return FreeeJSONResponse({"ok": True})
