"""Request bodies the sandbox accepts, with the constraints of freee's OpenAPI files.

Bodies are parsed with ``json.loads(..., parse_float=Decimal)`` so no amount ever becomes a float;
integer fields accept integral Decimals and numeric strings (as freee does for form posts) and refuse
fractions. Unknown keys are ignored (freee ignores them too).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from .errors import Api, bad_request

__all__ = [
    "DealCreate",
    "DealPaymentCreate",
    "DealUpdate",
    "InvoiceCreate",
    "InvoiceLineIn",
    "ItemBody",
    "ManualJournalCreate",
    "PartnerBody",
    "PartnerFields",
    "PartnerUpsert",
    "WalletTxnCreate",
    "parse_body",
]


def _valid_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("不正な日付フォーマットです。入力例：2019-12-17") from exc
    if len(value) != 10:
        raise ValueError("不正な日付フォーマットです。入力例：2019-12-17")
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("真偽値は金額として指定できません")
    return value


DateStr = Annotated[str, AfterValidator(_valid_date)]
Yen = Annotated[int, BeforeValidator(_not_bool)]
"""Whole yen: int, integral Decimal or numeric string; fractions and booleans are refused."""
CompanyId = Annotated[int, Field(ge=1)]
Id = Annotated[int, Field(ge=1)]
WalletableType = Literal["bank_account", "credit_card", "wallet"]
PaymentWalletableType = Literal["bank_account", "credit_card", "wallet", "private_account_item"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- partners (取引先) ------------------------------------------------------------------------------


class AddressAttributes(_Body):
    zipcode: str | None = Field(None, max_length=8)
    prefecture_code: int | None = Field(None, ge=-1, le=46)
    street_name1: str | None = Field(None, max_length=255)
    street_name2: str | None = Field(None, max_length=255)


class DocSettingAttributes(_Body):
    sending_method: (
        Literal["email", "posting", "email_and_posting", "pdf_delivery", "pdf_delivery_and_posting"] | None
    ) = None


class BankAccountAttributes(_Body):
    bank_name: str | None = None
    bank_name_kana: str | None = None
    bank_code: str | None = None
    branch_name: str | None = None
    branch_kana: str | None = None
    branch_code: str | None = None
    account_type: Literal["ordinary", "checking", "earmarked", "savings", "other"] | None = None
    account_number: str | None = None
    long_account_name: str | None = None
    account_name: str | None = None


class PaymentTermAttributes(_Body):
    cutoff_day: int | None = Field(None, ge=1, le=32)
    additional_months: int | None = Field(None, ge=0, le=6)
    fixed_day: int | None = Field(None, ge=1, le=32)


class PartnerFields(_Body):
    """The partner attributes of create / update / upsert (``name`` is always required)."""

    name: str = Field(min_length=1, max_length=255)
    code: str | None = Field(None, max_length=255)
    available: bool | None = None
    shortcut1: str | None = Field(None, max_length=255)
    shortcut2: str | None = Field(None, max_length=255)
    org_code: Literal[1, 2] | None = None
    country_code: Literal["JP", "ZZ"] | None = None
    long_name: str | None = Field(None, max_length=255)
    name_kana: str | None = Field(None, max_length=255)
    default_title: str | None = None
    phone: str | None = None
    contact_name: str | None = Field(None, max_length=255)
    email: str | None = Field(None, max_length=255)
    payer_walletable_id: int | None = Field(None, ge=1)
    transfer_fee_handling_side: Literal["payer", "payee"] | None = None
    qualified_invoice_issuer: bool | None = None
    invoice_registration_number: str | None = Field(None, min_length=13, max_length=14, pattern=r"^T?[1-9][0-9]{12}$")
    address_attributes: AddressAttributes | None = None
    partner_doc_setting_attributes: DocSettingAttributes | None = None
    partner_bank_account_attributes: BankAccountAttributes | None = None
    payment_term_attributes: PaymentTermAttributes | None = None
    invoice_payment_term_attributes: PaymentTermAttributes | None = None


class PartnerBody(PartnerFields):
    """``POST /api/1/partners`` and ``PUT /api/1/partners/{id}``."""

    company_id: CompanyId


class PartnerUpsert(_Body):
    """``PUT /api/1/partners/upsert_by_code`` and ``PUT /api/1/partners/code/{code}``."""

    company_id: CompanyId
    code: str = Field(min_length=1, max_length=255)
    partner: PartnerFields


# -- items (品目) -----------------------------------------------------------------------------------


class ItemBody(_Body):
    company_id: CompanyId
    name: str = Field(min_length=1, max_length=30)
    shortcut1: str | None = Field(None, max_length=20)
    shortcut2: str | None = Field(None, max_length=20)
    code: str | None = Field(None, max_length=20, pattern=r"^[0-9a-zA-Z_-]+$")


# -- deals (取引) -----------------------------------------------------------------------------------


class DealDetailIn(_Body):
    id: Id | None = None
    tax_code: int = Field(ge=0)
    account_item_id: Id | None = None
    account_item_code: str | None = None
    amount: Yen
    vat: Yen | None = None
    item_id: Id | None = None
    item_code: str | None = None
    section_id: Id | None = None
    section_code: str | None = None
    tag_ids: list[int] | None = None
    description: str | None = None


class PaymentIn(_Body):
    amount: Yen
    from_walletable_id: Id
    from_walletable_type: PaymentWalletableType
    date: DateStr


class DealUpdate(_Body):
    company_id: CompanyId
    issue_date: DateStr
    type: Literal["income", "expense"]
    due_date: DateStr | None = None
    partner_id: Id | None = None
    partner_code: str | None = None
    ref_number: str | None = None
    details: list[DealDetailIn] = Field(min_length=1, max_length=100)
    receipt_ids: list[int] | None = None


class DealCreate(DealUpdate):
    payments: list[PaymentIn] | None = None


class DealPaymentCreate(_Body):
    company_id: CompanyId
    date: DateStr
    from_walletable_type: PaymentWalletableType
    from_walletable_id: Id
    amount: Yen = Field(ge=1)


# -- wallet txns (口座明細) ---------------------------------------------------------------------------


class WalletTxnCreate(_Body):
    company_id: CompanyId
    entry_side: Literal["income", "expense"]
    amount: Yen = Field(ge=1)
    walletable_id: Id
    walletable_type: WalletableType
    date: DateStr
    description: str | None = None
    balance: Yen | None = None


# -- manual journals (振替伝票) ----------------------------------------------------------------------


class ManualJournalDetailIn(_Body):
    entry_side: Literal["debit", "credit"]
    tax_code: int = Field(ge=0)
    account_item_id: Id | None = None
    account_item_code: str | None = None
    amount: Yen = Field(ge=1)
    vat: Yen | None = None
    partner_id: Id | None = None
    partner_code: str | None = None
    item_id: Id | None = None
    item_code: str | None = None
    section_id: Id | None = None
    tag_ids: list[int] | None = None
    description: str | None = None


class ManualJournalCreate(_Body):
    company_id: CompanyId
    issue_date: DateStr
    adjustment: bool = False
    ref_number: str | None = Field(None, max_length=20)
    details: list[ManualJournalDetailIn] = Field(min_length=1)
    receipt_ids: list[int] | None = None


# -- freee請求書 invoices ----------------------------------------------------------------------------

Fraction = Literal["omit", "round_up", "round"]


class InvoiceLineIn(_Body):
    type: Literal["item", "text"] = "item"
    description: str | None = Field(None, min_length=1, max_length=255)
    sales_date: DateStr | None = None
    unit: str | None = Field(None, min_length=1, max_length=255)
    quantity: Decimal | None = Field(None, ge=Decimal("-99999999.999"), le=Decimal("99999999.999"), decimal_places=3)
    unit_price: str | None = Field(None, pattern=r"^-?[0-9]{0,13}(\.[0-9]{1,3})?$")
    tax_rate: int | None = None
    reduced_tax_rate: bool | None = None
    withholding: bool | None = None
    account_item_id: int | None = Field(None, ge=1)
    tax_code: int | None = Field(None, ge=0)
    item_id: int | None = Field(None, ge=1)
    section_id: int | None = Field(None, ge=1)
    tag_ids: list[int] | None = Field(None, max_length=10)

    @field_validator("tax_rate")
    @classmethod
    def _rate(cls, value: int | None) -> int | None:
        if value is not None and value not in (0, 8, 10):
            raise ValueError("tax_rate は 0, 8, 10 のいずれかです")
        return value


class InvoiceCreate(_Body):
    company_id: CompanyId
    template_id: Id | None = None
    invoice_number: str | None = Field(None, max_length=255)
    branch_no: int | None = Field(None, ge=0, le=2147483647)
    billing_date: DateStr
    issue_date: DateStr | None = None
    payment_date: DateStr | None = None
    payment_type: Literal["transfer", "direct_debit", "card"] = "transfer"
    subject: str | None = Field(None, min_length=1, max_length=255)
    tax_entry_method: Literal["in", "out"]
    tax_fraction: Fraction
    line_amount_fraction: Fraction | None = None
    withholding_tax_entry_method: Literal["in", "out"]
    include_amount_brought_forward: bool | None = None
    amount_brought_forward: Yen | None = Field(None, ge=-999999999999, le=999999999999)
    invoice_note: str | None = Field(None, max_length=4000)
    memo: str | None = Field(None, min_length=1, max_length=2000)
    partner_id: Id | None = None
    partner_code: str | None = None
    partner_title: Literal["御中", "様", "(空白)", "（空白）"]
    partner_address_zipcode: str | None = Field(None, pattern=r"^[0-9]{3}-?[0-9]{4}$")
    partner_address_prefecture_code: int | None = Field(None, ge=-1, le=46)
    partner_address_street_name1: str | None = Field(None, max_length=255)
    partner_address_street_name2: str | None = Field(None, max_length=255)
    partner_contact_department: str | None = Field(None, max_length=255)
    partner_contact_email_cc: str | None = Field(None, max_length=255)
    partner_contact_email_to: str | None = Field(None, max_length=255)
    partner_contact_name: str | None = Field(None, max_length=255)
    partner_display_name: str | None = Field(None, max_length=255)
    partner_sending_method: Literal["email", "posting", "email_and_posting"] | None = None
    partner_bank_account: str | None = Field(None, max_length=255)
    company_contact_name: str | None = Field(None, max_length=255)
    company_name: str | None = Field(None, max_length=255)
    company_description: str | None = Field(None, max_length=255)
    bank_account_to_transfer: str | None = Field(None, max_length=255)
    lines: list[InvoiceLineIn] = Field(min_length=1)


# -- parsing -------------------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def _message(error: ErrorDetails) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "body"
    if error["type"] == "missing":
        return f"{where} は必須です。"
    return f"{where} の値が不正です。（{error['msg']}）"


def parse_body(model: type[M], data: Any, api: Api) -> M:
    """Validate ``data`` into ``model`` or raise freee's 400 listing every problem."""
    if not isinstance(data, dict):
        raise bad_request(api, "リクエストボディはJSONオブジェクトで指定してください。")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise bad_request(api, *(_message(e) for e in exc.errors(include_url=False))) from None
