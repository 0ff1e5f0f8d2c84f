"""ERPMoney: invoices (settings, recipient, exactly-once lookup, typed refusals), bank lines, receivables and
payments, payment status changes, journals — written against the contract only, for every registered ERP
(a part whose capability is False skips for that ERP, naming the flag)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from renkei.connectors.base import (BankLineRead, InvoiceNumberTaken, InvoicePaymentStatus, InvoiceSettings,
                                    JournalLine, ManualJournal, MoneyAccount, Receivable)
from renkei.domain.model import Invoice, InvoiceLine, TaxCategory
from renkei.domain.money import Rounding

DAY = date(2026, 11, 30)


def _invoice(ref: str, partner_id: str, number: str | None) -> Invoice:
    lines = [InvoiceLine(description="年間ライセンス", quantity=Decimal(1), unit_price=30_000, amount=30_000,
                         tax_category=TaxCategory.STANDARD_10),
             InvoiceLine(description="お茶 ※", quantity=Decimal(3), unit_price=1_000, amount=3_000,
                         tax_category=TaxCategory.REDUCED_8)]
    return Invoice(reference=ref, number=number, partner_erp_id=partner_id, recipient_name="株式会社テスト",
                   issue_date=DAY, transaction_date=DAY, due_date=DAY + timedelta(days=31), lines=lines)


def _partner_id(erp) -> str:
    for page in erp.iter_partners():
        for res in page:
            if res.ok and res.value.erp_id:
                return str(res.value.erp_id)
    raise AssertionError("the demo account has no partner")


def test_erp_money(erp):
    """One test per module: the demo sandbox is served once per module and its credentials rotate."""
    _invoices(erp)
    _journals(erp)
    _bank_lines_receivables_payments_and_status_changes(erp)  # last: it may skip (bank_lines False)


def _invoices(erp):
    settings = erp.read_invoice_settings(as_of=DAY, numbering="manual")
    assert isinstance(settings, InvoiceSettings) and settings.account_id
    assert settings.invoice_numbering == "manual" and isinstance(settings.tax_rounding, Rounding)
    assert all(len(row) == 3 for row in settings.rows)
    assert settings.registration_number is None or settings.registration_number.startswith("T")
    erp.configure_invoices(settings, tax_rounding=settings.tax_rounding)  # Renkei numbers the invoices

    partner = _partner_id(erp)
    recipient = erp.get_invoice_recipient(partner)
    assert recipient.ok and str(recipient.value.erp_id) == partner

    ref = "renkei:deal:conformance-1"
    assert erp.find_invoice_by_reference(ref, partner_erp_id=partner, around=DAY) is None
    made = erp.create_invoice(_invoice(ref, partner, "CONF-0001"))
    assert made.erp_id and made.number == "CONF-0001" and made.total == 30_000 + 3_000 + 3_000 + 240
    # found whatever date is tried first (never depends on today's date)
    found = erp.find_invoice_by_reference(ref, partner_erp_id=partner, around=DAY + timedelta(days=90))
    assert found is not None and found.erp_id == made.erp_id and found.total == made.total
    assert erp.get_invoice(made.erp_id).reference == ref
    with pytest.raises(InvoiceNumberTaken):  # the number is another invoice's: nothing created
        erp.create_invoice(_invoice("renkei:deal:conformance-2", partner, "CONF-0001"))
    assert erp.find_invoice_by_reference("renkei:deal:conformance-2", partner_erp_id=partner) is None

    # reporting: every invoice with its settlement, the deal id from the reference, per-rate totals
    (fact,) = [f for page in erp.iter_invoice_facts() for f in page if f.erp_id == made.erp_id]
    assert (fact.total, fact.subtotal, fact.outstanding, fact.deal_crm_id) == (36_240, 33_000, 36_240, "conformance-1")
    assert fact.issue_date == DAY and not fact.cancelled and fact.payments == ()
    assert {r.tax_category: (r.subtotal, r.tax) for r in fact.rate_totals} in (
        {"standard_10": (30_000, 3_000), "reduced_8": (3_000, 240)}, {})  # {}: the listing has no per-rate totals
    if erp.capabilities.cost_records:
        assert all(c.partner_erp_id and isinstance(c.amount, int) for page in erp.iter_cost_facts() for c in page)
    else:
        with pytest.raises(NotImplementedError, match="cost_records"):
            list(erp.iter_cost_facts())


def _bank_lines_receivables_payments_and_status_changes(erp):
    caps = erp.capabilities
    erp.configure_invoices(erp.read_invoice_settings(as_of=DAY, numbering="manual"),
                           tax_rounding=Rounding.FLOOR)
    partner = _partner_id(erp)
    made = erp.create_invoice(_invoice("renkei:deal:conformance-3", partner, "CONF-0003"))

    if caps.payment_status:
        batches = list(erp.iter_invoice_payment_changes(None))
        assert batches and batches[-1].exhausted
        ours = [s for b in batches for s in b.records if s.invoice_erp_id == made.erp_id]
        assert len(ours) == 1 and isinstance(ours[0], InvoicePaymentStatus)
        assert (ours[0].status, ours[0].total, ours[0].outstanding, ours[0].paid_amount) == \
            ("unpaid", made.total, made.total, 0)
        assert ours[0].reference == "renkei:deal:conformance-3"
        watermark = batches[-1].watermark

    if not caps.bank_lines:
        pytest.skip(f"{caps.label}: bank_lines is False (no bank lines, receivables or recorded payments)")

    pages = list(erp.iter_bank_lines(None))
    lines = [ln for page in pages for ln in page]
    assert lines and all(isinstance(ln, BankLineRead) for ln in lines)
    deposit_line = next(ln for ln in lines if ln.deposit is not None)
    assert deposit_line.day == deposit_line.deposit.received_on and deposit_line.deposit.amount > 0
    again = erp.get_bank_line(deposit_line.id)
    assert again is not None and again.deposit == deposit_line.deposit
    assert erp.get_bank_line("987654321") is None

    book = erp.open_receivables()
    (rec,) = [r for r in book.receivables if r.invoice_erp_id == made.erp_id]
    assert isinstance(rec, Receivable) and rec.outstanding == rec.total == made.total and not rec.settled
    assert rec.reference == "renkei:deal:conformance-3" and rec.partner_erp_id in book.partners
    accounts = erp.money_accounts()
    bank = next(a for a in accounts if a.kind == "bank")
    clearing = next(a for a in accounts if a.kind == "clearing")
    assert isinstance(bank, MoneyAccount) and clearing.ledger_account

    after = erp.add_receivable_payment(rec.id, day=DAY, amount=10_000, account=bank)
    assert after.outstanding == made.total - 10_000 and not after.settled
    (pay,) = [p for p in after.payments if p.amount == 10_000]
    assert pay.day == DAY and str(pay.account_id) == bank.id
    after = erp.add_receivable_payment(rec.id, day=DAY, amount=made.total - 10_000, account=clearing)
    assert after.settled and after.outstanding == 0 and after.paid_on == DAY
    assert erp.get_receivable(rec.id) == after
    assert all(r.id != rec.id for r in erp.open_receivables().receivables)

    if caps.payment_status:
        changed = [s for b in erp.iter_invoice_payment_changes(watermark) for s in b.records]
        (now,) = [s for s in changed if s.invoice_erp_id == made.erp_id]
        assert (now.status, now.outstanding, now.paid_on) == ("paid", 0, DAY)


def _journals(erp):
    if not erp.capabilities.journals:
        return  # journals is False: nothing to post
    names = erp.account_names()
    assert {"売上高", "前受金"} <= names
    assert erp.find_journal("RKCONFORMANCE1", on=DAY) is None
    jid = erp.post_journal(ManualJournal(DAY, "RKCONFORMANCE1", (
        JournalLine("debit", "売上高", 12_000, "前受金へ振替 conformance"),
        JournalLine("credit", "前受金", 12_000, "前受金へ振替 conformance"))))
    assert jid and erp.find_journal("RKCONFORMANCE1", on=DAY) == jid
    assert erp.find_journal("RKCONFORMANCE1", on=DAY + timedelta(days=1)) is None
