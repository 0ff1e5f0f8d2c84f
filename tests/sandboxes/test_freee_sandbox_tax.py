"""Unit tests of the sandbox's tax arithmetic (:mod:`sandboxes.freee.tax`), no HTTP."""

from __future__ import annotations

from decimal import Decimal

import pytest

from renkei.sandboxes.freee.tax import RateKey, group_totals, line_amount, vat_included, withholding_tax

R10, R8, R8R, R0 = RateKey(10), RateKey(8), RateKey(8, True), RateKey(0)


@pytest.mark.parametrize(
    ("entry", "fraction", "expected_tax"),
    [
        ("out", "omit", 666),  # 6,666 × 10% = 666.6
        ("out", "round_up", 667),
        ("out", "round", 667),
        ("in", "omit", 606),  # 6,666 × 10/110 = 606.0
        ("in", "round_up", 606),
        ("in", "round", 606),
    ],
)
def test_each_rounding_mode_applies_once_to_the_group_sum(entry: str, fraction: str, expected_tax: int) -> None:
    totals = group_totals([(R10, 3333), (R10, 3333)], entry, fraction)  # type: ignore[arg-type]
    assert totals[R10].amount_tax == expected_tax
    if entry == "out":
        assert totals[R10].amount_excluding_tax == 6666
    else:
        assert totals[R10].amount_including_tax == 6666


def test_groups_are_separate_per_rate_and_reduced_flag() -> None:
    totals = group_totals([(R8, 1000), (R8R, 1000), (R0, 500), (R10, 100)], "out", "omit")
    assert list(totals) == [R10, R8, R8R, R0]  # freee's field order: 10, 8, 8_reduced, 0
    assert (totals[R8].amount_tax, totals[R8R].amount_tax, totals[R0].amount_tax) == (80, 80, 0)
    assert [k.suffix for k in totals] == ["10", "8", "8_reduced", "0"]


def test_negative_lines_reduce_the_group_before_rounding() -> None:
    totals = group_totals([(R10, 10005), (R10, -5)], "out", "round")
    assert totals[R10].amount_tax == 1000  # 10,000 × 10%, not 1,001 + (−1)
    refund = group_totals([(R10, -1005)], "out", "omit")
    assert refund[R10].amount_tax == -100  # 切り捨て is symmetric around zero


def test_line_amount_rounding_and_inclusive_vat() -> None:
    assert line_amount(Decimal("1.5"), Decimal("333"), "omit") == 499
    assert line_amount(Decimal("1.5"), Decimal("333"), "round") == 500
    assert line_amount(Decimal("0.333"), Decimal("100"), "round_up") == 34
    assert vat_included(11000, 10, "omit") == 1000
    assert vat_included(10999, 10, "omit") == 999 and vat_included(10999, 10, "round") == 1000
    assert vat_included(1080, 8, "omit") == 80 and vat_included(5000, 0, "round") == 0


@pytest.mark.parametrize(
    ("base", "tax"),
    [(0, 0), (10000, 1021), (1_000_000, 102100), (1_500_000, 102100 + 102100), (1_000_001, 102100)],
)
def test_withholding_tax_rates_and_threshold(base: int, tax: int) -> None:
    assert withholding_tax(base) == tax
