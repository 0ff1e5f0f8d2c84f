"""Consumption tax per rate — one rounding per tax rate per invoice (jp-invoicing-rules §4).

Rounding rules used
-------------------
* **Tax per rate**: the caller's named :class:`~domain.money.Rounding` (freee ``tax_fraction``:
  切り捨て ``FLOOR`` / 切り上げ ``CEIL`` / 四捨五入 ``HALF_UP``), applied **once per tax category per
  invoice** to the exact Decimal tax of the category's summed line amounts:

  * 外税 (tax-exclusive): ``tax = round(Σ amounts × r / 100)``
  * 内税 (tax-inclusive): ``tax = round(Σ amounts × r / (100 + r))``

  The rule is applied to the **magnitude** and the sign restored, so the tax of a negative (credit)
  total mirrors the tax of the same positive total (``FLOOR`` of −66.6 is −66, not −67).
* Per-line taxes are never summed for an invoice (消令70の10, 基通1-8-15; NTA Q&A 問57).
  :func:`per_line_rate_totals` computes that forbidden alternative only so that the difference can be
  shown to a reviewer (:func:`compare_rounding`).

Lines enter as anything with ``amount`` (int yen) and ``tax_category`` attributes —
:class:`~domain.model.InvoiceLine`, a proration line, or :class:`TaxableAmount`. Non-taxable categories
(非課税 ``EXEMPT``, 不課税 ``NON_TAXABLE``) get a rate total with tax 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from renkei.domain.model import RateTotal, TaxCategory, TaxEntryMethod
from renkei.domain.money import Rounding, round_yen

__all__ = [
    "TaxableAmount",
    "TaxLine",
    "RoundingComparison",
    "CATEGORY_ORDER",
    "exact_tax",
    "tax_for_amount",
    "rate_totals",
    "per_line_rate_totals",
    "invoice_total",
    "tax_total",
    "compare_rounding",
]

# Deterministic order of rate totals on an invoice: 10%, 8% (軽減), 非課税, 不課税.
CATEGORY_ORDER: tuple[TaxCategory, ...] = (
    TaxCategory.STANDARD_10,
    TaxCategory.REDUCED_8,
    TaxCategory.EXEMPT,
    TaxCategory.NON_TAXABLE,
)


class TaxLine(Protocol):
    """Anything with a yen amount and a tax category (InvoiceLine, ProrationLine, TaxableAmount)."""

    @property
    def amount(self) -> int: ...

    @property
    def tax_category(self) -> TaxCategory: ...


@dataclass(frozen=True)
class TaxableAmount:
    """A bare (amount, category) pair, for callers without an InvoiceLine."""

    amount: int
    tax_category: TaxCategory = TaxCategory.STANDARD_10


def _check_amount(amount: object) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"line amounts are int yen, got {type(amount).__name__}")
    return amount


def exact_tax(amount: int, category: TaxCategory, method: TaxEntryMethod = TaxEntryMethod.EXCLUSIVE) -> Decimal:
    """The unrounded tax contained in (内税) or added to (外税) ``amount`` at ``category``'s rate."""
    _check_amount(amount)
    r = Decimal(TaxCategory(category).rate_percent)
    if r == 0:
        return Decimal(0)
    if TaxEntryMethod(method) is TaxEntryMethod.INCLUSIVE:
        return Decimal(amount) * r / (Decimal(100) + r)
    return Decimal(amount) * r / Decimal(100)


def _round_symmetric(value: Decimal, rounding: Rounding) -> int:
    """Apply the named rule to |value| and restore the sign (credits mirror charges)."""
    magnitude = round_yen(abs(value), rounding)
    return -magnitude if value < 0 else magnitude


def tax_for_amount(
    amount: int,
    category: TaxCategory,
    rounding: Rounding,
    method: TaxEntryMethod = TaxEntryMethod.EXCLUSIVE,
) -> int:
    """Tax on one amount, rounded once with ``rounding`` (applied to the magnitude).

    >>> tax_for_amount(6666, TaxCategory.STANDARD_10, Rounding.HALF_UP)   # 666.6 → 667
    667
    >>> tax_for_amount(11000, TaxCategory.STANDARD_10, Rounding.FLOOR, TaxEntryMethod.INCLUSIVE)
    1000
    """
    return _round_symmetric(exact_tax(amount, category, method), Rounding(rounding))


def _group(lines: Iterable[TaxLine]) -> dict[TaxCategory, list[int]]:
    groups: dict[TaxCategory, list[int]] = {}
    for line in lines:
        groups.setdefault(TaxCategory(line.tax_category), []).append(_check_amount(line.amount))
    return {c: groups[c] for c in CATEGORY_ORDER if c in groups}


def rate_totals(
    lines: Iterable[TaxLine],
    rounding: Rounding,
    method: TaxEntryMethod = TaxEntryMethod.EXCLUSIVE,
) -> list[RateTotal]:
    """税率ごとの合計: group by tax category, sum the line amounts, round the tax **once** per group.

    ``subtotal`` is the summed line amounts as entered (税抜 for 外税, 税込 for 内税). Categories with
    no line are omitted; the order is :data:`CATEGORY_ORDER`.

    Worked example (10%, 外税, 四捨五入): ¥3,333 + ¥3,333 = ¥6,666; 6,666 × 10% = 666.6 → **¥667**.
    """
    rule = Rounding(rounding)
    return [
        RateTotal(tax_category=cat, subtotal=sum(amounts), tax=tax_for_amount(sum(amounts), cat, rule, method))
        for cat, amounts in _group(lines).items()
    ]


def per_line_rate_totals(
    lines: Iterable[TaxLine],
    rounding: Rounding,
    method: TaxEntryMethod = TaxEntryMethod.EXCLUSIVE,
) -> list[RateTotal]:
    """The **not allowed** alternative: round each line's tax, then sum per category.

    Only for showing a reviewer how much per-line rounding would differ; never put on an invoice.
    ¥3,333 + ¥3,333 at 10% 四捨五入: 333.3 → 333 per line, ×2 = ¥666 (the correct per-rate figure is ¥667).
    """
    rule = Rounding(rounding)
    return [
        RateTotal(
            tax_category=cat,
            subtotal=sum(amounts),
            tax=sum(tax_for_amount(a, cat, rule, method) for a in amounts),
        )
        for cat, amounts in _group(lines).items()
    ]


def tax_total(totals: Iterable[RateTotal]) -> int:
    """消費税額等 over all rates (sum of already-rounded per-rate taxes)."""
    return sum(t.tax for t in totals)


def invoice_total(totals: Iterable[RateTotal], method: TaxEntryMethod = TaxEntryMethod.EXCLUSIVE) -> int:
    """請求金額 (税込): 外税 → Σ(subtotal + tax); 内税 → Σ subtotal (tax is already inside)."""
    totals = list(totals)
    if TaxEntryMethod(method) is TaxEntryMethod.INCLUSIVE:
        return sum(t.subtotal for t in totals)
    return sum(t.subtotal + t.tax for t in totals)


@dataclass(frozen=True)
class RoundingComparison:
    """Per-rate (correct) vs per-line (forbidden) tax for one category."""

    tax_category: TaxCategory
    subtotal: int
    exact: Decimal
    per_rate: int
    per_line: int

    @property
    def difference(self) -> int:
        """``per_rate − per_line`` (¥667 − ¥666 = 1 in the 3,333 + 3,333 example)."""
        return self.per_rate - self.per_line


def compare_rounding(
    lines: Iterable[TaxLine],
    rounding: Rounding,
    method: TaxEntryMethod = TaxEntryMethod.EXCLUSIVE,
) -> list[RoundingComparison]:
    """Per category: exact tax, per-rate rounded tax (used) and per-line rounded sum (shown only)."""
    lines = list(lines)
    correct = rate_totals(lines, rounding, method)
    alt = {t.tax_category: t.tax for t in per_line_rate_totals(lines, rounding, method)}
    return [
        RoundingComparison(
            tax_category=t.tax_category,
            subtotal=t.subtotal,
            exact=exact_tax(t.subtotal, t.tax_category, method),
            per_rate=t.tax,
            per_line=alt[t.tax_category],
        )
        for t in correct
    ]
