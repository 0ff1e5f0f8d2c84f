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

