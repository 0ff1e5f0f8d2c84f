"""freee ⇄ canonical mapping (pure, no HTTP)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from renkei.connectors.freee.mapping import (
    REASON_INVALID,
    FreeeMappingError,
    company_fraction_to_rounding,
    company_to_partner,
    deal_to_payments,
    deposit_to_wallet_txn,
    invoice_to_iv_invoice,
    item_to_product,
    iv_invoice_to_invoice,
    partner_to_company,
    payment_to_deal_payment,
    prefecture_code,
    prefecture_name,
    product_to_item,
    rounding_to_tax_fraction,
    tax_fraction_to_rounding,
    wallet_txn_to_deposit,
)
from renkei.domain.model import (
    Address,
    BankDeposit,
    Company,
    EntityKind,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentTerms,
    Product,
    TaxCategory,
    TaxEntryMethod,
)
from renkei.domain.money import Rounding

VALID_T = "T7010705000725"


def _company(**kw) -> Company:
    base = dict(name="株式会社山田商事", name_kana="ヤマダショウジ", registration_number=VALID_T, partner_code="HS-1",
                phone="03-1234-5678", billing_email="billing@example.jp", billing_contact_name="経理 花子",
                address=Address(postal_code="100-0005", prefecture="東京都", city="千代田区", street="丸の内1-1-1",
                                building="丸の内ビル5F"),
                payment_terms=PaymentTerms(closing_day=0, pay_month_offset=1, pay_day=0))
    base.update(kw)
    return Company(**base)


def test_company_partner_round_trip():
    c = _company()
    body = company_to_partner(c, company_id=1)
    assert body["company_id"] == 1 and body["code"] == "HS-1" and body["org_code"] == 1
    assert body["qualified_invoice_issuer"] is True and body["invoice_registration_number"] == VALID_T
    assert body["address_attributes"] == {"prefecture_code": 12, "zipcode": "100-0005",
                                          "street_name1": "千代田区丸の内1-1-1", "street_name2": "丸の内ビル5F"}
    assert body["invoice_payment_term_attributes"] == {"cutoff_day": 32, "additional_months": 1, "fixed_day": 32}
    assert body["default_title"] == "御中"
    back = partner_to_company({"id": 42, "update_date": "2026-11-20", "available": True, **body})
    assert back.ok, back.error
    got = back.value
    assert got.erp_id == "42" and got.updated_at.isoformat() == "2026-11-20T00:00:00+09:00"
    for f in ("name", "name_kana", "registration_number", "partner_code", "phone", "billing_email",
              "billing_contact_name", "address", "payment_terms", "entity_kind"):
        assert getattr(got, f) == getattr(c, f), f


def test_partner_sole_trader_and_no_code():
    c = _company(entity_kind=EntityKind.SOLE_TRADER, registration_number=None, partner_code=None, address=None,
                 payment_terms=None)
    body = company_to_partner(c, include_code=False)
    assert body["org_code"] == 2 and body["default_title"] == "様" and "code" not in body
    assert "qualified_invoice_issuer" not in body and "invoice_registration_number" not in body


def test_partner_with_bad_registration_number_becomes_review_item():
    res = partner_to_company({"id": 7, "name": "株式会社テスト", "org_code": 1,
                              "invoice_registration_number": "T1000000000001", "available": True})
    assert not res.ok and res.value is None
    assert res.error.startswith(REASON_INVALID) and "check digit" in res.error
    assert res.source_id == "7" and res.raw["id"] == 7


def test_partner_sole_trader_bad_check_digit_is_only_a_warning():
    res = partner_to_company({"id": 8, "name": "山田太郎", "org_code": 2, "qualified_invoice_issuer": True,
                              "invoice_registration_number": "T1000000000001", "available": True})
    assert res.ok and res.value.warnings


def test_partner_warnings_and_archived():
    res = partner_to_company({"id": 9, "name": "X社", "qualified_invoice_issuer": True, "available": False,
                              "invoice_payment_term_attributes": {"cutoff_day": 20, "additional_months": 2,
                                                                  "fixed_day": 10}})
    assert res.ok and res.value.archived and res.value.warnings
    assert res.value.payment_terms == PaymentTerms(closing_day=20, pay_month_offset=2, pay_day=10)
    bad = partner_to_company({"id": 10, "name": "Y", "invoice_payment_term_attributes": {"cutoff_day": 30}})
    assert not bad.ok and "cutoff_day" in bad.error
    assert not partner_to_company({"id": 11, "name": ""}).ok
    assert not partner_to_company({"id": 12, "name": "Z", "org_code": 3}).ok


def test_prefectures():
    assert prefecture_code("東京都") == prefecture_code("東京") == prefecture_code("Tokyo") == 12
    assert prefecture_code("京都府") == prefecture_code("京都") == 25
    assert prefecture_code("北海道") == 0 and prefecture_code("沖縄県") == 46 and prefecture_code(None) == -1
    assert prefecture_name(-1) is None and prefecture_name(12) == "東京都"
    with pytest.raises(FreeeMappingError):
        prefecture_code("Atlantis")


def test_item_product():
    p = Product(code="LIC-1", name="年間ライセンス", unit_price=120000)
    assert product_to_item(p, company_id=1) == {"company_id": 1, "name": "年間ライセンス", "code": "LIC-1"}
    back = item_to_product({"id": 3, "name": "年間ライセンス", "code": "LIC-1", "available": True})
    assert back.ok and back.value.code == "LIC-1" and back.value.erp_id == "3"
    assert not item_to_product({"id": 4, "name": "no code", "code": None}).ok
    with pytest.raises(FreeeMappingError):
        product_to_item(Product(code="X", name="あ" * 31))
    with pytest.raises(FreeeMappingError):
        product_to_item(Product(code="日本語", name="x"))


def test_rounding_names():
    assert rounding_to_tax_fraction(Rounding.FLOOR) == "omit"
    assert rounding_to_tax_fraction(Rounding.CEIL) == "round_up"
    assert rounding_to_tax_fraction(Rounding.HALF_UP) == "round"
    with pytest.raises(FreeeMappingError):
        rounding_to_tax_fraction(Rounding.TRUNCATE)
    for r in (Rounding.FLOOR, Rounding.CEIL, Rounding.HALF_UP):
        assert tax_fraction_to_rounding(rounding_to_tax_fraction(r)) is r
    assert tax_fraction_to_rounding(None) is Rounding.FLOOR
    assert company_fraction_to_rounding(2) is Rounding.HALF_UP


def _invoice(**kw) -> Invoice:
    base = dict(reference="renkei:deal:123", partner_erp_id="42", recipient_name="株式会社山田商事",
                issue_date=date(2026, 11, 30), transaction_date=date(2026, 11, 15), due_date=date(2026, 12, 31),
                lines=[InvoiceLine(description="年間ライセンス", quantity=Decimal(1), unit_price=120000, amount=120000,
                                   tax_category=TaxCategory.STANDARD_10),
                       InvoiceLine(description="お茶 ※", quantity=Decimal("2.5"), unit_price=1000, amount=2500,
                                   tax_category=TaxCategory.REDUCED_8),
                       InvoiceLine(description="印紙代", quantity=Decimal(1), unit_price=200, amount=200,
                                   tax_category=TaxCategory.NON_TAXABLE)])
    base.update(kw)
    return Invoice(**base)


def test_invoice_to_iv_request():
    body = invoice_to_iv_invoice(_invoice(), company_id=1, tax_fraction=Rounding.HALF_UP)
    assert body["memo"] == "renkei:deal:123" and body["partner_id"] == 42 and "partner_code" not in body
    assert body["tax_fraction"] == "round" and body["tax_entry_method"] == "out"
    assert body["billing_date"] == "2026-11-30" and body["payment_date"] == "2026-12-31"
    assert "invoice_number" not in body
    l0, l1, l2 = body["lines"]
    assert l0 == {"type": "item", "description": "年間ライセンス", "quantity": 1, "unit_price": "120000",
                  "tax_rate": 10, "sales_date": "2026-11-15"}
    assert l1["tax_rate"] == 8 and l1["reduced_tax_rate"] is True and l1["quantity"] == 2.5
    assert l2["tax_rate"] == 0 and "reduced_tax_rate" not in l2
    with pytest.raises(FreeeMappingError):
        invoice_to_iv_invoice(_invoice(), company_id=1, partner_id=1, partner_code="X")
    body2 = invoice_to_iv_invoice(_invoice(partner_erp_id=None, number="INV-1"), company_id=1, partner_code="HS-1",
                                  send_invoice_number=True)
    assert body2["partner_code"] == "HS-1" and body2["invoice_number"] == "INV-1" and body2["tax_fraction"] == "omit"


def _iv_response(**kw) -> dict:
    d = {"id": 501, "company_id": 1, "invoice_number": "INV-0001", "subject": "", "billing_date": "2026-11-30",
         "payment_date": "2026-12-31", "memo": "renkei:deal:123\nnote", "tax_entry_method": "out",
         "tax_fraction": "omit", "cancel_status": "uncanceled", "payment_status": "unsettled",
         "partner_id": 42, "partner_name": "山田商事", "partner_display_name": "株式会社山田商事",
         "template": {"invoice_registration_number": VALID_T},
         "total_amount": Decimal("134900.0"), "amount_excluding_tax": Decimal("122700"),
         "amount_tax": Decimal("12200"),
         "amount_excluding_tax_10": Decimal("120000.0"), "amount_tax_10": Decimal("12000.0"),
         "amount_including_tax_10": Decimal("132000.0"),
         "amount_excluding_tax_8_reduced": Decimal("2500.0"), "amount_tax_8_reduced": Decimal("200.0"),
         "amount_including_tax_8_reduced": Decimal("2700.0"),
         "amount_excluding_tax_0": Decimal("200"), "amount_tax_0": Decimal("0"), "amount_including_tax_0": Decimal("200"),
         "amount_excluding_tax_8": None, "amount_tax_8": None, "amount_including_tax_8": None,
         "lines": [{"id": 1, "type": "item", "description": "年間ライセンス", "quantity": Decimal("1.0"),
                    "unit_price": "120000.0", "tax_rate": 10, "reduced_tax_rate": False, "sales_date": "2026-11-15",
                    "amount_excluding_tax": Decimal("120000.0")},
                   {"id": 2, "type": "text", "description": "以下軽減税率対象"},
                   {"id": 3, "type": "item", "description": "お茶 ※", "quantity": Decimal("2.5"),
                    "unit_price": "1000", "tax_rate": 8, "reduced_tax_rate": True},
                   {"id": 4, "type": "item", "description": "印紙代", "quantity": 1, "unit_price": "200", "tax_rate": 0}]}
    d.update(kw)
    return d


def test_iv_invoice_to_invoice():
    res = iv_invoice_to_invoice(_iv_response())
    assert res.ok, res.error
    inv = res.value
    assert inv.reference == "renkei:deal:123" and inv.erp_id == "501" and inv.number == "INV-0001"
    assert inv.total == 134900 and isinstance(inv.total, int)
    assert inv.issuer_registration_number == VALID_T and inv.transaction_date == date(2026, 11, 15)
    assert [ln.tax_category for ln in inv.lines] == [TaxCategory.STANDARD_10, TaxCategory.REDUCED_8,
                                                      TaxCategory.NON_TAXABLE]
    assert [ln.amount for ln in inv.lines] == [120000, 2500, 200]
    assert [(t.tax_category, t.subtotal, t.tax) for t in inv.rate_totals] == [
        (TaxCategory.STANDARD_10, 120000, 12000), (TaxCategory.REDUCED_8, 2500, 200), (TaxCategory.NON_TAXABLE, 200, 0)]
    assert inv.status == "unsettled"
    inclusive = iv_invoice_to_invoice(_iv_response(tax_entry_method="in", cancel_status="canceled"))
    assert inclusive.value.tax_entry_method is TaxEntryMethod.INCLUSIVE and inclusive.value.status == "canceled"
    assert inclusive.value.rate_totals[0].subtotal == 132000
    foreign = iv_invoice_to_invoice(_iv_response(memo=""))
    assert foreign.value.reference == "freee:invoice:501"


def test_iv_invoice_invalid_records_are_review_items():
    transitional = iv_invoice_to_invoice(_iv_response(lines=[{"type": "item", "description": "x", "quantity": 1,
                                                              "unit_price": "100", "tax_rate": 8}]))
    assert not transitional.ok and "経過措置" in transitional.error
    fractional = iv_invoice_to_invoice(_iv_response(total_amount=Decimal("100.5")))
    assert not fractional.ok and "total" in fractional.error
    sen = iv_invoice_to_invoice(_iv_response(lines=[{"type": "item", "description": "x", "quantity": 1,
                                                     "unit_price": "100.5", "tax_rate": 10}]))
    assert not sen.ok and "fraction" in sen.error


def test_deal_payments_and_deposits():
    deal = {"id": 900, "payments": [{"id": 1, "date": "2026-12-01", "amount": 134900, "from_walletable_type":
                                     "bank_account", "from_walletable_id": 5}]}
    (p,) = deal_to_payments(deal, invoice_erp_id="501")
    assert p.ok and p.value == Payment(erp_id="1", invoice_erp_id="501", amount=134900, paid_on=date(2026, 12, 1))
    assert deal_to_payments({"id": 901}) == []
    assert deal_to_payments(deal)[0].value.invoice_erp_id == "900"
    body = payment_to_deal_payment(p.value, company_id=1, from_walletable_id=5)
    assert body == {"company_id": 1, "date": "2026-12-01", "from_walletable_type": "bank_account",
                    "from_walletable_id": 5, "amount": 134900}

    txn = {"id": 77, "date": "2026-12-01", "amount": 134460, "description": "ﾌﾘｺﾐ ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", "entry_side": "income",
           "walletable_type": "bank_account", "walletable_id": 5, "status": 1, "due_amount": 134460}
    d = wallet_txn_to_deposit(txn)
    assert d.ok and d.value == BankDeposit(erp_id="77", received_on=date(2026, 12, 1), amount=134460,
                                           payer_name="ﾌﾘｺﾐ ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", walletable_id="5")
    assert wallet_txn_to_deposit({**txn, "status": 2}).value.matched
    assert not wallet_txn_to_deposit({**txn, "entry_side": "expense"}).ok
    assert not wallet_txn_to_deposit({**txn, "amount": 0}).ok
    back = deposit_to_wallet_txn(d.value, company_id=1)
    assert back == {"company_id": 1, "entry_side": "income", "amount": 134460, "date": "2026-12-01",
                    "description": "ﾌﾘｺﾐ ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", "walletable_type": "bank_account", "walletable_id": 5}


def test_partner_address_line_splits_the_municipality():
    def read(s1, code=None):
        got = partner_to_company({"id": 1, "name": "x", "address_attributes": {
            "zipcode": None, "prefecture_code": code, "street_name1": s1, "street_name2": None}})
        assert got.ok, got.error
        a = got.value.address
        return a.prefecture, a.city, a.street

    assert read("渋谷区道玄坂1-2-3", 12) == ("東京都", "渋谷区", "道玄坂1-2-3")
    assert read("千代田区 丸の内1-1-1", 12) == ("東京都", "千代田区", "丸の内1-1-1")  # written with a space before
    assert read("東京都渋谷区道玄坂１－２－３", 12) == ("東京都", "渋谷区", "道玄坂１－２－３")
    assert read("神奈川県横浜市中区山下町1") == ("神奈川県", "横浜市中区", "山下町1")  # prefecture code not set
    assert read("大阪府北区梅田1", 12) == ("東京都", None, "大阪府北区梅田1")  # disagrees with the code: left whole
    assert read("道玄坂1-2-3", 12) == ("東京都", None, "道玄坂1-2-3")
    # canonical → freee → canonical keeps city and street, the line as freee shows it when the split knows the city
    for city, street, line in (("横浜市中区", "山下町1", "横浜市中区山下町1"), ("横浜市", "中区山下町1", "横浜市 中区山下町1"),
                               ("四日市市", "諏訪町1-5", "四日市市諏訪町1-5"), ("Shibuya", "1-2-3", "Shibuya 1-2-3")):
        body = company_to_partner(_company(address=Address(prefecture="東京都", city=city, street=street)))
        assert body["address_attributes"]["street_name1"] == line
        back = partner_to_company({"id": 1, **body}).value.address
        assert (back.city, back.street) == (city, street)
