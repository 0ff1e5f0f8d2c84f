"""ReportStore on SQLite and PostgreSQL: a snapshot round-trips, the drift trend grows per snapshot, search
filters by date / amount / counterparty / kind, trace joins records and audit events keyed by the deal."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from renkei.domain.reporting import (CustomerFact, DealFact, InvoiceFact, PaymentFact, RateTotalFact,
                                     build_snapshot)
from renkei.store.reporting import ReportStore


def test_snapshot_history_search_and_trace(store):
    reports = ReportStore(store)
    assert reports.latest_snapshot() is None and reports.search() == [] and not reports.trace("d1").found
    customers = [CustomerFact("c1", "p1", "株式会社山田商事"), CustomerFact("c2", "p2", "山田太郎", sole_trader=True)]
    deals = [DealFact("d1", "保守", 100_000, "営業", "won", "受注", Decimal(1), date(2026, 11, 20), "c1", won=True,
                      closed=True, payment_status="paid"),
             DealFact("d2", "導入", 50_000, "営業", "won", "受注", Decimal(1), date(2026, 11, 25), "c2", won=True,
                      closed=True)]
    invoices = [InvoiceFact("501", "INV-1", "renkei:deal:d1", "d1", "p1", date(2026, 11, 30), date(2026, 12, 31),
                            110_000, 100_000, 0, rate_totals=(RateTotalFact("standard_10", 100_000, 10_000),),
                            payments=(PaymentFact("9001", date(2026, 12, 2), 109_560),
                                      PaymentFact("9002", date(2026, 12, 2), 0, 440)))]
    t0 = datetime(2026, 12, 4, 19, 0, tzinfo=timezone.utc)
    first = build_snapshot(deals=deals, invoices=invoices, costs=[], customers=customers, as_of=date(2026, 12, 5),
                           taken_at=t0)
    reports.save_snapshot(first, deals=deals, invoices=invoices, customers=customers)
    second = build_snapshot(deals=deals[:1], invoices=invoices, costs=[], customers=customers,
                            as_of=date(2026, 12, 6), taken_at=t0 + timedelta(days=1))
    reports.save_snapshot(second, deals=deals, invoices=invoices, customers=customers)
    assert reports.latest_snapshot() == second
    assert reports.latest_snapshot(drift_items=False) == second  # (it has no drift items)
    assert first.drift_items and reports.latest_snapshot().drift_items == second.drift_items
    trend = reports.snapshot_history()
    assert [dict((c.kind, c.count) for c in counts)["won_no_invoice"] for _, counts in trend] == [1, 0]

    store.audit(actor="order-to-invoice", action="create", entity="invoice", entity_key="d1", system="erp",
                changes={"invoice_id": "501", "total": 110_000}, deal_id="d1")
    store.audit(actor="keiri@example.co.jp", action="payment", entity="invoice", entity_key="501", system="erp",
                changes={"amount": 109_560, "payer_name": "ﾔﾏﾀﾞ"}, deal_id="d1")
    store.audit(actor="order-to-invoice", action="create", entity="invoice", entity_key="d2", system="erp")
    t = reports.trace("d1")
    assert t.found and t.deal["amount"] == 100_000 and t.company["name"] == "株式会社山田商事"
    assert [(i.total, i.rate_totals) for i in t.invoices] == [(110_000, (("standard_10", 100_000, 10_000),))]
    assert sorted((p.amount, p.fee) for p in t.payments) == [(0, 440), (109_560, 0)]
    assert [e.action for e in t.events] == ["create", "payment"] and t.approvers == ("keiri@example.co.jp",)
    assert t.events[1].changes["payer_name"] != "ﾔﾏﾀﾞ"  # personal data masked
    assert t.to_json()["approvers"] == ["keiri@example.co.jp"]

    kinds = lambda hits: sorted((h.kind, h.key) for h in hits)  # noqa: E731
    assert kinds(reports.search(counterparty="山田商事")) == [("deal", "d1"), ("invoice", "501"), ("payment", "9001"),
                                                             ("payment", "9002")]
    assert kinds(reports.search(counterparty="山田太郎")) == []  # a 個人事業者 is not found by name
    assert kinds(reports.search(min_amount=100_000, max_amount=109_560)) == [("deal", "d1"), ("payment", "9001")]
    assert kinds(reports.search(date_from=date(2026, 11, 25), date_to=date(2026, 11, 30), kinds=("deal", "invoice"))) \
        == [("deal", "d2"), ("invoice", "501")]
    (hit,) = reports.search(kinds=("deal",), counterparty=None, min_amount=50_000, max_amount=50_000)
    assert hit.counterparty == "山***" and hit.label == "導入"
