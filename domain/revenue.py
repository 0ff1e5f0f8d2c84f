"""Revenue allocation (売上按分) and straight-line monthly recognition for month-close journals.

A billed amount for a service period is recognised straight-line by days (ASC 606 / IFRS 15 ratable
recognition, proration-and-revenue.md §4.2): month ``m`` gets ``amount × days_in(m ∩ service) /
days(service)``. The billed amount is first booked to 前受金 (advance received); each month close moves
that month's share to 売上高 (sales) — :func:`recognition_journal`.

Rounding rule used: **largest remainder** (最大剰余法) — every share is floored (on the magnitude), then
the yen left over go one each to the shares with the largest fractional remainders; **ties go to the
earliest share**. Shares therefore always add up **exactly** to the billed amount, and no share differs
from its exact value by ¥1 or more. Negative amounts (credit notes) are split by their magnitude and
the sign restored, so a credit's schedule mirrors its charge's.

Month boundaries are Asia/Tokyo (Japanese books close months in JST); :func:`schedule_by_time` shows
why the time zone of boundaries is a policy parameter. Amounts are whatever basis the caller gives
(normally 税抜 — consumption tax is not revenue).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from renkei.domain.dates import TOKYO, add_months, month_end, month_start

__all__ = [
    "largest_remainder",
    "allocate_by_ssp",
    "RecognitionEntry",
    "monthly_schedule",
    "schedule_by_time",
    "JournalEntry",
    "recognition_journal",
    "deferred_balance",
]


def _fraction(value: int | Decimal | Fraction) -> Fraction:
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError("weights are int, Decimal or Fraction (no floats)")
    return Fraction(value)


def largest_remainder(total: int, weights: Sequence[int | Decimal | Fraction]) -> list[int]:
    """Split ``total`` yen in proportion to ``weights``; parts sum exactly to ``total``.

    Floor each exact share, then give the leftover yen to the largest remainders, ties to the earliest.

    >>> largest_remainder(100_000, [1, 1, 1])
    [33334, 33333, 33333]
    >>> largest_remainder(80, [20, 30, 40])      # KPMG: 17.78 / 26.67 / 35.56
    [18, 27, 35]
    """
    if isinstance(total, bool) or not isinstance(total, int):
        raise TypeError("total is int yen")
    ws = [_fraction(w) for w in weights]
    if not ws:
        if total != 0:
            raise ValueError("cannot split a non-zero amount over no parts")
        return []
    if any(w < 0 for w in ws):
        raise ValueError("weights must be ≥ 0")
    wsum = sum(ws)
    if wsum == 0:
        raise ValueError("weights must not all be zero")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    exact = [magnitude * w / wsum for w in ws]
    parts = [int(e.numerator // e.denominator) for e in exact]
    left = magnitude - sum(parts)
    # largest remainder first; equal remainders keep their original (earliest-first) order
    order = sorted(range(len(ws)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return [sign * p for p in parts]


def allocate_by_ssp(transaction_price: int, standalone_prices: Sequence[int | Decimal]) -> list[int]:
    """ASC 606-10-32-31 relative standalone-selling-price allocation with largest remainder.

    EY Ex. 28.53: ¥100,000 over SSP 75,000 / 14,000 / 20,000 → 68,807 / 12,844 / 18,349.
    """
    return largest_remainder(transaction_price, list(standalone_prices))


@dataclass(frozen=True)
class RecognitionEntry:
    """One month's share: ``start``..``end`` (inclusive) is the part of the service period in that month."""

    month: date  # first day of the month
    start: date
    end: date
    days: int
    amount: int
    deferred_after: int  # 前受金 balance after this month's recognition

    @property
    def close_date(self) -> date:
        """The month-close date the journal is dated (月末)."""
        return month_end(self.month)


def monthly_schedule(amount: int, start: date, end: date) -> list[RecognitionEntry]:
    """Straight-line-by-days monthly schedule for ``amount`` over ``[start, end]`` (inclusive).

    ¥120,000 over 2026-06-15..2026-10-12 (120 days) → 16,000 / 31,000 / 31,000 / 30,000 / 12,000.
    ¥100,000 over 2026-01-01..2026-03-31 (31 + 28 + 31 = 90 days): exact 34,444.44 / 31,111.11 /
    34,444.44 → floors sum to 99,999; the spare yen goes to January (tie with March, earliest wins) →
    34,445 / 31,111 / 34,444.
    """
    if end < start:
        raise ValueError("the service period ends before it starts")
    months: list[tuple[date, date, date, int]] = []
    cursor = start
    while cursor <= end:
        last = min(month_end(cursor), end)
        months.append((month_start(cursor), cursor, last, (last - cursor).days + 1))
        cursor = last + timedelta(days=1)
    shares = largest_remainder(amount, [m[3] for m in months])
    out: list[RecognitionEntry] = []
    remaining = amount
    for (month, s, e, days), share in zip(months, shares):
        remaining -= share
        out.append(RecognitionEntry(month, s, e, days, share, remaining))
    return out


def schedule_by_time(amount: int, start: datetime, end: datetime, tz: ZoneInfo = TOKYO) -> list[tuple[date, int]]:
    """Per-second straight-line shares by calendar month in ``tz`` for ``[start, end)`` (aware datetimes).

    Stripe's example ¥120,000 from 2026-06-15 12:00 UTC to 2026-10-13 12:00 UTC: JST months →
    15,125 / 31,000 / 31,000 / 30,000 / 12,875; UTC months → 15,500 / 31,000 / 31,000 / 30,000 / 12,500.
    """
    for v in (start, end):
        if v.tzinfo is None or v.tzinfo.utcoffset(v) is None:
            raise ValueError("give aware datetimes")
    if end <= start:
        raise ValueError("the service period ends before it starts")
    s_local, e_local = start.astimezone(tz), end.astimezone(tz)
    bounds: list[tuple[date, datetime, datetime]] = []
    m = date(s_local.year, s_local.month, 1)
    while True:
        m_start = datetime(m.year, m.month, 1, tzinfo=tz)
        nxt = add_months(m, 1)
        m_next = datetime(nxt.year, nxt.month, 1, tzinfo=tz)
        lo, hi = max(m_start, s_local), min(m_next, e_local)
        if lo >= e_local:
            break
        if hi > lo:
            bounds.append((m, lo, hi))
        m = nxt
    seconds = [int((hi - lo).total_seconds()) for _, lo, hi in bounds]
    return list(zip([b[0] for b in bounds], largest_remainder(amount, seconds)))


@dataclass(frozen=True)
class JournalEntry:
    """A two-line journal (仕訳): debit / credit accounts with one amount."""

    entry_date: date
    debit_account: str
    credit_account: str
    amount: int
    memo: str


def recognition_journal(
    schedule: Sequence[RecognitionEntry],
    *,
    reference: str = "",
    billed_on: date | None = None,
    receivable_account: str = "売掛金",
    advance_account: str = "前受金",
    sales_account: str = "売上高",
) -> list[JournalEntry]:
    """Month-close journals: 前受金 / 売上高 for each month's share, dated the month end.

    With ``billed_on`` the billing entry 売掛金 / 前受金 for the whole amount comes first. Months with a
    zero share produce no entry. A negative schedule (credit note) swaps debit and credit.
    """
    out: list[JournalEntry] = []
    total = sum(e.amount for e in schedule)
    tag = f" {reference}" if reference else ""
    if billed_on is not None and total:
        out.append(_entry(billed_on, receivable_account, advance_account, total, f"請求（前受計上）{tag}".rstrip()))
    for e in schedule:
        if e.amount == 0:
            continue
        memo = f"{e.month.year}年{e.month.month}月分 売上振替{tag}".rstrip()
        out.append(_entry(e.close_date, advance_account, sales_account, e.amount, memo))
    return out


def _entry(d: date, debit: str, credit: str, amount: int, memo: str) -> JournalEntry:
    if amount < 0:
        return JournalEntry(d, credit, debit, -amount, memo)
    return JournalEntry(d, debit, credit, amount, memo)


def deferred_balance(schedule: Sequence[RecognitionEntry], as_of: date) -> int:
    """前受金 still deferred after every month closing on or before ``as_of``."""
    total = sum(e.amount for e in schedule)
    recognised = sum(e.amount for e in schedule if e.close_date <= as_of)
    return total - recognised
