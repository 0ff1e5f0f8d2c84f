"""Plausibility rules (妥当性チェック): values that are well-formed enough to pass the canonical model but
that no sane business record holds — an e-mail that cannot receive mail, a deal closed in 1900, an invoice
of ¥0, HTML or markdown pasted into a company name. Each rule is a pure function returning the problems
it found as :class:`Finding` (a reason code and a message); the flows route a record with findings to
review instead of copying it into the other system. The limits come from the policy's ``[plausibility]``
section (:class:`PlausibilityRules`); nothing here reads the clock: callers pass today's Tokyo date.

Worked examples (default rules, today = 2026-12-05):

* ``email_problem("not-an-email@@")`` → "not a valid e-mail address"; ``"keiri@example.co.jp"`` → None
* ``date_problem(date(1900, 1, 1), today)`` → "more than 3650 days before today" (``DATE_OUT_OF_RANGE``)
* ``date_problem(date(2100, 1, 1), today)`` → "more than 366 days after today"
* ``markup_problem("<b>株式会社テスト</b>")`` → "HTML tag"; ``"[株式会社](http://x)"`` → "markdown link";
  ``"株式会社A&B"`` → None (a lone ampersand or angle bracket in a name is allowed)
* ``amount_problem(0)`` → "total is ¥0" (``ZERO_OR_NEGATIVE_TOTAL``) unless ``allow_zero_total``
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

EMAIL_INVALID = "EMAIL_INVALID"
DATE_OUT_OF_RANGE = "DATE_OUT_OF_RANGE"
MARKUP_IN_TEXT = "MARKUP_IN_TEXT"
ZERO_OR_NEGATIVE_TOTAL = "ZERO_OR_NEGATIVE_TOTAL"


@dataclass(frozen=True)
class PlausibilityRules:
    """Limits of the plausibility rules (policy ``[plausibility]``)."""

    date_past_days: int = 3650  # a business date more than this many days before today is implausible
    date_future_days: int = 366  # … or more than this many days after today
    allow_zero_total: bool = False  # a ¥0 invoice is normally a data error
    allow_negative_total: bool = False  # a net credit goes through its own path (マイナス請求書 approval)
    check_email: bool = True
    check_markup: bool = True


@dataclass(frozen=True)
class Finding:
    code: str
    field: str
    message: str


# RFC 5322 is far wider than what a mail system or freee accepts; this is the practical "addr-spec" subset
# (dot-atom local part, dotted domain with a 2+ letter TLD, IDN domains allowed as Unicode letters).
_EMAIL = re.compile(
    r"^(?=.{3,254}$)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}$")


def email_problem(value: str | None) -> str | None:
    """Why ``value`` is not a usable e-mail address (None: fine, or empty — emptiness is another rule)."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    if not _EMAIL.match(v) or len(v.split("@", 1)[0]) > 64:
        return "not a valid e-mail address"
    return None


_MARKUP = [
    (re.compile(r"<\s*/?\s*[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?\s*>"), "HTML tag"),
    (re.compile(r"&(?:[A-Za-z]{2,8}|#\d{2,6}|#x[0-9A-Fa-f]{2,6});"), "HTML entity"),
    (re.compile(r"\[[^\]]*\]\([^)]*\)"), "markdown link"),
    (re.compile(r"(?:\*\*|__)[^*_]+(?:\*\*|__)"), "markdown emphasis"),
    (re.compile(r"(?:^|\s)#{1,6}\s"), "markdown heading"),
    (re.compile(r"```|`[^`]+`"), "markdown code"),
    (re.compile(r"(?i)javascript:|data:text/html"), "script URL"),
    (re.compile(r"^\s*[=+@-].*[(!]"), "spreadsheet formula"),
]


def markup_problem(value: str | None) -> str | None:
    """Which markup ``value`` carries (HTML, markdown, a script URL, a spreadsheet formula), else None."""
    if not value:
        return None
    for pattern, what in _MARKUP:
        if pattern.search(value):
            return what
    return None


def date_problem(value: date | None, today: date, rules: PlausibilityRules = PlausibilityRules()) -> str | None:
    """Why a business date (close date, deposit date) is outside the plausible window around ``today``."""
    if value is None:
        return None
    delta = (value - today).days
    if delta < -rules.date_past_days:
        return f"{value.isoformat()} is more than {rules.date_past_days} days before today ({today.isoformat()})"
    if delta > rules.date_future_days:
        return f"{value.isoformat()} is more than {rules.date_future_days} days after today ({today.isoformat()})"
    return None


def amount_problem(total: int, rules: PlausibilityRules = PlausibilityRules()) -> str | None:
    """Why an invoice total (integer yen) is implausible: ¥0, or negative outside the credit path."""
    if total == 0 and not rules.allow_zero_total:
        return "total is ¥0"
    if total < 0 and not rules.allow_negative_total:
        return f"total is negative (¥{total:,})"
    return None


def text_findings(fields: dict[str, str | None], rules: PlausibilityRules = PlausibilityRules(), *,
                  email_fields: tuple[str, ...] = ("email", "billing_email")) -> list[Finding]:
    """Markup in any text field and invalid e-mail syntax in the e-mail fields, one finding each."""
    out: list[Finding] = []
    for name, value in fields.items():
        if value is None:
            continue
        if rules.check_email and name in email_fields:
            why = email_problem(value)
            if why:
                out.append(Finding(EMAIL_INVALID, name, f"{name}: {why}"))
                continue
        if rules.check_markup:
            why = markup_problem(value)
            if why:
                out.append(Finding(MARKUP_IN_TEXT, name, f"{name}: contains {why}"))
    return out
