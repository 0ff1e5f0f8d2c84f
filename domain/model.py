"""Canonical model shared by every connector and flow (pydantic v2, no I/O).

Each field carries its meaning, the system that owns it by default (``crm``, ``erp``, ``both`` — 3-way
merged — or ``renkei``) and how each connector names it; ``docs/data-dictionary.md`` is generated from
these (``renkei docs``). Money is integer yen (:data:`domain.money.Yen`), never float.

Words: a *deal* here is a HubSpot deal (商談); freee's accounting "deal" (取引) is an ERP-side record
that an :class:`Invoice` or :class:`Payment` is booked on.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from renkei.domain.identifiers import check_registration_number, normalise_corporate_number, normalise_postal_code
from renkei.domain.money import NonNegativeYen, StrictDecimal, Yen

# ---------------------------------------------------------------------------------------------------
# text


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    if cp in (0x200D, 0xFE0F, 0x20E3):  # ZWJ, emoji presentation selector, keycap
        return True
    if 0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x1F900 <= cp <= 0x1F9FF:
        return True
    return cp > 0xFFFF and unicodedata.category(ch) in ("So", "Sk", "Cn")


def clean_text(value: str) -> str:
    """Trim, refuse control characters and emoji (neither survives ERP, PDF or 全銀 formats)."""
    value = value.strip()
    for i, ch in enumerate(value):
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Co") or (cat == "Cf" and ch != "\u200b") or ch in ("\u2028", "\u2029"):
            raise ValueError(f"control character U+{ord(ch):04X} at position {i} is not allowed")
        if _is_emoji(ch):
            raise ValueError(f"emoji U+{ord(ch):04X} at position {i} is not allowed")
    return value


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, Field(max_length=255), AfterValidator(clean_text)]
Name = Annotated[str, Field(max_length=255), AfterValidator(clean_text), AfterValidator(_non_empty)]
LongText = Annotated[str, Field(max_length=5000), AfterValidator(clean_text)]


def meta(description: str, owner: str = "renkei", *, hubspot: str = "", freee: str = "", **extra: Any) -> Any:
    """Field with data-dictionary metadata."""
    default = extra.pop("default", None)
    factory = extra.pop("default_factory", None)
    kw: dict[str, Any] = {"description": description,
                          "json_schema_extra": {"owner": owner, "hubspot": hubspot, "freee": freee}}
    kw.update(extra)
    if factory is not None:
        return Field(default_factory=factory, **kw)
    return Field(default, **kw) if default is not ... else Field(..., **kw)


class CanonicalModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, str_strip_whitespace=False)


# ---------------------------------------------------------------------------------------------------
# value types


class TaxCategory(str, Enum):
    """Consumption-tax category of a line (jp-invoicing-rules §3)."""

    STANDARD_10 = "standard_10"  # 標準税率 10%
    REDUCED_8 = "reduced_8"  # 軽減税率 8% (※ marked on the invoice)
    EXEMPT = "exempt"  # 非課税
    NON_TAXABLE = "non_taxable"  # 不課税 / 対象外

    @property
    def rate_percent(self) -> int:
        return {"standard_10": 10, "reduced_8": 8}.get(self.value, 0)

    @property
    def reduced(self) -> bool:
        return self is TaxCategory.REDUCED_8

    @property
    def label_ja(self) -> str:
        return {"standard_10": "10%", "reduced_8": "8%（軽減）", "exempt": "非課税", "non_taxable": "不課税"}[
            self.value
        ]


class EntityKind(str, Enum):
    CORPORATION = "corporation"  # 法人
    SOLE_TRADER = "sole_trader"  # 個人事業者


class TaxEntryMethod(str, Enum):
    EXCLUSIVE = "exclusive"  # 外税
    INCLUSIVE = "inclusive"  # 内税


class Address(CanonicalModel):
    postal_code: str | None = meta("郵便番号 NNN-NNNN", "erp", hubspot="zip", freee="address_attributes.zipcode")
    prefecture: Text | None = meta("都道府県", "erp", hubspot="state", freee="address_attributes.prefecture_code")
    city: Text | None = meta("市区町村", "erp", hubspot="city", freee="address_attributes.street_name1")
    street: Text | None = meta("番地", "erp", hubspot="address", freee="address_attributes.street_name1")
    building: Text | None = meta("建物名", "erp", hubspot="address2", freee="address_attributes.street_name2")

    @field_validator("postal_code")
    @classmethod
    def _postal(cls, v: str | None) -> str | None:
        return normalise_postal_code(v) if v else None


class PaymentTerms(CanonicalModel):
    """支払条件: close on ``closing_day`` (0 = month end), pay ``pay_month_offset`` months later on
    ``pay_day`` (0 = month end). Default 月末締め翌月末払い."""

    closing_day: int = Field(0, ge=0, le=28, description="締め日 (0 = 月末)")
    pay_month_offset: int = Field(1, ge=0, le=12, description="支払月 (0 = 当月, 1 = 翌月 ...)")
    pay_day: int = Field(0, ge=0, le=28, description="支払日 (0 = 月末)")


# ---------------------------------------------------------------------------------------------------
# entities


class Company(CanonicalModel):
    """A customer: HubSpot company ⇄ freee partner (取引先)."""

    crm_id: str | None = meta("HubSpot company id", "crm", hubspot="id")
    erp_id: str | None = meta("freee partner id", "erp", freee="id")
    erp_department_id: str | None = meta("請求先部署 id (an ERP whose partners have departments holding the address "
                                         "and contact: capability departments)", "erp", freee="—")
    name: Name = meta("会社名 (legal name)", "crm", hubspot="name", freee="name", default=...)
    name_kana: Text | None = meta("フリガナ", "crm", hubspot="renkei_name_kana", freee="shortcut1 / long_name kana")
    entity_kind: EntityKind = meta("法人 or 個人事業者", "erp", hubspot="renkei_entity_kind", freee="org_code (1 法人, 2 個人)",
                                   default=EntityKind.CORPORATION)
    corporate_number: str | None = meta("法人番号 (13 digits; for a 法人 also the digits of its T-number)", "crm",
                                        hubspot="renkei_corporate_number", freee="—")
    registration_number: str | None = meta("適格請求書発行事業者登録番号 T+13", "erp", hubspot="renkei_invoice_registration_number",
                                           freee="invoice_registration_number")
    partner_code: Text | None = meta("取引先コード", "erp", hubspot="renkei_partner_code", freee="code")
    domain: Text | None = meta("Web domain", "crm", hubspot="domain", freee="—")
    phone: Text | None = meta("代表電話", "crm", hubspot="phone", freee="phone")
    sales_owner: Text | None = meta("担当営業 (owner id)", "crm", hubspot="hubspot_owner_id", freee="—")
    address: Address | None = meta("所在地 / billing address", "erp", hubspot="address,city,state,zip",
                                   freee="address_attributes")
    billing_contact_name: Text | None = meta("請求先担当者", "erp", hubspot="renkei_billing_contact",
                                             freee="partner_doc_setting_attributes / contact_name")
    billing_email: Text | None = meta("請求書送付先メール", "erp", hubspot="renkei_billing_email", freee="email")
    payment_terms: PaymentTerms | None = meta("支払条件", "erp", hubspot="renkei_payment_terms",
                                              freee="payment_term_attributes")
    credit_hold: bool = meta("与信停止 (no invoices without approval)", "erp", hubspot="renkei_credit_hold", freee="—",
                             default=False)
    payer_aliases: list[Text] = meta("振込名義 aliases seen on deposits", "renkei", default_factory=list)
    archived: bool = meta("archived / merged away / deactivated", "both", hubspot="archived", freee="available=false",
                          default=False)
    updated_at: datetime | None = meta("last modification in the source system", "both",
                                       hubspot="hs_lastmodifieddate", freee="update_date")
    warnings: list[str] = meta("non-blocking validation warnings", "renkei", default_factory=list)

    @field_validator("corporate_number")
    @classmethod
    def _corp(cls, v: str | None) -> str | None:
        return normalise_corporate_number(v) if v else None

    @model_validator(mode="after")
    def _registration(self) -> "Company":
        if self.registration_number:
            try:
                chk = check_registration_number(
                    self.registration_number, sole_trader=self.entity_kind is EntityKind.SOLE_TRADER
                )
            except ValueError as exc:
                raise ValueError(f"registration_number: {exc}") from None
            if chk.value != self.registration_number:
                object.__setattr__(self, "registration_number", chk.value)
            for w in chk.warnings:
                if w not in self.warnings:
                    self.warnings.append(w)
        return self


class Contact(CanonicalModel):
    crm_id: str | None = meta("HubSpot contact id", "crm", hubspot="id")
    company_crm_id: str | None = meta("company it belongs to", "crm", hubspot="association contact→company (279)")
    last_name: Name = meta("姓", "crm", hubspot="lastname", default=...)
    first_name: Text | None = meta("名", "crm", hubspot="firstname")
    email: Text | None = meta("e-mail", "crm", hubspot="email")
    phone: Text | None = meta("電話", "crm", hubspot="phone")


class Product(CanonicalModel):
    """品目: owned by the ERP, flows to HubSpot products (``hs_sku`` is the key)."""

    code: Name = meta("品目コード / SKU", "erp", hubspot="hs_sku", freee="code", default=...)
    name: Name = meta("品目名", "erp", hubspot="name", freee="name", default=...)
    unit_price: NonNegativeYen | None = meta("標準単価 (税抜)", "erp", hubspot="price", freee="—")
    tax_category: TaxCategory = meta("税区分", "erp", hubspot="renkei_tax_category", freee="tax_code",
                                     default=TaxCategory.STANDARD_10)
    crm_id: str | None = meta("HubSpot product id", "crm", hubspot="id")
    erp_id: str | None = meta("freee item id", "erp", freee="id")
    active: bool = meta("in use", "erp", hubspot="archived", freee="available", default=True)
    cost_price: NonNegativeYen | None = meta("原価 (税抜; where the ERP holds it: capability item_cost)", "erp",
                                             hubspot="hs_cost_of_goods_sold", freee="—")
    stock: Annotated[StrictDecimal, Field(max_digits=18, decimal_places=4)] | None = meta(
        "在庫数 (where the ERP holds it: capability item_stock)", "erp", hubspot="renkei_stock", freee="—")


class LineItem(CanonicalModel):
    crm_id: str | None = meta("HubSpot line item id", "crm", hubspot="id")
    product_code: Text | None = meta("品目コード", "crm", hubspot="hs_sku", freee="item_id (via code)")
    name: Name = meta("品名", "crm", hubspot="name", freee="description", default=...)
    quantity: Annotated[StrictDecimal, Field(ge=0, max_digits=18, decimal_places=4)] = meta(
        "数量 (> 0; 0 only on a dated amendment that ends the item)", "crm", hubspot="quantity", freee="quantity",
        default=...)
    unit_price: NonNegativeYen = meta("単価 (税抜, yen)", "crm", hubspot="price", freee="unit_price", default=...)
    discount: NonNegativeYen = meta("値引 per unit (yen)", "crm", hubspot="discount", freee="—", default=0)
    discount_percent: Annotated[StrictDecimal, Field(ge=0, le=100)] = meta(
        "値引率 %", "crm", hubspot="hs_discount_percentage", default=Decimal(0))
    tax_category: TaxCategory | None = meta("税区分 (None = product's or config default)", "crm",
                                            hubspot="renkei_tax_category / hs_tax_rate_group_id",
                                            freee="tax_rate + reduced_tax_rate")
    recurring_frequency: Text | None = meta("課金周期 (monthly, quarterly, annually)", "crm",
                                            hubspot="recurringbillingfrequency")
    recurring_start: date | None = meta("課金開始日", "crm", hubspot="hs_recurring_billing_start_date")
    term_months: int | None = meta("契約期間 (months)", "crm", hubspot="hs_term_in_months", default=None)
    effective_date: date | None = meta("変更の適用日 (amendments)", "crm", hubspot="renkei_effective_date")

    @model_validator(mode="after")
    def _quantity_zero_only_for_amendments(self) -> "LineItem":
        if self.quantity == 0 and self.effective_date is None:
            raise ValueError("quantity: must be greater than 0 (0 only on an amendment with renkei_effective_date)")
        return self


class Deal(CanonicalModel):
    """A HubSpot deal (商談) — the order (受注) when it reaches a won stage."""

    crm_id: str = meta("HubSpot deal id", "crm", hubspot="id", default=...)
    name: Name = meta("商談名", "crm", hubspot="dealname", default=...)
    amount: Yen | None = meta("金額 (税抜 sum of lines expected)", "crm", hubspot="amount")
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = meta("通貨", "crm", hubspot="deal_currency_code", default="JPY")
    pipeline: Text = meta("pipeline id", "crm", hubspot="pipeline", default="default")
    stage: Text = meta("stage id", "crm", hubspot="dealstage", default=...)
    close_date: date | None = meta("受注日 (Asia/Tokyo)", "crm", hubspot="closedate", freee="issue_date")
    company_crm_id: str | None = meta("primary company", "crm", hubspot="association deal→company (5/341)")
    owner: Text | None = meta("担当営業", "crm", hubspot="hubspot_owner_id")
    line_items: list[LineItem] = meta("明細", "crm", hubspot="association deal→line item (19)", default_factory=list)
    updated_at: datetime | None = meta("last modification", "crm", hubspot="hs_lastmodifieddate")


class InvoiceLine(CanonicalModel):
    description: Name = meta("品名 (reduced-rate lines are marked ※)", "renkei", freee="lines[].description", default=...)
    quantity: Annotated[StrictDecimal, Field(gt=0)] = meta("数量", "renkei", freee="lines[].quantity", default=...)
    unit_price: Yen = meta("単価 (negative on discount and credit lines)", "renkei", freee="lines[].unit_price", default=...)
    amount: Yen = meta("金額 (quantity × unit price − discount, named rounding)", "renkei", freee="lines[].amount",
                       default=...)
    tax_category: TaxCategory = meta("税区分", "renkei", freee="lines[].tax_rate + reduced_tax_rate", default=...)
    item_code: Text | None = meta("品目コード", "renkei", freee="lines[].item_id")


class RateTotal(CanonicalModel):
    """税率ごとの合計 (one rounding per rate per invoice)."""

    tax_category: TaxCategory = Field(description="税率区分")
    subtotal: Yen = Field(description="対価の額 per rate (tax-exclusive or -inclusive as entered)")
    tax: Yen = Field(description="消費税額等 per rate, rounded once")


class Invoice(CanonicalModel):
    """An ERP invoice (freee請求書) issued for a won deal — a 適格請求書."""

    erp_id: str | None = meta("freee invoice id", "erp", freee="id")
    number: Text | None = meta("請求書番号", "erp", hubspot="renkei_invoice_number", freee="invoice_number")
    reference: Name = meta("deterministic idempotency reference (renkei:deal:<id>)", "renkei",
                           hubspot="renkei_invoice_id (via ledger)", freee="memo / subject tag", default=...)
    deal_crm_id: str | None = meta("source deal", "crm", hubspot="id")
    partner_erp_id: str | None = meta("請求先 partner", "erp", freee="partner_id")
    recipient_name: Name = meta("宛名", "erp", freee="partner_name", default=...)
    issuer_name: Text | None = meta("発行者名 (適格請求書 required item 1)", "renkei", freee="template / company name")
    issuer_registration_number: str | None = meta("発行者登録番号", "renkei", freee="template")
    issue_date: date = meta("請求日", "renkei", freee="billing_date", default=...)
    transaction_date: date | None = meta("取引年月日", "renkei", freee="sales_date")
    service_period_start: date | None = meta("対象期間 start (periodic invoices)", "renkei", freee="lines[].description")
    service_period_end: date | None = meta("対象期間 end (inclusive)", "renkei", freee="lines[].description")
    due_date: date | None = meta("支払期日", "renkei", freee="payment_date")
    tax_entry_method: TaxEntryMethod = meta("外税/内税", "renkei", freee="tax_entry_method", default=TaxEntryMethod.EXCLUSIVE)
    lines: list[InvoiceLine] = meta("明細", "renkei", freee="lines", default_factory=list)
    rate_totals: list[RateTotal] = meta("税率ごとの合計と消費税額", "renkei", freee="—", default_factory=list)
    total: Yen = meta("請求金額 (税込)", "renkei", freee="total_amount", default=0)
    status: Text | None = meta("status", "erp", hubspot="renkei_invoice_status", freee="sending_status/payment_status")


class Payment(CanonicalModel):
    """入金: money applied to an invoice (recorded as a payment on the freee deal)."""

    erp_id: str | None = meta("freee payment id", "erp", freee="payments[].id")
    invoice_erp_id: str = meta("invoice paid", "erp", freee="deal_id", default=...)
    deposit_erp_id: str | None = meta("bank deposit it came from", "erp", freee="from_walletable / wallet_txn id")
    amount: NonNegativeYen = meta("入金額 applied", "erp", hubspot="renkei_paid_amount", freee="payments[].amount", default=...)
    fee: NonNegativeYen = meta("振込手数料 booked as fee expense", "erp", freee="details (支払手数料)", default=0)
    paid_on: date = meta("入金日 (Asia/Tokyo)", "erp", hubspot="renkei_paid_at", freee="payments[].date", default=...)


class BankDeposit(CanonicalModel):
    """A bank line (freee wallet transaction 明細) with the payer's name in half-width katakana."""

    model_config = ConfigDict(hide_input_in_errors=True)  # a payer name is personal data: never echoed in errors

    erp_id: str = meta("freee wallet_txn id", "erp", freee="id", default=...)
    received_on: date = meta("入金日 (Asia/Tokyo)", "erp", freee="date", default=...)
    amount: Annotated[int, Field(gt=0)] = meta("金額", "erp", freee="amount", default=...)
    payer_name: Text = meta("振込依頼人名 (半角カナ)", "erp", freee="description", default=...)
    walletable_id: str | None = meta("口座", "erp", freee="walletable_id")
    matched: bool = meta("消込済み", "erp", freee="status", default=False)

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, v: Any) -> Any:
        if isinstance(v, float):
            raise ValueError("float money is not allowed; give whole yen as an integer")
        return v


class Subscription(CanonicalModel):
    """継続課金: a won deal whose line items recur; each amendment is a new ``version``."""

    deal_crm_id: str = meta("source deal", "crm", hubspot="id", default=...)
    company_crm_id: str | None = meta("customer", "crm")
    version: int = meta("version number (1 = as sold)", "renkei", default=1, ge=1)
    billing_frequency: Text = meta("monthly / quarterly / annually", "crm", hubspot="recurringbillingfrequency",
                                   default="monthly")
    start_date: date = meta("契約開始日", "crm", hubspot="hs_recurring_billing_start_date", default=...)
    term_months: int | None = meta("契約期間", "crm", hubspot="hs_term_in_months", default=None)
    lines: list[LineItem] = meta("recurring lines of this version", "crm", default_factory=list)
    effective_date: date | None = meta("date this version takes effect", "crm", hubspot="renkei_effective_date")
    cancelled_on: date | None = meta("解約日", "crm", hubspot="renkei_effective_date (quantity 0)")


CANONICAL_MODELS: tuple[type[CanonicalModel], ...] = (
    Company, Address, PaymentTerms, Contact, Product, Deal, LineItem, Invoice, InvoiceLine, RateTotal,
    Payment, BankDeposit, Subscription,
)
