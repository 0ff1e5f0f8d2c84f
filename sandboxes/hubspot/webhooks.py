"""Webhook delivery from the HubSpot sandbox (reference §9, §13.25).

The store keeps a change log (:attr:`HubSpotStore.events`: creation, propertyChange, deletion, merge,
associationChange). :func:`deliver` POSTs a batch of those events to a target URL as HubSpot does — a
JSON array, signed with ``X-HubSpot-Signature-v3`` over ``method + uri + body + timestamp`` — and can
redeliver the same events with a higher ``attemptNumber`` to test duplicate handling.

Trigger it over HTTP with ``POST /_sandbox/webhooks/deliver``
(``{"targetUrl", "clientSecret", "since": <eventId>, "attemptNumber": 0, "subscriptionTypes": [...]}``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Any

import httpx

# URL-decoded before signing (reference §9, step 3); the "?" that starts the query is never encoded.
_DECODE = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(",
           "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def signing_uri(uri: str) -> str:
    """Apply HubSpot's partial URL-decoding of the request URI (only the listed escapes)."""
    out = uri
    for enc, dec in _DECODE.items():
        out = out.replace(enc, dec).replace(enc.lower(), dec)
    return out


def signature_v3(client_secret: str, method: str, uri: str, body: bytes | str, timestamp_ms: int) -> str:
    """``base64(HMAC-SHA256(secret, method + uri + body + timestamp))`` with the decoded URI."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    source = method.upper().encode() + signing_uri(uri).encode("utf-8") + raw + str(timestamp_ms).encode()
    digest = hmac.new(client_secret.encode("utf-8"), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_payload(events: Iterable[dict[str, Any]], *, app_id: int, subscription_id: int = 1,
                    attempt_number: int = 0) -> list[dict[str, Any]]:
    """Events in HubSpot's webhook shape (``subscriptionId``, ``appId``, ``attemptNumber`` added)."""
    out = []
    for e in events:
        item = {"eventId": e["eventId"], "subscriptionId": subscription_id, "portalId": e["portalId"],
                "appId": app_id, "occurredAt": e["occurredAt"], "subscriptionType": e["subscriptionType"],
                "attemptNumber": attempt_number, "objectId": e["objectId"], "changeSource": e.get("changeSource", "API")}
        if e["subscriptionType"].endswith(".creation"):
            item["changeFlag"] = "NEW"
        for key in ("propertyName", "propertyValue", "mergedObjectIds", "primaryObjectId", "newObjectId",
                    "toObjectId", "associationRemoved", "associationType"):
            if key in e:
                item[key] = e[key]
        out.append(item)
    return out


def deliver(events: Iterable[dict[str, Any]], target_url: str, client_secret: str, *, timestamp_ms: int,
            app_id: int = 54321, attempt_number: int = 0, client: httpx.Client | None = None,
            timeout_s: float = 10.0) -> httpx.Response:
    """POST one signed batch of events to ``target_url``; returns the receiver's response."""
    body = json.dumps(webhook_payload(events, app_id=app_id, attempt_number=attempt_number),
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Request-Timestamp": str(timestamp_ms),
        "X-HubSpot-Signature-v3": signature_v3(client_secret, "POST", target_url, body, timestamp_ms),
        "X-HubSpot-Signature-Version": "v3",
        "User-Agent": "HubSpot Connect 2.0 (renkei-sandbox)",
    }
    if client is not None:
        return client.post(target_url, content=body, headers=headers, timeout=timeout_s)
    with httpx.Client(timeout=timeout_s) as c:
        return c.post(target_url, content=body, headers=headers)



# Subscriptions of the automatic delivery by default: what Renkei's receiver acts on.
DEFAULT_SUBSCRIPTIONS = ("deal.creation", "deal.propertyChange:dealstage", "company.creation",
                         "company.propertyChange", "company.merge", "company.restore")


def subscribed(event: dict[str, Any], subscriptions: Iterable[str]) -> bool:
    """``type`` matches every event of that type; ``type:property`` only changes of that property."""
    for sub in subscriptions:
        kind, _, prop = sub.partition(":")
        if event["subscriptionType"] == kind and (not prop or event.get("propertyName") == prop):
            return True
    return False


class Deliverer:
    """Delivers the store's change log to ``target_url`` automatically, as HubSpot does: each change
    ``delay_ms`` after it happened, subscribed events only, up to 100 events per signed POST; a non-2xx or
    unreachable receiver is retried (up to ``retries`` times, backing off). For receiver tests:
    ``duplicate_rate`` re-sends a delivered batch (``attemptNumber`` + 1) with that probability, and
    ``reorder`` delivers each batch newest first and holds every other batch back one round (out of order).
    ``deliveries`` counts POSTs, ``delivered`` events, ``failures`` failed POSTs."""

    def __init__(self, store: Any, target_url: str, client_secret: str, *, delay_ms: int = 200,
                 subscriptions: Iterable[str] = DEFAULT_SUBSCRIPTIONS, duplicate_rate: float = 0.0,
                 reorder: bool = False, retries: int = 5, app_id: int = 54321, seed: int | None = None):
        import random
        import threading

        self.store, self.target_url, self.client_secret = store, target_url, client_secret
        self.delay_ms, self.subscriptions = delay_ms, tuple(subscriptions)
        self.duplicate_rate, self.reorder, self.retries, self.app_id = duplicate_rate, reorder, retries, app_id
        self.rng = random.Random(seed)
        self.next_index = 0  # position in store.events
        self.held: list[dict[str, Any]] = []
        self.deliveries = self.delivered = self.failures = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="hubspot-sandbox-webhooks", daemon=True)
        self.client = httpx.Client(timeout=10.0)

    def start(self) -> "Deliverer":
        self.next_index = len(self.store.events)  # changes from now on (not the seed)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(5)
        self.client.close()

    def _due(self) -> list[dict[str, Any]]:
        now = self.store.clock.now_ms()
        with self.store.lock:
            events = self.store.events
            out = []
            i = self.next_index
            while i < len(events) and events[i]["occurredAt"] <= now - self.delay_ms:
                if subscribed(events[i], self.subscriptions):
                    out.append(events[i])
                i += 1
            self.next_index = i
        return out

    def _post(self, events: list[dict[str, Any]], attempt: int = 0) -> bool:
        for n in range(self.retries + 1):
            if self.stop_event.is_set():
                return False
            try:
                resp = deliver(events, self.target_url, self.client_secret, timestamp_ms=int(time.time() * 1000),
                               app_id=self.app_id, attempt_number=attempt + n, client=self.client)
                self.deliveries += 1
                if 200 <= resp.status_code < 300:
                    self.delivered += len(events)
                    return True
            except httpx.HTTPError:
                pass
            self.failures += 1
            self.stop_event.wait(min(5.0, 0.2 * 2 ** n))
        return False

    def _loop(self) -> None:
        tick = max(0.02, min(0.2, self.delay_ms / 2000))
        while not self.stop_event.wait(tick):
            due = self._due()
            if self.reorder and due:
                due = list(reversed(due))
                held, self.held = self.held, []
                if not held and len(due) > 1:  # hold the newest half back: it goes after the next batch
                    self.held, due = due[: len(due) // 2], due[len(due) // 2:]
                due = due + held
            elif self.held and not due:
                due, self.held = self.held, []
            for start in range(0, len(due), 100):
                batch = due[start:start + 100]
                if self._post(batch) and self.duplicate_rate and self.rng.random() < self.duplicate_rate:
                    self._post(batch, attempt=1)
