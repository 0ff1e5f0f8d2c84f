"""Proration (日割り): reference vectors in yen, billing periods, day counts, behaviours, properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from renkei.domain.dates import days_in_month
from renkei.domain.invoice import REDUCED_RATE_MARK, InvoiceParams, build_invoice
from renkei.domain.model import Company, Deal, LineItem, TaxCategory
from renkei.domain.money import Rounding
from renkei.domain.proration import (
    BillingFrequency,
    BillingPeriod,
    CancelMode,
    DayCount,
    PlanItem,
    ProrationBehavior,
    ProrationKind,
    ProrationPolicy,
    billing_period,
    billing_periods,
    count_days,
    days_360,
    period_fraction,
    period_length,
    prorate_cancellation,
    prorate_change,
    prorate_quantity_change,
)

NOV_2026 = BillingPeriod(date(2026, 11, 1), date(2026, 11, 30))  # 30 days
BASIC = PlanItem("Basic", 10_000, code="BASIC")
PRO = PlanItem("Pro", 20_000, code="PRO")


def amounts(result) -> list[int]:
    return [line.amount for line in result.lines]


# --- reference vectors converted to yen (proration-and-revenue.md §1, §2, §5) -------------------------


def test_upgrade_at_exactly_half_the_period() -> None:
    # ¥10,000 → ¥20,000 effective 11/16: 11/16..11/30 = 15 of 30 days → −5,000, +10,000, net +5,000
    r = prorate_change(BASIC, PRO, NOV_2026, date(2026, 11, 16))
    credit, charge = r.lines
    assert (credit.kind, credit.amount, credit.days, credit.total_days) == (ProrationKind.CREDIT, -5_000, 15, 30)
    assert (charge.kind, charge.amount, charge.days, charge.total_days) == (ProrationKind.CHARGE, 10_000, 15, 30)
    assert (credit.period_start, credit.period_end) == (date(2026, 11, 16), date(2026, 11, 30))
    assert credit.description == "Basic 未使用分（日割り 2026/11/16〜2026/11/30 15/30日）"
    assert charge.description == "Pro 残期間分（日割り 2026/11/16〜2026/11/30 15/30日）"
    assert (credit.rounding, charge.rounding) == (Rounding.TRUNCATE, Rounding.HALF_UP)
    assert r.net == 5_000
    assert r.add_to_next_invoice and not r.invoice_now


@pytest.mark.parametrize(
    ("period", "effective", "day_count"),
    [
        (NOV_2026, date(2026, 11, 16), DayCount.ACTUAL),  # 30-day month, 15 actual days left
        (BillingPeriod(date(2026, 12, 1), date(2026, 12, 31)), date(2026, 12, 17), DayCount.ACTUAL_360),  # 15/30
        (BillingPeriod(date(2026, 12, 1), date(2026, 12, 31)), date(2026, 12, 16), DayCount.THIRTY_360),  # 16..30→15
    ],
)
def test_thirty_day_month_case(period: BillingPeriod, effective: date, day_count: DayCount) -> None:
    # Chargebee: Plan A ¥3,000 → Plan B ¥10,000 with 15 of 30 days left:
    # credit 3,000/30 × 15 = 1,500; charge 10,000/30 × 15 = 5,000; net 3,500
    r = prorate_change(PlanItem("A", 3_000), PlanItem("B", 10_000), period, effective,
                       ProrationPolicy(day_count=day_count))
    assert amounts(r) == [-1_500, 5_000] and r.net == 3_500
    assert [(ln.days, ln.total_days) for ln in r.lines] == [(15, 30), (15, 30)]


def test_api_doc_example_on_the_next_invoice() -> None:
    # ¥10,000 → ¥20,000 on 5/15, anchor 5/1: 5/15..5/31 = 17 of 31 days
    period = billing_period(date(2026, 5, 1), "monthly", date(2026, 5, 15))
    assert period == BillingPeriod(date(2026, 5, 1), date(2026, 5, 31))
    r = prorate_change(BASIC, PRO, period, date(2026, 5, 15))
    # credit 10,000 × 17/31 = 5,483.87 → 5,483 (TRUNCATE); charge 20,000 × 17/31 = 10,967.74 → 10,968 (HALF_UP)
    assert amounts(r) == [-5_483, 10_968] and r.net == 5_485
    # June invoice = renewal ¥20,000 + proration ¥5,485 = ¥25,485 (Stripe's "250" is the half-month figure);
    # tax once per rate on 25,485: 2,548.5 → 2,548 (切り捨て)
    deal = Deal(crm_id="s1", name="Pro", stage="won", close_date=date(2026, 6, 1))
    params = InvoiceParams(issuer_name="x", issuer_registration_number=None, issue_date=date(2026, 6, 1))
    inv = build_invoice(deal, [LineItem(name="Pro", quantity=Decimal(1), unit_price=20_000)],
                        Company(name="顧客"), params, extra_lines=r.invoice_lines())
    assert [ln.amount for ln in inv.lines] == [20_000, -5_483, 10_968]
    assert (inv.rate_totals[0].subtotal, inv.rate_totals[0].tax, inv.total) == (25_485, 2_548, 28_033)


def test_per_second_vector_at_day_granularity() -> None:
    # Stripe: ¥1,000 monthly, period 2017-02-14..03-14, change at 2017-03-03 19:14:48 UTC (= 03-04 04:14 JST).
    # Per second: −round(1000 × 881112/2419200) = −364. By JST day: 03-04..03-13 = 10 of 28 days
    # → 1,000 × 10/28 = 357.14 → −357.
    period = billing_period(date(2017, 2, 14), "monthly", date(2017, 3, 4))
    assert (period.start, period.end, period.days) == (date(2017, 2, 14), date(2017, 3, 13), 28)
    r = prorate_change(PlanItem("widgets", 1_000), None, period, date(2017, 3, 4))
    assert amounts(r) == [-357]


def test_seat_change() -> None:
    # 235 → 240 seats at ¥300 with 10 of 31 days left (1/22..1/31)
    period = BillingPeriod(date(2027, 1, 1), date(2027, 1, 31))
    seats = PlanItem("シート", 300, quantity=Decimal(235))
    r = prorate_quantity_change(seats, 240, period, date(2027, 1, 22))
    # credit 70,500 × 10/31 = 22,741.94 → −22,741; charge 72,000 × 10/31 = 23,225.81 → +23,226
    assert amounts(r) == [-22_741, 23_226] and r.net == 485
    assert r.lines[0].description.startswith("シート ×235 未使用分")
    # the published (USD, approximate) figures ×100: ≈ −22,750 / +23,200
    assert abs(r.lines[0].amount + 22_750) < 0.005 * 22_750 and abs(r.lines[1].amount - 23_200) < 0.005 * 23_200


def test_quantity_change_and_removal() -> None:
    seats = PlanItem("シート", 1_000, quantity=Decimal(3))
    assert amounts(prorate_quantity_change(seats, 5, NOV_2026, date(2026, 11, 16))) == [-1_500, 2_500]
    assert amounts(prorate_quantity_change(seats, 0, NOV_2026, date(2026, 11, 16))) == [-1_500]
    assert amounts(prorate_quantity_change(seats, "1.5", NOV_2026, date(2026, 11, 16))) == [-1_500, 750]


# --- day counts (Zuora table, proration-and-revenue.md §3) ---------------------------------------------

ZUORA = [
    # (start, end, actual, actual_360, strict_30_360) — inclusive service periods inside one month
    (date(2021, 1, 27), date(2021, 1, 31), (5, 31), (5, 30), (4, 30)),
    (date(2021, 2, 27), date(2021, 2, 28), (2, 28), (2, 30), (4, 30)),
    (date(2020, 2, 1), date(2020, 2, 29), (29, 29), (29, 30), (30, 30)),  # leap-year February
    (date(2021, 4, 21), date(2021, 4, 29), (9, 30), (9, 30), (9, 30)),
]


@pytest.mark.parametrize(("start", "end", "actual", "a360", "s360"), ZUORA)
def test_day_count_table(start, end, actual, a360, s360) -> None:
    month = BillingPeriod(start.replace(day=1), (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1))
    for convention, expected in ((DayCount.ACTUAL, actual), (DayCount.ACTUAL_360, a360), (DayCount.THIRTY_360, s360)):
        assert (count_days(start, end, convention), period_length(month, convention)) == expected


def test_whole_period_is_always_the_full_fraction() -> None:
    feb = BillingPeriod(date(2020, 2, 1), date(2020, 2, 29))
    jan = BillingPeriod(date(2021, 1, 1), date(2021, 1, 31))
    for p in (feb, jan):
        for dc in DayCount:
            days, total = period_fraction(p, p.start, p.end, dc)
            assert days == total
    # ACTUAL_360 caps a 31-day month's remainder at 30: a change on 1/2 still leaves 30/30
    assert period_fraction(jan, date(2021, 1, 2), jan.end, DayCount.ACTUAL_360) == (30, 30)
    assert period_fraction(jan, date(2021, 1, 2), jan.end, DayCount.ACTUAL) == (30, 31)


def test_days_360() -> None:
    assert days_360(date(2021, 1, 31), date(2021, 1, 31)) == 1
    assert days_360(date(2021, 11, 15), date(2021, 12, 14)) == 30
    assert days_360(date(2024, 1, 1), date(2024, 12, 31)) == 360
    assert days_360(date(2021, 2, 1), date(2021, 1, 31)) == 0


def test_quarterly_and_annual_denominators() -> None:
    q = billing_period(date(2026, 1, 1), BillingFrequency.QUARTERLY, date(2026, 2, 10))
    assert (q.start, q.end, q.days) == (date(2026, 1, 1), date(2026, 3, 31), 90)
    assert period_length(q, DayCount.THIRTY_360) == 90
    a = billing_period(date(2024, 1, 1), "annually", date(2024, 6, 1))
    assert (a.days, period_length(a, DayCount.ACTUAL_360)) == (366, 360)


# --- billing periods ---------------------------------------------------------------------------------------


def test_month_end_anchor_goes_to_28th_and_back_to_31st() -> None:
    got = [(p.start, p.end) for p in billing_periods(date(2026, 1, 31), "monthly", 5)]
    assert got == [
        (date(2026, 1, 31), date(2026, 2, 27)),
        (date(2026, 2, 28), date(2026, 3, 30)),
        (date(2026, 3, 31), date(2026, 4, 29)),
        (date(2026, 4, 30), date(2026, 5, 30)),
        (date(2026, 5, 31), date(2026, 6, 29)),
    ]


def test_month_end_anchor_in_a_leap_year() -> None:
    got = [(p.start, p.end) for p in billing_periods(date(2024, 1, 31), "monthly", 2)]
    assert got == [(date(2024, 1, 31), date(2024, 2, 28)), (date(2024, 2, 29), date(2024, 3, 30))]


def test_quarterly_and_annual_month_end_anchors() -> None:
    q = [(p.start, p.end) for p in billing_periods(date(2026, 11, 30), "quarterly", 3)]
    assert q == [(date(2026, 11, 30), date(2027, 2, 27)), (date(2027, 2, 28), date(2027, 5, 29)),
                 (date(2027, 5, 30), date(2027, 8, 29))]
    a = billing_periods(date(2024, 2, 29), "annually", 5)
    assert [p.start for p in a] == [date(2024, 2, 29), date(2025, 2, 28), date(2026, 2, 28), date(2027, 2, 28),
                                    date(2028, 2, 29)]  # back to the 29th in the next leap year


def test_billing_period_lookup() -> None:
    anchor = date(2026, 1, 31)
    assert billing_period(anchor, "monthly", date(2026, 3, 15)) == BillingPeriod(date(2026, 2, 28), date(2026, 3, 30))
    assert billing_period(anchor, "monthly", date(2026, 3, 31)) == BillingPeriod(date(2026, 3, 31), date(2026, 4, 29))
    assert billing_period(anchor, "monthly", anchor).start == anchor
    with pytest.raises(ValueError, match="before the subscription starts"):
        billing_period(anchor, "monthly", date(2026, 1, 30))


def test_billing_frequency_parse() -> None:
    assert BillingFrequency.parse("Annually") is BillingFrequency.ANNUALLY
    assert BillingFrequency.parse("yearly").months == 12
    assert BillingFrequency.parse("per_six_months").months == 6
    assert BillingFrequency.parse("四半期") is BillingFrequency.QUARTERLY
    with pytest.raises(ValueError):
        BillingFrequency.parse("weekly")


# --- first / last day, leap years ----------------------------------------------------------------------------


def test_change_on_the_first_day_swaps_whole_periods() -> None:
    r = prorate_change(BASIC, PRO, NOV_2026, date(2026, 11, 1))
    assert amounts(r) == [-10_000, 20_000]  # the credit is exactly what was billed
    assert [(ln.days, ln.total_days) for ln in r.lines] == [(30, 30), (30, 30)]


def test_change_on_the_last_day() -> None:
    r = prorate_change(BASIC, PRO, NOV_2026, date(2026, 11, 30))
    # 1/30: credit 333.33 → −333 (TRUNCATE); charge 666.67 → 667 (HALF_UP)
    assert amounts(r) == [-333, 667]


def test_change_on_the_next_period_start_prorates_nothing() -> None:
    r = prorate_change(BASIC, PRO, NOV_2026, date(2026, 12, 1))
    assert r.lines == () and r.net == 0 and not r.invoice_now


def test_change_outside_the_period_is_refused() -> None:
    for d in (date(2026, 10, 31), date(2026, 12, 2)):
        with pytest.raises(ValueError, match="outside the billing period"):
            prorate_change(BASIC, PRO, NOV_2026, d)


def test_leap_february() -> None:
    feb24 = billing_period(date(2024, 1, 1), "monthly", date(2024, 2, 15))
    assert feb24.days == 29
    # ¥29,000 plan, 2/15..2/29 = 15 of 29 days → 15,000
    assert amounts(prorate_change(None, PlanItem("X", 29_000), feb24, date(2024, 2, 15))) == [15_000]
    feb23 = billing_period(date(2023, 1, 1), "monthly", date(2023, 2, 15))
    # ¥28,000 plan, 2/15..2/28 = 14 of 28 days → 14,000
    assert amounts(prorate_change(None, PlanItem("X", 28_000), feb23, date(2023, 2, 15))) == [14_000]


def test_leap_year_annual_last_day() -> None:
    year = billing_period(date(2024, 1, 1), "annually", date(2024, 12, 31))
    # ¥366,000 a year, cancelled from 12/31: 1 of 366 days → −1,000
    r = prorate_cancellation(PlanItem("年額", 366_000), year, date(2024, 12, 31), CancelMode.IMMEDIATELY)
    assert amounts(r) == [-1_000] and r.service_end == date(2024, 12, 30)


# --- behaviours and cancellation -----------------------------------------------------------------------------


def test_behaviours() -> None:
    now = prorate_change(BASIC, PRO, NOV_2026, date(2026, 11, 16), ProrationPolicy(ProrationBehavior.ALWAYS_INVOICE))
    assert now.invoice_now and not now.add_to_next_invoice and now.net == 5_000
    none = prorate_change(BASIC, PRO, NOV_2026, date(2026, 11, 16), ProrationPolicy(ProrationBehavior.NONE))
    assert none.lines == () and not none.invoice_now and not none.add_to_next_invoice


def test_cancellation_at_period_end_vs_immediately() -> None:
    end = prorate_cancellation(BASIC, NOV_2026, date(2026, 11, 21), CancelMode.AT_PERIOD_END)
    assert end.lines == () and end.service_end == date(2026, 11, 30)
    now = prorate_cancellation(BASIC, NOV_2026, date(2026, 11, 21), CancelMode.IMMEDIATELY)
    # 11/21..11/30 = 10 of 30 days: 3,333.33 → −3,333 (never more than the unused value)
    assert amounts(now) == [-3_333] and now.service_end == date(2026, 11, 20)
    assert now.lines[0].description == "Basic 未使用分（日割り 2026/11/21〜2026/11/30 10/30日）"
    none = prorate_cancellation(BASIC, NOV_2026, date(2026, 11, 21), CancelMode.IMMEDIATELY,
                                ProrationPolicy(ProrationBehavior.NONE))
    assert none.lines == () and none.service_end == date(2026, 11, 20)


def test_unchanged_items_are_not_prorated() -> None:
    support = PlanItem("サポート", 5_000, code="SUP")
    r = prorate_change([BASIC, support], [PRO, support], NOV_2026, date(2026, 11, 16))
    assert [(ln.kind, ln.item_code) for ln in r.lines] == [(ProrationKind.CREDIT, "BASIC"), (ProrationKind.CHARGE, "PRO")]


def test_credit_on_the_originally_billed_amount() -> None:
    billed = replace(BASIC, billed_amount=9_000)  # e.g. billed after a one-off discount
    assert amounts(prorate_change(billed, PRO, NOV_2026, date(2026, 11, 16))) == [-4_500, 10_000]


def test_rounding_rules_are_configurable() -> None:
    period = BillingPeriod(date(2027, 1, 1), date(2027, 1, 31))
    # 10,000 × 10/31 = 3,225.81: default credit −3,225 (TRUNCATE), charge +3,226 (HALF_UP)
    assert amounts(prorate_change(BASIC, PlanItem("B2", 10_000), period, date(2027, 1, 22))) == [-3_225, 3_226]
    both_half_up = ProrationPolicy(credit_rounding=Rounding.HALF_UP)
    assert amounts(prorate_change(BASIC, PlanItem("B2", 10_000), period, date(2027, 1, 22), both_half_up)) == [
        -3_226, 3_226]


def test_lines_carry_tax_category_not_tax() -> None:
    food = PlanItem("定期便（食品）", 3_240, tax_category=TaxCategory.REDUCED_8)
    r = prorate_change(None, food, NOV_2026, date(2026, 11, 16))
    (line,) = r.lines
    assert (line.amount, line.tax_category) == (1_620, TaxCategory.REDUCED_8)
    (inv_line,) = r.invoice_lines()
    assert inv_line.description.endswith(REDUCED_RATE_MARK) and inv_line.amount == 1_620


def test_tax_is_computed_once_over_netted_proration_lines() -> None:
    # credit 10,000 × 10/30 = 3,333.33 → −3,333; charge 20,000 × 10/30 = 6,666.67 → +6,667; net 3,334
    r = prorate_change(BASIC, PRO, NOV_2026, date(2026, 11, 21), ProrationPolicy(ProrationBehavior.ALWAYS_INVOICE))
    assert amounts(r) == [-3_333, 6_667]
    params = InvoiceParams(issuer_name="x", issuer_registration_number=None, issue_date=date(2026, 11, 21))
    inv = build_invoice(Deal(crm_id="s1", name="Pro", stage="won"), [], Company(name="顧客"), params,
                        extra_lines=r.invoice_lines())
    # 3,334 × 10% = 333.4 → 333 once (per line: −333.3→−333 and 666.7→666 would give 333 too, by luck)
    assert (inv.rate_totals[0].subtotal, inv.rate_totals[0].tax, inv.total) == (3_334, 333, 3_667)


def test_plan_item_from_line_item() -> None:
    li = LineItem(name="席", quantity=Decimal(3), unit_price=1_200, discount=200, discount_percent=Decimal(10),
                  product_code="SEAT", tax_category=None)
    item = PlanItem.from_line_item(li)
    assert (item.unit_price, item.quantity, item.code, item.tax_category) == (1_000, 3, "SEAT", TaxCategory.STANDARD_10)
    assert item.period_amount == Decimal(2700)  # 3 × 1,000 × 90%


def test_plan_item_validation() -> None:
    with pytest.raises(TypeError):
        PlanItem("x", 100.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PlanItem("x", 100, quantity=Decimal(-1))


# --- properties ------------------------------------------------------------------------------------------------

anchors = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))
freqs = st.sampled_from(list(BillingFrequency))
prices = st.integers(min_value=0, max_value=5_000_000)
qtys = st.decimals(min_value=Decimal(0), max_value=Decimal(500), places=2)
policies = st.builds(ProrationPolicy, day_count=st.sampled_from(list(DayCount)))


@st.composite
def period_and_effective(draw):
    anchor = draw(anchors)
    freq = draw(freqs)
    period = billing_periods(anchor, freq, 1, first=draw(st.integers(0, 30)))[0]
    effective = period.start + timedelta(days=draw(st.integers(0, period.days)))  # up to end + 1
    return period, effective


@settings(max_examples=300, deadline=None)
@given(period_and_effective(), prices, qtys, prices, qtys, policies)
def test_change_and_reversal_net_to_zero_within_one_yen_per_line(pe, p1, q1, p2, q2, policy) -> None:
    period, effective = pe
    a, b = PlanItem("A", p1, quantity=q1), PlanItem("B", p2, quantity=q2)
    there = prorate_change(a, b, period, effective, policy)
    back = prorate_change(b, a, period, effective, policy)
    lines = there.lines + back.lines
    assert abs(there.net + back.net) <= len(lines)
    if there.lines:  # A's credit (there) and A's charge (back) cover the same days: within one yen
        assert abs(there.lines[0].amount + back.lines[1].amount) <= 1


@settings(max_examples=300, deadline=None)
@given(period_and_effective(), prices, qtys, policies)
def test_lines_within_one_yen_of_exact_and_credits_never_exceed(pe, price, qty, policy) -> None:
    period, effective = pe
    item = PlanItem("A", price, quantity=qty)
    r = prorate_change(item, PlanItem("A2", price, quantity=qty), period, effective, policy)
    for line in r.lines:
        assert abs(Decimal(line.amount) - line.exact) < 1
        assert 0 <= line.days <= line.total_days
        if line.kind is ProrationKind.CREDIT:
            assert line.exact <= line.amount <= 0  # TRUNCATE: |credit| ≤ exact unused value
            assert -line.amount <= item.period_amount
    if effective == period.start:
        assert [ln.exact for ln in r.lines] == [-item.period_amount, item.period_amount]


@settings(max_examples=300, deadline=None)
@given(anchors, freqs, st.integers(0, 400))
def test_billing_periods_are_contiguous_and_keep_the_anchor_day(anchor, freq, offset) -> None:
    on = anchor + timedelta(days=offset)
    p = billing_period(anchor, freq, on)
    assert p.contains(on)
    nxt = billing_period(anchor, freq, p.next_start)
    assert nxt.start == p.next_start
    for start in (p.start, nxt.start):
        assert start.day == min(anchor.day, days_in_month(start.year, start.month))
    assume(freq is BillingFrequency.MONTHLY)
    assert 28 <= p.days <= 31
