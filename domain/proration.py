"""Proration (日割り) of mid-period subscription changes, billing periods and cancellations.

Model (proration-and-revenue.md §1–§3, adapted to JPY §5): subscriptions are billed **in advance** for a
billing period ``[start, end]`` (both dates inclusive, Asia/Tokyo business dates). A change *effective*
on day ``t`` (the first day the new terms apply, ``start ≤ t ≤ end + 1``) produces, per changed item:

* a **credit** "未使用分" for the old item over ``[t, end]``:  ``−R_credit(old × days / total)``
* a **charge** "残期間分" for the new item over ``[t, end]``:  ``+R_charge(new × days / total)``

``days / total`` comes from the :class:`DayCount` convention (default ``ACTUAL``: actual days / actual
days in the billing period). A change on the first day credits and charges whole periods; a change on
``end + 1`` (the next period's first day) prorates nothing.

Rounding rules used (each line rounded once, to whole yen, with a named rule)
-------------------------------------------------------------------------------
* **Charge lines: ``HALF_UP`` (四捨五入)** — the nearest yen, what a customer checking the arithmetic
  expects.
* **Credit lines: ``TRUNCATE`` (toward zero)** — a credit is never larger than the exact unused value,
  so it can never exceed what was billed for those days (a change on the first day credits exactly the
  billed amount, because the exact value is already whole). Together the two rules bias by less than
  ¥1 per line, in the seller's favour, and a change followed by its reversal nets to within ¥1 per line.
  Both rules are fields of :class:`ProrationPolicy` and can be changed.

**Tax is not computed per proration line.** Lines carry their :class:`~domain.model.TaxCategory` only;
consumption tax is computed once per rate per invoice (:mod:`domain.tax`) when the proration lines are
put on an invoice — the next one (``CREATE_PRORATIONS``) or an immediate one (``ALWAYS_INVOICE``).

Billing periods keep the anchor's day of month, clamped to short months: an anchor on the 31st gives
periods starting 1/31, 2/28 (2/29 in a leap year), 3/31, 4/30, 5/31 … — always computed from the
anchor, so the 31st comes back after February.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import Enum

from renkei.domain.dates import add_months, is_month_end
from renkei.domain.invoice import REDUCED_RATE_MARK
from renkei.domain.model import InvoiceLine, LineItem, TaxCategory
from renkei.domain.money import Rounding, round_yen, to_decimal

__all__ = [
    "BillingFrequency",
    "BillingPeriod",
    "DayCount",
    "ProrationBehavior",
    "CancelMode",
    "ProrationKind",
    "PlanItem",
    "ProrationPolicy",
    "ProrationLine",
    "ProrationResult",
    "period_start",
    "billing_period",
    "billing_periods",
    "count_days",
    "days_360",
    "period_length",
    "period_fraction",
    "prorate_change",
    "prorate_quantity_change",
    "prorate_cancellation",
]


# ---------------------------------------------------------------------------------------------------
# billing periods


class BillingFrequency(str, Enum):
    """課金周期. Values follow HubSpot ``recurringbillingfrequency``."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    SEMIANNUALLY = "per_six_months"
    ANNUALLY = "annually"

    @property
    def months(self) -> int:
        return {"monthly": 1, "quarterly": 3, "per_six_months": 6, "annually": 12}[self.value]

    @classmethod
    def parse(cls, value: "str | BillingFrequency") -> "BillingFrequency":
        """Accepts the enum values and common spellings (``annual``, ``yearly``, ``month``, 月次 …)."""
        if isinstance(value, BillingFrequency):
            return value
        key = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        aliases = {
            "monthly": cls.MONTHLY, "month": cls.MONTHLY, "月次": cls.MONTHLY, "毎月": cls.MONTHLY,
            "quarterly": cls.QUARTERLY, "quarter": cls.QUARTERLY, "四半期": cls.QUARTERLY,
            "per_six_months": cls.SEMIANNUALLY, "semiannually": cls.SEMIANNUALLY, "半年": cls.SEMIANNUALLY,
            "annually": cls.ANNUALLY, "annual": cls.ANNUALLY, "yearly": cls.ANNUALLY, "year": cls.ANNUALLY,
            "年次": cls.ANNUALLY, "毎年": cls.ANNUALLY,
        }
        if key not in aliases:
            raise ValueError(f"unknown billing frequency: {str(value)[:40]!r}")
        return aliases[key]


@dataclass(frozen=True)
class BillingPeriod:
    """One billing period, ``start`` and ``end`` inclusive; ``months`` is its nominal length."""

    start: date
    end: date
    months: int = 1

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a billing period ends on or after its start")
        if self.months < 1:
            raise ValueError("a billing period is at least one month")

    @property
    def days(self) -> int:
        """Actual days, inclusive (2024-02-01..2024-02-29 → 29)."""
        return (self.end - self.start).days + 1

    def contains(self, d: date) -> bool:
        return self.start <= d <= self.end

    @property
    def next_start(self) -> date:
        return self.end + timedelta(days=1)


def period_start(anchor: date, frequency: BillingFrequency | str, index: int) -> date:
    """Start of period ``index`` (0 = the anchor's period), always computed from the anchor."""
    return add_months(anchor, index * BillingFrequency.parse(frequency).months)


def _period(anchor: date, freq: BillingFrequency, index: int) -> BillingPeriod:
    start = period_start(anchor, freq, index)
    end = period_start(anchor, freq, index + 1) - timedelta(days=1)
    return BillingPeriod(start, end, freq.months)


def billing_period(anchor: date, frequency: BillingFrequency | str, on: date) -> BillingPeriod:
    """The billing period that contains ``on`` for a subscription anchored on ``anchor``.

    Anchor 2026-01-31, monthly, on 2026-03-15 → 2026-02-28..2026-03-30; on 2026-03-31 →
    2026-03-31..2026-04-29.
    """
    freq = BillingFrequency.parse(frequency)
    if on < anchor:
        raise ValueError(f"{on.isoformat()} is before the subscription starts ({anchor.isoformat()})")
    months = (on.year - anchor.year) * 12 + (on.month - anchor.month)
    k = max(0, months // freq.months)
    while period_start(anchor, freq, k) > on:
        k -= 1
    while period_start(anchor, freq, k + 1) <= on:
        k += 1
    return _period(anchor, freq, k)


def billing_periods(anchor: date, frequency: BillingFrequency | str, count: int, *, first: int = 0) -> list[BillingPeriod]:
    """``count`` consecutive periods starting with period number ``first``."""
    freq = BillingFrequency.parse(frequency)
    return [_period(anchor, freq, i) for i in range(first, first + count)]


# ---------------------------------------------------------------------------------------------------
# day counts


class DayCount(str, Enum):
    """How the proration fraction counts days (proration-and-revenue.md §3 table).

    * ``ACTUAL`` — actual days / actual days in the billing period (default; 日割り by the calendar).
    * ``ACTUAL_360`` — "30-day month": actual days / 30 per month of the period, the numerator capped at
      the period length (so in a 31-day month the 31st day is free, and February counts 28/30 or 29/30).
    * ``THIRTY_360`` — strict 30/360: every month has 30 days and the last day of any month is day 30;
      denominator 30 per month of the period.
    """

    ACTUAL = "actual"
    ACTUAL_360 = "actual_360"
    THIRTY_360 = "thirty_360"


def _day30(d: date) -> int:
    return 30 if (d.day > 30 or is_month_end(d)) else d.day


def days_360(start: date, end: date) -> int:
    """Strict 30/360 day count, both dates inclusive (2021-02-27..2021-02-28 → 4)."""
    if end < start:
        return 0
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + _day30(end) - _day30(start) + 1


def count_days(start: date, end: date, convention: DayCount = DayCount.ACTUAL) -> int:
    """Days in ``[start, end]`` (inclusive) under ``convention`` — the numerator of a fraction."""
    if end < start:
        return 0
    if DayCount(convention) is DayCount.THIRTY_360:
        return days_360(start, end)
    return (end - start).days + 1


def period_length(period: BillingPeriod, convention: DayCount = DayCount.ACTUAL) -> int:
    """Denominator: actual days of the period, or 30 × its months for the 30-day conventions."""
    if DayCount(convention) is DayCount.ACTUAL:
        return period.days
    return 30 * period.months


def period_fraction(
    period: BillingPeriod, start: date, end: date, convention: DayCount = DayCount.ACTUAL
) -> tuple[int, int]:
    """``(days, total)`` of ``[start, end]`` within ``period``: the whole period is always
    ``(total, total)``; otherwise the count is clamped to ``0..total``."""
    if start < period.start or end > period.end:
        raise ValueError("the prorated range must lie within the billing period")
    total = period_length(period, convention)
    if end < start:
        return 0, total
    if start == period.start and end == period.end:
        return total, total
    return max(0, min(total, count_days(start, end, convention))), total


# ---------------------------------------------------------------------------------------------------
# proration


class ProrationBehavior(str, Enum):
    """Stripe ``proration_behavior`` semantics."""

    CREATE_PRORATIONS = "create_prorations"  # lines go on the next invoice
    ALWAYS_INVOICE = "always_invoice"  # lines are invoiced immediately
    NONE = "none"  # no proration; the change only affects the next period


class CancelMode(str, Enum):
    AT_PERIOD_END = "at_period_end"  # 期間満了で解約: service to the period end, no credit
    IMMEDIATELY = "immediately"  # 即時解約: unused days credited (unless behaviour NONE)


class ProrationKind(str, Enum):
    CREDIT = "credit"  # 未使用分 (unused time on the old item)
    CHARGE = "charge"  # 残期間分 (remaining time on the new item)


@dataclass(frozen=True)
class PlanItem:
    """One recurring item priced per billing period (yen, as entered on invoices — normally 税抜).

    ``billed_amount`` — what was actually invoiced for the current period; when set, the credit is
    based on it (Stripe "flexible" / originally-debited basis) instead of ``price × quantity``.
    """

    name: str
    unit_price: int
    quantity: Decimal = Decimal(1)
    tax_category: TaxCategory = TaxCategory.STANDARD_10
    code: str | None = None
    discount_percent: Decimal = Decimal(0)
    billed_amount: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.unit_price, bool) or not isinstance(self.unit_price, int):
            raise TypeError("unit_price is int yen")
        object.__setattr__(self, "quantity", to_decimal(self.quantity))
        object.__setattr__(self, "discount_percent", to_decimal(self.discount_percent))
        if self.quantity < 0:
            raise ValueError("quantity must be ≥ 0")
        if not 0 <= self.discount_percent <= 100:
            raise ValueError("discount_percent is 0..100")

    @property
    def period_amount(self) -> Decimal:
        """Exact amount for a whole period: ``unit_price × quantity × (100 − discount %) / 100``."""
        return Decimal(self.unit_price) * self.quantity * (Decimal(100) - self.discount_percent) / Decimal(100)

    @property
    def credit_basis(self) -> Decimal:
        return Decimal(self.billed_amount) if self.billed_amount is not None else self.period_amount

    @classmethod
    def from_line_item(cls, item: LineItem, default_category: TaxCategory = TaxCategory.STANDARD_10) -> "PlanItem":
        """A recurring HubSpot line item as a plan item (per-unit yen discount folded into the price)."""
        return cls(
            name=item.name,
            unit_price=item.unit_price - item.discount,
            quantity=item.quantity,
            tax_category=item.tax_category or default_category,
            code=item.product_code,
            discount_percent=item.discount_percent,
        )


@dataclass(frozen=True)
class ProrationPolicy:
    behavior: ProrationBehavior = ProrationBehavior.CREATE_PRORATIONS
    day_count: DayCount = DayCount.ACTUAL
    charge_rounding: Rounding = Rounding.HALF_UP
    credit_rounding: Rounding = Rounding.TRUNCATE


@dataclass(frozen=True)
class ProrationLine:
    """One proration line. ``amount`` is signed yen (credit ≤ 0, charge ≥ 0), tax-free: tax is
    computed per rate per invoice. ``days`` are the days this line covers (the unused days for a
    credit, the remaining days for a charge) out of ``total_days`` in the billing period."""

    kind: ProrationKind
    description: str
    period_start: date
    period_end: date
    days: int
    total_days: int
    amount: int
    tax_category: TaxCategory
    item_code: str | None = None
    exact: Decimal = field(default=Decimal(0), compare=False)
    rounding: Rounding = Rounding.HALF_UP

    def to_invoice_line(self) -> InvoiceLine:
        """As an invoice line (quantity 1, unit price = amount); reduced-rate lines get the ※ mark."""
        suffix = f" {REDUCED_RATE_MARK}" if self.tax_category.reduced else ""
        desc = self.description
        if len(desc) + len(suffix) > 255:
            desc = desc[: 254 - len(suffix)] + "…"
        return InvoiceLine(
            description=desc + suffix,
            quantity=Decimal(1),
            unit_price=self.amount,
            amount=self.amount,
            tax_category=self.tax_category,
            item_code=self.item_code,
        )


@dataclass(frozen=True)
class ProrationResult:
    behavior: ProrationBehavior
    period: BillingPeriod
    effective: date
    lines: tuple[ProrationLine, ...] = ()
    service_end: date | None = None  # last day of service for a cancellation

    @property
    def net(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def invoice_now(self) -> bool:
        """``ALWAYS_INVOICE`` with something to invoice: issue a proration invoice now."""
        return self.behavior is ProrationBehavior.ALWAYS_INVOICE and any(line.amount for line in self.lines)

    @property
    def add_to_next_invoice(self) -> bool:
        return self.behavior is ProrationBehavior.CREATE_PRORATIONS and any(line.amount for line in self.lines)

    def invoice_lines(self) -> list[InvoiceLine]:
        """Non-zero lines as :class:`InvoiceLine` (pass as ``extra_lines`` to ``build_invoice``)."""
        return [line.to_invoice_line() for line in self.lines if line.amount != 0]


def _qty_label(q: Decimal) -> str:
    return "" if q == 1 else f" ×{q.normalize():f}"


def _fmt(d: date) -> str:
    return f"{d.year}/{d.month:02d}/{d.day:02d}"


def _line(kind: ProrationKind, item: PlanItem, start: date, end: date, days: int, total: int,
          policy: ProrationPolicy) -> ProrationLine:
    label = "未使用分" if kind is ProrationKind.CREDIT else "残期間分"
    basis = item.credit_basis if kind is ProrationKind.CREDIT else item.period_amount
    exact = basis * Decimal(days) / Decimal(total)
    signed = -exact if kind is ProrationKind.CREDIT else exact
    rule = Rounding(policy.credit_rounding if kind is ProrationKind.CREDIT else policy.charge_rounding)
    magnitude = round_yen(abs(signed), rule)  # the named rule applies to the magnitude
    return ProrationLine(
        kind=kind,
        description=f"{item.name}{_qty_label(item.quantity)} {label}（日割り {_fmt(start)}〜{_fmt(end)} {days}/{total}日）",
        period_start=start,
        period_end=end,
        days=days,
        total_days=total,
        amount=magnitude if signed >= 0 else -magnitude,
        tax_category=item.tax_category,
        item_code=item.code,
        exact=signed,
        rounding=rule,
    )


def _as_list(items: PlanItem | Sequence[PlanItem] | None) -> list[PlanItem]:
    if items is None:
        return []
    if isinstance(items, PlanItem):
        return [items]
    return list(items)


def _key(item: PlanItem) -> tuple:
    """Identity for "unchanged": same item, price, quantity, discount and category (what was billed is
    not part of it — an unchanged item is not prorated whatever it was billed at)."""
    return (item.code or item.name, item.unit_price, item.quantity, item.tax_category, item.discount_percent)


def _check_effective(period: BillingPeriod, effective: date) -> None:
    if not period.start <= effective <= period.next_start:
        raise ValueError(
            f"effective date {effective.isoformat()} is outside the billing period "
            f"{period.start.isoformat()}..{period.end.isoformat()} (+1 day)"
        )


def prorate_change(
    old: PlanItem | Sequence[PlanItem] | None,
    new: PlanItem | Sequence[PlanItem] | None,
    period: BillingPeriod,
    effective: date,
    policy: ProrationPolicy = ProrationPolicy(),
) -> ProrationResult:
    """Credit the unused part of ``old`` and charge the remaining part of ``new`` over ``[effective,
    period.end]``. Items identical on both sides are left alone; ``old=None`` adds items mid-period,
    ``new=None`` removes them.

    ¥10,000 → ¥20,000 on 2026-11-16 in 2026-11-01..2026-11-30 (15/30 days): −¥5,000, +¥10,000.
    """
    _check_effective(period, effective)
    policy_behavior = ProrationBehavior(policy.behavior)
    olds, news = _as_list(old), _as_list(new)
    if policy_behavior is ProrationBehavior.NONE or effective == period.next_start:
        return ProrationResult(policy_behavior, period, effective)
    unchanged: list[tuple] = []
    new_keys = [_key(i) for i in news]
    for item in olds:
        k = _key(item)
        if k in new_keys:
            new_keys.remove(k)
            unchanged.append(k)
    days, total = period_fraction(period, effective, period.end, policy.day_count)
    lines: list[ProrationLine] = []
    skip = list(unchanged)
    for item in olds:
        k = _key(item)
        if k in skip:
            skip.remove(k)
            continue
        lines.append(_line(ProrationKind.CREDIT, item, effective, period.end, days, total, policy))
    skip = list(unchanged)
    for item in news:
        k = _key(item)
        if k in skip:
            skip.remove(k)
            continue
        lines.append(_line(ProrationKind.CHARGE, item, effective, period.end, days, total, policy))
    return ProrationResult(policy_behavior, period, effective, tuple(lines))


def prorate_quantity_change(
    item: PlanItem,
    new_quantity: Decimal | int | str,
    period: BillingPeriod,
    effective: date,
    policy: ProrationPolicy = ProrationPolicy(),
) -> ProrationResult:
    """Seats 235 → 240: credit 235 seats and charge 240 seats for the remaining days (Stripe style;
    net ≈ 5 seats × remaining fraction). A new quantity of 0 removes the item."""
    q = to_decimal(new_quantity)
    new = None if q == 0 else replace(item, quantity=q, billed_amount=None)
    return prorate_change(item, new, period, effective, policy)


def prorate_cancellation(
    items: PlanItem | Sequence[PlanItem],
    period: BillingPeriod,
    effective: date,
    mode: CancelMode = CancelMode.AT_PERIOD_END,
    policy: ProrationPolicy = ProrationPolicy(),
) -> ProrationResult:
    """解約. ``AT_PERIOD_END``: service runs to ``period.end``, nothing is credited (``effective`` is
    ignored apart from validation). ``IMMEDIATELY``: service ends the day before ``effective`` and the
    unused days ``[effective, period.end]`` are credited (none when the behaviour is ``NONE``)."""
    _check_effective(period, effective)
    if CancelMode(mode) is CancelMode.AT_PERIOD_END:
        return ProrationResult(ProrationBehavior(policy.behavior), period, effective, (), service_end=period.end)
    result = prorate_change(items, None, period, effective, policy)
    return replace(result, service_end=effective - timedelta(days=1))
