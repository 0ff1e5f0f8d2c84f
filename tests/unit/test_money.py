from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from renkei.domain.money import NonNegativeYen, Rounding, Yen, format_yen, round_yen, to_decimal


class M(BaseModel):
    amount: Yen
    price: NonNegativeYen = 0


@pytest.mark.parametrize(
    "value, rule, expected",
    [("666.6", Rounding.HALF_UP, 667), ("666.6", Rounding.FLOOR, 666), ("666.4", Rounding.CEIL, 667),
     ("666.5", Rounding.HALF_UP, 667), ("-666.5", Rounding.HALF_UP, -667), ("-666.5", Rounding.FLOOR, -667),
     ("-666.5", Rounding.TRUNCATE, -666), ("-666.1", Rounding.AWAY, -667), ("201.0", Rounding.FLOOR, 201)],
)
def test_named_rounding(value, rule, expected):
    assert round_yen(Decimal(value), rule) == expected


def test_tax_arithmetic_stays_exact():
    # 6,666 yen at 10%: exact 666.6; a float would give 666.6000000000001
    assert to_decimal(6666) * Decimal(10) / Decimal(100) == Decimal("666.6")
    assert round_yen(Decimal(11000) * 10 / 110, Rounding.FLOOR) == 1000


def test_yen_accepts_ints_and_integral_strings():
    assert M(amount=1200).amount == 1200
    assert M(amount="6000.00").amount == 6000
    assert M(amount="¥1,200").amount == 1200
    assert M(amount=Decimal("5")).amount == 5


@pytest.mark.parametrize("bad", [1.0, 1.5, "1.5", Decimal("0.5"), True, "abc"])
def test_yen_refuses_float_fractions_and_junk(bad):
    with pytest.raises(ValidationError) as exc:
        M(amount=bad)
    assert exc.value.errors()[0]["loc"] == ("amount",)


def test_non_negative_and_bounds():
    with pytest.raises(ValidationError, match="price"):
        M(amount=1, price=-1)
    with pytest.raises(ValidationError, match="amount"):
        M(amount=10**14)


def test_to_decimal_refuses_float():
    with pytest.raises(TypeError, match="float"):
        to_decimal(0.1)


def test_format_yen():
    assert format_yen(1234567) == "¥1,234,567"
    assert format_yen(-1200) == "-¥1,200"
    assert format_yen(0) == "¥0"
