"""reporting on the HubSpot + freee sandboxes after customer-sync, order-to-invoice and payment-writeback: the
snapshot's figures are compared yen to yen with figures computed here from the sandboxes' own stores (not through
any connector); then ``renkei trace`` and ``renkei search`` find the deal, its invoice and its payment."""

from __future__ import annotations

import importlib.util
import json
from collections import defaultdict
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from typer.testing import CliRunner

from renkei.cli import app
from renkei.domain.dates import TOKYO, today_tokyo
from renkei.flows.customer_sync import customer_sync
from renkei.flows.order_to_invoice import order_to_invoice
from renkei.flows.payment_writeback import payment_writeback
from renkei.flows.reporting import reporting
from renkei.store.reporting import ReportStore
from tests.flows.builders import freee_partner, hs_company, hs_deal

BANK = 1


def expected_from_sandboxes(world, as_of: date) -> dict:
    """The dashboard figures from the sandboxes' raw stores, by the documented rules (docs/reporting.md)."""
    fs, hs = world.freee.app.state.store, world.hubspot.app.state.store
    stages = {s["id"]: s["metadata"] for p in hs.pipelines["deals"].values() for s in p.stages}
    months: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for rec in hs.records["deals"].values():
        if rec.archived:
            continue
        meta = stages[rec.props["dealstage"]]
        if meta["isClosed"] == "true":
            continue
        amount = int(Decimal(rec.props["amount"]))
        close = datetime.fromtimestamp(int(rec.props["closedate"]) / 1000, timezone.utc).astimezone(TOKYO)
        m = months[f"{close:%Y-%m}"]
        m[0] += int((Decimal(amount) * Decimal(meta["probability"])).quantize(Decimal(1), ROUND_HALF_UP))
        m[1] += amount
    sales: dict[int, int] = defaultdict(int)
    collected: dict[int, int] = defaultdict(int)
    open_by_partner: dict[int, int] = defaultdict(int)
    aging = {"current": 0, "1-30": 0, "31-60": 0, "61-90": 0, "90+": 0}
    for inv in fs.invoices.values():
        if inv.cancel_status == "canceled":
            continue
        months[inv.request.billing_date[:7]][2] += inv.total_amount
        sales[inv.partner_id] += inv.amount_excluding_tax
        deal = fs.deals[inv.deal_id]
        for p in deal.payments:
            if p.from_walletable_type == "bank_account":  # cash; the fee settles through the clearing account
                months[p.date[:7]][3] += p.amount
                collected[inv.partner_id] += p.amount
        open_by_partner[inv.partner_id] += deal.due_amount
        if deal.due_amount:
            days = (as_of - date.fromisoformat(inv.request.payment_date)).days
            label = "current" if days <= 0 else "1-30" if days <= 30 else "31-60" if days <= 60 else \
                "61-90" if days <= 90 else "90+"
            aging[label] += deal.due_amount
    cost: dict[int, int] = defaultdict(int)
    for d in fs.deals.values():
        if d.type == "expense" and d.partner_id:
            cost[d.partner_id] += sum(x.amount - x.vat for x in d.details)
    return dict(months={k: tuple(v) for k, v in months.items()}, sales=dict(sales), collected=dict(collected),
                open=dict(open_by_partner), cost=dict(cost), aging=aging)


def test_reporting_snapshot_matches_the_sandboxes_and_trace_and_search_find_the_deal(world):
    yamada_p = freee_partner(world, "株式会社山田商事", registration="T7010705000725", name_kana="ヤマダショウジ")
    yamada = hs_company(world, "株式会社山田商事", renkei_corporate_number="7010705000725",
                        renkei_name_kana="ヤマダショウジ")
    sato_p = freee_partner(world, "佐藤物産株式会社", registration="T4011001098993", name_kana="サトウブッサン")
    sato = hs_company(world, "佐藤物産株式会社", renkei_corporate_number="4011001098993", renkei_name_kana="サトウブッサン")
    d_y = hs_deal(world, "山田商事 保守", yamada, [{"name": "保守", "quantity": 1, "price": 100_000}])
    hs_deal(world, "佐藤物産 導入", sato, [
        {"name": "導入支援", "quantity": 1, "price": 50_000},
        {"name": "弁当", "quantity": 2, "price": 1_000, "renkei_tax_category": "reduced_8"}])
    hs_deal(world, "山田商事 追加", yamada, [], stage="presentationscheduled", amount=333_333,
            closedate="2027-01-15T00:00:00.000Z")
    won_no_invoice = hs_deal(world, "請求なし", None, [], amount=10_000)  # no company: never invoiced
    customer_sync()  # links the customers and brings the ERP-owned fields into the CRM
    order_to_invoice()
    world.fr().create_wallet_txn({"walletable_type": "bank_account", "walletable_id": BANK, "entry_side": "income",
                                  "amount": 109_560, "date": today_tokyo().isoformat(), "description": "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"})
    payment_writeback()  # ¥109,560 + ¥440 fee settle 山田商事's ¥110,000
    # cost records: expense 取引 tagged to 山田商事 (¥33,000 税込 = ¥30,000 + tax) and one without a partner
    world.fr().create_deal({"issue_date": today_tokyo().isoformat(), "type": "expense", "partner_id": int(yamada_p),
                            "details": [{"account_item_id": 6001, "tax_code": 136, "amount": 33_000, "vat": 3_000}]})
    world.fr().create_deal({"issue_date": today_tokyo().isoformat(), "type": "expense",
                            "details": [{"account_item_id": 6001, "tax_code": 136, "amount": 5_500, "vat": 500}]})

    # someone edits an ERP-owned field in the CRM after the sync: drift until the next customer-sync puts it back
    world.hs().companies.update(sato, {"renkei_billing_email": "other@example.co.jp"})

    overview = reporting()
    reports = ReportStore(world.rt.store)
    snap = reports.latest_snapshot()
    exp = expected_from_sandboxes(world, snap.as_of)

    assert snap.as_of == today_tokyo()
    assert {m.month: (m.pipeline_weighted, m.pipeline_unweighted, m.invoiced, m.collected) for m in snap.months} \
        == exp["months"]
    assert overview["invoiced"] == 110_000 + 57_160 and overview["collected"] == 109_560
    assert overview["pipeline_weighted"] == 200_000 and overview["pipeline_unweighted"] == 333_333  # × 0.6, 四捨五入
    assert {b.label: b.amount for b in snap.aging} == exp["aging"] and overview["open_receivable"] == 57_160
    by_key = {c.customer_key: c for c in snap.customers}
    for crm_id, partner in ((yamada, int(yamada_p)), (sato, int(sato_p))):
        c = by_key[f"crm:{crm_id}"]
        assert (c.sales, c.cost, c.collected_to_date, c.open_receivable) == (
            exp["sales"][partner], exp["cost"].get(partner, 0), exp["collected"].get(partner, 0), exp["open"][partner])
        assert c.gross_margin == c.sales - c.cost
    y = by_key[f"crm:{yamada}"]
    assert (y.sales, y.cost, y.gross_margin, str(y.margin_rate)) == (100_000, 30_000, 70_000, "0.7000")
    assert sum(c.cost for c in snap.customers) == 30_000  # the expense without a partner is overhead
    assert sum(m.open_invoices_due for m in snap.cash_forecast) == 57_160
    assert sum(m.weighted_pipeline_expected for m in snap.cash_forecast) == 200_000  # 1/15 close → due 2/28
    drift = {c.kind: c.count for c in snap.drift_counts}
    assert drift["won_no_invoice"] == 1 and drift["invoice_no_deal"] == 0 and drift["deal_amount"] == 0
    assert drift["payment_status"] == 0  # 山田商事 paid on both sides, 佐藤物産 open on both
    assert [i.crm_id for i in snap.drift_items if i.kind == "won_no_invoice"] == [won_no_invoice]
    assert [(i.kind, i.crm_id, i.detail) for i in snap.drift_items if i.kind == "company_field"] == [
        ("company_field", sato, "billing_email (owner: erp)")]  # nothing else differs after customer-sync
    assert reports.snapshot_history()[-1][1] == snap.drift_counts
    if importlib.util.find_spec("renkei.console") is not None:  # the console's pages show the same figures
        from tests.console.pagecheck import assert_console_shows

        assert_console_shows(world.rt.store, months=exp["months"], aging=exp["aging"])

    # audit events carry the deal: the payments (entity: the freee invoice) are found by the deal id alone
    keyed = {(e.entity, e.action) for e in world.rt.store.audit_events() if e.deal_id == d_y}
    assert {("invoice", "create"), ("invoice", "payment"), ("invoice", "fee_payment"), ("deal", "payment_status"),
            ("deposit", "apply"), ("deposit", "fee_journal")} <= keyed

    cli = CliRunner()
    out = cli.invoke(app, ["trace", d_y, "--json"])
    assert out.exit_code == 0, out.output
    t = json.loads(out.output)
    assert t["deal"]["amount"] == 100_000 and t["company"]["name"] == "株式会社山田商事"
    (inv,) = t["invoices"]
    assert (inv["total"], inv["subtotal"], inv["outstanding"], inv["status"]) == (110_000, 100_000, 0, "paid")
    assert inv["rate_totals"] == [["standard_10", 100_000, 10_000]]
    assert sorted((p["amount"], p["fee"]) for p in t["payments"]) == [(0, 440), (109_560, 0)]
    actions = [(e["entity"], e["action"]) for e in t["events"]]
    assert {("invoice", "create"), ("invoice", "payment"), ("invoice", "fee_payment"),
            ("deal", "payment_status")} <= set(actions)
    text = cli.invoke(app, ["trace", d_y])
    assert "¥110,000" in text.output and "10%" in text.output and "監査ログ" in text.output
    assert cli.invoke(app, ["trace", "999999"]).exit_code == 1

    out = cli.invoke(app, ["search", "--counterparty", "山田", "--min", "100000", "--max", "120000", "--json",
                           "--from", today_tokyo().replace(day=1).isoformat(), "--to", today_tokyo().isoformat()])
    hits = json.loads(out.output)
    assert sorted((h["kind"], h["amount"]) for h in hits) == [("invoice", 110_000), ("payment", 109_560)]
    assert all(h["deal_id"] == d_y for h in hits)
    out = cli.invoke(app, ["search", "--kind", "deal", "--min", "300000"])
    assert "¥333,333" in out.output and "商談" in out.output
