"""How the console shows values: yen, Asia/Tokyo dates and times, rates, months, masked free text.

Jinja2 filters (registered by :func:`renkei.console.app.templates`); each returns plain text, which the
template engine then HTML-escapes (autoescape is on for every template).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from renkei.domain.dates import stored_in_tokyo
from renkei.domain.money import format_yen

DASH = "—"


def yen(amount: Any) -> str:
    """``1234567`` → ``¥1,234,567``; ``None`` → ``—``. Money is integer yen: a float is refused."""
    if amount is None or amount == "":
        return DASH
    if isinstance(amount, bool):
        raise TypeError("not money")
    return format_yen(int(amount))


def jst(value: Any) -> str:
    """A time as ``2026-12-05 09:30 JST``; a date as ``2026-12-05``; ``None`` → ``—``."""
    if value is None or value == "":
        return DASH
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return stored_in_tokyo(value).strftime("%Y-%m-%d %H:%M JST")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def day(value: Any) -> str:
    """A business date (already Asia/Tokyo) as ``2026-12-05``."""
    if value is None or value == "":
        return DASH
    if isinstance(value, datetime):
        return stored_in_tokyo(value).date().isoformat()
    return value.isoformat() if isinstance(value, date) else str(value)


def month_ja(month: str) -> str:
    """``2026-04`` → ``2026年4月``; an empty month (no close date) → ``未定``."""
    if not month:
        return "未定"
    try:
        return f"{int(month[:4])}年{int(month[5:7])}月"
    except ValueError:
        return month


def rate(value: Any) -> str:
    """A ratio (Decimal 0.3333) as ``33.33%``."""
    if value is None or value == "":
        return DASH
    return f"{(Decimal(str(value)) * 100).quantize(Decimal('0.01'))}%"


def masked(value: Any) -> str:
    """Free text (review messages, drift details, comments): secrets removed, e-mails and phone numbers
    masked exactly as in the logs (:func:`renkei.logmask.mask_text`)."""
    if value is None:
        return ""
    from renkei.logmask import mask_text

    return mask_text(str(value))


def tax_label(category: str) -> str:
    from renkei.domain.model import TaxCategory

    try:
        return TaxCategory(category).label_ja
    except ValueError:
        return str(category)


def as_json(value: Any) -> str:
    """A change description as compact JSON text (Japanese as is); the template escapes it."""
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


FILTERS = {"as_json": as_json, "yen": yen, "jst": jst, "day": day, "month_ja": month_ja, "rate": rate, "masked": masked,
           "tax_label": tax_label}
