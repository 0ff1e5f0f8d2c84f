"""Exception rules on hostile and implausible deals: a reason code each, never an exception (worked examples)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from renkei.domain.exceptions import ExceptionRules, ReasonCode, evaluate
from renkei.domain.invoice import InvoiceParams, build_invoice, line_problem, lines_subtotal
from renkei.domain.model import Company, Deal, LineItem
from renkei.domain.plausibility import PlausibilityRules

TODAY = date(2026, 12, 5)
ISSUER = "T" + "7010705000725"


def _company(**kw) -> Company:
    return Company(name=kw.pop("name", "株式会社テスト"), erp_id="P1", billing_email="keiri@example.co.jp", **kw)


def _deal(lines, *, name="テスト 11月分", close=date(2026, 11, 20), amount=None) -> Deal:
    if amount is None:
        amount = sum(int(li.quantity * li.unit_price) - int(li.quantity * li.discount) for li in lines)
    return Deal(crm_id="D1", name=name, stage="closedwon", close_date=close, amount=amount, line_items=lines)


def _rules(**kw) -> ExceptionRules:
    return ExceptionRules(plausibility=PlausibilityRules(), today=TODAY, **kw)


def _codes(deal: Deal, company: Company | None = None, rules: ExceptionRules | None = None, build: bool = True):
    company = company or _company()
    invoice = None
    if build and not any(line_problem(li) for li in deal.line_items):
        invoice = build_invoice(deal, None, company, InvoiceParams(issuer_name="発行者", issuer_registration_number=ISSUER,
                                                                   issue_date=TODAY))
    return [r.code for r in evaluate(deal, None, company, invoice, rules or _rules())]


def test_line_problem_worked_examples():
    assert line_problem(LineItem(name="部品", quantity=Decimal(1), unit_price=1000, discount=1500)) == \
        "per-unit discount ¥1,500 exceeds the unit price ¥1,000"
    assert line_problem(LineItem(name="無償", quantity=Decimal(1), unit_price=1000, discount=1000)) is None
    assert line_problem(LineItem(name="部品", quantity=Decimal(2), unit_price=1000)) is None


def test_discount_above_the_price_is_a_reason_code_not_an_exception():
    hostile = LineItem(name="部品", quantity=Decimal(1), unit_price=1000, discount=1500)
    ok = LineItem(name="保守", quantity=Decimal(1), unit_price=5000)
    deal = _deal([hostile, ok], amount=4500)
    with pytest.raises(ValueError):
        lines_subtotal(deal.line_items)  # the pricing contract itself still refuses the line
    # no invoice can be built; the rules say why, without raising and without a generic VALIDATION_FAILED
    reasons = evaluate(deal, None, _company(), None, _rules())
    assert [r.code for r in reasons] == [ReasonCode.NEGATIVE_LINE_AMOUNT]
    assert reasons[0].details["lines"] == ["部品"]
    assert "¥1,500" in reasons[0].message


def test_a_clean_deal_has_no_reasons():
    assert _codes(_deal([LineItem(name="保守", quantity=Decimal(3), unit_price=10000)])) == []


@pytest.mark.parametrize("close, expected", [
    (date(1900, 1, 1), [ReasonCode.DATE_OUT_OF_RANGE]),      # 46,000+ days before today (limit 3,650)
    (date(2100, 1, 1), [ReasonCode.DATE_OUT_OF_RANGE]),      # 26,600+ days after today (limit 366)
    (date(2017, 1, 1), []),                                  # 3,625 days before: inside the window
    (date(2027, 12, 1), []),                                 # 361 days after: inside the window
])
def test_close_date_window_around_today(close, expected):
    assert _codes(_deal([LineItem(name="保守", quantity=Decimal(1), unit_price=10000)], close=close)) == expected


def test_the_date_window_needs_today_from_the_caller():
    deal = _deal([LineItem(name="保守", quantity=Decimal(1), unit_price=10000)], close=date(1900, 1, 1))
    assert _codes(deal, rules=ExceptionRules(plausibility=PlausibilityRules())) == []  # no clock read here


def test_zero_total_goes_to_review_unless_the_policy_allows_it():
    free = _deal([LineItem(name="無償サンプル", quantity=Decimal(1), unit_price=0)], amount=0)
    assert _codes(free) == [ReasonCode.ZERO_OR_NEGATIVE_TOTAL]
    assert _codes(free, rules=ExceptionRules(plausibility=PlausibilityRules(allow_zero_total=True), today=TODAY)) == []
    assert _codes(free, rules=ExceptionRules()) == []  # without plausibility rules: as before


@pytest.mark.parametrize("deal_name, line_name, company_name", [
    ("<b>特価</b> 11月分", "保守", "株式会社テスト"),
    ("テスト 11月分", "[保守](http://evil.example)", "株式会社テスト"),
    ("テスト 11月分", "保守", "**株式会社テスト**"),
])
def test_markup_in_deal_line_or_customer_name(deal_name, line_name, company_name):
    deal = _deal([LineItem(name=line_name, quantity=Decimal(1), unit_price=1000)], name=deal_name)
    assert _codes(deal, _company(name=company_name)) == [ReasonCode.MARKUP_IN_TEXT]


def test_a_lone_ampersand_is_not_markup():
    deal = _deal([LineItem(name="保守 A&B", quantity=Decimal(1), unit_price=1000)], name="A&B商事 11月分")
    assert _codes(deal) == []


def test_an_unusable_billing_email_goes_to_review():
    deal = _deal([LineItem(name="保守", quantity=Decimal(1), unit_price=1000)])
    bad = Company(name="株式会社テスト", erp_id="P1", billing_email="not-an-email@@")
    assert _codes(deal, bad) == [ReasonCode.EMAIL_INVALID]


def test_markup_never_renders_in_artifact_rows_or_run_names():
    from renkei.tasks.reporting import RunReport, plain_text

    assert plain_text("<b>株式会社X</b>") == " b 株式会社X /b "
    assert plain_text("株式会社A&B") == "株式会社A&B"  # no markup: unchanged
    report = RunReport("order-to-invoice")
    report.row(customer="[株式会社X](http://evil.example)", total=1100)
    assert report.rows == [{"customer": " 株式会社X (http://evil.example)", "total": 1100}]
