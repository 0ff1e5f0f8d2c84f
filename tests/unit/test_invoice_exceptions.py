"""Invoice exception rules: each rule, its reason code, messages and configuration."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from renkei.domain.exceptions import ExceptionReason, ExceptionRules, ReasonCode, evaluate, validate_invoice
from renkei.domain.invoice import InvoiceParams, build_invoice
from renkei.domain.model import Company, Deal, EntityKind, LineItem, RateTotal, TaxCategory

PARAMS = InvoiceParams(issuer_name="連携株式会社", issuer_registration_number="T7010705000725",
                       issue_date=date(2026, 11, 10))
COMPANY = Company(name="株式会社山田商事", erp_id="p-1", billing_email="keiri@yamada.example",
                  registration_number="T7120001168421")
RULES = ExceptionRules()  # threshold ¥1,000,000 税込, discount ≤ 20%, tolerance ¥0


def item(name: str, qty: int | str, price: int, **kw) -> LineItem:
    return LineItem(name=name, quantity=Decimal(str(qty)), unit_price=price, **kw)


def deal_with(lines: list[LineItem], amount: int | None = None, **kw) -> Deal:
    return Deal(crm_id="77", name="案件", amount=amount, stage="closedwon", close_date=date(2026, 11, 10),
                line_items=lines, **kw)


def run(deal: Deal, company: Company | None = COMPANY, rules: ExceptionRules = RULES, **kw) -> list[ExceptionReason]:
    invoice = build_invoice(deal, None, company or COMPANY, PARAMS) if deal.currency == "JPY" else None
    return evaluate(deal, None, company, invoice, rules, **kw)


def codes(reasons: list[ExceptionReason]) -> list[ReasonCode]:
    return [r.code for r in reasons]


def test_clean_deal_has_no_exceptions() -> None:
    d = deal_with([item("保守", 1, 100_000)], amount=100_000)
    assert run(d) == []


def test_amount_over_threshold_uses_tax_included_total() -> None:
    # 910,000 + 10% = 1,001,000 > 1,000,000 (the 税抜 amount alone would pass)
    d = deal_with([item("導入", 1, 910_000)], amount=910_000)
    (r,) = run(d)
    assert r.code is ReasonCode.AMOUNT_OVER_THRESHOLD
    assert r.details == {"amount": 1_001_000, "threshold": 1_000_000}
    assert "¥1,001,000" in r.message_ja and "¥1,000,000" in r.message_en
    # exactly at the threshold is not "over": 909,091 + 90,909 (90,909.1 切り捨て) = 1,000,000
    assert run(deal_with([item("導入", 1, 909_091)], amount=909_091)) == []
    assert run(d, rules=ExceptionRules(amount_threshold=None)) == []


def test_discount_over_limit() -> None:
    d = deal_with([item("ライセンス", 10, 10_000, discount_percent=Decimal(25)), item("保守", 1, 1_000)],
                  amount=76_000)  # 75,000 + 1,000
    (r,) = run(d)
    assert r.code is ReasonCode.DISCOUNT_OVER_LIMIT
    assert r.details["lines"] == ["ライセンス"]
    assert "25%" in r.message_ja and "20%" in r.message_en
    # per-unit yen discounts count too: (1,000 − 300) / 1,000 = 30% off
    d2 = deal_with([item("部品", 1, 1_000, discount=300)], amount=700)
    assert codes(run(d2)) == [ReasonCode.DISCOUNT_OVER_LIMIT]
    # exactly at the limit is allowed
    assert run(deal_with([item("x", 1, 1_000, discount_percent=Decimal(20))], amount=800)) == []


def test_amount_mismatch_with_tolerance() -> None:
    d = deal_with([item("a", 1, 60_000), item("b", 1, 39_000)], amount=100_000)  # lines 99,000
    (r,) = run(d)
    assert r.code is ReasonCode.AMOUNT_MISMATCH and r.details["difference"] == 1_000
    assert run(d, rules=ExceptionRules(amount_mismatch_tolerance=1_000)) == []
    assert codes(run(d, rules=ExceptionRules(amount_mismatch_tolerance=999))) == [ReasonCode.AMOUNT_MISMATCH]
    # a deal without amount is not a mismatch
    assert run(deal_with([item("a", 1, 1)])) == []


def test_no_line_items() -> None:
    d = deal_with([], amount=0)
    assert codes(run(d)) == [ReasonCode.NO_LINE_ITEMS]


def test_missing_billing_info() -> None:
    d = deal_with([item("a", 1, 1_000)], amount=1_000)
    no_email = COMPANY.model_copy(update={"billing_email": None})
    (r,) = run(d, company=no_email)
    assert r.code is ReasonCode.MISSING_BILLING_INFO and r.details["missing"] == ["billing_email"]
    assert "請求書送付先メール" in r.message_ja
    rules = ExceptionRules(required_billing_fields=("billing_email", "address"), require_partner_mapping=True)
    unmapped = COMPANY.model_copy(update={"erp_id": None})
    (r,) = run(d, company=unmapped, rules=rules)
    assert r.details["missing"] == ["address", "erp_id"]
    # no company at all
    assert codes(evaluate(d, None, None, None, RULES, validation_errors=["no company"])) == [
        ReasonCode.VALIDATION_FAILED, ReasonCode.MISSING_BILLING_INFO]


def test_missing_registration_number() -> None:
    d = deal_with([item("a", 1, 1_000)], amount=1_000)
    no_issuer = InvoiceParams(issuer_name="x", issuer_registration_number=None, issue_date=date(2026, 11, 10))
    inv = build_invoice(d, None, COMPANY, no_issuer)
    (r,) = evaluate(d, None, COMPANY, inv, RULES)
    assert (r.code, r.details["party"]) == (ReasonCode.MISSING_REGISTRATION_NUMBER, "issuer")
    assert evaluate(d, None, COMPANY, inv, ExceptionRules(require_issuer_registration=False)) == []
    # customer's number, where required
    need = ExceptionRules(require_customer_registration=True)
    corp = COMPANY.model_copy(update={"registration_number": None})
    (r,) = run(d, company=corp, rules=need)
    assert (r.code, r.details["party"]) == (ReasonCode.MISSING_REGISTRATION_NUMBER, "customer")
    sole = Company(name="山田太郎", entity_kind=EntityKind.SOLE_TRADER, billing_email="t@example.jp")
    assert run(d, company=sole, rules=need) == []  # corporations only by default
    assert codes(run(d, company=sole, rules=ExceptionRules(require_customer_registration=True,
                                                           customer_registration_corporations_only=False))) == [
        ReasonCode.MISSING_REGISTRATION_NUMBER]


def test_non_jpy_currency() -> None:
    d = deal_with([item("a", 1, 1_000)], amount=1_000, currency="USD")
    assert codes(run(d)) == [ReasonCode.VALIDATION_FAILED, ReasonCode.NON_JPY_CURRENCY]
    r = run(d)[1]
    assert "USD" in r.message_ja and "USD" in r.message_en


def test_credit_hold() -> None:
    d = deal_with([item("a", 1, 1_000)], amount=1_000)
    held = COMPANY.model_copy(update={"credit_hold": True})
    (r,) = run(d, company=held)
    assert r.code is ReasonCode.CREDIT_HOLD and "与信停止" in r.message_ja and "credit hold" in r.message_en


def test_validation_failed_on_inconsistent_invoice() -> None:
    d = deal_with([item("a", 1, 1_000)], amount=1_000)
    inv = build_invoice(d, None, COMPANY, PARAMS)
    assert validate_invoice(inv) == []
    broken = inv.model_copy(update={"total": 999, "due_date": date(2026, 11, 1),
                                    "rate_totals": [RateTotal(tax_category=TaxCategory.STANDARD_10, subtotal=1_000, tax=50)]})
    problems = validate_invoice(broken)
    assert any("tax" in p for p in problems) and any("total" in p for p in problems)
    assert any("due date" in p for p in problems)
    (r,) = evaluate(d, None, COMPANY, broken, RULES)
    assert r.code is ReasonCode.VALIDATION_FAILED and r.details["problems"] == problems
    # an invoice that could not be built
    (r,) = evaluate(d, None, COMPANY, None, RULES)
    assert r.code is ReasonCode.VALIDATION_FAILED and "could not be built" in r.message_en


def test_many_reasons_in_code_order_and_disabling() -> None:
    d = deal_with([item("x", 1, 2_000_000, discount_percent=Decimal(50))], amount=5)
    held = COMPANY.model_copy(update={"credit_hold": True, "billing_email": None})
    got = codes(run(d, company=held))
    assert got == [ReasonCode.MISSING_BILLING_INFO, ReasonCode.CREDIT_HOLD, ReasonCode.AMOUNT_MISMATCH,
                   ReasonCode.DISCOUNT_OVER_LIMIT, ReasonCode.AMOUNT_OVER_THRESHOLD]
    rules = ExceptionRules(disabled=frozenset({ReasonCode.CREDIT_HOLD, ReasonCode.AMOUNT_MISMATCH}))
    assert codes(run(d, company=held, rules=rules)) == [ReasonCode.MISSING_BILLING_INFO,
                                                        ReasonCode.DISCOUNT_OVER_LIMIT,
                                                        ReasonCode.AMOUNT_OVER_THRESHOLD]


def test_reason_codes_are_screaming_snake_and_messages_bilingual() -> None:
    for code in ReasonCode:
        assert code.value == code.name and code.value.isupper()
    r = ExceptionReason(ReasonCode.CREDIT_HOLD, "与信停止", "credit hold")
    assert r.message == "与信停止 / credit hold"


@pytest.mark.parametrize("lines_arg", ["explicit", "from_deal"])
def test_lines_argument_or_deal_lines(lines_arg: str) -> None:
    lines = [item("a", 1, 1_000)]
    d = deal_with(lines if lines_arg == "from_deal" else [], amount=2_000)
    inv = build_invoice(d, lines, COMPANY, PARAMS)
    got = evaluate(d, lines if lines_arg == "explicit" else None, COMPANY, inv, RULES)
    assert codes(got) == [ReasonCode.AMOUNT_MISMATCH]
