"""freee's error bodies, as the official OpenAPI files define them.

| API | Status | Body (media type) |
|---|---|---|
| 会計 | 400 / 404 / 500 / 503 | ``{"status_code", "errors": [{"type": status|validation|error, "messages": [..]}]}`` |
| 会計 | 401 / 403 | ``{"message", "messages"}`` (+ ``code`` from freee's 40x checkpoint page) |
| 請求書 | 400 / 403 / 404 / 500 | ``{"status_code", "errors": [{"type", "messages"}]}`` (problem+json) |
| 請求書 | 401 | ``{"message", "messages"}`` |
| both | 429 | ``{"status_code": 429, "meta": {limit, period, remaining, reset}, "errors": [..]}`` — valid for
  会計's ``tooManyRequestsError`` and for the shape freee請求書 documents |
| token | 400 / 401 | RFC 6749 ``{"error", "error_description"}`` |
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = [
    "Api",
    "FreeeError",
    "bad_request",
    "fault_body",
    "forbidden",
    "not_found",
    "oauth_error",
    "too_many_requests",
    "unauthorized",
]

Api = Literal["accounting", "iv"]

PROBLEM_JSON = "application/problem+json"

BAD_REQUEST_STATUS_MESSAGE = "不正なリクエストです。"
NOT_FOUND_STATUS_MESSAGE = "リソースが見つかりません。"


class FreeeError(Exception):
    """An error response: raised anywhere in a handler, rendered by the app's exception handler."""

    def __init__(
        self,
        status: int,
        body: dict[str, Any],
        *,
        media_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body
        self.media_type = media_type
        self.headers = dict(headers or {})


def bad_request(api: Api, *messages: str) -> FreeeError:
    """400 with one validation message per problem."""
    msgs = list(messages) or [BAD_REQUEST_STATUS_MESSAGE]
    if api == "iv":
        return FreeeError(
            400, {"status_code": 400, "errors": [{"type": "bad_request", "messages": msgs}]}, media_type=PROBLEM_JSON
        )
    return FreeeError(
        400,
        {
            "status_code": 400,
            "errors": [
                {"type": "status", "messages": [BAD_REQUEST_STATUS_MESSAGE]},
                {"type": "validation", "messages": msgs},
            ],
        },
    )


def not_found(api: Api, message: str) -> FreeeError:
    if api == "iv":
        return FreeeError(
            404, {"status_code": 404, "errors": [{"type": "not_found", "messages": [message]}]}, media_type=PROBLEM_JSON
        )
    return FreeeError(
        404,
        {
            "status_code": 404,
            "errors": [
                {"type": "status", "messages": [NOT_FOUND_STATUS_MESSAGE]},
                {"type": "validation", "messages": [message]},
            ],
        },
    )


def unauthorized(message: str, code: str) -> FreeeError:
    """401 (both APIs share ``unauthorizedError``); ``code`` as listed on freee's 40x checkpoint page."""
    return FreeeError(
        401,
        {"message": message, "messages": message, "code": code},
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{code}"'},
    )


def forbidden(api: Api, message: str, headers: dict[str, str] | None = None) -> FreeeError:
    if api == "iv":
        return FreeeError(
            403,
            {"status_code": 403, "errors": [{"type": "forbidden", "messages": [message]}]},
            media_type=PROBLEM_JSON,
            headers=headers,
        )
    return FreeeError(403, {"message": message, "messages": message}, headers=headers)


def too_many_requests(
    message: str, *, limit: int, period_s: int, reset_iso: str, headers: dict[str, str] | None = None
) -> FreeeError:
    return FreeeError(
        429,
        {
            "status_code": 429,
            "meta": {"limit": limit, "period": period_s, "remaining": 0, "reset": reset_iso},
            "errors": [{"type": "status", "messages": [message]}],
        },
        headers=headers,
    )


def oauth_error(status: int, error: str, description: str) -> FreeeError:
    """RFC 6749 §5.2 token-endpoint error."""
    return FreeeError(status, {"error": error, "error_description": description}, headers={"Cache-Control": "no-store"})


def fault_body(status: int, message: str) -> dict[str, Any]:
    """Body of a fault injected by :func:`sandboxes.common.add_faults` (the path is not known there).

    The 429 variant satisfies both 会計's ``tooManyRequestsError`` and 請求書's documented shape; the 5xx
    variant is 会計's ``internalServerError`` / ``serviceUnavailableError`` and 請求書's error shape.
    """
    body: dict[str, Any] = {"status_code": status, "errors": [{"type": "status", "messages": [message]}]}
    if status == 429:
        body["meta"] = {"limit": 0, "period": 1, "remaining": 0, "reset": ""}
    return body
