"""A calendar bucket's day in a zone with daylight saving (``RENKEI_HUBSPOT_TIMEZONE=America/New_York``):
the day runs from the zone's real midnight to the next one — 23 h on the spring change, 25 h on the autumn
one — whatever the offset was when the limiter was built. The limiter's clock is fixed (SQLite)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from renkei.store.db import make_engine
from renkei.store.ratelimit import DbRateLimiter, zone_day
from renkei.store.repo import Store

NY = "America/New_York"


def _at(text: str, zone: str = NY) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def test_day_boundaries_follow_the_zones_midnights_across_dst(tmp_path):
    # the pure day: 2026-03-08 (clocks forward) is 23 h, 2026-11-01 (clocks back) 25 h, other days 24 h
    spring = zone_day(NY, _at("2026-03-08T12:00"))
    autumn = zone_day(NY, _at("2026-11-01T12:00"))
    assert (_utc(spring[0]), spring[1] - spring[0]) == ("2026-03-08 05:00", 23 * 3600)
    assert (_utc(autumn[0]), autumn[1] - autumn[0]) == ("2026-11-01 04:00", 25 * 3600)
    assert _utc(zone_day(NY, _at("2026-11-02T00:00"))[0]) == "2026-11-02 05:00"  # EST midnight the day after
    tokyo = zone_day("Asia/Tokyo", _at("2026-11-01T08:59", "Asia/Tokyo"))
    assert (_utc(tokyo[0]), tokyo[1] - tokyo[0]) == ("2026-10-31 15:00", 24 * 3600)
    # 00:30 on the night of the change (the second 01:00 hour has not come yet): still 11-01
    assert zone_day(NY, _at("2026-11-01T23:59")) == autumn

    # the limiter, built in summer (offset -4 h) with the account's zone, on a fixed clock
    url = f"sqlite:///{tmp_path / 'rl.db'}"
    Store.open(url, cached=False)
    clock = {"now": _at("2026-07-01T09:00")}
    lim = DbRateLimiter(make_engine(url), "hubspot:x", {"daily": (2, 86400.0, "calendar")},
                        calendar_offset_s=-4 * 3600, calendar_zone=NY)

    def set_clock(text: str) -> None:
        clock["now"] = _at(text)
        lim._now_sql = repr(float(clock["now"]))  # the database's clock, fixed

    set_clock("2026-11-01T12:00")  # EST since 02:00
    assert lim.try_acquire("daily") == 0.0 and lim.try_acquire("daily") == 0.0
    # used up: the day ends at the zone's next midnight, 05:00 UTC — 12 h away, not the summer offset's 11 h
    assert lim.try_acquire("daily") == 12 * 3600
    set_clock("2026-11-01T23:30")  # 04:30 UTC: past midnight at -4 h, still 11-01 in New York
    assert lim.try_acquire("daily") == 30 * 60
    set_clock("2026-11-02T00:00")  # the zone's midnight: a new day
    assert lim.try_acquire("daily") == 0.0
    assert lim.state()["hubspot:x:daily"]["used"] == 1

    # spring: 2026-03-08 has 23 h; used up at 00:30 EST, the day ends 22.5 h later (03-09 04:00 UTC)
    set_clock("2026-03-08T00:30")
    lim.try_acquire("daily"), lim.try_acquire("daily")
    assert lim.try_acquire("daily") == 22.5 * 3600
    set_clock("2026-03-08T22:00")  # still the same day
    assert lim.try_acquire("daily") == 2 * 3600
    set_clock("2026-03-09T00:00")
    assert lim.try_acquire("daily") == 0.0
