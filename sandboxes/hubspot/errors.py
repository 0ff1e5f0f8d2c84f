"""HubSpot error bodies (reference §8) and the exception the sandbox raises to produce them."""

from __future__ import annotations

import uuid
from typing import Any

KB_LINK = {"knowledge-base": "https://www.hubspot.com/products/service/knowledge-base"}

CATEGORY_BY_STATUS = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    414: "URI_TOO_LONG",
    429: "RATE_LIMITS",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


def correlation_id() -> str:
    return str(uuid.uuid4())


def error_body(
    status: int,
    message: str,
    category: str | None = None,
    *,
    sub_category: str | None = None,
    context: dict[str, list[str]] | None = None,
    errors: list[dict[str, Any]] | None = None,
    links: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A top-level HubSpot error body: ``status:"error"``, ``message``, ``correlationId``, ``category``,
    optional ``subCategory``, ``context``, ``errors``, ``links``."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
        "category": category or CATEGORY_BY_STATUS.get(status, "VALIDATION_ERROR"),
    }
    if sub_category:
        body["subCategory"] = sub_category
    if context:
        body["context"] = context
    if errors:
        body["errors"] = errors
    if links:
        body["links"] = links
    return body


def fault_error_body(status: int, message: str) -> dict[str, Any]:
    """Body of an injected fault (sandboxes.common.add_faults)."""
    if status == 429:
        return {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(),
            "policyName": "TEN_SECONDLY_ROLLING",
        }
    return error_body(status, message)


def rate_limit_body(policy: str) -> dict[str, Any]:
    """429 body: ``policy`` is ``TEN_SECONDLY_ROLLING``, ``SECONDLY`` (search) or ``DAILY``."""
    what = {"DAILY": "daily", "TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "SECONDLY": "secondly"}[policy]
    return {
        "status": "error",
        "message": f"You have reached your {what} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": policy,
    }


def standard_error(
    message: str,
    category: str = "VALIDATION_ERROR",
    *,
    context: dict[str, list[str]] | None = None,
    sub_category: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A per-item ``StandardError`` of a batch response (all fields the spec requires are present)."""
    err: dict[str, Any] = {
        "status": "error",
        "category": category,
        "message": message,
        "context": context or {},
        "errors": errors or [],
        "links": {},
    }
    if sub_category:
        err["subCategory"] = sub_category
    return err


class HubSpotError(Exception):
    """Raised anywhere in the sandbox; rendered as a HubSpot error response."""

    def __init__(
        self,
        status: int,
        message: str,
        category: str | None = None,
        *,
        sub_category: str | None = None,
        context: dict[str, list[str]] | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category or CATEGORY_BY_STATUS.get(status, "VALIDATION_ERROR")
        self.sub_category = sub_category
        self.context = context
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(
            self.status, self.message, self.category, sub_category=self.sub_category, context=self.context,
            errors=self.errors,
        )

    def as_standard_error(self, extra_context: dict[str, list[str]] | None = None) -> dict[str, Any]:
        ctx = dict(self.context or {})
        ctx.update(extra_context or {})
        return standard_error(self.message, self.category, context=ctx, sub_category=self.sub_category,
                              errors=self.errors)


def validation(message: str, **kw: Any) -> HubSpotError:
    return HubSpotError(400, message, "VALIDATION_ERROR", **kw)


def not_found(message: str, **kw: Any) -> HubSpotError:
    return HubSpotError(404, message, "OBJECT_NOT_FOUND", **kw)
