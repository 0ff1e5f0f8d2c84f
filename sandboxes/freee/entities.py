"""Entities of the freee sandbox (plain dataclasses; the rules live in :mod:`.store`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from . import tax
from .models import InvoiceCreate

__all__ = [
    "TXN_IGNORED",
    "TXN_MATCHED",
    "TXN_OUT_OF_SCOPE",
    "TXN_PARTIAL",
    "TXN_UNMATCHED",
    "AccountItem",
    "Company",
    "Deal",
    "DealDetail",
    "Invoice",
    "InvoiceLine",
    "Item",
    "JournalDetail",
    "ManualJournal",
    "Partner",
    "Payment",
    "TaxCode",
    "Template",
    "WalletTxn",
    "Walletable",
]

# wallet txn status codes (口座明細の消込状態)
TXN_UNMATCHED = 1  # 消込待ち
TXN_MATCHED = 2  # 消込済み
TXN_IGNORED = 3  # 無視
TXN_PARTIAL = 4  # 消込中
TXN_OUT_OF_SCOPE = 6  # 対象外


# ---------------------------------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------------------------------


@dataclass
class Company:
    id: int
    name: str
    name_kana: str
    display_name: str
    company_number: str
    corporate_number: str
    role: str = "admin"
    tax_fraction: int = 0  # 0 切り捨て, 1 切り上げ, 2 四捨五入
    amount_fraction: int = 0
    tax_account_method: int = 2  # 税抜経理
    use_partner_code: bool = True
    invoice_registration_number: str = ""
    zipcode: str | None = None
    prefecture_code: int | None = None
    street_name1: str | None = None
    street_name2: str | None = None
    phone1: str | None = None
    contact_name: str | None = None


@dataclass
class TaxCode:
    code: int
    name: str
    name_ja: str
    display_category: str | None
    rate: int  # percent contained in a tax-inclusive amount; 0 = no tax
    reduced: bool = False
    available: bool = True


@dataclass
class AccountItem:
    id: int
    name: str
    account_category: str
    account_category_id: int
    categories: list[str]
    tax_code: int
    code: str | None = None
    shortcut: str | None = None
    walletable_id: int | None = None
    group_name: str | None = None
    group_id: int | None = None
    available: bool = True


@dataclass
class Walletable:
    id: int
    name: str
    type: Literal["bank_account", "credit_card", "wallet"]
    bank_id: int | None = None


@dataclass
class Template:
    id: int
    name: str
    title: str
    invoice_registration_number: str
    company_name: str
    company_description: str
    bank_account_to_transfer: str
    message: str


@dataclass
class Partner:
    id: int
    company_id: int
    name: str
    update_date: str
    code: str | None = None
    available: bool = True
    shortcut1: str | None = None
    shortcut2: str | None = None
    org_code: int | None = None
    country_code: str = "JP"
    long_name: str | None = None
    name_kana: str | None = None
    default_title: str | None = None
    phone: str | None = None
    contact_name: str | None = None
    email: str | None = None
    payer_walletable_id: int | None = None
    transfer_fee_handling_side: str = "payer"
    qualified_invoice_issuer: bool = False
    invoice_registration_number: str | None = None
    address_attributes: dict[str, Any] = field(
        default_factory=lambda: {"zipcode": None, "prefecture_code": None, "street_name1": None, "street_name2": None}
    )
    partner_doc_setting_attributes: dict[str, Any] = field(default_factory=lambda: {"sending_method": None})
    partner_bank_account_attributes: dict[str, Any] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "bank_name",
                "bank_name_kana",
                "bank_code",
                "branch_name",
                "branch_kana",
                "branch_code",
                "account_type",
                "account_number",
                "account_name",
                "long_account_name",
            )
        )
    )
    payment_term_attributes: dict[str, Any] = field(
        default_factory=lambda: {"cutoff_day": None, "additional_months": None, "fixed_day": None}
    )
    invoice_payment_term_attributes: dict[str, Any] = field(
        default_factory=lambda: {"cutoff_day": None, "additional_months": None, "fixed_day": None}
    )

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "company_id": self.company_id,
            "name": self.name,
            "update_date": self.update_date,
            "available": self.available,
            "shortcut1": self.shortcut1,
            "shortcut2": self.shortcut2,
            "org_code": self.org_code,
            "country_code": self.country_code,
            "long_name": self.long_name,
            "name_kana": self.name_kana,
            "default_title": self.default_title,
            "phone": self.phone,
            "contact_name": self.contact_name,
            "email": self.email,
            "payer_walletable_id": self.payer_walletable_id,
            "transfer_fee_handling_side": self.transfer_fee_handling_side,
            "qualified_invoice_issuer": self.qualified_invoice_issuer,
            "invoice_registration_number": self.invoice_registration_number,
            "address_attributes": dict(self.address_attributes),
            "partner_doc_setting_attributes": dict(self.partner_doc_setting_attributes),
            "partner_bank_account_attributes": dict(self.partner_bank_account_attributes),
            "payment_term_attributes": dict(self.payment_term_attributes),
            "invoice_payment_term_attributes": dict(self.invoice_payment_term_attributes),
        }


@dataclass
class Item:
    id: int
    company_id: int
    name: str
    update_date: str
    code: str | None = None
    shortcut1: str | None = None
    shortcut2: str | None = None
    available: bool = True

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "company_id": self.company_id,
            "name": self.name,
            "update_date": self.update_date,
            "available": self.available,
            "shortcut1": self.shortcut1,
            "shortcut2": self.shortcut2,
            "code": self.code,
        }


@dataclass
class DealDetail:
    id: int
    account_item_id: int
    tax_code: int
    amount: int
    vat: int
    entry_side: Literal["credit", "debit"]
    item_id: int | None = None
    section_id: int | None = None
    tag_ids: list[int] = field(default_factory=list)
    description: str = ""


@dataclass
class Payment:
    id: int
    date: str
    from_walletable_type: str
    from_walletable_id: int
    amount: int
    wallet_txn_id: int | None = None


@dataclass
class Deal:
    id: int
    company_id: int
    issue_date: str
    type: Literal["income", "expense"]
    details: list[DealDetail]
    due_date: str | None = None
    partner_id: int | None = None
    ref_number: str | None = None
    payments: list[Payment] = field(default_factory=list)
    receipt_ids: list[int] = field(default_factory=list)

    @property
    def amount(self) -> int:
        return sum(d.amount for d in self.details)

    @property
    def paid(self) -> int:
        return sum(p.amount for p in self.payments)

    @property
    def due_amount(self) -> int:
        return self.amount - self.paid

    @property
    def status(self) -> Literal["settled", "unsettled"]:
        return "settled" if self.due_amount == 0 else "unsettled"


@dataclass
class WalletTxn:
    id: int
    company_id: int
    date: str
    amount: int
    due_amount: int
    entry_side: Literal["income", "expense"]
    walletable_type: str
    walletable_id: int
    description: str
    status: int = TXN_UNMATCHED
    balance: int | None = None
    rule_matched: bool = False

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "company_id": self.company_id,
            "date": self.date,
            "amount": self.amount,
            "due_amount": self.due_amount,
            "balance": self.balance,
            "entry_side": self.entry_side,
            "walletable_type": self.walletable_type,
            "walletable_id": self.walletable_id,
            "description": self.description,
            "status": self.status,
            "rule_matched": self.rule_matched,
        }


@dataclass
class JournalDetail:
    id: int
    entry_side: Literal["debit", "credit"]
    account_item_id: int
    tax_code: int
    amount: int
    vat: int
    partner_id: int | None = None
    item_id: int | None = None
    section_id: int | None = None
    tag_ids: list[int] = field(default_factory=list)
    description: str = ""


@dataclass
class ManualJournal:
    id: int
    company_id: int
    issue_date: str
    adjustment: bool
    details: list[JournalDetail]
    ref_number: str | None = None
    txn_number: str | None = None
    receipt_ids: list[int] = field(default_factory=list)


@dataclass
class InvoiceLine:
    id: int
    type: Literal["item", "text"]
    description: str
    sales_date: str | None
    unit: str
    quantity: Decimal | None
    unit_price: str | None
    tax_rate: int | None
    reduced_tax_rate: bool
    withholding: bool
    amount: int | None  # quantity × unit price in whole yen (税込 for 内税, 税別 for 外税); None for text
    amount_excluding_tax: int | None
    account_item_id: int | None = None
    tax_code: int | None = None
    item_id: int | None = None
    section_id: int | None = None
    tag_ids: list[int] = field(default_factory=list)


@dataclass
class Invoice:
    id: int
    company_id: int
    request: InvoiceCreate
    invoice_number: str
    partner_id: int
    template_id: int
    lines: list[InvoiceLine]
    totals: dict[tax.RateKey, tax.RateTotal]
    amount_withholding_tax: int
    created_at: str
    deal_id: int | None = None
    sending_status: Literal["sent", "unsent"] = "unsent"
    cancel_status: Literal["canceled", "uncanceled"] = "uncanceled"

    @property
    def amount_excluding_tax(self) -> int:
        return sum(t.amount_excluding_tax for t in self.totals.values())

    @property
    def amount_tax(self) -> int:
        return sum(t.amount_tax for t in self.totals.values())

    @property
    def amount_including_tax(self) -> int:
        return sum(t.amount_including_tax for t in self.totals.values())

    @property
    def amount_brought_forward(self) -> int | None:
        return self.request.amount_brought_forward if self.request.include_amount_brought_forward else None

    @property
    def total_amount(self) -> int:
        """合計金額: 税込 total − 源泉所得税 (+ 前回繰越 when included)."""
        return self.amount_including_tax - self.amount_withholding_tax + (self.amount_brought_forward or 0)
