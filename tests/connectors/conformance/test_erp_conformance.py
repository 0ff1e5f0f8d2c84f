"""What any ERP connector must do with today's contract (partners, items, invoices exactly once, deposits,
payments), over every registered ERP. Contract only: state is arranged through contract writes or read
from the sandbox's demo seed; a capability that is off skips its part, naming the flag. One fixture per test
(``erp`` seeded, ``erp_empty`` empty)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from renkei.connectors.base import ChangeBatch, MapResult
from renkei.domain.model import BankDeposit, Company, Invoice, InvoiceLine, Payment, Product, TaxCategory
from renkei.domain.tax import invoice_total, rate_totals
from renkei.domain.money import Rounding


def _partner(erp, tag: str) -> Company:
    made = erp.create_partner(Company(name=f"適合テスト{tag}株式会社", partner_code=f"CF-{tag}"))
    assert isinstance(made, Company) and made.erp_id
    return made


def _invoice(partner: Company, tag: str, amount: int = 10_000) -> Invoice:
    lines = [InvoiceLine(description="保守サービス", quantity=Decimal(1), unit_price=amount, amount=amount,
                         tax_category=TaxCategory.STANDARD_10)]
    totals = rate_totals(lines, Rounding.FLOOR)
    return Invoice(reference=f"renkei:conformance:{tag}", partner_erp_id=partner.erp_id,
                   recipient_name=partner.name, number=f"CF-{tag}", issue_date=date(2026, 11, 20),
                   transaction_date=date(2026, 11, 20), due_date=date(2026, 12, 31), lines=lines,
                   rate_totals=totals, total=invoice_total(totals))


def test_partners_pages_create_update_and_items(erp):
    pages = list(erp.iter_partners())
    results = [r for page in pages for r in page]
    assert results and all(isinstance(r, MapResult) for r in results)
    assert all(isinstance(r.value, Company) for r in results if r.ok) and any(r.ok for r in results)
    tag = uuid.uuid4().hex[:6]
    made = _partner(erp, tag)
    assert made.name == f"適合テスト{tag}株式会社"
    result = erp.update_partner(made.model_copy(update={"name": f"適合テスト{tag}合同会社"}))
    assert isinstance(result, MapResult) and result.ok, result.error
    updated = result.value
    assert updated.erp_id == made.erp_id and updated.name == f"適合テスト{tag}合同会社"
    again = {r.value.erp_id: r.value for page in erp.iter_partners() for r in page if r.ok}
    assert again[made.erp_id].name == f"適合テスト{tag}合同会社"
    items = [r for page in erp.iter_items() for r in page]
    assert items and all(isinstance(r, MapResult) for r in items)
    assert all(isinstance(r.value, Product) for r in items if r.ok) and any(r.ok for r in items)


def test_invoice_is_created_once_and_found_by_reference(erp_empty):
    tag = uuid.uuid4().hex[:8]
    partner = _partner(erp_empty, tag)
    invoice = _invoice(partner, tag)
    assert erp_empty.find_invoice_by_reference(invoice.reference) is None  # before: nothing
    made = erp_empty.create_invoice(invoice)
    assert isinstance(made, Invoice) and made.erp_id and made.total == invoice.total == 11_000
    found = erp_empty.find_invoice_by_reference(invoice.reference)
    assert found is not None and found.erp_id == made.erp_id and found.reference == invoice.reference
    got = erp_empty.get_invoice(made.erp_id)
    assert got.erp_id == made.erp_id and got.total == 11_000 and got.partner_erp_id == partner.erp_id
    # another reference is another invoice; the first is still found exactly as before
    other = erp_empty.create_invoice(_invoice(partner, tag + "x", 20_000))
    assert other.erp_id != made.erp_id
    assert erp_empty.find_invoice_by_reference(invoice.reference).erp_id == made.erp_id


def test_deposits_and_payments(erp):
    if not erp.capabilities.bank_lines:
        pytest.skip(f"{erp.capabilities.label}: bank_lines=False")
    batches = list(erp.iter_deposits(None))
    assert batches and all(isinstance(b, ChangeBatch) for b in batches) and batches[-1].exhausted
    deposits = [d for b in batches for d in b.records]
    assert deposits and all(isinstance(d, BankDeposit) and d.amount > 0 for d in deposits)
    since = max(d.received_on for d in deposits)
    later = [d for b in erp.iter_deposits(since) for d in b.records]
    assert later and all(d.received_on >= since for d in later)
    if not erp.capabilities.record_payments:
        pytest.skip(f"{erp.capabilities.label}: record_payments=False")
    tag = uuid.uuid4().hex[:8]
    invoice = erp.create_invoice(_invoice(_partner(erp, tag), tag))
    deposit = deposits[0]
    paid = erp.record_payment(Payment(invoice_erp_id=invoice.erp_id, deposit_erp_id=deposit.erp_id,
                                      amount=4_000, paid_on=deposit.received_on))
    assert isinstance(paid, Payment) and paid.erp_id and paid.amount == 4_000
