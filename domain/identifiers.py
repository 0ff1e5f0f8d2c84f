"""Japanese identifiers: corporate number (法人番号), qualified-invoice registration number (登録番号),
postal code (郵便番号).

Check digit: 平成26年財務省令第70号 第2条 (see ``jp-invoicing-rules.md`` §2.2)::

    check = 9 − ((Σ_{n=1..12} P_n × Q_n) mod 9),  P_n counted from the rightmost digit, Q_n = 1 odd / 2 even
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

_CORP_RE = re.compile(r"([1-9])(\d{12})")
_REG_RE = re.compile(r"T([1-9])(\d{12})")


def houjin_check_digit(base12: str) -> int:
    """Check digit of a 12-digit 基礎番号."""
    if len(base12) != 12 or not base12.isdigit():
        raise ValueError("the base number is 12 digits")
    s = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(base12), start=1))
    return 9 - s % 9


def _clean(value: str) -> str:
    s = unicodedata.normalize("NFKC", value).upper()
    return re.sub(r"[\s\-‐－ー]", "", s)


def corporate_number_is_valid(value: str) -> bool:
    m = _CORP_RE.fullmatch(_clean(value))
    return bool(m) and int(m.group(1)) == houjin_check_digit(m.group(2))


def normalise_corporate_number(value: str) -> str:
    """13-digit corporate number; raises ``ValueError`` when malformed or the check digit fails."""
    s = _clean(value)
    m = _CORP_RE.fullmatch(s)
    if not m:
        raise ValueError("a corporate number is 13 digits and does not start with 0")
    if int(m.group(1)) != houjin_check_digit(m.group(2)):
        raise ValueError(f"corporate number check digit fails (expected {houjin_check_digit(m.group(2))})")
    return s


@dataclass(frozen=True)
class RegistrationCheck:
    """Outcome of checking a qualified-invoice registration number."""

    value: str  # normalised, "T" + 13 digits
    check_digit_ok: bool
    warnings: tuple[str, ...] = field(default=())

    @property
    def corporate_number(self) -> str | None:
        """For a corporation, the registration number is ``T`` + its corporate number."""
        return self.value[1:] if self.check_digit_ok else None


def check_registration_number(value: str, *, sole_trader: bool = False) -> RegistrationCheck:
    """Validate a 登録番号 (``T`` + 13 digits, the ``T`` may be omitted on input).

    For a corporation (法人) a failing check digit is an error (``ValueError``). For a sole trader
    (個人事業者) the number is not a corporate number and no official statement says the same check
    digit applies, so a mismatch is returned as a warning instead.
    """
    s = _clean(value)
    if not s.startswith("T"):
        s = "T" + s
    m = _REG_RE.fullmatch(s)
    if not m:
        raise ValueError("a registration number is 'T' followed by 13 digits, the first not 0")
    ok = int(m.group(1)) == houjin_check_digit(m.group(2))
    if ok:
        return RegistrationCheck(s, True)
    msg = f"registration number check digit fails (expected {houjin_check_digit(m.group(2))})"
    if not sole_trader:
        raise ValueError(msg)
    return RegistrationCheck(s, False, (msg + "; verify it on the NTA 公表サイト",))


_POSTAL_RE = re.compile(r"(\d{3})(\d{4})")


def normalise_postal_code(value: str) -> str:
    """``〒100-0001``, ``１００－０００１``, ``1000001`` → ``100-0001``; raises ``ValueError`` otherwise."""
    s = unicodedata.normalize("NFKC", value).strip().removeprefix("〒").strip()
    s = re.sub(r"[\-‐－ー−\s]", "", s)
    m = _POSTAL_RE.fullmatch(s)
    if not m:
        raise ValueError("a Japanese postal code is 7 digits (NNN-NNNN)")
    return f"{m.group(1)}-{m.group(2)}"
