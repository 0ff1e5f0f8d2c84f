"""MoneyForwardERP against the sandbox: exactly-once billing under a lost answer, numbering variants, per-rate
tax equal to domain/tax.py, payment status, partners, the registry row (factory + sandbox spec)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from renkei.connectors.base import ERPConnector
from renkei.connectors.http import QuotaExhausted
from renkei.connectors.moneyforward.connector import (
    CompanySettingError,
    InvoiceNumberTaken,
    MoneyForwardConfig,
    MoneyForwardERP,
    PartialPaymentNotSupported,
)
from renkei.connectors.moneyforward.testing import sandbox_client
from renkei.connectors.registry import entry
from renkei.domain.model import Address, Company, Invoice, InvoiceLine, Payment, TaxCategory, TaxEntryMethod
from renkei.domain.money import Rounding
from renkei.domain.tax import invoice_total, rate_totals
from renkei.sandboxes.common import ServerThread
from renkei.sandboxes.demo_data import BANK_DEPOSITS
from renkei.sandboxes.moneyforward.spec import SPEC

LINES = [
    InvoiceLine(description="クラウド連携 年額", quantity=Decimal(1), unit_price=3333, amount=3333,
                tax_category=TaxCategory.STANDARD_10),
    InvoiceLine(description="導入支援", quantity=Decimal(1), unit_price=3333, amount=3333, tax_category=TaxCategory.STANDARD_10),
    InvoiceLine(description="珈琲豆 ※", quantity=Decimal(3), unit_price=1005, amount=3015, tax_category=TaxCategory.REDUCED_8),
    InvoiceLine(description="値引後の研修", quantity=Decimal(2), unit_price=5000, amount=9001,
                tax_category=TaxCategory.STANDARD_10),
    InvoiceLine(description="立替金", quantity=Decimal(1), unit_price=500, amount=500, tax_category=TaxCategory.NON_TAXABLE),
    InvoiceLine(description="非課税手数料", quantity=Decimal("1.5"), unit_price=200, amount=300, tax_category=TaxCategory.EXEMPT),
]


def _invoice(ref: str, partner: str, *, number: str | None = None, **kw) -> Invoice:
    return Invoice(reference=ref, number=number, partner_erp_id=partner, recipient_name="株式会社連携テスト",
                   issue_date=date(2026, 11, 30), due_date=date(2026, 12, 31), lines=LINES, **kw)


@pytest.fixture(scope="module")
def served():
    app = SPEC.app(seed="none", print_refresh_token=False, billing_writes_per_s=0)  # the 3/s limit: client test
    with ServerThread(app) as server:
        erp = MoneyForwardERP(sandbox_client(server.url, app), MoneyForwardConfig(tax_rounding=Rounding.FLOOR))
        partner = erp.create_partner(Company(
            name="株式会社連携テスト", name_kana="レンケイテスト", partner_code="SF-0001", billing_email="ar@renkei.example",
            billing_contact_name="経理 花子", phone="03-1111-2222",
            address=Address(postal_code="1500001", prefecture="東京都", city="渋谷区", street="神宮前1-2-3",
                            building="連携ビル")))
        yield app, erp, partner
        erp.close()


def test_partner_roundtrip_upsert_and_protocol(served):
    app, erp, partner = served
    assert isinstance(erp, ERPConnector) and erp.capabilities.departments and not erp.capabilities.bank_lines
    assert partner.partner_code == "SF-0001" and partner.billing_email == "ar@renkei.example"
    assert partner.address.postal_code == "150-0001" and partner.address.street == "神宮前1-2-3"
    assert partner.address.city == "渋谷区" and app.state.store.partners[partner.erp_id]["departments"][0]["address1"] == "渋谷区神宮前1-2-3"
    dept = app.state.store.partners[partner.erp_id]["departments"][0]
    assert (dept["person_name"], dept["tel"], dept["address2"]) == ("経理 花子", "03-1111-2222", "連携ビル")
    updated, created = erp.upsert_partner(partner.model_copy(update={"erp_id": None, "billing_email": "new@renkei.example"}))
    assert not created and updated.erp_id == partner.erp_id and updated.billing_email == "new@renkei.example"
    other, created = erp.upsert_partner(Company(name="合同会社まっさら", partner_code="SF-0002"))
    assert created and app.state.store.partners[other.erp_id]["departments"][0]["person_name"] == "ご担当者"
    assert {c.value.partner_code for page in erp.iter_partners() for c in page} == {"SF-0001", "SF-0002"}
    with pytest.raises(NotImplementedError):
        list(erp.iter_deposits())


def test_billing_created_exactly_once_when_the_answer_is_lost(served):
    app, erp, partner = served
    erp.department_id(partner.erp_id)  # warm: the next request is the POST
    injector = app.state.faults
    plan = iter(["drop_after"])
    injector.draw = lambda: next(plan, None)
    made = erp.create_invoice(_invoice("renkei:deal:lost-1", partner.erp_id))
    assert injector.injected == [("drop_after", "POST", "/api/v3/invoice_template_billings")]
    mine = [b for b in app.state.store.billings.values() if b["memo"] == "renkei:deal:lost-1"]
    assert len(mine) == 1 and made.erp_id == mine[0]["id"] and made.reference == "renkei:deal:lost-1"
    # found again whatever the date: the billing date is moved years away, the lookup does not care
    erp.client.update_billing(made.erp_id, {"billing_date": "2031-04-01", "due_date": "2031-04-30"})
    again = erp.find_invoice_by_reference("renkei:deal:lost-1")
    assert again.erp_id == made.erp_id and again.issue_date == date(2031, 4, 1)
    assert erp.find_invoice_by_reference("renkei:deal:never") is None


def test_per_rate_tax_equals_domain_tax_for_every_office_setting(served):
    app, erp, partner = served
    cfg = app.state.config
    for n, (mf_rounding, rule, display, method) in enumerate([
        ("round_down", Rounding.FLOOR, "external", TaxEntryMethod.EXCLUSIVE),
        ("round_off", Rounding.HALF_UP, "external", TaxEntryMethod.EXCLUSIVE),
        ("round_up", Rounding.CEIL, "internal", TaxEntryMethod.INCLUSIVE),
    ]):
        cfg.rounding_consumption_tax, cfg.consumption_tax_display_type = mf_rounding, display
        inv = erp.create_invoice(_invoice(f"renkei:deal:tax-{n}", partner.erp_id))
        expected = rate_totals(LINES, rule, method)
        assert inv.tax_entry_method is method
        assert inv.rate_totals == expected, (mf_rounding, display)
        assert inv.total == invoice_total(expected, method)
        assert [line.amount for line in inv.lines] == [line.amount for line in LINES]  # discounted line kept
        assert inv.issuer_registration_number == "T7010705000725" and inv.status == "unpaid"
    # 10%: 3,333 + 3,333 + 9,001 = 15,667 → 1,566.7: 切り捨て 1,566 (四捨五入 would be 1,567)
    assert rate_totals(LINES, Rounding.FLOOR)[0].tax == 1566
    # the office rounds differently from Renkei's policy (FLOOR) → recorded, not silently accepted
    assert any("tax-1" in note and "policy" in note for note in erp.tax_mismatches)
    assert not any("tax-0" in note for note in erp.tax_mismatches)
    cfg.rounding_consumption_tax, cfg.consumption_tax_display_type = "round_down", "external"


def test_numbering_auto_manual_and_taken(served):
    app, erp, partner = served
    first = erp.create_invoice(_invoice("renkei:deal:num-1", partner.erp_id))
    erp.client.delete_billing(first.erp_id)
    second = erp.create_invoice(_invoice("renkei:deal:num-2", partner.erp_id))
    seq = lambda number: int(number.rsplit("-", 1)[1])  # noqa: E731 - rule ${年}${月}-${連番}
    assert first.number.startswith("202611-") and seq(second.number) == seq(first.number) + 1  # a gap, no reuse
    ours = erp.create_invoice(_invoice("renkei:deal:num-3", partner.erp_id, number="SF-INV-0001"))
    assert ours.number == "SF-INV-0001"
    assert erp.find_invoice_by_reference("renkei:deal:num-3", number="SF-INV-0001").erp_id == ours.erp_id
    with pytest.raises(InvoiceNumberTaken):
        erp.create_invoice(_invoice("renkei:deal:num-4", partner.erp_id, number="SF-INV-0001"))
    # an office without 採番ルール
    app.state.config.numbering = "manual"
    try:
        with pytest.raises(CompanySettingError, match="採番ルール"):
            erp.create_invoice(_invoice("renkei:deal:num-5", partner.erp_id))  # Renkei was told "auto"
        manual = MoneyForwardERP(erp.client, MoneyForwardConfig(numbering="manual"))
        with pytest.raises(CompanySettingError):
            manual.create_invoice(_invoice("renkei:deal:num-6", partner.erp_id))  # refused before sending
        assert manual.create_invoice(_invoice("renkei:deal:num-7", partner.erp_id, number="SF-INV-0002")).number == "SF-INV-0002"
    finally:
        app.state.config.numbering = "auto"
    assert not [b for b in app.state.store.billings.values() if b["memo"] in ("renkei:deal:num-5", "renkei:deal:num-6")]


def test_payment_status_and_plan_cap(served):
    app, erp, partner = served
    inv = erp.create_invoice(_invoice("renkei:deal:pay-1", partner.erp_id))
    with pytest.raises(PartialPaymentNotSupported):
        erp.record_payment(Payment(invoice_erp_id=inv.erp_id, amount=inv.total - 1000, paid_on=date(2026, 12, 28)))
    assert erp.get_invoice(inv.erp_id).status == "unpaid"
    paid = erp.record_payment(Payment(invoice_erp_id=inv.erp_id, amount=inv.total - 440, fee=440,
                                      paid_on=date(2026, 12, 28)))
    assert paid.erp_id and erp.get_invoice(inv.erp_id).status == "paid"
    assert erp.set_unpaid(inv.erp_id).status == "unpaid"
    app.state.store.set_payment_status(inv.erp_id, {"payment_status": "2"})  # 消込 in クラウド会計
    assert erp.get_invoice(inv.erp_id).status == "paid"
    # payment-status changes: JSON watermark from MF's clock; a rerun brings only what changed or is open
    batches = list(erp.iter_invoice_payment_changes(None))
    watermark = batches[-1].watermark
    assert batches[-1].exhausted and json.loads(json.dumps(watermark)) == watermark
    mine = {s.invoice_erp_id: s for b in batches for s in b.records}[inv.erp_id]
    assert (mine.status, mine.outstanding, mine.reference) == ("paid", 0, "renkei:deal:pay-1") and mine.paid_on
    again = {s.invoice_erp_id: s for b in erp.iter_invoice_payment_changes(watermark) for s in b.records}
    assert inv.erp_id not in again and all(s.status == "unpaid" for s in again.values())
    # the status set in MF is seen by an incremental read (day granularity, whatever the billing date)
    changed = [r.value for batch in erp.iter_invoice_changes(since=date.today() - timedelta(days=1))
               for r in batch.records if r.ok]
    assert {i.erp_id: i.status for i in changed}[inv.erp_id] == "paid"
    rows = dict((k, v) for k, v, _ in erp.office_settings())
    assert rows["登録番号 (registration number)"] == "T7010705000725"
    app.state.config.monthly_document_cap = len(app.state.store.billings)
    try:
        with pytest.raises(QuotaExhausted):
            erp.create_invoice(_invoice("renkei:deal:cap", partner.erp_id))
    finally:
        app.state.config.monthly_document_cap = 0


def test_registry_row_builds_from_the_sandbox_env(tmp_path, monkeypatch):
    row = entry("erp", "moneyforward")
    spec = row.sandbox_spec()
    assert spec.default_port == 8084
    app = spec.app(seed="demo", print_refresh_token=False, numbering="manual", registration_code=None)
    with ServerThread(app) as server:
        for key, value in spec.env(server.url, app).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("RENKEI_MONEYFORWARD_TOKEN_STORE", "file")
        monkeypatch.setenv("RENKEI_MONEYFORWARD_TOKEN_FILE", str(tmp_path / "mf-token.json"))

        class Settings:
            home = tmp_path

        erp = row.builder()(Settings(), None, None)
        try:
            assert erp.config.numbering == "manual"
            partners = [r.value for page in erp.iter_partners() for r in page]
            inv = erp.create_invoice(_invoice("renkei:deal:env", partners[0].erp_id, number="ENV-1"))
            assert inv.issuer_registration_number is None and inv.number == "ENV-1"
        finally:
            erp.close()
        assert (tmp_path / "mf-token.json").stat().st_mode & 0o777 == 0o600
    # the demo office reconciles its bank feed (クラウド会計 消込): a billing a demo deposit pays is 入金済み
    deposit = next(d for d in BANK_DEPOSITS if d.fee)
    dept = next(iter(app.state.store.partners.values()))["departments"][0]["id"]
    paid = app.state.store.create_billing({"department_id": dept, "billing_date": "2026-11-30", "due_date": "2026-12-31",
                                           "billing_number": "ENV-2", "items": [
                                               {"name": "保守", "price": deposit.amount + deposit.fee, "quantity": 1,
                                                "excise": "untaxable"}]})
    assert paid["payment_status"] == "入金済み"
