"""Records one run holds by id, kept out of memory.

A first sync reads every freee partner in a few requests (3,000 per page; freee has no batch read by id, so
reading them again one by one would cost one request each on freee's tight limit) and needs each record
once more later, when its HubSpot company comes by. :class:`RecordSpill` keeps such records in an
**unnamed SQLite temporary file** (``sqlite3.connect("")``: SQLite unlinks the file as it opens it, so no
other process can open it and nothing is left behind when the run ends, even when it is killed) with a
small page cache, so a run's memory does not grow with the number of records it holds.

It holds what the connector returned for this run (the same values the run would otherwise hold in
memory); nothing of it is persisted. Thread-safe (deferred writers run in worker threads).
"""

from __future__ import annotations

import pickle
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

_CHUNK = 500  # ids per SELECT … IN (…) (SQLite's default limit on variables is 999 on old builds)


class RecordSpill:
    """``id → value`` for picklable values (plain dicts, tuples, strings), in insertion order."""

    def __init__(self, cache_kib: int = 2048) -> None:
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", f"cache_size=-{int(cache_kib)}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE r (id TEXT PRIMARY KEY, v BLOB NOT NULL)")

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("record spill is closed")
        return self._db

    def put_many(self, items: Iterable[tuple[str, Any]]) -> None:
        dump = pickle.dumps
        rows = ((str(k), dump(v, pickle.HIGHEST_PROTOCOL)) for k, v in items)
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                db.executemany("INSERT OR REPLACE INTO r (id, v) VALUES (?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def put(self, key: str, value: Any) -> None:
        self.put_many([(key, value)])

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn().execute("SELECT v FROM r WHERE id = ?", (str(key),)).fetchone()
        return pickle.loads(row[0]) if row is not None else default

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The values held for ``keys`` (ids not held are left out)."""
        out: dict[str, Any] = {}
        ids = list(dict.fromkeys(str(k) for k in keys))
        for i in range(0, len(ids), _CHUNK):
            part = ids[i:i + _CHUNK]
            with self._lock:
                rows = self._conn().execute(f"SELECT id, v FROM r WHERE id IN ({','.join('?' * len(part))})",
                                            part).fetchall()
            out.update((k, pickle.loads(v)) for k, v in rows)
        return out

    def delete(self, key: str) -> None:
        with self._lock:
            self._conn().execute("DELETE FROM r WHERE id = ?", (str(key),))

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return self._conn().execute("SELECT 1 FROM r WHERE id = ?", (str(key),)).fetchone() is not None

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn().execute("SELECT count(*) FROM r").fetchone()[0])

    def items(self, chunk: int = _CHUNK) -> Iterator[tuple[str, Any]]:
        """Every ``(id, value)`` in insertion order, read ``chunk`` rows at a time."""
        last = 0
        while True:
            with self._lock:
                rows = self._conn().execute("SELECT rowid, id, v FROM r WHERE rowid > ? ORDER BY rowid LIMIT ?",
                                            (last, chunk)).fetchall()
            if not rows:
                return
            for rowid, k, v in rows:
                yield k, pickle.loads(v)
            last = rows[-1][0]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> "RecordSpill":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
