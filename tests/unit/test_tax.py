"""Per-rate consumption tax (jp-invoicing-rules §4): one rounding per rate per invoice."""

from __future__ import annotations

import doctest

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.domain.model import InvoiceLine, RateTotal, TaxCategory, TaxEntryMethod
from renkei.domain.money import Rounding
from renkei.domain.tax import (
    CATEGORY_ORDER,
    TaxableAmount,
    compare_rounding,
    exact_tax,
    invoice_total,
    per_line_rate_totals,
    rate_totals,
    tax_for_amount,
    tax_total,
)

S10, R8, EX, NT = TaxCategory.STANDARD_10, TaxCategory.REDUCED_8, TaxCategory.EXEMPT, TaxCategory.NON_TAXABLE
EXCL, INCL = TaxEntryMethod.EXCLUSIVE, TaxEntryMethod.INCLUSIVE


def lines(*pairs: tuple[int, TaxCategory]) -> list[TaxableAmount]:
    return [TaxableAmount(a, c) for a, c in pairs]


# --- reference test vectors (jp-invoicing-rules §4) ------------------------------------------------


def test_3333_plus_3333_half_up_per_rate_667_vs_per_line_666() -> None:
    ls = lines((3333, S10), (3333, S10))
    # per rate: 6,666 × 10% = 666.6 → 四捨五入 → 667
    assert rate_totals(ls, Rounding.HALF_UP) == [RateTotal(tax_category=S10, subtotal=6666, tax=667)]
    # per line (not allowed): 333.3 → 333, × 2 = 666
    assert per_line_rate_totals(ls, Rounding.HALF_UP)[0].tax == 666
    (cmp,) = compare_rounding(ls, Rounding.HALF_UP)
    assert (cmp.exact, cmp.per_rate, cmp.per_line, cmp.difference) == (Decimal("666.6"), 667, 666, 1)


def test_3333_plus_3333_floor_gives_666_both_ways() -> None:
    ls = lines((3333, S10), (3333, S10))
    assert rate_totals(ls, Rounding.FLOOR)[0].tax == 666  # 666.6 → 666
    assert per_line_rate_totals(ls, Rounding.FLOOR)[0].tax == 666  # 333 + 333


def test_1005_plus_1005_floor_per_rate_201_vs_per_line_200() -> None:
    ls = lines((1005, S10), (1005, S10))
    # per rate: 2,010 × 10% = 201.0 → 201; per line: 100.5 → 100, × 2 = 200
    assert rate_totals(ls, Rounding.FLOOR)[0].tax == 201
    assert per_line_rate_totals(ls, Rounding.FLOOR)[0].tax == 200


@pytest.mark.parametrize("rule", list(Rounding))
def test_11000_inclusive_contains_1000_tax_in_any_mode(rule: Rounding) -> None:
    # 11,000 × 10 / 110 = 1,000 exactly
    (t,) = rate_totals(lines((11000, S10)), rule, INCL)
    assert (t.subtotal, t.tax) == (11000, 1000)
    assert invoice_total([t], INCL) == 11000  # 内税: the tax is already inside


# --- mixed 10% / 8% invoices ------------------------------------------------------------------------


def test_mixed_rates_exclusive_floor() -> None:
    ls = lines((12345, S10), (1234, R8), (6789, S10), (5678, R8))
    totals = rate_totals(ls, Rounding.FLOOR)
    # 10%: 12,345 + 6,789 = 19,134 → 1,913.4 → 1,913
    # 8%:   1,234 + 5,678 =  6,912 →   552.96 →   552
    assert totals == [
        RateTotal(tax_category=S10, subtotal=19134, tax=1913),
        RateTotal(tax_category=R8, subtotal=6912, tax=552),
    ]
    assert tax_total(totals) == 2465
    assert invoice_total(totals) == 19134 + 1913 + 6912 + 552 == 28511
    # per line 10%: 1,234.5 → 1,234 and 678.9 → 678 = 1,912 (one yen less); 8%: 98 + 454 = 552
    cmp = {c.tax_category: c.difference for c in compare_rounding(ls, Rounding.FLOOR)}
    assert cmp == {S10: 1, R8: 0}


def test_mixed_rates_half_up_rounds_8_percent_up() -> None:
    totals = rate_totals(lines((19134, S10), (6912, R8)), Rounding.HALF_UP)
    assert [t.tax for t in totals] == [1913, 553]  # 1,913.4 → 1,913; 552.96 → 553


def test_mixed_rates_inclusive() -> None:
    ls = lines((11000, S10), (5500, S10), (1000, R8))
    # 10%: 16,500 × 10/110 = 1,500; 8%: 1,000 × 8/108 = 74.07…
    assert [t.tax for t in rate_totals(ls, Rounding.FLOOR, INCL)] == [1500, 74]
    assert [t.tax for t in rate_totals(ls, Rounding.CEIL, INCL)] == [1500, 75]
    assert invoice_total(rate_totals(ls, Rounding.FLOOR, INCL), INCL) == 17500


def test_order_and_untaxed_categories() -> None:
    ls = lines((500, NT), (300, EX), (1000, R8), (2000, S10))
    totals = rate_totals(ls, Rounding.FLOOR)
    assert [t.tax_category for t in totals] == list(CATEGORY_ORDER)
    assert [t.tax for t in totals] == [200, 80, 0, 0]
    assert invoice_total(totals) == 2000 + 200 + 1000 + 80 + 300 + 500


def test_accepts_invoice_lines() -> None:
    ls = [
        InvoiceLine(description="A", quantity=Decimal(1), unit_price=3333, amount=3333, tax_category=S10),
        InvoiceLine(description="B", quantity=Decimal(1), unit_price=3333, amount=3333, tax_category=S10),
    ]
    assert rate_totals(ls, Rounding.HALF_UP)[0].tax == 667


def test_negative_totals_mirror_positive_ones() -> None:
    # a credit of −6,666 at 10% FLOOR: −666.6 → −666 (rule applied to the magnitude), not −667
    assert tax_for_amount(-6666, S10, Rounding.FLOOR) == -666
    assert tax_for_amount(-6666, S10, Rounding.HALF_UP) == -667
    assert rate_totals(lines((10000, S10), (-3334, S10)), Rounding.FLOOR)[0].tax == 666


def test_refuses_non_integer_amounts() -> None:
    with pytest.raises(TypeError):
        rate_totals([TaxableAmount(Decimal("1.5"), S10)], Rounding.FLOOR)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        exact_tax(100.0, S10)  # type: ignore[arg-type]


def test_empty_invoice() -> None:
    assert rate_totals([], Rounding.FLOOR) == []
    assert invoice_total([]) == 0


# --- properties --------------------------------------------------------------------------------------

amounts = st.integers(min_value=-10_000_000, max_value=10_000_000)
categories = st.sampled_from(list(TaxCategory))
line_lists = st.lists(st.tuples(amounts, categories), min_size=1, max_size=30)


@settings(max_examples=300)
@given(line_lists, st.sampled_from(list(Rounding)), st.sampled_from(list(TaxEntryMethod)))
def test_per_rate_tax_never_one_yen_from_exact(pairs, rule, method) -> None:
    totals = rate_totals(lines(*pairs), rule, method)
    for t in totals:
        exact = exact_tax(t.subtotal, t.tax_category, method)
        assert abs(Decimal(t.tax) - exact) < 1
        assert t.subtotal == sum(a for a, c in pairs if c is t.tax_category)


@settings(max_examples=200)
@given(line_lists, st.sampled_from(list(Rounding)), st.sampled_from(list(TaxEntryMethod)))
def test_per_line_alternative_drifts_at_most_one_yen_per_line(pairs, rule, method) -> None:
    ls = lines(*pairs)
    for c in compare_rounding(ls, rule, method):
        n = sum(1 for _, cat in pairs if cat is c.tax_category)
        assert abs(c.difference) <= n


@given(line_lists, st.sampled_from(list(Rounding)))
def test_exclusive_total_is_subtotals_plus_tax(pairs, rule) -> None:
    totals = rate_totals(lines(*pairs), rule, EXCL)
    assert invoice_total(totals, EXCL) == sum(a for a, _ in pairs) + tax_total(totals)


def test_docstring_examples() -> None:
    import renkei.domain.tax

    assert doctest.testmod(renkei.domain.tax).failed == 0
