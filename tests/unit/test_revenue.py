"""Revenue allocation (売上按分) and straight-line monthly recognition that sums exactly."""

from __future__ import annotations

import doctest

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.domain.revenue import (
    JournalEntry,
    allocate_by_ssp,
    deferred_balance,
    largest_remainder,
    monthly_schedule,
    recognition_journal,
    schedule_by_time,
)

UTC = timezone.utc


# --- allocation vectors (proration-and-revenue.md §4.1, §5) ----------------------------------------------


def test_ey_ssp_allocation() -> None:
    # £/¥100,000 over SSP 75,000 / 14,000 / 20,000 (Σ 109,000): raw 68,807.34 / 12,844.04 / 18,348.62
    assert allocate_by_ssp(100_000, [75_000, 14_000, 20_000]) == [68_807, 12_844, 18_349]


def test_kpmg_bundle_discount() -> None:
    # TP 80 over SSP 20 / 30 / 40: raw 17.78 / 26.67 / 35.56 → 18 / 27 / 35 (naive rounding: 18/27/36 = 81)
    assert largest_remainder(80, [20, 30, 40]) == [18, 27, 35]


def test_equal_split_ties_go_to_the_earliest() -> None:
    assert largest_remainder(100_000, [1, 1, 1]) == [33_334, 33_333, 33_333]
    assert largest_remainder(2, [1, 1, 1]) == [1, 1, 0]
    assert largest_remainder(-100_000, [1, 1, 1]) == [-33_334, -33_333, -33_333]  # credit mirrors charge


def test_weights_may_be_decimal_or_fraction_but_not_float() -> None:
    assert largest_remainder(10, [Decimal("0.5"), Fraction(1, 2)]) == [5, 5]
    with pytest.raises(TypeError):
        largest_remainder(10, [0.5, 0.5])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        largest_remainder(10, [])
    with pytest.raises(ValueError):
        largest_remainder(10, [0, 0])
    with pytest.raises(ValueError):
        largest_remainder(10, [1, -1])
    assert largest_remainder(0, []) == []
    assert largest_remainder(7, [0, 3]) == [0, 7]


# --- straight-line schedules -------------------------------------------------------------------------------


def test_stripe_example_per_day() -> None:
    # ¥120,000 over 2026-06-15..2026-10-12 = 16 + 31 + 31 + 30 + 12 = 120 days → ¥1,000 a day
    s = monthly_schedule(120_000, date(2026, 6, 15), date(2026, 10, 12))
    assert [(e.month, e.days, e.amount) for e in s] == [
        (date(2026, 6, 1), 16, 16_000),
        (date(2026, 7, 1), 31, 31_000),
        (date(2026, 8, 1), 31, 31_000),
        (date(2026, 9, 1), 30, 30_000),
        (date(2026, 10, 1), 12, 12_000),
    ]
    assert (s[0].start, s[0].end, s[-1].start, s[-1].end) == (
        date(2026, 6, 15), date(2026, 6, 30), date(2026, 10, 1), date(2026, 10, 12))
    # deferred revenue (前受金) at the end of June: 104,000 (Stripe: 104.00 per day)
    assert s[0].deferred_after == 104_000
    assert deferred_balance(s, date(2026, 6, 30)) == 104_000
    assert deferred_balance(s, date(2026, 6, 29)) == 120_000
    assert deferred_balance(s, date(2026, 10, 31)) == 0


def test_stripe_example_per_second_jst_vs_utc_month_boundaries() -> None:
    start, end = datetime(2026, 6, 15, 12, tzinfo=UTC), datetime(2026, 10, 13, 12, tzinfo=UTC)
    # JST: June runs from 6/15 21:00 JST = 15.125 days → 15,125; October to 10/13 21:00 → 12.875 days
    assert [a for _, a in schedule_by_time(120_000, start, end)] == [15_125, 31_000, 31_000, 30_000, 12_875]
    assert [a for _, a in schedule_by_time(120_000, start, end, ZoneInfo("UTC"))] == [
        15_500, 31_000, 31_000, 30_000, 12_500]
    with pytest.raises(ValueError):
        schedule_by_time(1, datetime(2026, 1, 1), datetime(2026, 2, 1))


def test_uneven_months_tie_to_the_earliest() -> None:
    # ¥100,000 over 2026 Q1 (31 + 28 + 31 = 90 days): exact 34,444.44 / 31,111.11 / 34,444.44
    # floors 99,999 → the spare yen goes to January (tied with March, earliest wins)
    assert [e.amount for e in monthly_schedule(100_000, date(2026, 1, 1), date(2026, 3, 31))] == [
        34_445, 31_111, 34_444]


def test_leap_year_quarter() -> None:
    # 2024 Q1 = 31 + 29 + 31 = 91 days: exact 34,065.93 / 31,868.13 / 34,065.93; floors 99,998
    # → two spare yen to the two .93 remainders (January, March)
    s = monthly_schedule(100_000, date(2024, 1, 1), date(2024, 3, 31))
    assert [(e.days, e.amount) for e in s] == [(31, 34_066), (29, 31_868), (31, 34_066)]


def test_annual_contract_april_to_march() -> None:
    # ¥1,200,000 over FY 2026-04-01..2027-03-31 (365 days):
    # 31-day month 101,917.81, 30-day 98,630.14, February 92,054.79; floors sum 1,199,993 →
    # the 7 spare yen go to the 7 largest remainders = the seven 31-day months (.81 > Feb .79 > .14)
    s = monthly_schedule(1_200_000, date(2026, 4, 1), date(2027, 3, 31))
    by_days = {31: 101_918, 30: 98_630, 28: 92_054}
    assert [e.amount for e in s] == [by_days[e.days] for e in s]
    assert len(s) == 12 and sum(e.amount for e in s) == 1_200_000


def test_single_month_and_single_day() -> None:
    assert [e.amount for e in monthly_schedule(5_000, date(2026, 11, 10), date(2026, 11, 20))] == [5_000]
    (e,) = monthly_schedule(1, date(2026, 12, 31), date(2026, 12, 31))
    assert (e.month, e.days, e.amount, e.close_date) == (date(2026, 12, 1), 1, 1, date(2026, 12, 31))
    with pytest.raises(ValueError):
        monthly_schedule(1, date(2026, 12, 31), date(2026, 12, 30))


# --- journals ------------------------------------------------------------------------------------------------


def test_recognition_journal() -> None:
    s = monthly_schedule(120_000, date(2026, 6, 15), date(2026, 10, 12))
    j = recognition_journal(s, reference="renkei:deal:42", billed_on=date(2026, 6, 15))
    assert j[0] == JournalEntry(date(2026, 6, 15), "売掛金", "前受金", 120_000, "請求（前受計上） renkei:deal:42")
    assert [(e.entry_date, e.debit_account, e.credit_account, e.amount) for e in j[1:]] == [
        (date(2026, 6, 30), "前受金", "売上高", 16_000),
        (date(2026, 7, 31), "前受金", "売上高", 31_000),
        (date(2026, 8, 31), "前受金", "売上高", 31_000),
        (date(2026, 9, 30), "前受金", "売上高", 30_000),
        (date(2026, 10, 31), "前受金", "売上高", 12_000),
    ]
    assert j[1].memo == "2026年6月分 売上振替 renkei:deal:42"


def test_credit_note_journal_swaps_sides_and_skips_zero_months() -> None:
    s = monthly_schedule(-2, date(2026, 1, 30), date(2026, 2, 2))  # 2 + 2 days → −1 / −1
    assert [e.amount for e in s] == [-1, -1]
    j = recognition_journal(s)
    assert all((e.debit_account, e.credit_account, e.amount) == ("売上高", "前受金", 1) for e in j)
    zero = monthly_schedule(1, date(2026, 1, 31), date(2026, 2, 2))  # 1 vs 2 days: Feb gets it
    assert [e.amount for e in zero] == [0, 1] and len(recognition_journal(zero)) == 1


# --- properties ------------------------------------------------------------------------------------------------


@settings(max_examples=300)
@given(
    st.integers(min_value=-10**10, max_value=10**10),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2032, 12, 31)),
    st.integers(min_value=0, max_value=1200),
)
def test_schedule_always_sums_to_the_total(amount, start, length) -> None:
    end = start + timedelta(days=length)
    s = monthly_schedule(amount, start, end)
    assert sum(e.amount for e in s) == amount
    assert sum(e.days for e in s) == length + 1
    assert s[-1].deferred_after == 0
    for e in s:
        exact = Fraction(amount * e.days, length + 1)
        assert abs(e.amount - exact) < 1
        assert e.start.month == e.end.month and e.month == e.start.replace(day=1)


@settings(max_examples=300)
@given(st.integers(-10**12, 10**12), st.lists(st.integers(0, 10**9), min_size=1, max_size=40))
def test_largest_remainder_sums_exactly(total, weights) -> None:
    if sum(weights) == 0:
        weights = weights[:-1] + [1]
    parts = largest_remainder(total, weights)
    assert sum(parts) == total
    wsum = sum(weights)
    for p, w in zip(parts, weights):
        assert abs(p - Fraction(total * w, wsum)) < 1
    assert largest_remainder(-total, weights) == [-p for p in parts]


def test_docstring_examples() -> None:
    import renkei.domain.revenue

    assert doctest.testmod(renkei.domain.revenue).failed == 0
