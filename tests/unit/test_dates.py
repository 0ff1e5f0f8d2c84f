"""Asia/Tokyo business dates and due dates from payment terms."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renkei.domain.dates import (
    TOKYO,
    BusinessDayShift,
    add_months,
    closing_date,
    due_date,
    is_business_day,
    is_month_end,
    month_end,
    shift_to_business_day,
    to_tokyo_date,
    today_tokyo,
)
from renkei.domain.model import PaymentTerms

UTC = timezone.utc
MONTH_END_NEXT_MONTH_END = PaymentTerms(closing_day=0, pay_month_offset=1, pay_day=0)  # 月末締め翌月末払い
CLOSE_20_PAY_NEXT_10 = PaymentTerms(closing_day=20, pay_month_offset=1, pay_day=10)  # 20日締め翌月10日払い


def test_to_tokyo_date_crosses_midnight_at_15_utc() -> None:
    assert to_tokyo_date(datetime(2026, 11, 30, 14, 59, 59, tzinfo=UTC)) == date(2026, 11, 30)
    assert to_tokyo_date(datetime(2026, 11, 30, 15, 0, tzinfo=UTC)) == date(2026, 12, 1)
    assert to_tokyo_date(datetime(2026, 12, 1, 0, 30, tzinfo=TOKYO)) == date(2026, 12, 1)


def test_to_tokyo_date_refuses_naive() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_tokyo_date(datetime(2026, 11, 30, 12, 0))


def test_today_tokyo_with_injected_clock() -> None:
    assert today_tokyo(datetime(2026, 12, 31, 15, 0, tzinfo=UTC)) == date(2027, 1, 1)
    assert isinstance(today_tokyo(), date)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year
        (date(2026, 1, 31), 2, date(2026, 3, 31)),  # back to the 31st (computed from the original)
        (date(2026, 11, 15), 2, date(2027, 1, 15)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
    ],
)
def test_add_months_clamps_to_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_month_end() -> None:
    assert month_end(date(2028, 2, 10)) == date(2028, 2, 29)
    assert month_end(date(2100, 2, 1)) == date(2100, 2, 28)  # not a leap year
    assert is_month_end(date(2026, 4, 30)) and not is_month_end(date(2026, 5, 30))


@pytest.mark.parametrize(
    ("txn", "closing_day", "expected"),
    [
        (date(2026, 11, 10), 20, date(2026, 11, 20)),
        (date(2026, 11, 20), 20, date(2026, 11, 20)),  # on the closing day itself
        (date(2026, 11, 21), 20, date(2026, 12, 20)),
        (date(2026, 12, 25), 20, date(2027, 1, 20)),  # year boundary
        (date(2026, 11, 10), 0, date(2026, 11, 30)),
        (date(2028, 2, 3), 0, date(2028, 2, 29)),
    ],
)
def test_closing_date(txn: date, closing_day: int, expected: date) -> None:
    assert closing_date(txn, closing_day) == expected


@pytest.mark.parametrize(
    ("txn", "terms", "expected"),
    [
        # 月末締め翌月末払い: 2026-11-10 closes 11-30 → due 12-31
        (date(2026, 11, 10), MONTH_END_NEXT_MONTH_END, date(2026, 12, 31)),
        (date(2026, 11, 30), MONTH_END_NEXT_MONTH_END, date(2026, 12, 31)),
        (date(2026, 12, 1), MONTH_END_NEXT_MONTH_END, date(2027, 1, 31)),
        (date(2027, 1, 5), MONTH_END_NEXT_MONTH_END, date(2027, 2, 28)),
        (date(2028, 1, 5), MONTH_END_NEXT_MONTH_END, date(2028, 2, 29)),  # leap year
        # 20日締め翌月10日払い
        (date(2026, 11, 10), CLOSE_20_PAY_NEXT_10, date(2026, 12, 10)),
        (date(2026, 11, 20), CLOSE_20_PAY_NEXT_10, date(2026, 12, 10)),
        (date(2026, 11, 21), CLOSE_20_PAY_NEXT_10, date(2027, 1, 10)),
        # 月末締め翌々月15日払い
        (date(2026, 1, 31), PaymentTerms(closing_day=0, pay_month_offset=2, pay_day=15), date(2026, 3, 15)),
        # 月末締め当月末払い
        (date(2026, 2, 10), PaymentTerms(closing_day=0, pay_month_offset=0, pay_day=0), date(2026, 2, 28)),
        # 25日締め翌月末払い: 1/26 is after the 25th → closes 2/25 → due 3/31
        (date(2026, 1, 26), PaymentTerms(closing_day=25, pay_month_offset=1, pay_day=0), date(2026, 3, 31)),
    ],
)
def test_due_date_from_payment_terms(txn: date, terms: PaymentTerms, expected: date) -> None:
    assert due_date(txn, terms) == expected


def test_default_terms_are_month_end_next_month_end() -> None:
    assert due_date(date(2026, 11, 10)) == date(2026, 12, 31)


def test_terms_paying_before_closing_are_refused() -> None:
    with pytest.raises(ValueError, match="before the closing date"):
        due_date(date(2026, 11, 10), PaymentTerms(closing_day=20, pay_month_offset=0, pay_day=10))


def test_business_days() -> None:
    assert is_business_day(date(2026, 11, 25))  # Wednesday
    assert not is_business_day(date(2026, 11, 28))  # Saturday
    assert not is_business_day(date(2026, 11, 23))  # 勤労感謝の日
    assert not is_business_day(date(2026, 12, 31))  # bank closing day
    assert is_business_day(date(2026, 12, 31), bank_closing_days=False)
    assert not is_business_day(date(2026, 11, 25), extra_holidays={date(2026, 11, 25)})


@pytest.mark.parametrize(
    ("d", "rule", "expected"),
    [
        (date(2027, 1, 10), BusinessDayShift.NEXT, date(2027, 1, 12)),  # Sun → (Mon 成人の日) → Tue
        (date(2027, 1, 10), BusinessDayShift.PREVIOUS, date(2027, 1, 8)),  # → Fri
        (date(2027, 1, 10), BusinessDayShift.NONE, date(2027, 1, 10)),
        (date(2026, 12, 31), BusinessDayShift.NEXT, date(2027, 1, 4)),  # 12/31–1/3 closed, 1/4 Mon
        (date(2026, 12, 31), BusinessDayShift.PREVIOUS, date(2026, 12, 30)),
        (date(2026, 5, 3), BusinessDayShift.NEXT, date(2026, 5, 7)),  # GW: 5/4, 5/5, 5/6 振替休日
        (date(2026, 9, 20), BusinessDayShift.NEXT, date(2026, 9, 24)),  # silver week: 9/22 国民の休日
        (date(2026, 11, 25), BusinessDayShift.NEXT, date(2026, 11, 25)),  # already a business day
    ],
)
def test_shift_to_business_day(d: date, rule: BusinessDayShift, expected: date) -> None:
    assert shift_to_business_day(d, rule) == expected


def test_due_date_with_shift() -> None:
    # 月末締め翌月末払い, txn 2027-01-15 → 2027-02-28 is a Sunday
    assert due_date(date(2027, 1, 15), MONTH_END_NEXT_MONTH_END) == date(2027, 2, 28)
    assert due_date(date(2027, 1, 15), shift=BusinessDayShift.PREVIOUS) == date(2027, 2, 26)
    assert due_date(date(2027, 1, 15), shift=BusinessDayShift.NEXT) == date(2027, 3, 1)
    # 20日締め翌月10日払い, txn 2026-11-25 → 2027-01-10 (Sun)
    assert due_date(date(2026, 11, 25), CLOSE_20_PAY_NEXT_10, shift=BusinessDayShift.NEXT) == date(2027, 1, 12)


@given(
    st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
    st.integers(0, 28),
    st.integers(1, 3),
    st.integers(0, 28),
)
def test_due_date_is_after_transaction_and_within_offset(txn, closing_day, offset, pay_day) -> None:
    terms = PaymentTerms(closing_day=closing_day, pay_month_offset=offset, pay_day=pay_day)
    due = due_date(txn, terms)
    assert due >= txn
    assert due - txn <= timedelta(days=31 * (offset + 2))  # ≤ a month to close + offset + to month end
    shifted = due_date(txn, terms, shift=BusinessDayShift.NEXT)
    assert shifted >= due and is_business_day(shifted)
