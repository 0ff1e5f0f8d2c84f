"""Payment notices (入金通知) against reconciled bank lines: the pure rule.

A payment notice is what a bank, a payment service or a Zapier / Make scenario says about money on its way
(``POST /inbound/payment``: amount, day, maybe the payer's name and the invoice number). It is a claim, not
money: the ERP owns deposits, so a notice never creates a payment. Renkei keeps the notice and closes it
when the same money has been settled — a bank line reconciled (applied to invoices by payment-writeback or
an approval), or an invoice the ERP reports paid by other means (a person matched the deposit in the ERP;
an ERP without bank lines): :func:`paid_in_erp` is that payment as a :class:`SettledDeposit` of its own,
the amount the invoice's paid amount rose by. A notice nothing settled matches within
:attr:`NoticeRules.unmatched_after_days` becomes one ``PAYMENT_NOTICE_UNMATCHED`` review item for finance
(money announced, not seen).

The rule (:func:`match_notices`), for a notice *n* and a reconciled deposit *d*:

* **amount** — equal, to the yen (a fee deducted by the bank makes a different amount: no match, a
  person looks);
* **day** — ``d.day - n.day`` within ``[-days_before, +days_after]`` (the bank books the transfer on the
  next business days; a notice may be sent a day or two late);
* **payer** — when both names are known in a comparable form (the bank's kana, or Latin letters, after
  :func:`renkei.domain.normalise.normalise_kana`), they must be equal; a name in kanji cannot be compared
  with the bank's kana and is no evidence either way;
* **invoice** — when the notice names an invoice number and the deposit was applied to invoices, the
  number must be one of them.

Among the deposits that pass, evidence ranks them: an invoice number that agrees, then a payer that agrees,
then the smaller day difference. A pair is made only when it is unambiguous **both ways**: the deposit is
the notice's single best candidate and the notice is the deposit's single best notice (among those still
free). Ties stay open — a wrong closure would hide money that never came, an open notice only asks a person.
Each deposit closes at most one notice and each notice at most one deposit.

Worked example (rules: 2 days before, 5 after)::

    notices   N1 55,000 on 12-01 payer ヤマダシヨウジ     N2 55,000 on 12-01 (no payer)
    deposits  D1 55,000 on 12-02 payer ヤマダシヨウジ     D2 55,000 on 12-03 payer スズキ

    N1–D1: amount, day +1, payer agrees            N1–D2: payer differs → not a candidate
    N2–D1: amount, day +1                          N2–D2: amount, day +2
    N1 takes D1 (its only candidate, and D1's best notice: payer evidence beats none);
    then N2 has D2 alone → N2–D2.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Sequence

from renkei.domain.normalise import normalise_kana, nfkc

PAYMENT_NOTICE_UNMATCHED = "PAYMENT_NOTICE_UNMATCHED"
PAYER_KEY_PREFIX = "hmac-sha256:"

# katakana (with the prolonged mark), Latin letters and digits: the forms a bank line's payer name has
_COMPARABLE = re.compile(r"^[\u30A1-\u30FA\u30FCA-Z0-9]+$")


def comparable_payer(name: str | None) -> str | None:
    """The payer name in the form bank lines are compared in (kana / Latin, company marks dropped), or None
    when it has none (empty, kanji, masked ``山***``)."""
    if not name or "*" in name:
        return None
    key = normalise_kana(nfkc(name).upper())
    return key if key and _COMPARABLE.match(key) else None


def payer_key(name: str | None, secret: bytes) -> str | None:
    """What is kept at rest of a payer's name for matching: a keyed hash of :func:`comparable_payer` (equal
    names hash equal; nothing can be read back without the key). None when the name cannot be compared."""
    form = comparable_payer(name)
    if form is None:
        return None
    return PAYER_KEY_PREFIX + hmac.new(secret, f"payer\x1f{form}".encode(), hashlib.sha256).hexdigest()


def invoice_key(number: str | None) -> str | None:
    """An invoice number as compared: NFKC, upper case, spaces and hyphens dropped (``inv-0001`` = ``INV0001``)."""
    if not number:
        return None
    s = re.sub(r"[\s\-‐－_]", "", nfkc(str(number)).upper())
    return s or None


@dataclass(frozen=True)
class Notice:
    key: str  # the sender's idempotency key
    amount: int  # yen
    day: date  # Asia/Tokyo
    payer_key: str | None = None
    invoice_number: str | None = None


@dataclass(frozen=True)
class SettledDeposit:
    """Money settled: a bank line Renkei reconciled (applied to invoices), or an invoice payment the ERP
    reports (:func:`paid_in_erp`)."""

    deposit_id: str
    amount: int
    day: date
    payer_key: str | None = None
    invoice_numbers: tuple[str, ...] = ()


PAID_IN_ERP_PREFIX = "invoice:"  # a settlement read from the ERP's payment status, not a reconciled bank line
RECONCILED_BY_RENKEI = "reconciled_by_renkei"
PAID_IN_ERP = "paid_in_erp"


def paid_in_erp(invoice_erp_id: str, invoice_number: str | None, paid_amount: int, paid_on: date | None,
                accounted: int) -> SettledDeposit | None:
    """An invoice the ERP reports paid, as money a notice can be closed against: the rise of its paid amount
    over what is ``accounted`` for already (earlier rises, Renkei's own applications), on its payment day.
    ``None``: nothing new (or no payment day). The id names the invoice and its paid amount, so the same
    payment read again is the same settlement."""
    new = int(paid_amount) - int(accounted)
    if new <= 0 or paid_on is None:
        return None
    return SettledDeposit(f"{PAID_IN_ERP_PREFIX}{invoice_erp_id}:{int(paid_amount)}"[:64], new, paid_on, None,
                          (invoice_number,) if invoice_number else ())


def how_settled(deposit_id: str) -> str:
    """:data:`PAID_IN_ERP` for a settlement read from the ERP's payment status, else :data:`RECONCILED_BY_RENKEI`."""
    return PAID_IN_ERP if str(deposit_id).startswith(PAID_IN_ERP_PREFIX) else RECONCILED_BY_RENKEI


@dataclass(frozen=True)
class NoticeRules:
    days_before: int = 2  # the bank line may be dated this many days before the notice day ...
    days_after: int = 5  # ... or this many after it (transfers booked on the next business days)
    unmatched_after_days: int = 7  # no reconciled line by notice day + this → a review item

    def __post_init__(self) -> None:
        if min(self.days_before, self.days_after, self.unmatched_after_days) < 0:
            raise ValueError("notice rules are non-negative day counts")


@dataclass(frozen=True)
class NoticeMatch:
    notice_key: str
    deposit_id: str
    evidence: tuple[str, ...] = field(default=())  # "amount", "day+1", "payer", "invoice"


def evidence(n: Notice, d: SettledDeposit, rules: NoticeRules) -> tuple[str, ...] | None:
    """Why ``d`` may be the money ``n`` announced, or None when it cannot be."""
    if int(d.amount) != int(n.amount):
        return None
    delta = (d.day - n.day).days
    if not -rules.days_before <= delta <= rules.days_after:
        return None
    out = ["amount", f"day{delta:+d}"]
    if n.payer_key and d.payer_key:
        if n.payer_key != d.payer_key:
            return None  # named differently: someone else's money
        out.append("payer")
    wanted = invoice_key(n.invoice_number)
    if wanted and d.invoice_numbers:
        if wanted not in {invoice_key(x) for x in d.invoice_numbers}:
            return None  # applied to other invoices
        out.append("invoice")
    return tuple(out)


def _strength(ev: tuple[str, ...]) -> tuple[int, int, int]:
    delta = next(int(e[3:]) for e in ev if e.startswith("day"))
    return ("invoice" in ev, "payer" in ev, -abs(delta))


def _single_best(scored: Sequence[tuple[tuple, str]]) -> str | None:
    if not scored:
        return None
    ranked = sorted(scored, key=lambda x: x[0], reverse=True)
    if len(ranked) > 1 and ranked[0][0] == ranked[1][0]:
        return None
    return ranked[0][1]


def match_notices(notices: Iterable[Notice], deposits: Iterable[SettledDeposit],
                  rules: NoticeRules = NoticeRules()) -> list[NoticeMatch]:
    """The unambiguous notice ↔ deposit pairs (module docstring), in notice order."""
    notices = list(notices)
    deposits = {d.deposit_id: d for d in deposits}
    pairs: dict[tuple[str, str], tuple[str, ...]] = {}
    for n in notices:
        for d in deposits.values():
            ev = evidence(n, d, rules)
            if ev is not None:
                pairs[(n.key, d.deposit_id)] = ev
    free_n = {n.key for n in notices}
    free_d = set(deposits)
    made: dict[str, NoticeMatch] = {}
    changed = True
    while changed:  # taking one pair can make another unambiguous (worked example)
        changed = False
        for n in notices:
            if n.key not in free_n:
                continue
            best = _single_best([(_strength(ev), d) for (nk, d), ev in pairs.items() if nk == n.key and d in free_d])
            if best is None:
                continue
            back = _single_best([(_strength(ev), nk) for (nk, d), ev in pairs.items() if d == best and nk in free_n])
            if back != n.key:
                continue
            made[n.key] = NoticeMatch(n.key, best, pairs[(n.key, best)])
            free_n.discard(n.key)
            free_d.discard(best)
            changed = True
    return [made[n.key] for n in notices if n.key in made]


def overdue(n: Notice, today: date, rules: NoticeRules = NoticeRules()) -> bool:
    """No reconciled line may still come for ``n``: its window and the grace days are over."""
    return (today - n.day).days > max(rules.unmatched_after_days, rules.days_after)


__all__ = ["Notice", "NoticeMatch", "NoticeRules", "PAID_IN_ERP", "PAID_IN_ERP_PREFIX", "PAYMENT_NOTICE_UNMATCHED",
           "RECONCILED_BY_RENKEI", "SettledDeposit", "comparable_payer", "evidence", "how_settled", "invoice_key",
           "match_notices", "overdue", "paid_in_erp", "payer_key"]
