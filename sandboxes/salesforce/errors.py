"""Salesforce REST error bodies: a JSON array of ``{"message", "errorCode", "fields"?}``."""

from __future__ import annotations

from typing import Any


class SFError(Exception):
    """Raised by the store / routes; rendered as Salesforce's error array with ``status``."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}
        self.errors = [self.entry()]

    def entry(self) -> dict[str, Any]:
        e: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            e["fields"] = self.fields
        return e

    def record_error(self) -> dict[str, Any]:
        """The per-record form used in sObject Collections results (``statusCode``, not ``errorCode``)."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields or []}


def not_found() -> SFError:
    return SFError(404, "NOT_FOUND", "The requested resource does not exist")


def fault_body(status: int, message: str) -> list[dict[str, Any]]:
    """Body of an injected fault (sandboxes.common.add_faults)."""
    if status == 429:  # Salesforce has no 429; an injected one still looks like its other errors
        return [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    if status == 503:
        return [{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}]
    return [{"message": message, "errorCode": "UNKNOWN_EXCEPTION"}]
