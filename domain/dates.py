"""Asia/Tokyo business dates, month arithmetic and due dates from payment terms (支払条件).

Rules used
----------
* **Business date** = the calendar date in ``Asia/Tokyo`` (JST, UTC+9, no DST). Naive datetimes are
  refused: they are ambiguous between UTC (APIs) and JST (people).
* **Month arithmetic clamps to the month end** (``add_months(2026-01-31, 1) == 2026-02-28``); month
  offsets are always computed from the original date, so a 31st comes back to the 31st.
* **Due date** (:func:`due_date`): the transaction's 締め日 is the first ``closing_day`` on or after the
  transaction date (``0`` = 月末); the due date is ``pay_month_offset`` months after the closing month,
  on ``pay_day`` (``0`` = 月末, a day past the month end is clamped).
  月末締め翌月末払い: 2026-11-10 → closes 2026-11-30 → due **2026-12-31**.
  20日締め翌月10日払い: 2026-11-10 → closes 2026-11-20 → due **2026-12-10**.
* **Non-business days** (:func:`is_business_day`): Saturday, Sunday, national holidays (``jpholiday``)
  and, by default, the bank closing days 12/31, 1/2 and 1/3 (全銀 is closed; 1/1 is a holiday anyway).
  A due date on one of them is shifted by the named :class:`BusinessDayShift` rule
  (``NONE`` / ``PREVIOUS`` 前営業日 / ``NEXT`` 翌営業日). No yen rounding happens in this module.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo

import jpholiday

from renkei.domain.model import PaymentTerms

__all__ = [
    "TOKYO",
    "BusinessDayShift",
    "today_tokyo",
    "to_tokyo_date",
    "days_in_month",
    "month_end",
    "month_start",
    "is_month_end",
    "add_months",
    "add_days",
    "closing_date",
    "due_date",
    "is_bank_closing_day",
    "is_business_day",
    "shift_to_business_day",
]

TOKYO = ZoneInfo("Asia/Tokyo")


class BusinessDayShift(str, Enum):
    """What to do with a due date that falls on a weekend, holiday or bank closing day."""

    NONE = "none"  # keep the date as computed
    PREVIOUS = "previous"  # 前営業日 (pay earlier — common for 振込期日)
    NEXT = "next"  # 翌営業日

    @property
    def label_ja(self) -> str:
        return {"none": "調整なし", "previous": "前営業日", "next": "翌営業日"}[self.value]


def stored_in_tokyo(value: datetime) -> datetime:
    """A time read from the state store (naive = UTC, as the store writes it; aware: as given) in Asia/Tokyo."""
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(TOKYO)


def to_tokyo_date(value: datetime) -> date:
    """The Asia/Tokyo calendar date of an aware datetime (2026-11-30T15:00Z → 2026-12-01)."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError("naive datetime: give a timezone (UTC from APIs, Asia/Tokyo from people)")
    return value.astimezone(TOKYO).date()


def today_tokyo(now: datetime | None = None) -> date:
    """Today's business date in Asia/Tokyo; ``now`` (aware) may be injected for tests."""
    return to_tokyo_date(now if now is not None else datetime.now(timezone.utc))


def days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def month_start(d: date) -> date:
    return d.replace(day=1)


def month_end(d: date) -> date:
    """Last day of ``d``'s month (2028-02-10 → 2028-02-29)."""
    return d.replace(day=days_in_month(d.year, d.month))


def is_month_end(d: date) -> bool:
    return d.day == days_in_month(d.year, d.month)


def add_months(d: date, months: int, *, day: int | None = None) -> date:
    """``d`` moved by ``months`` calendar months, on ``day`` (default ``d.day``; 0 = month end), clamped
    to the target month's end. ``add_months(2024-01-31, 1) == 2024-02-29``."""
    total = d.year * 12 + (d.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    last = days_in_month(year, month)
    want = d.day if day is None else day
    if want == 0:
        want = last
    if want < 0:
        raise ValueError("day must be ≥ 0")
    return date(year, month, min(want, last))


def add_days(d: date, days: int) -> date:
    return d + timedelta(days=days)


def closing_date(transaction_date: date, closing_day: int) -> date:
    """締め日 that covers ``transaction_date``: the first ``closing_day`` (0 = 月末) on or after it.

    20日締め: 2026-11-10 → 2026-11-20; 2026-11-20 → 2026-11-20; 2026-11-21 → 2026-12-20.
    """
    if not 0 <= closing_day <= 31:
        raise ValueError("closing_day is 0 (month end) or 1..31")
    if closing_day == 0:
        return month_end(transaction_date)
    this_month = add_months(transaction_date, 0, day=closing_day)
    if transaction_date <= this_month:
        return this_month
    return add_months(transaction_date, 1, day=closing_day)


def is_bank_closing_day(d: date) -> bool:
    """12/31, 1/1, 1/2, 1/3: banks (全銀システム) are closed."""
    return (d.month, d.day) in {(12, 31), (1, 1), (1, 2), (1, 3)}


def is_business_day(
    d: date,
    *,
    bank_closing_days: bool = True,
    extra_holidays: Collection[date] = (),
) -> bool:
    """Not a weekend, not a national holiday (jpholiday, incl. 振替休日), not an extra holiday and —
    when ``bank_closing_days`` — not 12/31–1/3."""
    if d.weekday() >= 5:
        return False
    if jpholiday.is_holiday(d):
        return False
    if bank_closing_days and is_bank_closing_day(d):
        return False
    return d not in extra_holidays


def shift_to_business_day(
    d: date,
    rule: BusinessDayShift,
    *,
    bank_closing_days: bool = True,
    extra_holidays: Collection[date] = (),
) -> date:
    """Move ``d`` to the previous / next business day when it is not one (``NONE`` keeps it).

    2027-01-10 (Sun) with ``NEXT`` → 2027-01-12 (1/11 is 成人の日); with ``PREVIOUS`` → 2027-01-08.
    """
    rule = BusinessDayShift(rule)
    if rule is BusinessDayShift.NONE:
        return d
    step = timedelta(days=-1 if rule is BusinessDayShift.PREVIOUS else 1)
    out = d
    for _ in range(31):  # a run of non-business days is at most ~10 days (GW, 年末年始)
        if is_business_day(out, bank_closing_days=bank_closing_days, extra_holidays=extra_holidays):
            return out
        out += step
    raise ValueError(f"no business day within 31 days of {d.isoformat()}")


def due_date(
    transaction_date: date,
    terms: PaymentTerms | None = None,
    *,
    shift: BusinessDayShift = BusinessDayShift.NONE,
    bank_closing_days: bool = True,
    extra_holidays: Collection[date] = (),
) -> date:
    """支払期日 from 支払条件 (default 月末締め翌月末払い), optionally shifted off non-business days.

    * 月末締め翌月末払い (0, 1, 0): 2026-11-10 → 2026-12-31.
    * 20日締め翌月10日払い (20, 1, 10): 2026-11-10 → 2026-12-10; 2026-11-25 → 2027-01-10 (a Sunday;
      ``NEXT`` gives 2027-01-12, ``PREVIOUS`` 2027-01-08).
    * 月末締め翌々月15日払い (0, 2, 15): 2026-01-31 → 2026-03-15.

    Raises ``ValueError`` when the terms put the payment day before the closing date (e.g. 20日締め
    当月10日払い), which no invoice can honour.
    """
    terms = terms or PaymentTerms()
    closed = closing_date(transaction_date, terms.closing_day)
    due = add_months(closed, terms.pay_month_offset, day=terms.pay_day)
    if due < closed:
        raise ValueError(
            f"payment terms put the due date ({due.isoformat()}) before the closing date ({closed.isoformat()})"
        )
    return shift_to_business_day(due, shift, bank_closing_days=bank_closing_days, extra_holidays=extra_holidays)
