"""Canonical types of the deals & money part of the contract (``CRMDeals``, ``ERPMoney``).

Re-exported from :mod:`connectors.base`. No system's field names or body shapes appear here: each
connector maps its own records to these types (ids are strings; money is integer yen; dates are
Asia/Tokyo business dates).

Canonical CRM write-back keys (``update_deal_properties``): the keys below are what flows write; each CRM
maps them to its own field names (HubSpot: custom properties of the same names).

* invoices: ``renkei_invoice_status``, ``renkei_invoice_id``, ``renkei_invoice_number``,
  ``renkei_invoiced_at`` (ISO UTC), ``renkei_invoice_comment``;
* payments: ``renkei_payment_status`` (``paid`` | ``partial`` | ``unpaid`` | ``overdue``),
  ``renkei_paid_amount``, ``renkei_outstanding_amount`` (yen as decimal strings), ``renkei_paid_at`` (ISO date);
* subscriptions: ``renkei_subscription_*`` as written by ``tasks.subscriptions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


from renkei.connectors.http import PermanentError
from renkei.domain.model import BankDeposit, Deal
from renkei.domain.money import Rounding

DEAL_WRITEBACK_KEYS = (
    "renkei_invoice_status", "renkei_invoice_id", "renkei_invoice_number", "renkei_invoiced_at",
    "renkei_invoice_comment", "renkei_payment_status", "renkei_paid_amount", "renkei_outstanding_amount",
    "renkei_paid_at",
)


# -- errors ----------------------------------------------------------------------------------------------


class InvoiceSettingMismatch(PermanentError):
    """The ERP is set up in a way Renkei is not configured for (e.g. its invoice numbering): nothing was
    created; the message names the setting to change."""


CompanySettingError = InvoiceSettingMismatch  # the name used before the contract


class InvoiceNumberTaken(PermanentError):
    """The ERP refused the invoice number as already used: nothing was created."""


class InvalidBankLine(ValueError):
    """A bank line that cannot become a :class:`BankDeposit` (no date, an amount that is not whole yen, …).

    The message names the fields and what is wrong with them, never their values: a bank description is
    personal data and must not reach an exception, a log or Prefect's log table."""

    reason_code = "INVALID_BANK_LINE"

    def __init__(self, txn_id: str, problems: list[str]):
        self.txn_id = txn_id
        self.problems = problems
        super().__init__(f"bank line {txn_id}: " + "; ".join(problems))


# -- invoices --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceSettings:
    """The ERP account's settings that shape the invoices Renkei sends (``ERPMoney.read_invoice_settings``).

    ``account_id``: the ERP company / tenant (names review items); ``use_partner_code``: partners carry
    a code; ``tax_rounding`` / ``amount_rounding``: the account's 端数処理; ``invoice_numbering``:
    ``auto`` (the ERP numbers) | ``manual`` (Renkei numbers, policy ``[invoice_numbering]``);
    ``registration_number``: the issuer's 適格請求書発行事業者登録番号 when the ERP holds it; ``rows``:
    (setting, value, source) lines for ``renkei doctor``."""

    account_id: str
    use_partner_code: bool
    tax_rounding: Rounding
    amount_rounding: Rounding
    invoice_numbering: str = "manual"
    numbering_source: str = "policy [invoice_numbering] mode"
    registration_number: str | None = None
    rows: tuple[tuple[str, str, str], ...] = ()


# -- receivables and payments (bank_lines=True: 消込) ------------------------------------------------------


@dataclass(frozen=True)
class ReceivablePayment:
    """One payment recorded against a receivable."""

    id: str
    day: date | None
    amount: int
    account_id: str | None  # the money account it came from (bank account, clearing account)


@dataclass(frozen=True)
class Receivable:
    """What a customer owes for one invoice (freee: an income 取引), with the payments recorded on it.

    ``outstanding`` is 0 once ``settled``. ``invoice_erp_id``/``invoice_number``/``reference`` are those
    of the ERP invoice behind it (``reference`` = ``renkei:deal:<CRM deal id>`` for invoices Renkei made)."""

    id: str
    total: int
    outstanding: int
    settled: bool = False
    issue_date: date | None = None
    due_date: date | None = None
    partner_erp_id: str | None = None
    invoice_erp_id: str | None = None
    invoice_number: str | None = None
    reference: str | None = None
    payments: tuple[ReceivablePayment, ...] = ()

    @property
    def paid_on(self) -> date | None:
        return max((p.day for p in self.payments if p.day), default=None)


@dataclass
class OpenReceivables:
    """Every receivable still open (not settled, invoice not cancelled), with its partners' names."""

    receivables: list[Receivable] = field(default_factory=list)
    partners: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id → (name, kana)
    skipped: list[str] = field(default_factory=list)  # notes: receivables that cannot be matched


@dataclass(frozen=True)
class MoneyAccount:
    """An ERP money account payments can come from (bank account, clearing wallet)."""

    id: str
    kind: str  # "bank" | "clearing"
    ledger_account: str  # the account item (勘定科目) name behind it


@dataclass(frozen=True)
class BankLineRead:
    """One listed bank line: its id and date (``None`` when it has none), and either the deposit waiting
    to be matched, ``None`` (not a deposit to match: matched, ignored, another account), or the
    :class:`InvalidBankLine` explaining why it cannot be read."""

    id: str
    day: date | None
    deposit: BankDeposit | None = None
    error: InvalidBankLine | None = None


# -- payment status (payment_status=True) ---------------------------------------------------------------


@dataclass(frozen=True)
class InvoicePaymentStatus:
    """An invoice's payment state as the ERP sees it (``iter_invoice_payment_changes``).

    ``status`` is the ERP's ``paid`` | ``partial`` | ``unpaid``; ``overdue`` is Renkei's reading (an
    outstanding amount past ``due_date`` in Asia/Tokyo), not the ERP's."""

    invoice_erp_id: str
    total: int
    outstanding: int
    status: str
    paid_on: date | None = None
    due_date: date | None = None
    reference: str | None = None
    invoice_number: str | None = None

    @property
    def paid_amount(self) -> int:
        return self.total - self.outstanding


# -- journals (journals=True) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalLine:
    side: str  # "debit" | "credit"
    account: str  # account item (勘定科目) name
    amount: int
    description: str = ""
    partner_erp_id: str | None = None
    tax: str = "non_taxable"  # "non_taxable" (対象外) | "default" (the account's default tax code)


@dataclass(frozen=True)
class ManualJournal:
    """A manual journal (振替伝票) with a deterministic ``ref`` (≤ 20 chars) that finds it again."""

    issue_date: date
    ref: str
    lines: tuple[JournalLine, ...]


# -- CRM subscriptions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionDeal:
    """A deal with recurring line items as the CRM holds it (``CRMDeals.subscription_deal``).

    Ended lines (quantity 0 in the CRM) are mapped with quantity 1 (the canonical line needs a positive
    quantity) and listed in ``ended_line_ids``. ``deal`` is ``None`` and ``error`` says why when the deal
    cannot be mapped; ``stage`` is the deal's stage id either way."""

    deal_id: str
    stage: str | None
    deal: Deal | None = None
    error: str | None = None
    ended_line_ids: frozenset[str] = frozenset()


__all__ = [
    "BankLineRead", "CompanySettingError", "DEAL_WRITEBACK_KEYS", "InvalidBankLine", "InvoiceNumberTaken",
    "InvoicePaymentStatus", "InvoiceSettingMismatch", "InvoiceSettings", "JournalLine", "ManualJournal",
    "MoneyAccount", "OpenReceivables", "Receivable", "ReceivablePayment", "SubscriptionDeal",
]

