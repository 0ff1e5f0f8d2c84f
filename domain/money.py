"""Money as integer yen, and the named rounding rules.

Every amount that crosses a boundary is an ``int`` of yen (JPY has no minor unit). Intermediate
arithmetic (tax, proration) is done in :class:`decimal.Decimal` and brought back to yen with one of the
named :class:`Rounding` rules; floats are refused everywhere.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, ROUND_DOWN, ROUND_UP, Decimal
from enum import Enum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field


class Rounding(str, Enum):
    """Named rounding rules for turning a Decimal into whole yen.

    ``FLOOR`` 切り捨て toward −∞, ``CEIL`` 切り上げ toward +∞, ``HALF_UP`` 四捨五入 (ties away from zero),
    ``TRUNCATE`` toward zero (切り捨て applied to the absolute value, used for credits so that a credit
    is never larger than its charge), ``AWAY`` away from zero.
    """

    FLOOR = "floor"
    CEIL = "ceil"
    HALF_UP = "half_up"
    TRUNCATE = "truncate"
    AWAY = "away"

    @property
    def label_ja(self) -> str:
        return {
            "floor": "切り捨て",
            "ceil": "切り上げ",
            "half_up": "四捨五入",
            "truncate": "切り捨て（0方向）",
            "away": "切り上げ（0から遠ざかる方向）",
        }[self.value]


_DECIMAL_MODES = {
    Rounding.FLOOR: ROUND_FLOOR,
    Rounding.CEIL: ROUND_CEILING,
    Rounding.HALF_UP: ROUND_HALF_UP,
    Rounding.TRUNCATE: ROUND_DOWN,
    Rounding.AWAY: ROUND_UP,
}


def to_decimal(value: Any) -> Decimal:
    """Exact Decimal from int, Decimal or a numeric string; floats are refused."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not an amount")
    if isinstance(value, float):
        raise TypeError("float amounts are not allowed; use int yen, Decimal or a string")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        return Decimal(value.strip().replace(",", ""))
    raise TypeError(f"not an amount: {type(value).__name__}")


def round_yen(value: Decimal | int | str, rule: Rounding) -> int:
    """Round ``value`` to whole yen with the named rule.

    >>> round_yen(Decimal("666.6"), Rounding.HALF_UP), round_yen(Decimal("666.6"), Rounding.FLOOR)
    (667, 666)
    >>> round_yen(Decimal("-0.5"), Rounding.HALF_UP), round_yen(Decimal("-0.5"), Rounding.TRUNCATE)
    (-1, 0)
    """
    d = to_decimal(value)
    return int(d.quantize(Decimal(1), rounding=_DECIMAL_MODES[Rounding(rule)]))


def _strict_yen(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount of yen")
    if isinstance(value, float):
        raise ValueError("float money is not allowed; give whole yen as an integer")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise ValueError("yen amounts are whole numbers (JPY has no minor unit)")
        return int(value)
    if isinstance(value, str):
        s = value.strip().replace(",", "").removeprefix("¥").removeprefix("￥")
        try:
            d = Decimal(s)
        except Exception as exc:  # noqa: BLE001 - re-raised as a validation message
            raise ValueError(f"not an amount of yen: {value[:40]!r}") from exc
        if d != d.to_integral_value():
            raise ValueError("yen amounts are whole numbers (JPY has no minor unit)")
        return int(d)
    return value


def _strict_decimal(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, float):
        raise ValueError("float values are not allowed; give an int, a Decimal or a string")
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"not a number: {value[:40]!r}") from exc
    return value


# Yen: whole yen as int; floats refused; numeric strings ("6000.00", "¥1,200") accepted when integral.
Yen = Annotated[int, BeforeValidator(_strict_yen), Field(ge=-(10**13), le=10**13)]
NonNegativeYen = Annotated[int, BeforeValidator(_strict_yen), Field(ge=0, le=10**13)]
# Exact decimal (quantities, percentages); floats refused.
StrictDecimal = Annotated[Decimal, BeforeValidator(_strict_decimal)]


def format_yen(amount: int) -> str:
    """Japanese yen formatting: ``¥1,234,567`` (negative: ``-¥1,234``)."""
    if isinstance(amount, float):
        raise TypeError("float money")
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(int(amount)):,}"
