"""External API pace shared by every worker and process: a rate limiter whose windows live in the state store.

:class:`renkei.connectors.http.RateLimiter` keeps its windows in memory, so two worker processes each take
the whole allowance (two processes drew freee ``429 上限（30回）`` in the demo). :class:`DbRateLimiter` has
the same interface (``limits``, ``try_acquire``, ``acquire``, ``penalise``, ``acquired``,
``waited_seconds``) and keeps one row per bucket in ``rate_bucket``:

* **rolling** buckets (HubSpot 100 per 10 s and 5 searches per s, freee請求書 30/min and 1,500/h, freee会計's
  pace): at most ``n`` acquisitions in *any* ``w`` seconds, exactly — the times of the last ``n``
  acquisitions are a ring in ``rate_slot`` and the row's ``next_slot`` points at the oldest; a slot is free
  when the oldest is more than ``w`` seconds old.
* **fixed** buckets (freee請求書 30/min and 1,500/h: windows that reset on the clock, as freee's documented
  ``X-Ratelimit-Reset-Minute`` / ``X-RateLimit-Reset`` headers say): at most ``n`` acquisitions in each
  clock-aligned (UTC) window of ``w`` seconds. The same ring as a rolling bucket holds the last ``n``
  acquisitions; a request stamped within ``edge`` seconds of a boundary counts in the windows on both sides
  of it (it may reach the API a little later, or the API's clock may differ a little), so no window of the
  API ever sees more than ``n``. When the current window is full the caller books the first slot of the next
  one. A rolling bucket of the same numbers is stricter (each request waits for the one ``n`` places before
  it, a full ``w`` later) and can be chosen instead (``RENKEI_FREEE_IV_WINDOW=rolling``).
* **calendar** buckets (daily caps): at most ``n`` per calendar window (Asia/Tokyo days by default);
  when it is used up :meth:`DbRateLimiter.acquire` raises :class:`QuotaExhausted` instead of sleeping.
* **observed** buckets (an allocation the API itself reports, e.g. Salesforce's rolling-24-hour request
  count in ``Sforce-Limit-Info``): ``used`` is the API's last reported usage plus every acquisition since,
  by any process; ``limit_n`` is where Renkei stops (a share of the reported maximum). :meth:`observe`
  writes a new report. Used up → no slot until the report is ``window_s`` old; then **one** request goes
  through as a probe (its response reports the usage again — a rolling allocation falls as old requests
  age out). A wait past ``quota_wait_s`` is :class:`QuotaExhausted`, as for a cap. ``limit_n`` 0 = the
  maximum is not known yet: counted, never refused.
* ``blocked_until``: :meth:`penalise` after a 429 blocks the bucket for **every** process.

One acquisition is one short transaction: the bucket rows are locked (PostgreSQL ``SELECT … FOR UPDATE`` in
name order, so two multi-bucket acquisitions never deadlock; SQLite ``BEGIN IMMEDIATE``), checked, and the
slot recorded — all buckets of a request or none. Time is the database's clock on PostgreSQL (hosts whose
clocks differ still share one timeline) and the host clock on SQLite (one host). Threads of one process
queue on a local lock per bucket set, so a process sends one acquisition at a time to the database and
waiting threads do not poll it.

:func:`limiter_for` chooses the backend: the shared one when the state store is shared (PostgreSQL) or
``RENKEI_RATE_LIMITS=shared``; the in-process one for a SQLite store of one process
(``RENKEI_RATE_LIMITS=local`` forces it). Why not Prefect global concurrency limits with ``rate_limit()``:
docs/scale-out.md.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Callable, Mapping

from sqlalchemy import text
from sqlalchemy.engine import Engine

from renkei.connectors.http import QuotaExhausted, RateLimiter, fixed_window_wait

log = logging.getLogger("renkei.store.ratelimit")

TOKYO_OFFSET_S = 9 * 3600
DAY_S = 86400.0
CALENDAR = "calendar"
ROLLING = "rolling"
OBSERVED = "observed"
FIXED = "fixed"
PACE_KINDS = (ROLLING, FIXED)  # paces (a 429 blocks them, a full window is booked); the others are caps
# a wait longer than this is a cap, not a pace: raise QuotaExhausted (stop cleanly, resume later)
QUOTA_WAIT_S = 900.0

LimitSpec = "tuple[int, float] | tuple[int, float, str]"


def zone_offset_s(zone: str | None, at: float | None = None) -> float:
    """The UTC offset of the IANA ``zone`` (seconds) at ``at`` (default now). A zone with daylight saving
    time has two offsets: a calendar bucket's day follows the zone itself (:func:`zone_day`), not this."""
    if not zone:
        return float(TOKYO_OFFSET_S)
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    moment = datetime.fromtimestamp(time.time() if at is None else at, tz=timezone.utc)
    return moment.astimezone(ZoneInfo(zone)).utcoffset().total_seconds()


def zone_day(zone: str, at: float) -> tuple[float, float]:
    """The calendar day of the IANA ``zone`` that contains the instant ``at`` (epoch seconds): its first and
    its last-plus-one instant, from the zone's real midnights — 24 h most days, 23 h / 25 h on the days the
    clocks change (a midnight that does not exist: the day starts when the clocks jump)."""
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    day = datetime.fromtimestamp(at, tz=timezone.utc).astimezone(tz).date()

    def midnight(d) -> float:
        # fold=0: an ambiguous midnight is its first occurrence; one the clocks skip is read with the offset
        # before the change, which is the instant of the jump — the first instant of that day
        return datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()

    return midnight(day), midnight(day + timedelta(days=1))


def _kind(spec: tuple) -> str:
    return spec[2] if len(spec) > 2 else ROLLING


class DbRateLimiter:
    """Rate limiter shared through the state store (same interface as ``connectors.http.RateLimiter``).

    ``scope`` names the account the limits belong to (``hubspot:<portal or URL>``, ``freee:<company>``):
    every process using the same scope and database shares the buckets ``<scope>:<key>``.
    ``limits`` maps a key to ``(n, window_s)`` (rolling) or ``(n, window_s, kind)`` with kind ``"fixed"``,
    ``"calendar"`` or ``"observed"``.
    """

    def __init__(self, engine: Engine, scope: str, limits: Mapping[str, tuple] | None, *,
                 sleep: Callable[[float], None] = time.sleep, quota_wait_s: float = QUOTA_WAIT_S,
                 calendar_offset_s: float = TOKYO_OFFSET_S, calendar_zone: str | None = None,
                 record: bool = False, guard: float = 0.02, guard_min_s: float = 0.0, guard_max_s: float = 0.5):
        self.engine = engine
        self.scope = scope
        self.limits: dict[str, tuple] = {k: tuple(v) for k, v in (limits or {}).items()}
        for k, spec in self.limits.items():
            n, w = spec[0], spec[1]
            if (n < 1 and _kind(spec) != OBSERVED) or w <= 0 or _kind(spec) not in (ROLLING, FIXED, CALENDAR, OBSERVED):
                raise ValueError(f"bad limit for {k!r}: {spec}")
        self._sleep = sleep
        self.quota_wait_s = quota_wait_s
        # A slot's time is taken in the database, before the commit and the HTTP request: on a loaded host the
        # requests reach the API with some jitter, so a ring slot is reused only ``guard`` × window (at least
        # ``guard_min_s``, at most ``guard_max_s``; ``guard`` 0: none) after the window has passed. Without it,
        # 6 of 3,008 freee請求書 requests paced at exactly the sandbox's 600 / min drew a 429
        # (benchmarks/scale_out.py, load average 20 on 2 cores). The jitter does not shrink with the window: the
        # delay from a slot's time to the sandbox's count varied by up to ~180 ms there (load 3–5), and HubSpot's
        # 1-second search window (2 % = 22 ms, plus the client's 10 % headroom) drew a 429 before the floor its
        # connector sets (``guard_min_s``; none by default: freee会計's 5 / s is Renkei's own courtesy pace, not
        # a limit with a 429, and a floor there would cost 13 % of it).
        self.guard, self.guard_min_s, self.guard_max_s = guard, guard_min_s, guard_max_s
        # where a calendar bucket's day starts: the IANA zone's own midnights when given (days of 23 / 25 h
        # when its clocks change), else a fixed offset from UTC (Asia/Tokyo: no daylight saving)
        self.calendar_offset_s = calendar_offset_s
        self.calendar_zone = calendar_zone
        self._pg = engine.dialect.name == "postgresql"
        # the database's clock on PostgreSQL (one timeline for every host); the host's on SQLite (one host)
        self._now_sql = "EXTRACT(EPOCH FROM clock_timestamp())" if self._pg else \
            "(julianday('now') - 2440587.5) * 86400.0"
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._stats_lock = threading.Lock()
        self.acquired: dict[str, int] = {k: 0 for k in self.limits}
        self.waited_seconds = 0.0
        self.transactions = 0  # database round trips of acquisitions (monitoring, tests)
        # record=True: the limiter's own log — (database time, keys) of every acquisition of this instance
        self.history: list[tuple[float, tuple[str, ...]]] | None = [] if record else None
        ensure_buckets(engine, scope, self.limits)

    def __repr__(self) -> str:
        return f"DbRateLimiter({self.scope!r}, {self.limits})"

    def bucket_name(self, key: str) -> str:
        return f"{self.scope}:{key}"

    # -- the interface of connectors.http.RateLimiter ------------------------------------------------

    def try_acquire(self, *keys: str) -> float:
        """Take a slot in all ``keys`` if possible and return 0.0, else return the seconds to wait."""
        return self._take(keys, reserve=False)

    def _take(self, keys: tuple[str, ...], *, reserve: bool) -> float:
        """Take a slot in all ``keys`` now (→ 0.0), or return the seconds to wait without taking one.
        ``reserve``: when only rolling windows are full, book the first slot they free instead (the slot's time
        is set in the future, so the next caller books the one after it) and return the time until it, as a
        negative number — waiters are then served in the order they asked, not by whoever wakes up first."""
        keys = keys or ("default",)
        # unknown keys have no pace but may still be blocked by a 429 (penalise creates their row)
        names = sorted({self.bucket_name(k) for k in keys})
        with self.engine.connect() as conn:
            if not self._pg:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            # lock the rows (PostgreSQL returns the latest committed version of a row it waited for) ...
            rows = {r.name: r for r in conn.execute(
                text("SELECT name, kind, limit_n, window_s, next_slot, window_start, used, blocked_until "
                     "FROM rate_bucket WHERE name IN :names ORDER BY name" + (" FOR UPDATE" if self._pg else ""))
                .bindparams(_expanding("names")), {"names": names})}
            # ... then, in a new statement (a new snapshot under READ COMMITTED: the ring as the previous holder
            # of the lock committed it — a join in the locking statement would read the ring as it was before
            # the wait), the oldest slot of each ring and the clock
            oldest: dict[str, float] = {}
            now = None
            for r in conn.execute(
                    text("SELECT b.name, s.at, " + self._now_sql + " AS now FROM rate_bucket b LEFT JOIN rate_slot s "
                         "ON s.bucket = b.name AND s.idx = b.next_slot WHERE b.name IN :names")
                    .bindparams(_expanding("names")), {"names": names}):
                now = float(r.now)
                if r.at is not None:
                    oldest[r.name] = float(r.at)
            if now is None:
                now = self._now(conn)
            wait = 0.0
            rolling_wait = 0.0  # the part of the wait a reservation may cover
            slots: dict[str, Any] = {}
            for name in names:
                row = rows.get(name)
                if row is None:
                    continue
                wait = max(wait, row.blocked_until - now)
                if row.kind == CALENDAR:
                    start, end = self._calendar_window(now, row.window_s)
                    used = row.used if row.window_start == start else 0
                    if used >= row.limit_n:
                        wait = max(wait, end - now)
                    slots[name] = (start, used)
                elif row.kind == OBSERVED:
                    probe = False
                    if row.limit_n > 0 and row.used >= row.limit_n:
                        if now - row.window_start < row.window_s:
                            wait = max(wait, row.window_start + row.window_s - now)
                        else:
                            probe = True  # the report is old: one request learns the usage again
                    slots[name] = probe
                elif row.kind == ROLLING:
                    at = oldest.get(name)
                    window = row.window_s + self._guard_s(row.window_s)
                    if at is not None and at > now - window:
                        rolling_wait = max(rolling_wait, at + window - now)
                    slots[name] = row.next_slot
                elif row.kind == FIXED:
                    rolling_wait = max(rolling_wait, fixed_window_wait(oldest.get(name), now, row.window_s,
                                                                       self._guard_s(row.window_s)))
                    slots[name] = row.next_slot
            if wait > 0 or (rolling_wait > 0 and not reserve):
                conn.rollback()
                self._count_txn()
                return max(wait, rolling_wait)
            at_time = now + rolling_wait  # now, or the booked slot
            for name, row in rows.items():
                if name not in slots:
                    continue
                if row.kind == OBSERVED:
                    conn.execute(text("UPDATE rate_bucket SET used = used + 1, acquired_total = acquired_total + 1"
                                      + (", window_start = :t" if slots[name] else "") + " WHERE name = :n"),
                                 {"n": name, "t": now})
                elif row.kind == CALENDAR:
                    start, used = slots[name]
                    conn.execute(text("UPDATE rate_bucket SET window_start = :s, used = :u, "
                                      "acquired_total = acquired_total + 1 WHERE name = :n"),
                                 {"s": start, "u": used + 1, "n": name})
                else:
                    idx = slots[name]
                    conn.execute(text("INSERT INTO rate_slot (bucket, idx, at) VALUES (:b, :i, :t) "
                                      "ON CONFLICT (bucket, idx) DO UPDATE SET at = excluded.at"),
                                 {"b": name, "i": idx, "t": at_time})
                    conn.execute(text("UPDATE rate_bucket SET next_slot = :x, acquired_total = acquired_total + 1 "
                                      "WHERE name = :n"), {"x": (idx + 1) % row.limit_n, "n": name})
            conn.commit()
        self._count_txn()
        with self._stats_lock:
            if self.history is not None:
                self.history.append((at_time, tuple(keys)))
            for k in keys:
                if k in self.limits:
                    self.acquired[k] = self.acquired.get(k, 0) + 1
        return -rolling_wait if rolling_wait > 0 else 0.0

    def acquire(self, *keys: str, timeout: float | None = None) -> float:
        """Block until a slot is free in all ``keys``; returns the seconds waited. A wait longer than
        ``quota_wait_s`` (a daily cap) raises :class:`QuotaExhausted` instead."""
        keys = keys or ("default",)
        start = time.monotonic()
        with self._local_lock(keys):
            while True:
                wait = self._take(keys, reserve=True)
                if wait < 0:  # a booked slot: this caller's turn comes in -wait seconds
                    if timeout is not None and time.monotonic() - start - wait > timeout:
                        raise TimeoutError(f"rate limiter: no slot in {keys} within {timeout}s")
                    self._sleep(-wait)
                    # a 429 seen by any process while this one slept still holds it back (the slot stays its own)
                    while (blocked := self._blocked_for(keys)) > 0:
                        self._sleep(blocked)
                    wait = 0.0
                if wait <= 0:
                    waited = time.monotonic() - start
                    with self._stats_lock:
                        self.waited_seconds += waited
                    return waited
                if wait > self.quota_wait_s:
                    raise QuotaExhausted(f"rate limit {self.scope} {'/'.join(keys)}: no slot for {wait:.0f}s "
                                         "(cap reached); resume later", retry_after=wait)
                if timeout is not None and time.monotonic() - start + wait > timeout:
                    raise TimeoutError(f"rate limiter: no slot in {keys} within {timeout}s")
                self._sleep(wait + random.uniform(0, 0.003))

    def observe(self, key: str, used: int, limit: int) -> None:
        """The API reported its usage of the allocation behind the observed bucket ``key``: ``used`` of
        which Renkei may reach ``limit`` (every process sees it at once)."""
        with self.engine.begin() as conn:
            now = self._now(conn)
            conn.execute(text("UPDATE rate_bucket SET used = :u, limit_n = :l, window_start = :t, "
                              "updated_at = CURRENT_TIMESTAMP WHERE name = :n AND kind = :k"),
                         {"u": int(used), "l": max(0, int(limit)), "t": now, "n": self.bucket_name(key),
                          "k": OBSERVED})

    def observe_remaining(self, key: str, remaining: int) -> None:
        """The API says only ``remaining`` requests are left in the current window of the calendar bucket
        ``key`` (HubSpot's ``X-HubSpot-RateLimit-Daily-Remaining``: the account's day, which other apps
        share): the count rises so that at most ``remaining`` more are taken; it never falls."""
        name = self.bucket_name(key)
        with self.engine.connect() as conn:
            if not self._pg:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            row = conn.execute(text("SELECT kind, limit_n, window_s, window_start, used FROM rate_bucket WHERE name = :n"
                                    + (" FOR UPDATE" if self._pg else "")), {"n": name}).first()
            if row is None or row.kind != CALENDAR:
                conn.rollback()
                return
            now = self._now(conn)
            start, _end = self._calendar_window(now, row.window_s)
            used = row.used if row.window_start == start else 0
            floor = int(row.limit_n) - max(0, int(remaining))
            if floor > used:
                conn.execute(text("UPDATE rate_bucket SET window_start = :s, used = :u WHERE name = :n"),
                             {"s": start, "u": floor, "n": name})
            conn.commit()

    def penalise(self, key: str, seconds: float) -> None:
        """Block ``key`` for ``seconds`` in every process (after a server-side 429)."""
        name = self.bucket_name(key)
        if key in self.limits and _kind(self.limits[key]) not in PACE_KINDS:
            return  # a 429 is about pace; a cap is counted, never blocked
        if key not in self.limits:
            _insert_bucket(self.engine, name, (1, 1.0, "none"))
        with self.engine.connect() as conn:
            if not self._pg:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            now = self._now(conn)
            until = now + max(0.0, float(seconds))
            conn.execute(text("UPDATE rate_bucket SET blocked_until = CASE WHEN blocked_until < :u THEN :u "
                              "ELSE blocked_until END, penalised_total = penalised_total + 1 WHERE name = :n"),
                         {"u": until, "n": name})
            conn.commit()
        log.info("rate limit %s blocked for %.1fs in every process (429)", name, seconds)

    # -- internals ---------------------------------------------------------------------------------

    def _guard_s(self, window_s: float) -> float:
        if self.guard <= 0:
            return 0.0
        return min(self.guard_max_s, max(self.guard_min_s, self.guard * window_s))

    def _blocked_for(self, keys: tuple[str, ...]) -> float:
        """Seconds until a 429 penalty on any of ``keys`` ends (0.0 when none holds)."""
        names = sorted({self.bucket_name(k) for k in keys})
        with self.engine.connect() as conn:
            row = conn.execute(text("SELECT MAX(blocked_until) AS until, " + self._now_sql + " AS now "
                                    "FROM rate_bucket WHERE name IN :names").bindparams(_expanding("names")),
                               {"names": names}).one()
        return max(0.0, float(row.until or 0.0) - float(row.now))

    def _local_lock(self, keys: tuple[str, ...]) -> threading.Lock:
        k = tuple(sorted(keys))
        with self._locks_guard:
            return self._locks.setdefault(k, threading.Lock())

    def _count_txn(self) -> None:
        with self._stats_lock:
            self.transactions += 1

    def _now(self, conn: Any) -> float:
        return float(conn.execute(text("SELECT " + self._now_sql)).scalar())

    def _calendar_window(self, now: float, window_s: float) -> tuple[float, float]:
        """The calendar window containing ``now``: (start, end). A one-day window in ``calendar_zone`` runs
        from the zone's midnight to its next one (:func:`zone_day`); any other, fixed steps of ``window_s``
        from the offset's midnight."""
        if self.calendar_zone and window_s == DAY_S:
            return zone_day(self.calendar_zone, now)
        start = ((now + self.calendar_offset_s) // window_s) * window_s - self.calendar_offset_s
        return start, start + window_s

    # -- monitoring ----------------------------------------------------------------------------------

    def state(self) -> dict[str, dict[str, Any]]:
        """The rows of this scope (monitoring, ``renkei doctor``, tests)."""
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT name, kind, limit_n, window_s, used, blocked_until, acquired_total, "
                                     "penalised_total FROM rate_bucket WHERE name LIKE :p ORDER BY name"),
                                {"p": f"{self.scope}:%"}).mappings().all()
        return {r["name"]: dict(r) for r in rows}

    def window_counts(self, key: str, window_s: float | None = None) -> int:
        """Acquisitions of ``key`` in the last ``window_s`` (default: the bucket's window), from the ring."""
        name = self.bucket_name(key)
        w = window_s if window_s is not None else self.limits[key][1]
        with self.engine.connect() as conn:
            now = self._now(conn)
            return int(conn.execute(text("SELECT COUNT(*) FROM rate_slot WHERE bucket = :b AND at > :t"),
                                    {"b": name, "t": now - w}).scalar() or 0)

    def slot_times(self, key: str) -> list[float]:
        """The ring of ``key`` (epoch seconds, sorted): every acquisition of the last ``n``."""
        with self.engine.connect() as conn:
            return sorted(float(r[0]) for r in conn.execute(
                text("SELECT at FROM rate_slot WHERE bucket = :b"), {"b": self.bucket_name(key)}))


def _expanding(name: str):
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


def _insert_bucket(engine: Engine, name: str, spec: tuple) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO rate_bucket (name, kind, limit_n, window_s, next_slot, window_start, used, "
                          "blocked_until, acquired_total, penalised_total, updated_at) VALUES (:n, :k, :l, :w, 0, "
                          "0, 0, 0, 0, 0, CURRENT_TIMESTAMP) ON CONFLICT (name) DO NOTHING"),
                     {"n": name, "k": _kind(spec), "l": int(spec[0]), "w": float(spec[1])})


def ensure_buckets(engine: Engine, scope: str, limits: Mapping[str, tuple]) -> list[tuple[str, str]]:
    """Create the rows of ``limits`` under ``scope`` (idempotent; ``renkei setup`` and every limiter call it).
    A bucket whose limit or window changed is reset (its ring restarts). Returns ``(bucket, outcome)``."""
    out: list[tuple[str, str]] = []
    for key, spec in limits.items():
        name = f"{scope}:{key}"
        n, w, kind = int(spec[0]), float(spec[1]), _kind(spec)
        with engine.begin() as conn:
            row = conn.execute(text("SELECT limit_n, window_s, kind FROM rate_bucket WHERE name = :n"),
                               {"n": name}).first()
            if row is not None and (row.limit_n, float(row.window_s), row.kind) == (n, w, kind):
                out.append((name, "exists"))
                continue
            if row is not None and kind == OBSERVED and row.kind == OBSERVED:
                # the API's own report sets the limit: a process starting up never resets the usage seen
                if float(row.window_s) != w:
                    conn.execute(text("UPDATE rate_bucket SET window_s = :w WHERE name = :n"), {"w": w, "n": name})
                out.append((name, "exists"))
                continue
            if row is not None:
                conn.execute(text("UPDATE rate_bucket SET limit_n = :l, window_s = :w, kind = :k, next_slot = 0, "
                                  "used = 0, window_start = 0, updated_at = CURRENT_TIMESTAMP WHERE name = :n"),
                             {"l": n, "w": w, "k": kind, "n": name})
                conn.execute(text("DELETE FROM rate_slot WHERE bucket = :n"), {"n": name})
                out.append((name, f"changed to {n}/{w:g}s"))
                continue
        _insert_bucket(engine, name, (n, w, kind))
        out.append((name, "created"))
    return out


def shared_backend(settings: Any, engine: Engine | None) -> bool:
    """True when the limits must be shared: ``RENKEI_RATE_LIMITS=shared``, or ``auto`` with a store on a
    database server (PostgreSQL: workers on several hosts or processes)."""
    mode = getattr(settings, "rate_limits", "auto") if settings is not None else "auto"
    if engine is None or mode == "local":
        return False
    return mode == "shared" or engine.dialect.name != "sqlite"


def limiter_for(settings: Any, store: Any, scope: str, limits: Mapping[str, tuple] | None,
                **kw: Any) -> RateLimiter | DbRateLimiter | None:
    """The limiter a connector factory hands its client: shared through ``store`` or in-process. ``store`` None:
    a caller with no store at hand (:func:`limiter_from_settings`)."""
    if not limits:
        return None
    if store is None:
        return limiter_from_settings(settings, scope, limits, **kw)
    engine = getattr(store, "engine", None)
    if shared_backend(settings, engine):
        return DbRateLimiter(engine, scope, limits, **kw)
    return RateLimiter(limits)


def limiter_from_settings(settings: Any, scope: str, limits: Mapping[str, tuple] | None,
                          **kw: Any) -> RateLimiter | DbRateLimiter | None:
    """The limiter of ``scope`` for a caller with no store at hand (a connection check, the webhook receiver):
    shared through the state store of ``settings.database_url`` (its cached engine, no migration) when the
    limits are shared, else in-process — the same rows, so the same pace, as the connector's client. A store
    that cannot hold the buckets (unreachable, not set up yet) → in-process, with a warning: the store's own
    check says why."""
    if not limits:
        return None
    url = str(getattr(settings, "database_url", "") or "")
    if not url or getattr(settings, "rate_limits", "auto") == "local":
        return RateLimiter(limits)
    try:
        from renkei.store.db import engine_for

        engine = engine_for(url)
        if not shared_backend(settings, engine):
            return RateLimiter(limits)
        return DbRateLimiter(engine, scope, limits, **kw)
    except Exception as exc:  # noqa: BLE001 - pace this process at least
        log.warning("rate limits %s not shared: the state store cannot hold them (%s)", scope, type(exc).__name__)
        return RateLimiter(limits)


__all__ = ["CALENDAR", "DbRateLimiter", "FIXED", "OBSERVED", "ROLLING", "ensure_buckets", "limiter_for",
           "limiter_from_settings", "shared_backend", "zone_day", "zone_offset_s"]
