"""Worked examples for every reporting rule (domain/reporting.py, docs/reporting.md)."""

from __future__ import annotations

import dataclasses

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from renkei.domain.model import PaymentTerms
from renkei.domain.reporting import (
    CostFact, CustomerFact, DealFact, InvoiceFact, PaymentFact, Snapshot, address_text, aging_bucket, build_snapshot,
    cash_forecast, customer_profits, deal_id_from_reference, drift_items, expected_payment_month, is_order_invoice,
    ltv_projection,
    margin_rate, mask_name, month_figures, pipeline_stages, weighted_amount,
)

AS_OF = date(2026, 12, 5)


def deal(i: str, amount: int | None, prob: str, close: date | None, *, won=False, closed=False, company="c1",
         status=None, stage="s") -> DealFact:
    return DealFact(crm_id=i, name=f"deal {i}", amount=amount, pipeline="営業", stage=stage, stage_label=stage.upper(),
                    probability=Decimal(prob), close_date=close, company_crm_id=company, won=won, closed=closed,
                    payment_status=status)


def invoice(i: str, total: int, sub: int, outstanding: int, *, issue=date(2026, 11, 10), due=date(2026, 12, 31),
            deal_id: str | None = "d1", partner="p1", payments=(), cancelled=False) -> InvoiceFact:
    return InvoiceFact(erp_id=i, number=f"INV-{i}", reference=f"renkei:deal:{deal_id}" if deal_id else None,
                       deal_crm_id=deal_id, partner_erp_id=partner, issue_date=issue, due_date=due, total=total,
                       subtotal=sub, outstanding=outstanding, cancelled=cancelled, payments=tuple(payments))


def test_weighted_amount_rounds_half_up_per_deal():
    assert weighted_amount(1_000_001, Decimal("0.5")) == 500_001  # 500,000.5 → 500,001 (四捨五入)
    assert weighted_amount(333_333, Decimal("0.6")) == 200_000  # 199,999.8
    assert weighted_amount(999, Decimal("0.1")) == 100  # 99.9
    assert weighted_amount(None, Decimal("0.9")) == 0
    with pytest.raises(TypeError):
        weighted_amount(100, 0.5)  # type: ignore[arg-type]  # never a float


def test_aging_buckets_by_days_past_the_due_date_in_tokyo():
    due = date(2026, 11, 30)
    days = (0, 1, 30, 31, 60, 61, 90, 91)
    assert [aging_bucket(due + timedelta(days=n), due) for n in days] == \
        ["current", "1-30", "1-30", "31-60", "31-60", "61-90", "61-90", "90+"]
    assert aging_bucket(AS_OF, None) == "current"
    assert aging_bucket(date(2026, 11, 1), due) == "current"


def test_margin_rate_and_ltv_projection():
    assert margin_rate(1_000_000, 333_333) == Decimal("0.3333")
    assert margin_rate(3, 2) == Decimal("0.6667")  # half up at 4 places
    assert margin_rate(0, -500) == Decimal(0)
    assert margin_rate(100_000, -20_000) == Decimal("-0.2000")
    # ¥300,000 collected over Oct–Dec (3 months): 300,000 + 12 × 100,000
    assert ltv_projection(300_000, "2026-10", AS_OF) == 1_500_000
    assert ltv_projection(100_000, "2026-10", AS_OF) == 100_000 + 12 * 33_333  # floor of 33,333.3
    assert ltv_projection(0, "2026-10", AS_OF) == 0 and ltv_projection(5, None, AS_OF) == 5


def test_month_figures_open_pipeline_by_close_month_invoiced_by_issue_collected_by_payment():
    deals = [deal("a", 1_000_000, "0.2", date(2027, 1, 20)), deal("b", 500_000, "0.5", date(2027, 1, 31)),
             deal("won", 800_000, "1", date(2026, 11, 2), won=True, closed=True),
             deal("nodate", 70_000, "0.5", None)]
    invs = [invoice("1", 110_000, 100_000, 0, payments=[PaymentFact("p", date(2026, 12, 1), 109_560, 0),
                                                        PaymentFact("f", date(2026, 12, 1), 0, 440)]),
            invoice("2", 55_000, 50_000, 55_000, issue=date(2026, 12, 3)),
            invoice("x", 99_999, 90_909, 0, cancelled=True)]
    got = {m.month: (m.pipeline_weighted, m.pipeline_unweighted, m.invoiced, m.collected)
           for m in month_figures(deals, invs)}
    assert got == {"2026-11": (0, 0, 110_000, 0), "2026-12": (0, 0, 55_000, 109_560),
                   "2027-01": (200_000 + 250_000, 1_500_000, 0, 0)}
    stages = {(s.stage, s.close_month): (s.count, s.weighted, s.unweighted) for s in pipeline_stages(deals)}
    assert stages[("営業/S", "2027-01")] == (2, 450_000, 1_500_000)
    assert stages[("営業/S", "")] == (1, 35_000, 70_000) and stages[("営業/S", "2026-11")] == (1, 800_000, 800_000)


def test_customer_profit_sales_cost_margin_collected_and_open():
    customers = [CustomerFact("c1", "p1", "株式会社山田商事"), CustomerFact("c2", "p2", "山田太郎", sole_trader=True)]
    invs = [invoice("1", 110_000, 100_000, 0, issue=date(2026, 10, 5),
                    payments=[PaymentFact("p", date(2026, 11, 30), 110_000)]),
            invoice("2", 55_000, 50_000, 55_000, partner="p2"),
            invoice("3", 22_000, 20_000, 22_000, partner="p9")]
    costs = [CostFact("e1", "p1", date(2026, 11, 1), 30_000), CostFact("e2", "p2", date(2026, 11, 1), 60_000)]
    rows = {c.customer_key: c for c in customer_profits(customers, invs, costs, AS_OF)}
    y = rows["crm:c1"]
    assert (y.sales, y.cost, y.gross_margin, y.margin_rate, y.collected_to_date, y.open_receivable) == \
        (100_000, 30_000, 70_000, Decimal("0.7000"), 110_000, 0)
    assert y.ltv_projection == 110_000 + 12 * (110_000 // 3)  # Oct–Dec
    t = rows["crm:c2"]
    assert t.name_masked == "山***" and (t.gross_margin, t.margin_rate) == (-10_000, Decimal("-0.2000"))
    assert rows["erp:p9"].sales == 20_000 and rows["erp:p9"].name_masked == ""
    assert list(rows) == ["crm:c1", "erp:p9", "crm:c2"]  # by gross margin, largest first
    assert mask_name("株式会社X", False) == "株式会社X"


def test_cash_forecast_open_invoices_by_due_month_and_pipeline_by_payment_terms():
    customers = [CustomerFact("c1", "p1", "A", payment_terms=PaymentTerms(closing_day=20, pay_month_offset=1,
                                                                           pay_day=10))]
    deals = [deal("a", 1_000_000, "0.5", date(2026, 12, 25)),  # 20日締め翌月10日払い: 1/20 close → 2/10
             deal("b", 300_000, "0.5", date(2026, 12, 10), company="c9"),  # default 月末締め翌月末払い → 2027-01-31
             deal("c", 100_000, "0.5", date(2027, 9, 1))]  # beyond the 6-month horizon
    invs = [invoice("1", 110_000, 100_000, 110_000, due=date(2026, 10, 31)),  # overdue → this month
            invoice("2", 55_000, 50_000, 20_000, due=date(2027, 1, 31)),
            invoice("3", 33_000, 30_000, 0, due=date(2027, 1, 31))]
    got = {m.month: (m.open_invoices_due, m.weighted_pipeline_expected)
           for m in cash_forecast(deals, invs, customers, AS_OF)}
    assert got == {"2026-12": (110_000, 0), "2027-01": (20_000, 150_000), "2027-02": (0, 500_000),
                   "2027-03": (0, 0), "2027-04": (0, 0), "2027-05": (0, 0)}
    assert expected_payment_month(date(2026, 11, 10), None) == "2026-12"


def test_drift_items_each_kind():
    customers = [CustomerFact("c1", "p1", "A", field_diffs=(("billing_email", "erp"), ("phone", "crm"))),
                 CustomerFact("c2", None, "B", field_diffs=(("phone", "crm"),))]  # not linked: no field drift
    deals = [deal("d1", 100_000, "1", AS_OF, won=True, closed=True, status="paid"),
             deal("d2", 50_000, "1", AS_OF, won=True, closed=True),
             deal("d3", 70_000, "1", AS_OF, won=True, closed=True),
             deal("d4", 10_000, "1", AS_OF, won=True, closed=True, status="paid")]
    invs = [invoice("1", 110_000, 100_000, 0, deal_id="d1", payments=[PaymentFact("p", AS_OF, 110_000)]),
            invoice("2", 52_800, 48_000, 0, deal_id="d2", payments=[PaymentFact("q", AS_OF, 52_800)]),
            invoice("4", 11_000, 10_000, 11_000, deal_id="d4"),
            invoice("9", 1_100, 1_000, 1_100, deal_id=None)]
    items = drift_items(deals, invs, customers)
    got = sorted((i.kind, i.crm_id, i.erp_id) for i in items)
    assert got == [("company_field", "c1", "p1"), ("company_field", "c1", "p1"),
                   ("deal_amount", "d2", "2"),  # 50,000 vs 48,000
                   ("invoice_no_deal", None, "9"),
                   ("payment_status", "d2", "2"),  # paid in the ERP, nothing in the CRM
                   ("payment_status", "d4", "4"),  # the CRM says paid, the ERP has it open
                   ("won_no_invoice", "d3", None)]
    assert all("@" not in i.detail for i in items)
    # a subscription's period and proration invoices are parts of the deal: no amount drift for them
    sub = [invoice("5", 3_300, 3_000, 0, deal_id="d5"), invoice("6", 3_300, 3_000, 0, deal_id="d5")]
    sub = [dataclasses.replace(sub[0], reference="renkei:deal:d5:period:2026-12-01..2026-12-31"),
           dataclasses.replace(sub[1], reference="renkei:deal:d5:proration:v2")]
    assert [i for i in drift_items([deal("d5", 7_320, "1", AS_OF, won=True, closed=True)], sub, [])
            if i.kind == "deal_amount"] == []
    assert is_order_invoice("renkei:deal:d5") and is_order_invoice(None) and not is_order_invoice(sub[0].reference)
    # one address split differently (freee keeps the city in street_name1) is one text
    assert address_text({"address.prefecture": "東京都", "address.city": "渋谷区", "address.street": "道玄坂1-2-3"}) \
        == address_text({"address.prefecture": "東京都", "address.street": "渋谷区 道玄坂1-2-3"}) == "東京都渋谷区道玄坂1-2-3"
    assert deal_id_from_reference("renkei:deal:123:period:2026-12-01..2026-12-31") == "123"
    assert deal_id_from_reference("freee:invoice:9") is None


def test_snapshot_round_trips_through_json():
    snap = build_snapshot(deals=[deal("a", 1_000, "0.5", AS_OF)],
                          invoices=[invoice("1", 1_100, 1_000, 1_100, deal_id="a")],
                          costs=[CostFact("e", "p1", AS_OF, 300)], customers=[CustomerFact("c1", "p1", "A")],
                          as_of=AS_OF, taken_at=datetime(2026, 12, 5, 1, 0, tzinfo=timezone.utc))
    assert Snapshot.from_json(snap.to_json()) == snap
    assert snap.totals() == dict(pipeline_weighted=500, pipeline_unweighted=1_000, invoiced=1_100, collected=0,
                                 open_receivable=1_100)
    assert snap.customers[0].margin_rate == Decimal("0.7000")


def test_a_hubspot_deal_amount_reads_as_a_report_figure_and_never_raises():
    from renkei.connectors.hubspot.deal_ops import report_amount

    assert [report_amount(v) for v in ("1500.9", "1,000", "", None, "abc", "NaN", "Infinity", "-20")] == \
        [1500, 1000, None, None, None, None, None, -20]


def test_report_reads_leave_an_unreadable_record_out_with_its_reason():
    from renkei.domain.reporting import (CostFact, FactPage, InvoiceFact, UnreadableRecord, check_fact, read_facts,
                                         whole_yen)

    assert [whole_yen(v) for v in (None, "", 0, 1500, "1500", Decimal("1500.0"), "-20")] == [0, 0, 0, 1500, 1500,
                                                                                             1500, -20]
    for bad in ("1500.5", Decimal("0.1"), 1500.0, True, "abc", "NaN", "Infinity", "1,000"):
        with pytest.raises(ValueError):
            whole_yen(bad)
    inv = InvoiceFact(erp_id="1", number=None, reference=None, deal_crm_id=None, partner_erp_id="9",
                      issue_date=date(2026, 11, 30), due_date=None, total=1100, subtotal=1000, outstanding=1100)
    assert check_fact(inv) is inv
    for broken in (dict(issue_date=None), dict(total=Decimal(1100)), dict(reference="renkei:deal:1\x00"),
                   dict(erp_id=" ")):
        with pytest.raises(ValueError):
            check_fact(InvoiceFact(**{**inv.__dict__, **broken}))
    with pytest.raises(ValueError, match="partner"):
        check_fact(CostFact(erp_id="5", partner_erp_id="", day=date(2026, 11, 1), amount=1))

    def build(raw):
        if raw.get("skip"):
            return None  # left out by rule: neither a fact nor unreadable
        return CostFact(erp_id=str(raw["id"]), partner_erp_id="9", day=date.fromisoformat(raw["day"]),
                        amount=whole_yen(raw["amount"]))

    page = read_facts("cost_record", [{"id": 1, "day": "2026-11-01", "amount": "100"},
                                      {"id": 2, "day": "2026-02-30", "amount": "100"},
                                      {"id": 3, "day": "2026-11-01", "amount": "1.5"}, {"skip": True},
                                      {"day": "2026-11-01"}], build)
    assert isinstance(page, FactPage) and [f.erp_id for f in page] == ["1"]
    assert [(u.entity, u.key) for u in page.unreadable] == [("cost_record", "2"), ("cost_record", "3"),
                                                            ("cost_record", "?")]
    assert isinstance(page.unreadable[0], UnreadableRecord) and "day is out of range" in page.unreadable[0].reason
