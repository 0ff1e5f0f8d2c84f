"""A small, fully known reporting data set written through ``store/reporting.py`` (the way the reporting flow
writes it), with the figures every console page must show computed here by hand (``EXPECTED``).

Facts (as of 2026-12-05, Asia/Tokyo):

* customers: 101/9001 a hostile name (markup in a CRM company name), 102/9002 株式会社中村製作所,
  103/9003 a 個人事業者 (山田太郎 → 山***);
* deals: 5001 won ¥1,000,000 (paid in both systems); 5002 open ¥2,000,001 × 50% closing 2026-12-20
  (weighted ¥1,000,001, half up); 5003 open ¥3,000,000 × 20% closing 2027-01-31 (¥600,000); 5004 won
  ¥500,000 with no invoice and a hostile deal name;
* invoices: INV-1 (deal 5001) ¥900,000 at 10% + ¥100,000 at 8% → ¥1,098,000, paid ¥1,097,340 + fee ¥660;
  INV-2 (no deal) ¥220,000 due 2026-10-31, ¥100,000 paid, ¥120,000 open (35 days overdue → 31-60);
  INV-3 (unknown deal 5099) ¥55,000 due 2026-12-31 (current); INV-4 cancelled ¥330,000 (left out);
* costs: ¥400,000 for 9001, ¥250,000 for 9002 (a loss: margin −¥50,000, −25.00%).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

HOSTILE_COMPANY = '<script>alert("pwn")</script>株式会社 & Co\'s'
HOSTILE_DEAL = '<img src=x onerror=alert(1)>設備"更新'
APPROVER = "keiri@renkei-demo.example.jp"
REVIEW_RUN_ID = "0b7a2a55-3f59-4f0e-8d59-6d0c2b8f1c11"
APPROVAL_RUN_ID = "d989c51d-6116-4be7-8d3f-ceca5fb53701"
AS_OF = date(2026, 12, 5)

EXPECTED: dict[str, Any] = {
    "months": {  # month: (pipeline weighted, pipeline unweighted, invoiced, collected)
        "2026-09": (0, 0, 220_000, 0),
        "2026-10": (0, 0, 1_098_000, 0),
        "2026-11": (0, 0, 55_000, 1_197_340),
        "2026-12": (1_000_001, 2_000_001, 0, 0),
        "2027-01": (600_000, 3_000_000, 0, 0),
    },
    "totals": {"pipeline_weighted": 1_600_001, "pipeline_unweighted": 5_000_001, "invoiced": 1_373_000,
               "collected": 1_197_340, "open_receivable": 175_000},
    "aging": {"current": (1, 55_000), "1-30": (0, 0), "31-60": (1, 120_000), "61-90": (0, 0), "90+": (0, 0)},
    "customers": {  # key: (sales, cost, margin, margin %, collected, LTV, receivable)
        "crm:101": (1_000_000, 400_000, 600_000, "60.00%", 1_097_340, 1_097_340 + 12 * (1_097_340 // 3), 0),
        "crm:102": (200_000, 250_000, -50_000, "-25.00%", 100_000, 100_000 + 12 * (100_000 // 4), 120_000),
        "crm:103": (50_000, 0, 50_000, "100.00%", 0, 0, 55_000),
    },
    "drift": {"company_field": 1, "deal_amount": 0, "payment_status": 0, "invoice_no_deal": 2, "won_no_invoice": 1},
    "drift_before": {"company_field": 3, "deal_amount": 1, "payment_status": 0, "invoice_no_deal": 2,
                     "won_no_invoice": 2},
}


def facts() -> dict[str, Any]:
    from renkei.domain.reporting import CostFact, CustomerFact, DealFact, InvoiceFact, PaymentFact, RateTotalFact

    customers = [
        CustomerFact(crm_id="101", erp_id="9001", name=HOSTILE_COMPANY),
        CustomerFact(crm_id="102", erp_id="9002", name="株式会社中村製作所", field_diffs=(("address.city", "crm"),)),
        CustomerFact(crm_id="103", erp_id="9003", name="山田太郎", sole_trader=True),
    ]
    deals = [
        DealFact(crm_id="5001", name="中村 設備更新 第1期", amount=1_000_000, pipeline="default", stage="closedwon",
                 stage_label="受注", probability=Decimal(1), close_date=date(2026, 10, 15), company_crm_id="101",
                 won=True, closed=True, payment_status="paid", invoice_erp_id="7001"),
        DealFact(crm_id="5002", name="保守契約 2027", amount=2_000_001, pipeline="default", stage="proposal",
                 stage_label="提案", probability=Decimal("0.5"), close_date=date(2026, 12, 20), company_crm_id="102"),
        DealFact(crm_id="5003", name="新工場ライン", amount=3_000_000, pipeline="default", stage="qualified",
                 stage_label="見込み", probability=Decimal("0.2"), close_date=date(2027, 1, 31), company_crm_id="102"),
        DealFact(crm_id="5004", name=HOSTILE_DEAL, amount=500_000, pipeline="default", stage="closedwon",
                 stage_label="受注", probability=Decimal(1), close_date=date(2026, 11, 30), company_crm_id="103",
                 won=True, closed=True),
    ]
    invoices = [
        InvoiceFact(erp_id="7001", number="INV-1", reference="renkei:deal:5001", deal_crm_id="5001",
                    partner_erp_id="9001", issue_date=date(2026, 10, 31), due_date=date(2026, 11, 30),
                    total=1_098_000, subtotal=1_000_000, outstanding=0,
                    rate_totals=(RateTotalFact("standard_10", 900_000, 90_000),
                                 RateTotalFact("reduced_8", 100_000, 8_000)),
                    payments=(PaymentFact("P-1", date(2026, 11, 30), 1_097_340, fee=660),)),
        InvoiceFact(erp_id="7002", number="INV-2", reference=None, deal_crm_id=None, partner_erp_id="9002",
                    issue_date=date(2026, 9, 10), due_date=date(2026, 10, 31), total=220_000, subtotal=200_000,
                    outstanding=120_000, rate_totals=(RateTotalFact("standard_10", 200_000, 20_000),),
                    payments=(PaymentFact("P-2", date(2026, 11, 5), 100_000),)),
        InvoiceFact(erp_id="7003", number="INV-3", reference="renkei:deal:5099", deal_crm_id="5099",
                    partner_erp_id="9003", issue_date=date(2026, 11, 20), due_date=date(2026, 12, 31), total=55_000,
                    subtotal=50_000, outstanding=55_000, rate_totals=(RateTotalFact("standard_10", 50_000, 5_000),)),
        InvoiceFact(erp_id="7004", number="INV-4", reference=None, deal_crm_id=None, partner_erp_id="9001",
                    issue_date=date(2026, 11, 1), due_date=date(2026, 11, 30), total=330_000, subtotal=300_000,
                    outstanding=330_000, cancelled=True),
    ]
    costs = [CostFact("C-1", "9001", date(2026, 10, 20), 400_000), CostFact("C-2", "9002", date(2026, 11, 2), 250_000)]
    return dict(customers=customers, deals=deals, invoices=invoices, costs=costs)


def write(store: Any) -> dict[str, Any]:
    """Two snapshots (a day apart, so drift has a trend), audit events of deal 5001 (one approved by a person)
    and an open review item with hostile, personal text. Returns :data:`EXPECTED`."""
    from dataclasses import replace

    from renkei.domain.reporting import build_snapshot
    from renkei.store.reporting import ReportStore

    f = facts()
    reports = ReportStore(store)
    # the day before: more drift (two company fields, a deal amount, a second won deal without an invoice)
    before_customers = [replace(f["customers"][0], field_diffs=(("name", "crm"), ("address.zip", "erp"))),
                        *f["customers"][1:]]
    before_deals = [*f["deals"][:1], replace(f["deals"][1], won=True, closed=True), *f["deals"][2:]]
    before_invoices = [replace(f["invoices"][0], subtotal=999_000), *f["invoices"][1:]]
    before = build_snapshot(deals=before_deals, invoices=before_invoices, costs=f["costs"], customers=before_customers,
                            as_of=date(2026, 12, 4), taken_at=datetime(2026, 12, 4, 0, 0, tzinfo=timezone.utc))
    reports.save_snapshot(before, deals=before_deals, invoices=before_invoices, customers=before_customers)
    snap = build_snapshot(deals=f["deals"], invoices=f["invoices"], costs=f["costs"], customers=f["customers"],
                          as_of=AS_OF, taken_at=datetime(2026, 12, 5, 0, 30, tzinfo=timezone.utc))
    reports.save_snapshot(snap, deals=f["deals"], invoices=f["invoices"], customers=f["customers"])

    store.audit_many([
        dict(actor="order-to-invoice", action="invoice.created", entity="invoice", entity_key="5001", deal_id="5001",
             system="freee", changes={"invoice_id": "7001", "total": 1_098_000,
                                      "contact_email": "taro.yamada@example.co.jp"}),
        dict(actor="order-to-invoice", action="approval_requested", entity="deal", entity_key="5001", deal_id="5001",
             changes={"flow_run_id": APPROVAL_RUN_ID, "reasons": ["AMOUNT_OVER_THRESHOLD"]}),
        dict(actor=APPROVER, action="approval.approved", entity="deal", entity_key="5001", deal_id="5001",
             changes={"comment": "<b>承認</b> OK"}),
        dict(actor="payment-writeback", action="payment.matched", entity="invoice", entity_key="7001", deal_id="5001",
             system="freee", changes={"payment_id": "P-1", "amount": 1_097_340, "fee": 660}),
    ])
    store.add_review(flow="order-to-invoice", reason_code="invoice_over_threshold", entity="deal", entity_key="5004",
                     message='<script>alert(1)</script> 担当 taro@example.co.jp 03-1234-5678 に確認',
                     payload={"total": 550_000}, flow_run_id=REVIEW_RUN_ID)
    return EXPECTED
