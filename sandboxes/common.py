"""Shared infrastructure of the local API sandboxes (HubSpot, freee).

What lives here:

* :class:`Clock` — a wall clock in epoch milliseconds that tests can freeze and advance; both sandboxes
  read every timestamp, rate-limit window and token expiry from one.
* :class:`FaultConfig` + :func:`add_faults` — latency and deterministic fault injection (5xx, 429,
  timeout, dropped connection) as an ASGI layer around a FastAPI app.
* :class:`SlidingWindowLimiter` — thread-safe rolling-window rate limiter.
* :class:`ServerThread` / :func:`serve_forever` — run sandboxes under uvicorn, in a background thread
  for tests or in the foreground for ``renkei sandbox serve``.

Nothing here knows about HubSpot or freee: the error body of an injected fault comes from the
``error_body`` callable each sandbox passes in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI

__all__ = [
    "DEFAULT_FAULT_KINDS",
    "FAULT_KINDS",
    "Clock",
    "FaultConfig",
    "FaultInjector",
    "ServerThread",
    "SlidingWindowLimiter",
    "add_faults",
    "now_ms",
    "serve_forever",
]

log = logging.getLogger(__name__)

ASGIApp = Callable[..., Any]


# --------------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------------


def now_ms() -> int:
    """Current wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class Clock:
    """Epoch-millisecond clock that can be frozen and advanced (thread-safe).

    Unfrozen, it follows the wall clock plus any offset added by :meth:`advance`. Frozen, it returns
    the frozen instant until advanced or unfrozen — which is how tests make many writes share one
    ``hs_lastmodifieddate``, roll a rate-limit window forward, or expire an OAuth token.
    """

    def __init__(self, frozen_ms: int | None = None) -> None:
        self._lock = threading.Lock()
        self._frozen: int | None = frozen_ms
        self._offset_ms = 0

    def now_ms(self) -> int:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return now_ms() + self._offset_ms

    def now_s(self) -> float:
        """Current time in (fractional) epoch seconds."""
        return self.now_ms() / 1000.0

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def freeze(self, ms: int | None = None) -> int:
        """Stop the clock at ``ms`` (default: now). Returns the frozen instant."""
        current = self.now_ms()
        with self._lock:
            self._frozen = current if ms is None else int(ms)
            return self._frozen

    def unfreeze(self) -> None:
        """Resume following the wall clock, continuing from the frozen instant."""
        with self._lock:
            if self._frozen is not None:
                self._offset_ms = self._frozen - now_ms()
                self._frozen = None

    def advance(self, ms: int) -> int:
        """Move the clock forward by ``ms`` (frozen or not). Returns the new time."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += int(ms)
            else:
                self._offset_ms += int(ms)
        return self.now_ms()

    def set(self, ms: int) -> None:
        """Jump to ``ms``, keeping the frozen/running state."""
        with self._lock:
            if self._frozen is not None:
                self._frozen = int(ms)
            else:
                self._offset_ms = int(ms) - now_ms()


# --------------------------------------------------------------------------------------------------
# Rate limiting
# --------------------------------------------------------------------------------------------------


class SlidingWindowLimiter:
    """Rolling-window limiter: at most ``limit`` acquisitions per key in any ``window_s`` seconds.

    ``limit <= 0`` disables the limiter (every acquisition succeeds). Time comes from ``clock`` when
    given (so a frozen test clock freezes the window), else from :func:`time.monotonic`.
    """

    def __init__(self, limit: int, window_s: float, clock: Clock | None = None) -> None:
        self.limit = int(limit)
        self.window_s = float(window_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def _now(self) -> float:
        return self._clock.now_s() if self._clock is not None else time.monotonic()

    def _prune(self, hits: deque[float], now: float) -> None:
        cutoff = now - self.window_s
        while hits and hits[0] <= cutoff:
            hits.popleft()

    def try_acquire(self, key: str = "") -> tuple[bool, int, float]:
        """Take one slot. Returns ``(ok, remaining, retry_after_s)``.

        ``remaining`` is the number of slots left after this call; ``retry_after_s`` is 0 when ``ok``,
        else the seconds until the oldest hit leaves the window.
        """
        if self.limit <= 0:
            return True, 0, 0.0
        now = self._now()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            self._prune(hits, now)
            if len(hits) >= self.limit:
                retry = max(0.0, hits[0] + self.window_s - now)
                return False, 0, retry
            hits.append(now)
            return True, self.limit - len(hits), 0.0

    def remaining(self, key: str = "") -> int:
        """Slots currently free for ``key`` (without taking one)."""
        if self.limit <= 0:
            return 0
        now = self._now()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            self._prune(hits, now)
            return self.limit - len(hits)

    def reset(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._hits.clear()
            else:
                self._hits.pop(key, None)


# --------------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------------

FAULT_KINDS: tuple[str, ...] = ("5xx", "429", "timeout", "drop", "drop_after")
"""Every fault kind :func:`add_faults` knows.

* ``5xx`` — 500, 502 or 503 with the sandbox's error body; the request is **not** processed.
* ``429`` — 429 with the error body and ``Retry-After: 1``; the request is **not** processed.
* ``timeout`` — sleep ``timeout_s`` then 504; the request is **not** processed.
* ``drop`` — close the connection without any response; the request is **not** processed.
* ``drop_after`` — process the request (writes are committed), then close the connection without
  sending the response. This is the case an exactly-once client must survive; it is not part of
  the default kinds.
"""

DEFAULT_FAULT_KINDS: tuple[str, ...] = ("5xx", "429", "timeout", "drop")


@dataclass
class FaultConfig:
    """Latency and random faults injected in front of a sandbox.

    ``fault_rate`` is the probability (0..1) that one request gets a fault; which request and which
    kind are drawn from ``random.Random(fault_seed)``, so a given seed and request order always produce
    the same fault sequence. ``fault_seed=None`` means unseeded (non-deterministic).
    """

    latency_ms: int = 0
    fault_rate: float = 0.0
    fault_seed: int | None = None
    kinds: tuple[str, ...] = DEFAULT_FAULT_KINDS
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate is a probability between 0 and 1")
        if self.latency_ms < 0:
            raise ValueError("latency_ms cannot be negative")
        self.kinds = tuple(self.kinds)
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if self.fault_rate > 0 and not self.kinds:
            raise ValueError("fault_rate > 0 needs at least one fault kind")

    @property
    def active(self) -> bool:
        return self.latency_ms > 0 or self.fault_rate > 0


@dataclass
class FaultInjector:
    """The per-app fault state: config, seeded RNG and a log of what was injected (for tests)."""

    config: FaultConfig
    error_body: Callable[[int, str], dict]
    exempt_paths: tuple[str, ...] = ()
    injected: list[tuple[str, str, str]] = field(default_factory=list)
    """``(kind, method, path)`` per injected fault, in order."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.fault_seed)

    def reseed(self, seed: int | None = None) -> None:
        """Restart the deterministic sequence (from ``seed`` or the config's seed)."""
        self.rng = random.Random(self.config.fault_seed if seed is None else seed)
        self.injected.clear()

    def exempt(self, path: str) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.exempt_paths)

    def draw(self) -> str | None:
        """Decide the fault for the next request (None = no fault). Consumes the RNG deterministically."""
        cfg = self.config
        if cfg.fault_rate <= 0 or not cfg.kinds:
            return None
        if self.rng.random() >= cfg.fault_rate:
            return None
        return self.rng.choice(cfg.kinds)


async def _send_json(send: Callable[..., Any], status: int, body: dict, headers: Iterable[tuple[str, str]] = ()) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    raw_headers = [
        (b"content-type", b"application/json;charset=utf-8"),
        (b"content-length", str(len(payload)).encode()),
    ]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


class _DropConnection(Exception):
    """Raised (after a partial response) to make the server close the connection."""


async def _drop(send: Callable[..., Any]) -> None:
    """Close the client connection without a (complete) response.

    Under uvicorn the raw ``send`` is a bound method of the request cycle, whose ``transport`` we close
    directly: the client sees the connection closed with no response at all (httpx:
    ``RemoteProtocolError: Server disconnected without sending a response``). On any other server we
    fall back to starting a response that promises a body and then raising, which makes the server
    abort the connection mid-response (also a transport error on the client side).
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None and hasattr(transport, "close"):
        transport.close()
        # Tell uvicorn the peer is gone so it does not try to answer with a 500 afterwards.
        if hasattr(cycle, "disconnected"):
            cycle.disconnected = True
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1048576")],
        }
    )
    raise _DropConnection("sandbox fault: connection dropped")


class FaultMiddleware:
    """Outermost ASGI layer implementing :class:`FaultConfig` (see :func:`add_faults`)."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: dict, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        inj = self.injector
        path = scope.get("path", "")
        if inj.exempt(path):
            await self.app(scope, receive, send)
            return
        cfg = inj.config
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000.0)
        kind = inj.draw()
        if kind is None:
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "")
        inj.injected.append((kind, method, path))
        log.info("sandbox fault %s on %s %s", kind, method, path)
        if kind == "5xx":
            status = inj.rng.choice((500, 502, 503))
            await _send_json(send, status, inj.error_body(status, f"Sandbox injected fault: HTTP {status}"))
        elif kind == "429":
            await _send_json(
                send, 429, inj.error_body(429, "Sandbox injected fault: too many requests"), [("Retry-After", "1")]
            )
        elif kind == "timeout":
            await asyncio.sleep(cfg.timeout_s)
            await _send_json(send, 504, inj.error_body(504, "Sandbox injected fault: gateway timeout"))
        elif kind == "drop":
            await _drop(send)
        elif kind == "drop_after":
            # Run the request to completion (side effects committed) but swallow its response.
            async def discard(message: dict) -> None:
                return None

            await self.app(scope, receive, discard)
            await _drop(send)
        else:  # pragma: no cover - FaultConfig validates kinds
            await self.app(scope, receive, send)


def add_faults(
    app: FastAPI,
    faults: FaultConfig,
    error_body: Callable[[int, str], dict],
    exempt_paths: tuple[str, ...] = (),
) -> FaultInjector:
    """Wrap ``app`` so every request gets ``faults.latency_ms`` of latency and, with probability
    ``faults.fault_rate``, one injected fault of ``faults.kinds`` (see :data:`FAULT_KINDS`).

    Injected 429 / 5xx / timeout / drop faults happen **before** the request reaches the app, so they
    have no side effect (and do not consume the app's own rate limits); only ``drop_after`` commits the
    request first. ``exempt_paths`` are path prefixes never delayed or faulted (e.g. sandbox admin
    endpoints). The layer sits outside every Starlette middleware (it wraps the built middleware
    stack) so that ``drop`` can reach the server's transport.

    Returns the :class:`FaultInjector`, also stored as ``app.state.faults``; mutate its ``config``
    or call ``reseed()`` at runtime.
    """
    injector = FaultInjector(config=faults, error_body=error_body, exempt_paths=tuple(exempt_paths))
    app.state.faults = injector
    build = app.build_middleware_stack

    def build_with_faults() -> ASGIApp:
        return FaultMiddleware(build(), injector)

    app.build_middleware_stack = build_with_faults  # type: ignore[method-assign]
    app.middleware_stack = None  # rebuilt lazily on the next request
    return injector


# --------------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------------


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto is TCP;
    # with proto 0 every keep-alive response waits ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _uvicorn_config(app: ASGIApp, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
    )


class ServerThread:
    """Run one ASGI app under uvicorn in a daemon thread (for tests).

    ``port=0`` picks a free port; the socket is bound in the constructor so :attr:`url` is known
    before :meth:`start`. Use as a context manager::

        with ServerThread(create_app(cfg)) as server:
            httpx.get(server.url + "/crm/v3/owners")
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.app = app
        self.host = host
        self._sock = _bind(host, port)
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(_uvicorn_config(app, host, self.port, log_level))
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # pragma: no cover - surfaced by start()
            self._error = exc

    def start(self, timeout_s: float = 10.0) -> ServerThread:
        """Start serving and wait until the server accepts connections."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"sandbox server failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"sandbox server on {self.url} did not start within {timeout_s}s")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the server to exit and wait for the thread (forcing after ``timeout_s``)."""
        if self._thread is None:
            self._sock.close()
            return
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():  # pragma: no cover - hung request (e.g. an injected timeout)
            self._server.force_exit = True
            self._thread.join(timeout_s)
        self._thread = None
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(apps: list[tuple[FastAPI, int]], host: str = "127.0.0.1", log_level: str = "info") -> None:
    """Serve several apps (``(app, port)`` pairs) from one process and event loop until Ctrl-C / SIGTERM.

    Used by ``renkei sandbox serve``. All servers stop together on the first signal; a second Ctrl-C
    forces them down without waiting for open requests.
    """
    servers = [uvicorn.Server(_uvicorn_config(app, host, port, log_level)) for app, port in apps]

    def stop(signum: int, frame: object) -> None:
        for server in servers:
            if server.should_exit and signum == signal.SIGINT:
                server.force_exit = True
            server.should_exit = True

    async def main() -> None:
        # Server._serve skips uvicorn's own per-server signal capture, which would let only the last
        # server see the signal; we install one handler for all of them instead.
        # (``_serve`` is uvicorn-internal; fall back to ``serve`` if a future uvicorn drops it.)
        await asyncio.gather(*(getattr(server, "_serve", server.serve)() for server in servers))

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, stop) for sig in handled}
    try:
        asyncio.run(main())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
