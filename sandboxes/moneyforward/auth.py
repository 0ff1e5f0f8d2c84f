"""OAuth 2.0 of the sandbox (MF's authorization server ``api.biz.moneyforward.com``: ``/authorize``,
``/token``), modelled on ``moneyforward-invoice-api.md`` §1.

* authorization code (optionally PKCE ``S256``/``plain``) → access + refresh token; client
  authentication ``client_secret_basic`` or ``client_secret_post``;
* ``refresh_token`` grant: a new access token and — with ``rotate_refresh_tokens`` — a new refresh
  token; the presented one is then spent (``invalid_grant`` if presented again);
* scopes ``mfc/invoice/data.read`` / ``mfc/invoice/data.write``; writes need ``data.write``;
* the token endpoint is rate-limited (429 + ``Retry-After``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from dataclasses import dataclass

from renkei.sandboxes.common import Clock, SlidingWindowLimiter

from .config import MoneyForwardSandboxConfig
from .errors import forbidden, oauth_error, unauthorized

__all__ = ["READ", "WRITE", "TokenRegistry"]

READ = "mfc/invoice/data.read"
WRITE = "mfc/invoice/data.write"
_CODE_TTL_MS = 10 * 60 * 1000


@dataclass
class _Grant:
    expires_at_ms: int
    scope: str
    used: bool = False
    redirect_uri: str | None = None
    challenge: str | None = None
    challenge_method: str | None = None


class TokenRegistry:
    """Thread-safe registry of codes, refresh tokens and access tokens."""

    def __init__(self, config: MoneyForwardSandboxConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._access: dict[str, _Grant] = {}
        self.refresh_count = 0
        self.token_limiter = SlidingWindowLimiter(config.token_limit_per_minute, 60, clock=clock)
        self.initial_refresh_token = self.issue_refresh_token(config.refresh_token)

    def issue_refresh_token(self, token: str | None = None, scope: str = f"{READ} {WRITE}") -> str:
        value = token or secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[value] = _Grant(self._clock.now_ms() + self._config.refresh_token_ttl_s * 1000, scope)
        return value

    def issue_access_token(self, scope: str = f"{READ} {WRITE}") -> str:
        value = secrets.token_urlsafe(32)
        with self._lock:
            self._access[value] = _Grant(self._clock.now_ms() + self._config.access_token_ttl_s * 1000, scope)
        return value

    def issue_code(self, scope: str, redirect_uri: str | None, challenge: str | None, method: str | None) -> str:
        value = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[value] = _Grant(self._clock.now_ms() + _CODE_TTL_MS, scope, redirect_uri=redirect_uri,
                                        challenge=challenge, challenge_method=method)
        return value

    # -- token endpoint ----------------------------------------------------------------------------

    def grant(self, form: dict[str, str]) -> dict[str, object]:
        ok, _, retry = self.token_limiter.try_acquire("token")
        if not ok:
            raise oauth_error(429, "too_many_requests", "Too many token requests.", {"Retry-After": str(max(1, int(retry + 1)))})
        grant_type = form.get("grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported.")
        if form.get("client_id") != self._config.client_id or form.get("client_secret") != self._config.client_secret:
            raise oauth_error(401, "invalid_client", "Client authentication failed.",
                              {"WWW-Authenticate": 'Basic realm="token"'})
        key = "code" if grant_type == "authorization_code" else "refresh_token"
        presented = form.get(key)
        if not presented:
            raise oauth_error(400, "invalid_request", f"{key} is required.")
        registry = self._codes if grant_type == "authorization_code" else self._refresh
        now = self._clock.now_ms()
        with self._lock:
            found = registry.get(presented)
            if found is None or found.used or now >= found.expires_at_ms:
                raise oauth_error(400, "invalid_grant", "The provided authorization grant is invalid, expired, "
                                                        "revoked or was issued to another client.")
            if grant_type == "authorization_code":
                if found.redirect_uri and form.get("redirect_uri") != found.redirect_uri:
                    raise oauth_error(400, "invalid_grant", "redirect_uri does not match.")
                if found.challenge and not _pkce_ok(form.get("code_verifier"), found.challenge, found.challenge_method):
                    raise oauth_error(400, "invalid_grant", "PKCE verification failed.")
                found.used = True
                refresh = None
            else:
                self.refresh_count += 1
                if self._config.rotate_refresh_tokens:
                    found.used = True
                    refresh = None
                else:
                    refresh = presented
            access = secrets.token_urlsafe(32)
            self._access[access] = _Grant(now + self._config.access_token_ttl_s * 1000, found.scope)
            if refresh is None:
                refresh = secrets.token_urlsafe(32)
                self._refresh[refresh] = _Grant(now + self._config.refresh_token_ttl_s * 1000, found.scope)
        return {"access_token": access, "token_type": "Bearer", "expires_in": self._config.access_token_ttl_s,
                "refresh_token": refresh, "scope": found.scope, "created_at": now // 1000}

    # -- API calls ---------------------------------------------------------------------------------

    def check(self, authorization: str | None, *, write: bool, listing: bool) -> None:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise unauthorized("Authorization header is missing")
        with self._lock:
            grant = self._access.get(authorization[7:].strip())
        if grant is None:
            raise unauthorized()
        if self._clock.now_ms() >= grant.expires_at_ms:
            raise unauthorized("The access token expired")
        scopes = set(grant.scope.split())
        if write and WRITE not in scopes:
            raise forbidden(f"{WRITE} scope is required")
        if not write and not scopes & {READ, WRITE}:
            raise forbidden(f"{READ} scope is required")
        if listing and WRITE not in scopes and self._config.read_only_lists_404:
            from .errors import not_found

            raise not_found()


def _pkce_ok(verifier: str | None, challenge: str, method: str | None) -> bool:
    if not verifier:
        return False
    if (method or "plain").upper() == "S256":
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        return secrets.compare_digest(digest, challenge)
    return secrets.compare_digest(verifier, challenge)
