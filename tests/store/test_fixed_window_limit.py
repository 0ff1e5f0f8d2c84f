"""Fixed (clock-aligned) pace windows — freee請求書's 30 per minute and 1,500 per hour reset on the clock, as its
documented ``X-Ratelimit-Reset-Minute`` header says. No window of the API may see more than ``n`` requests even
when a request is stamped just before a boundary and lands after it; a full window books the next one's first
slot; a 429 blocks the bucket like any pace."""

from __future__ import annotations

import threading
import time

from hypothesis import given, settings, strategies as st

from renkei.connectors.freee.client import FreeeLimits
from renkei.connectors.http import FIXED_WINDOW_MARGIN_S, RateLimiter, fixed_window_wait
from renkei.store.db import make_engine
from renkei.store.ratelimit import DbRateLimiter
from renkei.store.repo import Store


def _worst_window(stamps: list[float], window: float, edge: float) -> int:
    """The most requests any clock-aligned window can see when each may land anywhere in [stamp ± edge]."""
    counts: dict[int, int] = {}
    for a in stamps:
        for k in {int((a - edge) // window), int((a + edge) // window)}:
            counts[k] = counts.get(k, 0) + 1
    return max(counts.values(), default=0)


def _approx(x: float, y: float) -> bool:
    return abs(x - y) < 1e-9


def test_worked_examples():
    m = FIXED_WINDOW_MARGIN_S  # a booked slot sits 1 ms inside the edge
    # 60 s windows, 0.5 s edge. Nothing in the ring yet: go now.
    assert fixed_window_wait(None, 125.0, 60.0, 0.5) == 0.0
    # the 30th most recent request was stamped at 100.0 (window 60–120): at 125.0 the window 120–180 is free
    assert fixed_window_wait(100.0, 125.0, 60.0, 0.5) == 0.0
    # ... but at 119.0 window 60–120 is full: wait for 120 + the edge
    assert _approx(fixed_window_wait(100.0, 119.0, 60.0, 0.5), 1.5 + m)
    # the 30th most recent was stamped at 119.8, within the edge of 120: it counts in 120–180 too
    assert _approx(fixed_window_wait(119.8, 130.0, 60.0, 0.5), 50.5 + m)
    # at 120.2 the request itself could still land in 60–120 (within its edge), which is full
    assert _approx(fixed_window_wait(100.0, 120.2, 60.0, 0.5), 0.3 + m)
    # a slot booked for the next window (180.5) fills it: the one after that
    assert _approx(fixed_window_wait(180.5, 150.0, 60.0, 0.5), 90.5 + m)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 6), gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=40))
def test_no_window_ever_sees_more_than_n(n, gaps):
    """Requests asking at any times, each served at the first moment the rule allows (the ring holds the last
    n stamps): every window of 1 s counts at most n, whatever the edge case."""
    edge, window = 0.05, 1.0
    stamps: list[float] = []
    asked = 0.0
    for g in gaps:
        asked = max(asked + g, stamps[-1] if stamps else 0.0)
        oldest = stamps[-n] if len(stamps) >= n else None
        stamps.append(asked + fixed_window_wait(oldest, asked, window, edge))
    assert _worst_window(stamps, window, edge) <= n
    assert stamps == sorted(stamps)


def test_freee_invoice_limits_are_fixed_windows_unless_rolling_is_chosen():
    assert FreeeLimits().as_dict()["iv_minute"] == (30, 60.0, "fixed")
    assert FreeeLimits().as_dict()["iv_hour"] == (1500, 3600.0, "fixed")
    assert FreeeLimits(iv_window="rolling").as_dict()["iv_minute"] == (30, 60.0)


def test_shared_fixed_bucket_across_threads_books_the_next_window(db_url):
    Store.open(db_url, cached=False)  # migrations
    limits = {"iv_minute": (3, 1.0, "fixed")}
    lim = DbRateLimiter(make_engine(db_url), "freee:1", limits, record=True)
    other = DbRateLimiter(make_engine(db_url), "freee:1", limits, record=True)
    # start 0.6 s into a window: the burst of 8 spans three windows, the second one starting 0.4 s later
    time.sleep((1.0 - time.time() % 1.0) + 0.6)
    threads = [threading.Thread(target=(lim if i % 2 else other).acquire, args=("iv_minute",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps = sorted(t for t, _ in lim.history + other.history)
    assert len(stamps) == 8
    edge = lim._guard_s(1.0)
    assert _worst_window(stamps, 1.0, edge) <= 3
    # the allowance is used: 3 now, 3 when the next window opens 0.4 s later, 2 a second after that (a rolling
    # window would make them wait a full second after the first 3: span 2.0 s or more)
    assert stamps[-1] - stamps[0] < 1.7, stamps
    # a 429 blocks a fixed bucket for every process (a pace, not a cap)
    lim.penalise("iv_minute", 0.6)
    assert other.try_acquire("iv_minute") > 0.3


def test_the_in_process_limiter_counts_fixed_windows_the_same_way():
    now = [1000.2]
    lim = RateLimiter({"iv_minute": (3, 1.0, "fixed")}, clock=lambda: now[0], wall=lambda: now[0] + 5.0,
                      sleep=lambda s: now.__setitem__(0, now[0] + s), edge_s=0.05)
    stamps = []
    for _ in range(7):
        lim.acquire("iv_minute")
        stamps.append(now[0] + 5.0)
    assert _worst_window(stamps, 1.0, 0.05) <= 3
    assert stamps[3] >= 1006.05 - 1e-9 and stamps[6] >= 1007.05 - 1e-9, stamps
    lim.penalise("iv_minute", 0.4)  # a pace: blocked
    assert lim.try_acquire("iv_minute") > 0.3
