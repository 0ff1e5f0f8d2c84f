"""Rate limits and the daily cap of the sandbox (see :class:`~sandboxes.freee.config.FreeeSandboxConfig`).

* freee会計: rolling-hour limiter (:class:`sandboxes.common.SlidingWindowLimiter`); tripping it locks the
  key out for ``accounting_lockout_s`` (freee: "403, usable again after ~10 minutes").
* freee請求書: fixed windows aligned on the UTC minute, hour and day — freee's documented headers
  (``X-RateLimit-Reset: 2018-01-01T12:00:00.000000Z``, ``X-RateLimit-Reset-Day: 2018-01-02T00:00:00…Z``)
  reset on those boundaries — and the ``X-RateLimit-*`` headers on every response.
* daily cap: fixed UTC-day window per (API, company).

A request refused by a limit is not counted.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from renkei.sandboxes.common import Clock, SlidingWindowLimiter

from .config import FreeeSandboxConfig
from .errors import Api, forbidden, too_many_requests

__all__ = ["ApiLimits", "FixedWindowCounter", "iso_utc"]


def iso_utc(epoch_s: float) -> str:
    """freee's header format: ``2018-01-01T12:00:00.000000Z``."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FixedWindowCounter:
    """Counts hits per key in windows aligned on multiples of ``window_s`` since the epoch (UTC)."""

    def __init__(self, limit: int, window_s: int, clock: Clock) -> None:
        self.limit = int(limit)
        self.window_s = int(window_s)
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (window start, count)

    def _window(self) -> int:
        now_s = self._clock.now_ms() // 1000
        return now_s - now_s % self.window_s

    def used(self, key: str) -> int:
        start, count = self._counts.get(key, (-1, 0))
        return count if start == self._window() else 0

    def full(self, key: str) -> bool:
        return self.limit > 0 and self.used(key) >= self.limit

    def hit(self, key: str) -> None:
        window = self._window()
        start, count = self._counts.get(key, (window, 0))
        self._counts[key] = (window, (count if start == window else 0) + 1)

    def remaining(self, key: str) -> int:
        return max(0, self.limit - self.used(key))

    def reset_at(self) -> int:
        """Epoch seconds when the current window ends."""
        return self._window() + self.window_s

    def clear(self) -> None:
        self._counts.clear()


class ApiLimits:
    """All limits of one sandbox; :meth:`admit` is called once per authenticated API request."""

    def __init__(self, config: FreeeSandboxConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self.accounting_hour = SlidingWindowLimiter(config.accounting_limit_per_hour, 3600, clock=clock)
        self._locked_until_ms: dict[str, int] = {}
        self.iv_minute = FixedWindowCounter(config.iv_limit_per_minute, 60, clock)
        self.iv_hour = FixedWindowCounter(config.iv_limit_per_hour, 3600, clock)
        self.daily = FixedWindowCounter(config.daily_cap, 86400, clock)
        # 請求書 may have a cap of its own (``iv_daily_cap``); by default it shares ``daily_cap``'s number
        self.iv_daily = FixedWindowCounter(config.iv_daily_cap or config.daily_cap, 86400, clock)

    def reset(self) -> None:
        with self._lock:
            self.accounting_hour.reset()
            self._locked_until_ms.clear()
            self.iv_minute.clear()
            self.iv_hour.clear()
            self.daily.clear()
            self.iv_daily.clear()

    def admit(self, api: Api, company_id: int | None) -> dict[str, str]:
        """Count the request or raise freee's error. Returns headers to add to the response."""
        key = str(company_id) if company_id is not None else "-"
        with self._lock:
            if api == "accounting":
                return self._admit_accounting(key)
            return self._admit_iv(key)

    def _admit_accounting(self, key: str) -> dict[str, str]:
        now = self._clock.now_ms()
        locked_until = self._locked_until_ms.get(key, 0)
        if now < locked_until:
            raise forbidden("accounting", "APIの利用制限中です。しばらく時間をおいてから再度お試しください。")
        daily_key = f"accounting:{key}"
        if self.daily.full(daily_key):
            raise forbidden("accounting", "1日のAPI利用回数の上限に達しました。")
        ok, _, _ = self.accounting_hour.try_acquire(key)
        if not ok:
            self._locked_until_ms[key] = now + self._config.accounting_lockout_s * 1000
            raise forbidden("accounting", "APIの利用制限中です。しばらく時間をおいてから再度お試しください。")
        self.daily.hit(daily_key)
        return {}

    def _iv_headers(self, key: str, daily_key: str) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.iv_hour.limit),
            "X-RateLimit-Remaining": str(self.iv_hour.remaining(key)),
            "X-RateLimit-Reset": iso_utc(self.iv_hour.reset_at()),
            "X-Ratelimit-Limit-Minute": str(self.iv_minute.limit),
            "X-Ratelimit-Remaining-Minute": str(self.iv_minute.remaining(key)),
            "X-Ratelimit-Reset-Minute": iso_utc(self.iv_minute.reset_at()),
        }
        if self.iv_daily.limit > 0:
            headers |= {
                "X-RateLimit-Limit-Day": str(self.iv_daily.limit),
                "X-RateLimit-Remaining-Day": str(self.iv_daily.remaining(daily_key)),
                "X-RateLimit-Reset-Day": iso_utc(self.iv_daily.reset_at()),
            }
        return headers

    def _admit_iv(self, key: str) -> dict[str, str]:
        daily_key = f"iv:{key}"
        for counter, what, k in (
            (self.iv_daily, "1日", daily_key),
            (self.iv_hour, "1時間", key),
            (self.iv_minute, "1分間", key),
        ):
            if counter.full(k):
                raise too_many_requests(
                    f"{what}あたりのリクエスト回数の上限（{counter.limit}回）を超えました。",
                    limit=counter.limit,
                    period_s=counter.window_s,
                    reset_iso=iso_utc(counter.reset_at()),
                    headers=self._iv_headers(key, daily_key),
                )
        for counter, k in ((self.iv_minute, key), (self.iv_hour, key), (self.iv_daily, daily_key)):
            if counter.limit > 0:
                counter.hit(k)
        return self._iv_headers(key, daily_key)
