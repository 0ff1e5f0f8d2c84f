"""Contract: every request the freee connector sends validates against freee's official OpenAPI files.

The requests are captured with an httpx response hook (:class:`connectors.freee.testing.RequestRecorder`)
while the client drives the local sandbox through every endpoint it implements, then each one (path,
query parameters, JSON body) is validated against the operation of ``../shared/specs/freee``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from renkei.sandboxes.freee.openapi import SPEC_MISSING_REASON, spec_dir

if spec_dir() is None:
    pytest.skip(SPEC_MISSING_REASON, allow_module_level=True)

from renkei.connectors.freee.connector import FreeeConnector, FreeeConnectorConfig  # noqa: E402
from renkei.connectors.freee.mapping import deposit_to_wallet_txn, product_to_item  # noqa: E402
from renkei.connectors.freee.testing import RequestRecorder, sandbox_client  # noqa: E402
from renkei.domain.model import (  # noqa: E402
    Address,
    BankDeposit,
    Company,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentTerms,
    Product,
    TaxCategory,
    TaxEntryMethod,
)
from renkei.domain.money import Rounding  # noqa: E402
from renkei.sandboxes.common import ServerThread  # noqa: E402
from renkei.sandboxes.freee import create_app  # noqa: E402
from renkei.sandboxes.freee.config import FreeeSandboxConfig  # noqa: E402
from renkei.sandboxes.freee.openapi import ContractViolation, validate_request  # noqa: E402

SECRET = "renkei-contract-secret-77a1"
REFRESH = "sbx-rt-contract-initial-2b9c"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    cfg = FreeeSandboxConfig(client_id="contract", client_secret=SECRET, refresh_token=REFRESH,
                             print_refresh_token=False, iv_limit_per_minute=100000, iv_limit_per_hour=100000)
    app = create_app(cfg)
    recorder = RequestRecorder()
    with ServerThread(app) as server:
        c = sandbox_client(server.url, client_id="contract", client_secret=SECRET, company_id=cfg.company_id,
                           store=tmp_path_factory.mktemp("tok") / "t.json", refresh_token=REFRESH,
                           response_hooks=[recorder])
        conn = FreeeConnector(c, FreeeConnectorConfig(tax_fraction=Rounding.CEIL, send_invoice_number=True,
                                                      deposit_walletable_id=1))
        try:
            _drive_everything(c, conn)
        finally:
            c.close()
    return recorder.requests


def _drive_everything(c, conn) -> None:
    c.list_companies()
    c.get_company()
    c.list_taxes(available=True)
    accounts = c.list_account_items()
    sales = next(a for a in accounts if a["name"] == "売上高")
    bank = c.list_walletables(type="bank_account")[0]
    # partners
    full = Company(name="株式会社契約試験", name_kana="ケイヤクシケン", partner_code="CT-0001",
                   registration_number="T7010705000725", phone="03-1111-2222", billing_email="ar@example.jp",
                   billing_contact_name="経理 太郎",
                   address=Address(postal_code="100-0005", prefecture="東京都", city="千代田区", street="丸の内1-1",
                                   building="丸の内ビル"),
                   payment_terms=PaymentTerms(closing_day=20, pay_month_offset=1, pay_day=10))
    made = conn.create_partner(full)
    conn.update_partner(made.model_copy(update={"phone": "03-9999-0000"}))
    conn.upsert_partner(Company(name="合同会社契約", partner_code="CT-0002"))
    c.get_partner(made.erp_id)
    c.list_partners(keyword="契約", offset=0, limit=2, start_update_date=date(2026, 1, 1), end_update_date="2030-12-31")
    list(c.iter_partner_pages(limit=3))
    list(conn.iter_partners())
    # items
    item = c.create_item(product_to_item(Product(code="CT-ITEM", name="契約試験品目")))
    c.update_item(item["id"], {"name": "契約試験品目2", "code": "CT-ITEM"})
    c.get_item(item["id"])
    c.list_items(limit=5)
    list(conn.iter_items())
    # invoices (all tax categories, both entry methods)
    lines = [InvoiceLine(description="ライセンス", quantity=Decimal("1.5"), unit_price=1000, amount=1500,
                         tax_category=TaxCategory.STANDARD_10),
             InvoiceLine(description="食品 ※", quantity=Decimal(2), unit_price=500, amount=1000,
                         tax_category=TaxCategory.REDUCED_8),
             InvoiceLine(description="立替金", quantity=Decimal(1), unit_price=300, amount=300,
                         tax_category=TaxCategory.NON_TAXABLE)]
    for n, method in enumerate((TaxEntryMethod.EXCLUSIVE, TaxEntryMethod.INCLUSIVE)):
        inv = conn.create_invoice(Invoice(reference=f"renkei:deal:CT{n}", number=f"CT-{n}", partner_erp_id=made.erp_id,
                                          recipient_name=made.name, issue_date=date(2026, 11, 30),
                                          transaction_date=date(2026, 11, 20), due_date=date(2026, 12, 31),
                                          tax_entry_method=method, lines=lines))
    conn.find_invoice_by_reference("renkei:deal:CT0", partner_erp_id=made.erp_id, issue_date=date(2026, 11, 30))
    conn.find_invoice_by_reference("renkei:deal:none")
    c.list_invoices(partner_ids=made.erp_id, start_billing_date="2026-11-01", end_billing_date="2026-11-30",
                    payment_status="unsettled", limit=10)
    c.list_invoice_templates()
    # deals, payments, bank lines, journals
    deal = c.create_deal({"issue_date": "2026-11-30", "type": "income", "partner_id": int(made.erp_id),
                          "ref_number": "CT-DEAL-1", "due_date": "2026-12-31",
                          "details": [{"tax_code": 129, "account_item_id": sales["id"], "amount": 11000, "vat": 1000,
                                       "description": "契約試験"}],
                          "payments": [{"amount": 1000, "date": "2026-11-30", "from_walletable_type": "bank_account",
                                        "from_walletable_id": bank["id"]}]})
    c.update_deal(deal["id"], {"issue_date": "2026-11-30", "type": "income", "partner_id": int(made.erp_id),
                               "details": [{"tax_code": 129, "account_item_id": sales["id"], "amount": 11000}]})
    c.add_deal_payment(deal["id"], {"date": "2026-12-01", "from_walletable_type": "bank_account",
                                    "from_walletable_id": bank["id"], "amount": 500})
    c.get_deal(deal["id"], accruals="with")
    c.list_deals(partner_id=int(made.erp_id), type="income", status="unsettled", start_issue_date=date(2026, 11, 1),
                 end_issue_date=date(2026, 11, 30), limit=10)
    c.find_deal_by_ref("CT-DEAL-1", issue_date="2026-11-30", type="income")
    c.create_wallet_txn(deposit_to_wallet_txn(BankDeposit(erp_id="new", received_on=date(2026, 12, 2), amount=8800,
                                                          payer_name="振込 ｶ)ｹｲﾔｸｼｹﾝ", walletable_id="1"),
                                              company_id=c.company_id))
    c.list_wallet_txns(walletable_type="bank_account", walletable_id=bank["id"], entry_side="income",
                       start_date="2026-12-01", end_date="2026-12-31", limit=50)
    list(conn.iter_deposits(since=date(2026, 12, 1)))
    conn.record_payment(Payment(invoice_erp_id=inv.erp_id, amount=100, paid_on=date(2026, 12, 2)))
    txn = c.list_wallet_txns(walletable_type="bank_account", walletable_id=bank["id"], limit=1)[0]
    conn.record_payment(Payment(invoice_erp_id=inv.erp_id, deposit_erp_id=str(txn["id"]), amount=100,
                                paid_on=date(2026, 12, 2)))
    c.create_manual_journal({"issue_date": "2026-12-02", "ref_number": "CT-MJ-1", "details": [
        {"entry_side": "debit", "tax_code": 2, "account_item_id": sales["id"], "amount": 100, "description": "x"},
        {"entry_side": "credit", "tax_code": 2, "account_item_id": sales["id"], "amount": 100}]})
    c.list_manual_journals(ref_number="CT-MJ-1", start_issue_date="2026-12-01", end_issue_date="2026-12-31")


def test_every_endpoint_was_exercised(recorded):
    ops = {(r.method, _template(r.path)) for r in recorded}
    expected = {
        ("GET", "/api/1/companies"), ("GET", "/api/1/companies/{id}"), ("GET", "/api/1/taxes/companies/{id}"),
        ("GET", "/api/1/account_items"), ("GET", "/api/1/walletables"),
        ("GET", "/api/1/partners"), ("POST", "/api/1/partners"), ("GET", "/api/1/partners/{id}"),
        ("PUT", "/api/1/partners/{id}"), ("PUT", "/api/1/partners/upsert_by_code"),
        ("GET", "/api/1/items"), ("POST", "/api/1/items"), ("GET", "/api/1/items/{id}"), ("PUT", "/api/1/items/{id}"),
        ("GET", "/api/1/deals"), ("POST", "/api/1/deals"), ("GET", "/api/1/deals/{id}"), ("PUT", "/api/1/deals/{id}"),
        ("POST", "/api/1/deals/{id}/payments"), ("GET", "/api/1/wallet_txns"), ("POST", "/api/1/wallet_txns"),
        ("GET", "/api/1/wallet_txns/{id}"),
        ("GET", "/api/1/manual_journals"), ("POST", "/api/1/manual_journals"),
        ("GET", "/iv/invoices"), ("POST", "/iv/invoices"), ("GET", "/iv/invoices/{id}"),
        ("GET", "/iv/invoices/templates"),
    }
    assert expected <= ops, sorted(expected - ops)
    assert all(r.status < 400 for r in recorded), [(r.method, r.path, r.status) for r in recorded if r.status >= 400]


def _template(path: str) -> str:
    parts = path.split("/")
    return "/".join("{id}" if p.isdigit() and i > 2 else p for i, p in enumerate(parts))


def test_every_request_matches_the_official_schema(recorded):
    assert len(recorded) > 40
    problems = []
    for r in recorded:
        try:
            validate_request(r.method, r.path, r.query, r.body, api=r.api)
        except ContractViolation as exc:
            problems.append(str(exc))
    assert problems == [], "\n".join(problems)
