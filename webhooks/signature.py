"""Signature checks of the receiver (pure functions, constant-time comparisons).

HubSpot v3 (hubspot-api.md §9): ``base64(HMAC-SHA256(client secret, method + uri + body + timestamp))``
where ``uri`` is the full URL HubSpot called with only the listed escapes decoded, and the timestamp
(``X-HubSpot-Request-Timestamp``, epoch milliseconds) is at most 5 minutes old. The same rule as the
HubSpot sandbox's signer (``sandboxes/hubspot/webhooks.py``), written again here so production code never
imports a sandbox.

Generic inbound: ``X-Renkei-Signature: sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>`` with
``X-Renkei-Timestamp`` in epoch seconds, at most 5 minutes off — the timestamp is signed too, so an old
request cannot be replayed with a fresh timestamp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

MAX_AGE_SECONDS = 300

_DECODE = (("%3A", ":"), ("%2F", "/"), ("%3F", "?"), ("%40", "@"), ("%21", "!"), ("%24", "$"), ("%27", "'"),
           ("%28", "("), ("%29", ")"), ("%2A", "*"), ("%2C", ","), ("%3B", ";"))


def hubspot_uri(uri: str) -> str:
    """HubSpot's partial URL-decoding of the request URI (only the listed escapes, either case)."""
    out = uri
    for enc, dec in _DECODE:
        out = out.replace(enc, dec).replace(enc.lower(), dec)
    return out


def hubspot_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    source = method.upper().encode() + hubspot_uri(uri).encode("utf-8") + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), source, hashlib.sha256).digest()).decode()


def fresh(timestamp_s: float, now_s: float, max_age_s: float = MAX_AGE_SECONDS) -> bool:
    """Within ``max_age_s`` of now, either way (a sender's clock may run a little ahead)."""
    return abs(now_s - timestamp_s) <= max_age_s


def check_hubspot_v3(secret: str, method: str, uri: str, body: bytes, signature: str | None,
                     timestamp: str | None, now_s: float, max_age_s: float = MAX_AGE_SECONDS) -> str | None:
    """None when valid, else the reason (``missing`` | ``stale`` | ``signature``) — never the secret."""
    if not signature or not timestamp:
        return "missing"
    try:
        ts_ms = int(timestamp)
    except ValueError:
        return "stale"
    if not fresh(ts_ms / 1000, now_s, max_age_s):
        return "stale"
    expected = hubspot_v3(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        return "signature"
    return None


def inbound_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The header value a sender puts in ``X-Renkei-Signature``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def check_inbound(secret: str, body: bytes, signature: str | None, timestamp: str | None, now_s: float,
                  max_age_s: float = MAX_AGE_SECONDS) -> str | None:
    if not signature or not timestamp:
        return "missing"
    try:
        ts = float(timestamp)
    except ValueError:
        return "stale"
    if not fresh(ts, now_s, max_age_s):
        return "stale"
    expected = inbound_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        return "signature"
    return None
