"""Money Forward OAuth 2.0 (authorization server ``api.biz.moneyforward.com``; ``moneyforward-invoice-api.md`` §1).

Token lifetimes are not published for v3 and whether refresh tokens rotate is unconfirmed, so the design is
the one that survives both: the refresh machinery of :class:`connectors.freee.auth.FreeeAuth` (one refresher
at a time across threads, processes and hosts; re-read under the lock; persist the new refresh token before
the new access token is used; never blindly repeat a refresh) with ``expires_in`` honoured and whatever
refresh token comes back persisted (the one held is kept when none comes back).

The token stores are freee's: :class:`FileTokenStore` (0600 file), :class:`DbTokenStore` (state store,
encrypted, row-locked; name ``moneyforward:<client id>``), :class:`MemoryTokenStore`.

One-time setup (authorization code)::

    url = authorize_url(auth_url, client_id, redirect_uri, state=...)   # open in a browser, consent
    exchange_code(token_url, client_id, secret, code, redirect_uri, store)   # seeds the store
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import httpx

from renkei.connectors.freee.auth import (
    DbTokenStore,
    FileTokenStore,
    FreeeAuth,
    FreeeAuthError,
    MemoryTokenStore,
    NoRefreshToken,
    RefreshTokenRejected,
    RefreshUncertain,
    TokenSet,
    TokenStore,
)
from renkei.connectors.http import register_secret
from renkei.connectors.moneyforward.settings import DEFAULT_SCOPE

__all__ = ["DEFAULT_AUTH_URL", "DbTokenStore", "FileTokenStore", "MemoryTokenStore", "MoneyForwardAuth",
           "MoneyForwardAuthError", "NoRefreshToken", "RefreshTokenRejected", "RefreshUncertain", "TokenSet",
           "TokenStore", "authorize_url", "exchange_code", "token_url_from"]

DEFAULT_AUTH_URL = "https://api.biz.moneyforward.com"
MoneyForwardAuthError = FreeeAuthError


def token_url_from(auth_url: str) -> str:
    """``https://api.biz.moneyforward.com`` → ``…/token`` (a full token URL is kept)."""
    u = auth_url.rstrip("/")
    return u if u.endswith("/token") else u + "/token"


class MoneyForwardAuth(FreeeAuth):
    """Hands out a valid access token for Money Forward, refreshing (and storing a rotated refresh
    token) when needed. See :class:`connectors.freee.auth.FreeeAuth` for the rules."""

    vendor = "Money Forward"
    refresh_token_setting = "RENKEI_MONEYFORWARD_REFRESH_TOKEN"
    default_expires_in_s = 3600
    refresh_token_required = False
    request_id_header = "x-request-id"

    def __repr__(self) -> str:
        return f"MoneyForwardAuth(client_id={self.client_id!r}, token_url={self.token_url!r}, store={self.store!r})"


def authorize_url(auth_url: str, client_id: str, redirect_uri: str, *, state: str, scope: str = DEFAULT_SCOPE,
                  code_challenge: str | None = None) -> str:
    """The consent URL (``/authorize``) a user with アプリ連携権限 opens once."""
    params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": scope,
              "state": state}
    if code_challenge:
        params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    base = auth_url.rstrip("/")
    base = base[: -len("/token")] if base.endswith("/token") else base
    return f"{base}/authorize?{urlencode(params)}"


def exchange_code(token_url: str, client_id: str, client_secret: str, code: str, redirect_uri: str,
                  store: TokenStore, *, code_verifier: str | None = None, http: httpx.Client | None = None) -> TokenSet:
    """Authorization code → token set, saved in ``store`` (which then no longer needs a seeded refresh token)."""
    register_secret(client_secret)
    register_secret(code)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": client_id, "client_secret": client_secret}
    if code_verifier:
        data["code_verifier"] = code_verifier
    own = http is None
    http = http or httpx.Client(timeout=30.0)
    try:
        sent_at = time.time()
        resp = http.post(token_url_from(token_url), data=data, headers={"Accept": "application/json"})
    finally:
        if own:
            http.close()
    if resp.status_code >= 400:
        try:
            err = str(resp.json().get("error", ""))[:64]
        except ValueError:
            err = ""
        raise RefreshTokenRejected(f"Money Forward refused the authorization code ({resp.status_code} {err})")
    body = resp.json()
    register_secret(body["access_token"])
    register_secret(body["refresh_token"])
    with store.locked():
        current = store.load()
        tokens = TokenSet(refresh_token=body["refresh_token"], access_token=body["access_token"],
                          expires_at=sent_at + float(body.get("expires_in") or 3600),
                          generation=(current.generation + 1) if current else 1)
        store.save(tokens)
    return tokens
