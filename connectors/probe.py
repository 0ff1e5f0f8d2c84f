"""Helpers of the connection checks (``factory.check`` of each connector, ``renkei doctor``): short timeouts,
the errors that prove a service cannot be reached, one-line error text."""

from __future__ import annotations

import httpx

PROBE_TIMEOUT_S = 5.0

# errors that prove the service cannot be reached at all (a dropped or slow answer is weather, not a setting)
UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol, httpx.InvalidURL)


def first_line(exc: BaseException | str) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def net_error(exc: Exception) -> str:
    cause = exc.__cause__ or exc.__context__
    msg = first_line(cause if cause is not None else exc)
    if "refused" in msg.lower():
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {PROBE_TIMEOUT_S:.0f}s"
    return msg


def origin(url: str) -> str:
    u = httpx.URL(url)
    return f"{u.scheme}://{u.host}" + (f":{u.port}" if u.port else "")
