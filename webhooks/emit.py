"""Where the receiver's Prefect events go.

``RestEmitter`` (default): ``POST {PREFECT_API_URL}/events`` with httpx — the server's own ingest endpoint,
no Prefect import (importing Prefect costs ~3.4 s; the receiver must not pay it). Basic auth from
``PREFECT_API_AUTH_STRING``, a bearer key from ``PREFECT_API_KEY`` (Prefect Cloud).
``PrefectEmitter``: ``prefect.events.emit_event``, imported on first use (for a Prefect Cloud workspace or
a profile-only configuration). ``ListEmitter``: keeps the events in memory (tests, the latency benchmark's
in-process dispatcher).
"""

from __future__ import annotations

import base64
import os
import threading
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Protocol


def prefect_event(event: str, resource: dict[str, str], payload: dict[str, Any],
                  occurred: datetime | None = None, related: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A Prefect event as the REST API takes it (labels are strings)."""
    return {"id": str(uuid.uuid4()), "occurred": (occurred or datetime.now(timezone.utc)).isoformat(),
            "event": event, "resource": {k: str(v) for k, v in resource.items()},
            "related": related or [], "payload": payload}


class Emitter(Protocol):
    def emit(self, events: list[dict[str, Any]]) -> None: ...


class RestEmitter:
    def __init__(self, api_url: str, *, auth_string: str | None = None, api_key: str | None = None,
                 timeout_s: float = 10.0):
        import httpx

        headers = {}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        elif auth_string:
            headers["Authorization"] = "Basic " + base64.b64encode(auth_string.encode()).decode()
        self.url = api_url.rstrip("/") + "/events"
        self.client = httpx.Client(timeout=timeout_s, headers=headers)

    def emit(self, events: list[dict[str, Any]]) -> None:
        if events:
            self.client.post(self.url, json=events).raise_for_status()


class PrefectEmitter:
    def emit(self, events: list[dict[str, Any]]) -> None:
        from prefect.events import emit_event  # lazy: only this emitter pays Prefect's import

        for e in events:
            emit_event(event=e["event"], resource=e["resource"], payload=e["payload"], related=e["related"] or None,
                       id=uuid.UUID(e["id"]))


class ListEmitter:
    """In memory; ``on_emit`` (optional) sees each emitted batch (the benchmark's dispatcher)."""

    def __init__(self, on_emit: Callable[[list[dict[str, Any]]], None] | None = None):
        self.events: list[dict[str, Any]] = []
        self.on_emit = on_emit
        self.lock = threading.Lock()

    def emit(self, events: list[dict[str, Any]]) -> None:
        with self.lock:
            self.events.extend(events)
        if self.on_emit is not None:
            self.on_emit(events)


def default_emitter() -> Emitter:
    """REST when ``PREFECT_API_URL`` is in the environment; else the Prefect client (its profile)."""
    kind = os.environ.get("RENKEI_WEBHOOK_EMITTER", "").strip().lower()
    api_url = os.environ.get("PREFECT_API_URL")
    if kind == "prefect" or (not api_url and kind != "rest"):
        return PrefectEmitter()
    if not api_url:
        raise RuntimeError("RENKEI_WEBHOOK_EMITTER=rest needs PREFECT_API_URL")
    return RestEmitter(api_url, auth_string=os.environ.get("PREFECT_API_AUTH_STRING"),
                       api_key=os.environ.get("PREFECT_API_KEY"))
