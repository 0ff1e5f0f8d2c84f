"""Concurrency helpers for tasks: a thread-safe once-cache and a bounded thread pool.

Flows orchestrate; the machinery that runs per-record work concurrently lives here.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class OnceCache:
    """Thread-safe "compute once per key": concurrent callers of one key wait for the first one's result
    (or its exception)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[threading.Event, list]] = {}

    def has(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def put(self, key: str, value) -> None:
        event = threading.Event()
        event.set()
        with self._lock:
            self._entries.setdefault(key, (event, [("ok", value)]))

    def get(self, key: str, compute):
        with self._lock:
            entry = self._entries.get(key)
            owner = entry is None
            if owner:
                entry = self._entries[key] = (threading.Event(), [])
        event, box = entry
        if owner:
            try:
                box.append(("ok", compute()))
            except BaseException as exc:  # noqa: BLE001 - handed to every waiter
                box.append(("err", exc))
                with self._lock:
                    self._entries.pop(key, None)  # a later call may try again
            finally:
                event.set()
        else:
            event.wait()
        kind, value = box[0]
        if kind == "err":
            raise value
        return value


_RUN_CACHES: dict[str, OnceCache] = {}
_RUN_CACHES_LOCK = threading.Lock()


def run_cache(name: str, run_id: str) -> OnceCache:
    """The once-cache ``name`` of one flow run (e.g. invoice recipients: one read per customer per run)."""
    with _RUN_CACHES_LOCK:
        return _RUN_CACHES.setdefault(f"{name}:{run_id}", OnceCache())


def drop_run_cache(name: str, run_id: str) -> None:
    with _RUN_CACHES_LOCK:
        _RUN_CACHES.pop(f"{name}:{run_id}", None)


def map_concurrently(fn: Callable[[T], R], items: Iterable[T], *, max_workers: int) -> list[tuple[T, R]]:
    """``fn`` over ``items`` on up to ``max_workers`` threads (I/O bound work); (item, result) in input order.
    ``fn`` should return its per-item failures rather than raise: a raised exception ends the map."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(items)))) as pool:
        return list(zip(items, pool.map(fn, items)))


def chunks(pages: Iterator[list[Any]], size: int) -> Iterator[list[Any]]:
    """Pages of a full read regrouped to about ``size`` records per task (a few dozen task runs for
    20,000 companies instead of hundreds)."""
    buf: list[Any] = []
    for page in pages:
        buf.extend(page)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def prefetch(it: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Read the next pages in a thread while the current one is processed (reads are idempotent and the
    cursor is committed only by the consumer, so reading ahead never skips anything)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(("error", exc))

    t = threading.Thread(target=run, name="customer-sync-prefetch", daemon=True)
    t.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "item":
                yield item
            elif kind == "error":
                raise item
            else:
                return
    finally:
        stop.set()
