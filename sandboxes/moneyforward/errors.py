"""Error answers of the sandbox.

The v3 OpenAPI document declares only status lines (400, 401, 402, 404, 422, 429) and no error schema;
integrators model the body as ``{"code", "message", "errors": {field: [messages]}}``, which is what the
sandbox sends (a client must treat it as opaque text plus status). The authorization server answers
RFC 6749 bodies (``{"error", "error_description"}``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MFError", "bad_request", "fault_body", "forbidden", "not_found", "oauth_error", "too_many_requests",
           "unauthorized"]


class MFError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def bad_request(message: str, errors: dict[str, list[str]] | None = None, *, status: int = 400,
                code: str = "bad_request") -> MFError:
    body: dict[str, Any] = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return MFError(status, body)


def not_found(message: str = "Not Found") -> MFError:
    return MFError(404, {"code": "not_found", "message": message})


def unauthorized(message: str = "The access token is invalid") -> MFError:
    return MFError(401, {"code": "unauthorized", "message": message},
                   {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def forbidden(message: str) -> MFError:
    return MFError(403, {"code": "forbidden", "message": message},
                   {"WWW-Authenticate": 'Bearer error="insufficient_scope"'})


def too_many_requests(message: str, retry_after_s: float) -> MFError:
    wait = max(1, int(retry_after_s + 0.999))
    return MFError(429, {"code": "too_many_requests", "message": message}, {"Retry-After": str(wait)})


def oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> MFError:
    return MFError(status, {"error": error, "error_description": description}, headers)


def fault_body(status: int, message: str) -> dict[str, Any]:
    return {"code": "too_many_requests" if status == 429 else "internal_server_error", "message": message}
