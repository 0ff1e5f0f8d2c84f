"""Initial data of the freee sandbox.

``seed="none"``: the company and its master data only (taxes, account items, walletables, the
帳票テンプレート) — what a fresh freee company has. ``seed="demo"`` adds the shared demo dataset
(:mod:`sandboxes.demo_data`): partners (some under slightly different names than in HubSpot), items
and the bank deposits as unmatched wallet txns (口座明細, status 1) on the main bank account.

Tax codes are freee's real codes (e.g. 129 課税売上10%, 156 課税売上8%（軽）); account item and
walletable ids are the sandbox's own.
"""

from __future__ import annotations

from renkei.domain.identifiers import houjin_check_digit

from .models import DealCreate, ItemBody, PartnerBody, WalletTxnCreate
from .store import AccountItem, Company, FreeeStore, TaxCode, Template, Walletable

__all__ = ["BANK_ACCOUNT_ID", "CASH_WALLET_ID", "CREDIT_CARD_ID", "seed_store"]

BANK_ACCOUNT_ID = 1
OUTSOURCING_ACCOUNT_ID = 6003  # 外注費
PURCHASE_10_TAX_CODE = 136  # 課対仕入10%
"""みずほ銀行 普通預金 — where the demo deposits arrive."""
CASH_WALLET_ID = 2
CREDIT_CARD_ID = 3

_BASE = "123456789012"
SANDBOX_CORPORATE_NUMBER = f"{houjin_check_digit(_BASE)}{_BASE}"  # 7123456789012 (valid check digit)

_TAXES: tuple[TaxCode, ...] = (
    TaxCode(2, "non_taxable", "対象外", None, 0),
    TaxCode(21, "sales_with_tax", "課税売上", "tax_10", 10),
    TaxCode(23, "sales_with_no_tax", "非課売上", None, 0),
    TaxCode(34, "purchase_with_tax", "課対仕入", "tax_10", 10),
    TaxCode(37, "purchase_no_tax", "非課仕入", None, 0),
    TaxCode(101, "sales_with_tax_8", "課税売上8%", "tax_8", 8),
    TaxCode(129, "sales_with_tax_10", "課税売上10%", "tax_10", 10),
    TaxCode(136, "purchase_with_tax_10", "課対仕入10%", "tax_10", 10),
    TaxCode(143, "return_of_sales_with_tax_10", "課税売返10%", "tax_10", 10),
    TaxCode(155, "taxable_10", "課税10%", "tax_10", 10),
    TaxCode(156, "sales_with_tax_reduced_8", "課税売上8%（軽）", "tax_r8", 8, reduced=True),
    TaxCode(163, "purchase_with_tax_reduced_8", "課対仕入8%（軽）", "tax_r8", 8, reduced=True),
    TaxCode(182, "taxable_reduced_8", "課税8%（軽）", "tax_r8", 8, reduced=True),
)

_ASSET = ["資産", "流動資産"]
_ACCOUNT_ITEMS: tuple[AccountItem, ...] = (
    AccountItem(1001, "現金", "現金・預金", 1, [*_ASSET, "現金・預金"], 2, "1001", walletable_id=CASH_WALLET_ID),
    AccountItem(1002, "普通預金", "現金・預金", 1, [*_ASSET, "現金・預金"], 2, "1002", walletable_id=BANK_ACCOUNT_ID),
    AccountItem(1010, "売掛金", "売上債権", 2, [*_ASSET, "売上債権"], 2, "1010"),
    AccountItem(1020, "仮払消費税", "他流動資産", 3, [*_ASSET, "他流動資産"], 2, "1020"),
    AccountItem(2001, "買掛金", "仕入債務", 4, ["負債", "流動負債", "仕入債務"], 2, "2001"),
    AccountItem(
        2002, "未払金", "他流動負債", 5, ["負債", "流動負債", "他流動負債"], 2, "2002", walletable_id=CREDIT_CARD_ID
    ),
    AccountItem(2010, "仮受消費税", "他流動負債", 5, ["負債", "流動負債", "他流動負債"], 2, "2010"),
    AccountItem(2020, "預り金", "他流動負債", 5, ["負債", "流動負債", "他流動負債"], 2, "2020"),
    AccountItem(2030, "前受金", "他流動負債", 5, ["負債", "流動負債", "他流動負債"], 2, "2030"),
    AccountItem(4001, "売上高", "売上高", 6, ["損益", "営業損益", "売上高"], 129, "4001"),
    AccountItem(4002, "売上値引高", "売上高", 6, ["損益", "営業損益", "売上高"], 143, "4002"),
    AccountItem(6001, "支払手数料", "販売管理費", 7, ["損益", "営業損益", "販売管理費"], 136, "6001"),
    AccountItem(6002, "通信費", "販売管理費", 7, ["損益", "営業損益", "販売管理費"], 136, "6002"),
    AccountItem(6003, "外注費", "販売管理費", 7, ["損益", "営業損益", "販売管理費"], 136, "6003"),
    AccountItem(7001, "雑収入", "営業外収益", 8, ["損益", "営業外損益", "営業外収益"], 2, "7001"),
)

_WALLETABLES: tuple[Walletable, ...] = (
    Walletable(BANK_ACCOUNT_ID, "みずほ銀行 普通 1234567", "bank_account", bank_id=1),
    Walletable(CASH_WALLET_ID, "現金", "wallet"),
    Walletable(CREDIT_CARD_ID, "法人カード", "credit_card", bank_id=None),
)


def _company(company_id: int, use_partner_code: bool) -> Company:
    return Company(
        id=company_id,
        name="株式会社連携デモ",
        name_kana="カブシキガイシャレンケイデモ",
        display_name="株式会社連携デモ",
        company_number=f"{company_id:010d}",
        corporate_number=SANDBOX_CORPORATE_NUMBER,
        use_partner_code=use_partner_code,
        invoice_registration_number=f"T{SANDBOX_CORPORATE_NUMBER}",
        zipcode="100-0004",
        prefecture_code=12,
        street_name1="千代田区大手町1-2-3",
        street_name2="連携ビル5F",
        phone1="03-1234-5678",
        contact_name="経理 花子",
    )


def _template(company: Company) -> Template:
    return Template(
        id=1,
        name="標準テンプレート（インボイス対応）",
        title="請求書",
        invoice_registration_number=company.invoice_registration_number,
        company_name=company.name,
        company_description="〒100-0004 東京都千代田区大手町1-2-3 連携ビル5F TEL 03-1234-5678",
        bank_account_to_transfer="みずほ銀行 大手町支店 普通 1234567 ｶ)ﾚﾝｹｲﾃﾞﾓ",
        message="下記のとおりご請求申し上げます。",
    )


def seed_store(store: FreeeStore) -> None:
    """Load the company, its master data and (``seed="demo"``) the demo dataset."""
    config = store.config
    with store.lock:
        company = _company(config.company_id, config.use_partner_code)
        company.tax_fraction = config.tax_fraction
        store.companies[company.id] = company
        store.taxes.update({t.code: TaxCode(**vars(t)) for t in _TAXES})
        store.account_items.update(
            {a.id: AccountItem(**{**vars(a), "categories": list(a.categories)}) for a in _ACCOUNT_ITEMS}
        )
        store.walletables.update({w.id: Walletable(**vars(w)) for w in _WALLETABLES})
        template = _template(company)
        store.templates[template.id] = template
        if config.seed == "demo":
            _seed_demo(store, company)


def _seed_demo(store: FreeeStore, company: Company) -> None:
    from renkei.sandboxes import demo_data

    partner_ids: dict[str | None, int] = {}
    for p in demo_data.FREEE_PARTNERS:
        terms = {
            "cutoff_day": p.payment_terms.cutoff_day,
            "additional_months": p.payment_terms.additional_months,
            "fixed_day": p.payment_terms.fixed_day,
        }
        body = PartnerBody.model_validate(
            {
                "company_id": company.id,
                "name": p.name,
                "code": p.code if company.use_partner_code else None,
                "long_name": p.long_name,
                "name_kana": p.name_kana,
                "org_code": p.org_code,
                "country_code": "JP",
                "default_title": "御中" if p.org_code == 1 else "様",
                "email": p.email,
                "contact_name": p.contact_name,
                "phone": p.phone,
                "qualified_invoice_issuer": p.qualified_invoice_issuer,
                "invoice_registration_number": p.invoice_registration_number,
                "address_attributes": {
                    "zipcode": p.zipcode,
                    "prefecture_code": p.prefecture_code,
                    "street_name1": p.street_name1,
                    "street_name2": p.street_name2,
                },
                "partner_doc_setting_attributes": {"sending_method": "email" if p.email else "posting"},
                "partner_bank_account_attributes": {"account_name": p.bank_account_name} if p.bank_account_name else {},
                "payment_term_attributes": terms,
                "invoice_payment_term_attributes": terms,
            }
        )
        partner_ids[p.company] = store.create_partner(body).id
    for item in demo_data.FREEE_ITEMS:
        store.create_item(
            ItemBody.model_validate({"company_id": company.id, "name": item.name[:30], "code": item.code})
        )
    for cost in demo_data.COSTS:  # expense 取引 tagged to a customer: the reporting flow's per-customer cost
        store.create_deal(DealCreate.model_validate({
            "company_id": company.id, "issue_date": cost.date, "type": "expense",
            "partner_id": partner_ids[cost.company], "ref_number": cost.key,
            "details": [{"account_item_id": OUTSOURCING_ACCOUNT_ID, "tax_code": PURCHASE_10_TAX_CODE,
                         "amount": cost.amount, "vat": cost.vat, "description": cost.description}]}))
    for deposit in demo_data.BANK_DEPOSITS:
        store.create_wallet_txn(
            WalletTxnCreate(
                company_id=company.id,
                entry_side="income",
                amount=deposit.amount,
                walletable_id=BANK_ACCOUNT_ID,
                walletable_type="bank_account",
                date=deposit.date,
                description=f"振込 {deposit.payer_name}",
            )
        )
