"""Consumption-tax arithmetic of the sandbox (freee請求書 invoices and freee会計 deal lines).

The qualified-invoice rule (``jp-invoicing-rules.md`` §4): tax is rounded **once per tax rate per
invoice** — lines are grouped by rate, their amounts summed, and the tax of each group computed and
rounded once. Per-line rounding is never summed. All arithmetic is :class:`~decimal.Decimal`; amounts
are whole yen (``int``).

freee's rounding names map to the project's named rules (ties and negatives are symmetric around 0):

| freee | 日本語 | :class:`domain.money.Rounding` |
|---|---|---|
| ``omit`` / company ``0`` | 切り捨て | ``TRUNCATE`` |
| ``round_up`` / ``1`` | 切り上げ | ``AWAY`` |
| ``round`` / ``2`` | 四捨五入 | ``HALF_UP`` |
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from renkei.domain.money import Rounding, round_yen

__all__ = [
    "RATE_KEYS",
    "RateKey",
    "RateTotal",
    "TaxEntryMethod",
    "TaxFraction",
    "company_fraction",
    "group_totals",
    "line_amount",
    "rounding_for",
    "vat_included",
    "withholding_tax",
]

TaxFraction = Literal["omit", "round_up", "round"]
TaxEntryMethod = Literal["in", "out"]

_ROUNDING: dict[str, Rounding] = {"omit": Rounding.TRUNCATE, "round_up": Rounding.AWAY, "round": Rounding.HALF_UP}
_COMPANY_FRACTION: dict[int, TaxFraction] = {0: "omit", 1: "round_up", 2: "round"}


def rounding_for(fraction: TaxFraction) -> Rounding:
    return _ROUNDING[fraction]


def company_fraction(code: int) -> TaxFraction:
    """freee会計 company setting (``tax_fraction`` 0/1/2) → freee請求書 name."""
    return _COMPANY_FRACTION[code]


@dataclass(frozen=True, order=True)
class RateKey:
    """A tax group of an invoice: the rate and whether it is the reduced (軽減) 8%."""

    rate: int
    reduced: bool = False

    @property
    def suffix(self) -> str:
        """Suffix of freee's per-rate fields: ``10``, ``8``, ``8_reduced``, ``0``."""
        return f"{self.rate}_reduced" if self.reduced else str(self.rate)


RATE_KEYS: tuple[RateKey, ...] = (RateKey(10), RateKey(8), RateKey(8, True), RateKey(0))


@dataclass(frozen=True)
class RateTotal:
    key: RateKey
    amount_excluding_tax: int
    amount_tax: int

    @property
    def amount_including_tax(self) -> int:
        return self.amount_excluding_tax + self.amount_tax


def line_amount(quantity: Decimal, unit_price: Decimal, fraction: TaxFraction) -> int:
    """金額 of one line: quantity × unit price brought to whole yen with ``line_amount_fraction``."""
    return round_yen(quantity * unit_price, rounding_for(fraction))


def group_totals(
    lines: Iterable[tuple[RateKey, int]], tax_entry_method: TaxEntryMethod, tax_fraction: TaxFraction
) -> dict[RateKey, RateTotal]:
    """Per-rate totals of an invoice, with ONE rounding of the tax per rate.

    ``lines`` are ``(rate, line amount)``; the amount is tax-exclusive for ``out`` (外税) and
    tax-inclusive for ``in`` (内税).

    * 外税: ``tax = round(Σ amounts × r / 100)``
    * 内税: ``tax = round(Σ amounts × r / (100 + r))``, excluding = Σ amounts − tax

    >>> t = group_totals([(RateKey(10), 3333), (RateKey(10), 3333)], "out", "round")
    >>> t[RateKey(10)].amount_tax   # 6,666 × 10% = 666.6 → 667 (per line: 333 + 333 = 666)
    667
    >>> group_totals([(RateKey(10), 11000)], "in", "omit")[RateKey(10)].amount_tax
    1000
    """
    sums: dict[RateKey, int] = {}
    for key, amount in lines:
        sums[key] = sums.get(key, 0) + int(amount)
    rule = rounding_for(tax_fraction)
    totals: dict[RateKey, RateTotal] = {}
    for key in sorted(sums, key=RATE_KEYS.index):
        total = sums[key]
        rate = Decimal(key.rate)
        if tax_entry_method == "out":
            tax = round_yen(Decimal(total) * rate / Decimal(100), rule)
            totals[key] = RateTotal(key, amount_excluding_tax=total, amount_tax=tax)
        else:
            tax = round_yen(Decimal(total) * rate / (Decimal(100) + rate), rule)
            totals[key] = RateTotal(key, amount_excluding_tax=total - tax, amount_tax=tax)
    return totals


def vat_included(amount_including_tax: int, rate: int, fraction: TaxFraction) -> int:
    """Tax contained in a tax-inclusive amount (freee会計 auto-computes a deal line's ``vat`` so)."""
    if rate == 0:
        return 0
    r = Decimal(rate)
    return round_yen(Decimal(amount_including_tax) * r / (Decimal(100) + r), rounding_for(fraction))


_WITHHOLDING_THRESHOLD = 1_000_000


def withholding_tax(base: int) -> int:
    """源泉所得税 (復興特別所得税込み) on fees paid to individuals: 10.21% up to ¥1,000,000 and 20.42% on
    the excess, rounded down to the yen (所得税法 第204条/第205条; 復興財源確保法 第28条)."""
    if base <= 0:
        return 0
    if base <= _WITHHOLDING_THRESHOLD:
        value = Decimal(base) * Decimal("0.1021")
    else:
        value = Decimal(_WITHHOLDING_THRESHOLD) * Decimal("0.1021") + Decimal(base - _WITHHOLDING_THRESHOLD) * Decimal(
            "0.2042"
        )
    return round_yen(value, Rounding.FLOOR)
