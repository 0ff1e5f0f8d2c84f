"""Salesforce OAuth 2.0 for an unattended connector: JWT bearer or client credentials (reference §2).

The token response has no ``expires_in``: a session lasts until Salesforce says ``401 INVALID_SESSION_ID``.
:class:`SalesforceAuth` caches the access token and its ``instance_url``; :meth:`refresh` logs in again (the
HTTP layer calls it once on a 401). Tokens, the client secret and the private key are registered with
:func:`connectors.http.register_secret`, so no log line or error carries them.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any, Callable

import httpx

from renkei.connectors.http import (
    BadRequest, ConnectorError, HttpClient, HttpConfig, Unauthorized, default_error_parser, register_secret,
)

from .settings import SalesforceSettings

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_jwt(private_key_pem: str, *, client_id: str, username: str, audience: str, now: float | None = None,
             lifetime_s: int = 170) -> str:
    """RS256 assertion for the JWT bearer flow (``exp`` within Salesforce's 3 minutes)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_private_key(private_key_pem.encode("utf-8"), password=None)
    now = time.time() if now is None else now
    header = _b64url(json.dumps({"alg": "RS256"}, separators=(",", ":")).encode())
    claims = _b64url(json.dumps({"iss": client_id, "sub": username, "aud": audience, "exp": int(now) + lifetime_s},
                                separators=(",", ":")).encode())
    signing_input = f"{header}.{claims}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    return f"{header}.{claims}.{_b64url(signature)}"


class SalesforceAuth:
    """Access token + instance URL, obtained lazily and renewed on demand (thread-safe)."""

    def __init__(self, settings: SalesforceSettings, *, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time, max_attempts: int = 3):
        if not settings.client_id:
            raise ValueError("RENKEI_SALESFORCE_CLIENT_ID is not set")
        if settings.uses_jwt and not settings.username:
            raise ValueError("the JWT bearer flow needs RENKEI_SALESFORCE_USERNAME (the run-as user)")
        if not settings.uses_jwt and settings.client_secret is None:
            raise ValueError("set RENKEI_SALESFORCE_PRIVATE_KEY (JWT bearer) or RENKEI_SALESFORCE_CLIENT_SECRET "
                             "(client credentials)")
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._instance_url: str | None = None
        self.logins = 0
        if settings.client_secret is not None:
            register_secret(settings.client_secret.get_secret_value())
        pem = settings.private_key_pem()
        if pem:
            register_secret(pem.strip())
        host = (settings.login_url if settings.uses_jwt else (settings.instance_url or settings.login_url)).rstrip("/")
        self.token_url = f"{host}/services/oauth2/token"
        self._http = HttpClient(HttpConfig(base_url=host, timeout=settings.timeout, max_attempts=max_attempts,
                                           transport=transport, error_parser=default_error_parser,
                                           system="salesforce"))

    @property
    def method(self) -> str:
        return "jwt_bearer" if self.settings.uses_jwt else "client_credentials"

    def _login(self) -> None:
        s = self.settings
        if s.uses_jwt:
            form = {"grant_type": JWT_GRANT,
                    "assertion": sign_jwt(s.private_key_pem() or "", client_id=s.client_id or "",
                                          username=s.username or "", audience=s.jwt_audience(), now=self.clock())}
        else:
            form = {"grant_type": "client_credentials", "client_id": s.client_id or "",
                    "client_secret": s.client_secret.get_secret_value() if s.client_secret else ""}
        try:
            data = self._http.request_json("POST", "/services/oauth2/token", data=form, auth=False)
        except BadRequest as exc:
            detail = exc.details if isinstance(exc.details, dict) else {}
            raise Unauthorized(f"Salesforce login ({self.method}) refused: {detail.get('error') or exc.code or ''} "
                               f"{detail.get('error_description') or exc.message}".strip(), status=exc.status,
                               code=str(detail.get("error") or "")) from None
        if not isinstance(data, dict) or not data.get("access_token") or not data.get("instance_url"):
            raise ConnectorError("Salesforce token response without access_token / instance_url")
        register_secret(data["access_token"])
        self._token = data["access_token"]
        self._instance_url = str(data["instance_url"]).rstrip("/")
        self.logins += 1

    def access_token(self) -> str:
        with self._lock:
            if self._token is None:
                self._login()
            return self._token or ""

    @property
    def instance_url(self) -> str:
        with self._lock:
            if self._instance_url is None:
                self._login()
            return self._instance_url or ""

    def refresh(self) -> bool:
        """Log in again (after a 401 INVALID_SESSION_ID); True when a retry is worth it."""
        with self._lock:
            self._token = None
            self._login()
        return True

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"SalesforceAuth(method={self.method!r}, token_url={self.token_url!r})"


__all__ = ["JWT_GRANT", "SalesforceAuth", "sign_jwt"]
