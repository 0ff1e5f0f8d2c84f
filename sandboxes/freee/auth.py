"""OAuth2 of the sandbox: freee's ``/public_api/authorize`` and ``/public_api/token``.

Behaviour modelled on freee (``freee-and-moneyforward-api.md`` §1.2):

* access tokens live ``access_token_ttl_s`` (6 h); afterwards every API call answers 401
  ``expired_access_token``;
* refresh tokens live 90 days and are **single-use**: each refresh returns a new access token *and* a
  new refresh token; presenting a used refresh token again is a 401 ``invalid_grant`` (the classic
  "a retry refreshed twice" failure);
* the previous access token stays valid until it expires.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

from renkei.sandboxes.common import Clock

from .config import FreeeSandboxConfig
from .errors import oauth_error, unauthorized

__all__ = ["TokenStore"]

_SCOPE = "read write"
_CODE_TTL_MS = 10 * 60 * 1000


@dataclass
class _Grant:
    expires_at_ms: int
    used: bool = False


class TokenStore:
    """Thread-safe registry of the sandbox's authorization codes, refresh and access tokens."""

    def __init__(self, config: FreeeSandboxConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._refresh: dict[str, _Grant] = {}
        self._access: dict[str, int] = {}  # token -> expires_at_ms
        self._codes: dict[str, _Grant] = {}
        self.refresh_count = 0
        self.initial_refresh_token = self.issue_refresh_token(config.refresh_token)

    # -- issuing ---------------------------------------------------------------------------------

    def issue_refresh_token(self, token: str | None = None) -> str:
        """Register a fresh refresh token (``token`` or a random one) and return it."""
        value = token or f"sbx-rt-{secrets.token_urlsafe(24)}"
        with self._lock:
            self._refresh[value] = _Grant(self._clock.now_ms() + self._config.refresh_token_ttl_s * 1000)
        return value

    def issue_access_token(self) -> str:
        """A valid access token without going through the token endpoint (tests, admin)."""
        value = f"sbx-at-{secrets.token_urlsafe(24)}"
        with self._lock:
            self._access[value] = self._clock.now_ms() + self._config.access_token_ttl_s * 1000
        return value

    def issue_code(self) -> str:
        value = f"sbx-code-{secrets.token_urlsafe(12)}"
        with self._lock:
            self._codes[value] = _Grant(self._clock.now_ms() + _CODE_TTL_MS)
        return value

    def _token_response(self) -> dict[str, object]:
        now = self._clock.now_ms()
        access = f"sbx-at-{secrets.token_urlsafe(24)}"
        refresh = f"sbx-rt-{secrets.token_urlsafe(24)}"
        self._access[access] = now + self._config.access_token_ttl_s * 1000
        self._refresh[refresh] = _Grant(now + self._config.refresh_token_ttl_s * 1000)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self._config.access_token_ttl_s,
            "refresh_token": refresh,
            "scope": _SCOPE,
            "created_at": now // 1000,
            "company_id": self._config.company_id,
        }

    # -- token endpoint ----------------------------------------------------------------------------

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        if client_id != self._config.client_id or client_secret != self._config.client_secret:
            raise oauth_error(401, "invalid_client", "Client authentication failed.")

    def grant(self, form: dict[str, str]) -> dict[str, object]:
        """Handle one token request (``application/x-www-form-urlencoded`` fields)."""
        grant_type = form.get("grant_type")
        if grant_type not in ("refresh_token", "authorization_code"):
            raise oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported.")
        self.check_client(form.get("client_id"), form.get("client_secret"))
        key = "refresh_token" if grant_type == "refresh_token" else "code"
        presented = form.get(key)
        if not presented:
            raise oauth_error(400, "invalid_request", f"{key} is required.")
        registry = self._refresh if grant_type == "refresh_token" else self._codes
        with self._lock:
            found = registry.get(presented)
            if found is None:
                raise oauth_error(401, "invalid_grant", "The provided authorization grant is invalid.")
            if found.used:
                raise oauth_error(
                    401,
                    "invalid_grant",
                    "The provided authorization grant has already been used (refresh tokens are single-use).",
                )
            if self._clock.now_ms() >= found.expires_at_ms:
                raise oauth_error(401, "invalid_grant", "The provided authorization grant has expired.")
            found.used = True
            if grant_type == "refresh_token":
                self.refresh_count += 1
            return self._token_response()

    # -- API calls ---------------------------------------------------------------------------------

    def check_bearer(self, authorization: str | None) -> None:
        """Raise the 401 freee gives for a missing, unknown or expired access token."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise unauthorized("ログインをして下さい", "invalid_access_token")
        token = authorization[7:].strip()
        with self._lock:
            expires_at = self._access.get(token)
        if expires_at is None:
            raise unauthorized("ログインをして下さい", "invalid_access_token")
        if self._clock.now_ms() >= expires_at:
            raise unauthorized("アクセスする権限がありません", "expired_access_token")
