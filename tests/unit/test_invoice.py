"""Building a qualified invoice (適格請求書) from a deal, and its Markdown for the approval form."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.domain.dates import BusinessDayShift
from renkei.domain.invoice import (
    REDUCED_RATE_MARK,
    InvoiceParams,
    amount_discrepancy,
    build_invoice,
    invoice_lines_for,
    invoice_reference,
    line_amounts,
    lines_subtotal,
    proration_invoice_reference,
    render_invoice_markdown,
    resolve_tax_category,
    subscription_invoice_reference,
)
from renkei.domain.model import Company, Deal, InvoiceLine, LineItem, PaymentTerms, RateTotal, TaxCategory, TaxEntryMethod
from renkei.domain.money import Rounding

ISSUER_REG = "T7010705000725"
S10, R8 = TaxCategory.STANDARD_10, TaxCategory.REDUCED_8


def item(name: str, qty: str | int, price: int, **kw) -> LineItem:
    return LineItem(name=name, quantity=Decimal(str(qty)), unit_price=price, **kw)


def make_deal(lines: list[LineItem], amount: int | None = None, **kw) -> Deal:
    return Deal(crm_id="123", name="年間サポート契約", amount=amount, stage="closedwon",
                close_date=date(2026, 11, 10), line_items=lines, **kw)


COMPANY = Company(name="株式会社山田商事", erp_id="p-1", registration_number="T7120001168421",
                  billing_email="keiri@yamada.example")
PARAMS = InvoiceParams(issuer_name="連携株式会社", issuer_registration_number=ISSUER_REG, issue_date=date(2026, 11, 10))


# --- worked example -----------------------------------------------------------------------------------


def test_build_mixed_rate_invoice() -> None:
    lines = [
        item("コンサルティング", 2, 150_000),  # 2 × 150,000 = 300,000 at 10%
        item("お茶（ペットボトル）", 24, 150, tax_category=R8),  # 24 × 150 = 3,600 at 8% (軽減)
    ]
    deal = make_deal(lines, amount=303_600)
    inv = build_invoice(deal, None, COMPANY, PARAMS)
    assert inv.reference == "renkei:deal:123"
    assert inv.recipient_name == "株式会社山田商事"
    assert inv.partner_erp_id == "p-1"
    assert inv.issuer_registration_number == ISSUER_REG
    assert [(ln.description, ln.amount, ln.tax_category) for ln in inv.lines] == [
        ("コンサルティング", 300_000, S10),
        (f"お茶（ペットボトル） {REDUCED_RATE_MARK}", 3_600, R8),
    ]
    # tax (切り捨て, once per rate): 300,000 × 10% = 30,000; 3,600 × 8% = 288
    assert inv.rate_totals == [
        RateTotal(tax_category=S10, subtotal=300_000, tax=30_000),
        RateTotal(tax_category=R8, subtotal=3_600, tax=288),
    ]
    assert inv.total == 300_000 + 30_000 + 3_600 + 288 == 333_888
    # 月末締め翌月末払い (default): transaction 2026-11-10 → due 2026-12-31
    assert (inv.transaction_date, inv.due_date) == (date(2026, 11, 10), date(2026, 12, 31))
    assert amount_discrepancy(deal, inv) == 0


def test_one_rounding_per_rate_on_the_invoice() -> None:
    deal = make_deal([item("A", 1, 3333), item("B", 1, 3333)])
    params = InvoiceParams(issuer_name="x", issuer_registration_number=ISSUER_REG, issue_date=date(2026, 11, 10),
                           tax_rounding=Rounding.HALF_UP)
    inv = build_invoice(deal, None, COMPANY, params)
    assert inv.rate_totals[0].tax == 667  # 6,666 × 10% = 666.6 → 667 (per line would give 666)
    assert inv.total == 7333


# --- line amounts -------------------------------------------------------------------------------------


def test_decimal_quantity_line_rounding() -> None:
    li = item("作業時間", "1.5", 333)  # 1.5 × 333 = 499.5
    assert line_amounts(li, Rounding.HALF_UP).net == 500
    assert line_amounts(li, Rounding.FLOOR).net == 499
    assert line_amounts(li, Rounding.CEIL).net == 500


def test_percent_discount_as_separate_line() -> None:
    li = item("ライセンス", 3, 10_000, discount_percent=Decimal(15))
    # gross 30,000; net 30,000 × 85% = 25,500; 値引 −4,500
    lines = invoice_lines_for(li)
    assert [(ln.description, ln.quantity, ln.unit_price, ln.amount) for ln in lines] == [
        ("ライセンス", Decimal(3), 10_000, 30_000),
        ("値引（ライセンス、15%）", Decimal(1), -4_500, -4_500),
    ]


def test_percent_discount_rounded_once_on_the_net() -> None:
    li = item("保守", 3, 3333, discount_percent=Decimal("12.5"))
    # exact gross 9,999; exact net 9,999 × 0.875 = 8,749.125 → 8,749 (HALF_UP); 値引 = 9,999 − 8,749 = 1,250
    a = line_amounts(li)
    assert (a.gross, a.net, a.discount) == (9_999, 8_749, 1_250)
    assert sum(ln.amount for ln in invoice_lines_for(li)) == 8_749


def test_per_unit_and_percent_discount() -> None:
    li = item("部品", 10, 1000, discount=100, discount_percent=Decimal(10))
    # 10 × (1,000 − 100) × 90% = 8,100; gross 10,000 → 値引 −1,900
    lines = invoice_lines_for(li)
    assert [ln.amount for ln in lines] == [10_000, -1_900]
    assert lines[1].description == "値引（部品、@¥100・10%）"


def test_discount_folded_into_one_line() -> None:
    li = item("部品", 10, 1000, discount=100, discount_percent=Decimal(10))
    (ln,) = invoice_lines_for(li, discount_as_line=False)
    assert (ln.description, ln.unit_price, ln.amount) == ("部品（10%値引後）", 900, 8_100)


def test_reduced_rate_discount_line_is_marked_too() -> None:
    li = item("弁当", 10, 800, discount_percent=Decimal(5), tax_category=R8)
    lines = invoice_lines_for(li, category=R8)
    assert all(ln.description.endswith(REDUCED_RATE_MARK) for ln in lines)


def test_discount_larger_than_price_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds the unit price"):
        line_amounts(item("x", 1, 100, discount=200))


def test_long_names_fit_with_the_mark() -> None:
    (ln,) = invoice_lines_for(item("あ" * 255, 1, 100), category=R8)
    assert len(ln.description) == 255 and ln.description.endswith(REDUCED_RATE_MARK)


def test_tax_category_resolution() -> None:
    no_cat = item("米", 1, 1000, product_code="RICE")
    assert resolve_tax_category(no_cat) is S10
    assert resolve_tax_category(no_cat, R8) is R8
    assert resolve_tax_category(no_cat, S10, {"RICE": R8}) is R8
    assert resolve_tax_category(item("x", 1, 1, tax_category=TaxCategory.EXEMPT), S10, {"RICE": R8}) is TaxCategory.EXEMPT


def test_product_tax_categories_param() -> None:
    deal = make_deal([item("米", 2, 5_000, product_code="RICE")])
    params = InvoiceParams(issuer_name="x", issuer_registration_number=None, issue_date=date(2026, 11, 10),
                           product_tax_categories={"RICE": R8})
    inv = build_invoice(deal, None, COMPANY, params)
    assert inv.lines[0].tax_category is R8 and inv.rate_totals[0].tax == 800
    assert inv.issuer_registration_number is None


# --- options ------------------------------------------------------------------------------------------


def test_inclusive_entry() -> None:
    deal = make_deal([item("商品", 1, 11_000)])
    params = InvoiceParams(issuer_name="x", issuer_registration_number=ISSUER_REG, issue_date=date(2026, 11, 10),
                           tax_entry_method=TaxEntryMethod.INCLUSIVE)
    inv = build_invoice(deal, None, COMPANY, params)
    assert (inv.rate_totals[0].tax, inv.total, inv.tax_entry_method) == (1_000, 11_000, TaxEntryMethod.INCLUSIVE)


def test_company_payment_terms_and_business_day_shift() -> None:
    company = COMPANY.model_copy(update={"payment_terms": PaymentTerms(closing_day=20, pay_month_offset=1, pay_day=10)})
    deal = make_deal([item("x", 1, 1000)]).model_copy(update={"close_date": date(2026, 11, 25)})
    params = InvoiceParams(issuer_name="x", issuer_registration_number=ISSUER_REG, issue_date=date(2026, 11, 25))
    # 20日締め翌月10日払い: 11/25 closes 12/20 → due 2027-01-10 (Sunday)
    assert build_invoice(deal, None, company, params).due_date == date(2027, 1, 10)
    shifted = replace(params, due_date_shift=BusinessDayShift.NEXT)
    assert build_invoice(deal, None, company, shifted).due_date == date(2027, 1, 12)  # 1/11 成人の日


def test_late_billing_due_date_follows_the_issue_date() -> None:
    deal = make_deal([item("x", 1, 1000)]).model_copy(update={"close_date": date(2026, 9, 10)})
    inv = build_invoice(deal, None, COMPANY, replace(PARAMS, issue_date=date(2026, 11, 25)))
    # by the transaction date the due date would be 2026-10-31, already past → terms applied to 11/25
    assert (inv.transaction_date, inv.due_date) == (date(2026, 9, 10), date(2026, 12, 31))


def test_explicit_lines_and_extra_lines() -> None:
    deal = make_deal([item("ignored", 1, 1)])
    extra = [InvoiceLine(description="Basic 未使用分", quantity=Decimal(1), unit_price=-5_000, amount=-5_000,
                         tax_category=S10)]
    inv = build_invoice(deal, [item("Pro", 1, 20_000)], COMPANY, PARAMS, extra_lines=extra)
    assert [ln.amount for ln in inv.lines] == [20_000, -5_000]
    assert inv.rate_totals[0] == RateTotal(tax_category=S10, subtotal=15_000, tax=1_500)
    assert inv.total == 16_500


def test_issuer_registration_number_is_validated_and_normalised() -> None:
    params = InvoiceParams(issuer_name="x", issuer_registration_number="7010705000725", issue_date=date(2026, 11, 10))
    assert build_invoice(make_deal([item("x", 1, 1)]), None, COMPANY, params).issuer_registration_number == ISSUER_REG
    bad = InvoiceParams(issuer_name="x", issuer_registration_number="T1000000000001", issue_date=date(2026, 11, 10))
    with pytest.raises(ValueError, match="check digit"):
        build_invoice(make_deal([item("x", 1, 1)]), None, COMPANY, bad)


def test_non_jpy_deal_is_refused() -> None:
    with pytest.raises(ValueError, match="JPY"):
        build_invoice(make_deal([item("x", 1, 1)], currency="USD"), None, COMPANY, PARAMS)


# --- references and discrepancy -------------------------------------------------------------------------


def test_references() -> None:
    assert invoice_reference("123") == "renkei:deal:123"
    assert (subscription_invoice_reference("123", date(2026, 11, 1), date(2026, 11, 30))
            == "renkei:deal:123:period:2026-11-01..2026-11-30")
    assert proration_invoice_reference("123", 2, date(2026, 11, 16)) == "renkei:deal:123:proration:v2:2026-11-16"
    for bad in ("", "12 3", "1:2", "a/b"):
        with pytest.raises(ValueError):
            invoice_reference(bad)
    with pytest.raises(ValueError):
        subscription_invoice_reference("1", date(2026, 11, 30), date(2026, 11, 1))


def test_subscription_reference_through_params() -> None:
    ref = subscription_invoice_reference("123", date(2026, 11, 1), date(2026, 11, 30))
    params = InvoiceParams(issuer_name="x", issuer_registration_number=ISSUER_REG, issue_date=date(2026, 11, 1),
                           reference=ref)
    assert build_invoice(make_deal([item("x", 1, 1)]), None, COMPANY, params).reference == ref


def test_amount_discrepancy() -> None:
    lines = [item("a", 1, 60_000), item("b", 1, 39_000)]
    assert amount_discrepancy(make_deal(lines, amount=100_000), lines) == 1_000  # 100,000 − 99,000
    assert amount_discrepancy(make_deal(lines, amount=99_000), lines) == 0
    assert amount_discrepancy(make_deal(lines, amount=98_000), lines) == -1_000
    assert amount_discrepancy(make_deal(lines), lines) is None
    assert lines_subtotal([item("h", "1.5", 333)]) == 500


# --- markdown -----------------------------------------------------------------------------------------------


def test_render_markdown() -> None:
    lines = [item("コンサルティング", 2, 150_000), item("お茶", 24, 150, tax_category=R8)]
    deal = make_deal(lines, amount=303_600)
    inv = build_invoice(deal, None, COMPANY, PARAMS)
    md = render_invoice_markdown(inv, deal=deal, company=COMPANY, issuer_name="連携株式会社",
                                 tax_rounding=Rounding.FLOOR)
    assert md.startswith("### 請求書（案） renkei:deal:123\n")
    assert "| 商談 | 年間サポート契約（ID 123） |" in md
    assert "| 請求先 | 株式会社山田商事 御中 |" in md
    assert "| 支払期日 | 2026年12月31日 |" in md
    assert "| コンサルティング | 2 | ¥150,000 | ¥300,000 | 10% |" in md
    assert f"| お茶 {REDUCED_RATE_MARK} | 24 | ¥150 | ¥3,600 | 8%（軽減） |" in md
    assert "| 10% | ¥300,000 | ¥30,000 |" in md
    assert "| 8%（軽減） | ¥3,600 | ¥288 |" in md
    assert "**ご請求金額（税込） ¥333,888**" in md
    assert "端数切り捨て" in md
    assert "軽減税率（8%）対象" in md


def test_render_markdown_escapes_user_text_and_shows_discrepancy() -> None:
    deal = Deal(crm_id="9", name="A|B [x](http://evil) <b>", amount=2_000, stage="won", line_items=[item("x|y", "0.5", 1000)])
    company = Company(name="有限会社*テスト*")
    inv = build_invoice(deal, None, company, PARAMS)
    md = render_invoice_markdown(inv, deal=deal, company=company, discrepancy=amount_discrepancy(deal, inv))
    assert "A\\|B \\[x\\](http://evil) \\<b\\>" in md
    assert "x\\|y | 0.5 |" in md
    assert "有限会社\\*テスト\\*" in md
    assert "| 商談金額との差額 | **¥1,500** |" in md  # 2,000 − 500
    assert "（未設定）" not in md


# --- properties ---------------------------------------------------------------------------------------------

line_items = st.builds(
    lambda name, q, p, d, pct, cat: LineItem(name=name, quantity=q, unit_price=p, discount=min(d, p),
                                             discount_percent=pct, tax_category=cat),
    st.sampled_from(["A", "B", "食品"]),
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1000), places=4),
    st.integers(0, 1_000_000),
    st.integers(0, 1_000),
    st.decimals(min_value=0, max_value=100, places=2),
    st.sampled_from([S10, R8, TaxCategory.EXEMPT, None]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(line_items, min_size=1, max_size=8), st.sampled_from(list(Rounding)), st.sampled_from(list(Rounding)))
def test_invoice_invariants(items, line_rule, tax_rule) -> None:
    params = InvoiceParams(issuer_name="x", issuer_registration_number=ISSUER_REG, issue_date=date(2026, 11, 10),
                           line_rounding=line_rule, tax_rounding=tax_rule)
    deal = make_deal(items)
    inv = build_invoice(deal, None, COMPANY, params)
    # every item's lines add up to its singly-rounded net amount
    assert sum(ln.amount for ln in inv.lines) == lines_subtotal(items, line_rule)
    assert inv.total == sum(ln.amount for ln in inv.lines) + sum(t.tax for t in inv.rate_totals)
    assert sum(t.subtotal for t in inv.rate_totals) == sum(ln.amount for ln in inv.lines)
    assert all(ln.description.endswith(REDUCED_RATE_MARK) == (ln.tax_category is R8) for ln in inv.lines)
