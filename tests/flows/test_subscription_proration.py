"""subscription-proration with both sandboxes over HTTP: upgrade, downgrade, quantity change, cancellation
(immediately with a credit, and at period end), reruns, the approval path and the month-close journals."""

from __future__ import annotations

import pytest

from renkei.flows.order_to_invoice import order_to_invoice
from renkei.flows.subscription_proration import subscription_proration
from renkei.store.subscriptions import SubscriptionStore
from tests.flows.builders import freee_invoices, freee_partner, hs_company, hs_deal
from tests.flows.conftest import write_policy

STD = {"name": "クラウド会計連携 スタンダード", "hs_sku": "RK-SAAS-STD", "price": 3000}
CORP = "4011001098993"  # one customer per test (fresh sandboxes each time)
PRO = {"name": "クラウド会計連携 プロ", "hs_sku": "RK-SAAS-PRO", "price": 5000}


@pytest.fixture(autouse=True)
def _advance_account(world):
    add_advance_account(world)


def policy(world, text: str, monkeypatch) -> None:
    from renkei.tasks.runtime import get_runtime

    write_policy(world.tmp, text, monkeypatch)
    world.rt = get_runtime()


def add_advance_account(world) -> None:
    """The freee sandbox seed has no 前受金 account item yet (see the report): add it like an accountant would."""
    from renkei.sandboxes.freee.entities import AccountItem

    world.freee.app.state.store.account_items[2030] = AccountItem(
        2030, "前受金", "他流動負債", 5, ["負債", "流動負債", "他流動負債"], 2, "2030")


def subscription(world, name: str, plan: dict, quantity: int, *, start: str = "2026-11-01") -> str:
    """A won subscription deal billed once by order-to-invoice (the first period), as in production."""
    freee_partner(world, f"株式会社{name}", registration=f"T{CORP}")
    company = hs_company(world, f"株式会社{name}", renkei_corporate_number=CORP)
    deal = hs_deal(world, f"{name} 月額契約", company, [
        {**plan, "quantity": quantity, "recurringbillingfrequency": "monthly",
         "hs_recurring_billing_start_date": start, "hs_term_in_months": 12, "renkei_tax_category": "standard_10"}])
    order_to_invoice()
    assert [i["total_amount"] for i in freee_invoices(world)] == [plan["price"] * quantity * 11 // 10]
    return deal


def amend(world, deal_id: str, **props) -> None:
    (raw,) = world.hs().read_deals_with_associations([deal_id], line_item_properties=["quantity"])
    (line,) = raw["line_items"]
    world.hs().line_items.update(line["id"], {k: str(v) for k, v in props.items()})


def invoices(world) -> list[dict]:
    return sorted(freee_invoices(world), key=lambda i: i["id"])


def lines_of(world, invoice_id) -> list[tuple[str, int]]:
    inv = world.fr().get_invoice(invoice_id)
    return [(ln["description"], int(ln["amount_excluding_tax"])) for ln in inv["lines"]]


def journals(world) -> list[dict]:
    return world.fr().list_manual_journals(limit=100)


def versions(world, deal_id):
    return [(v.version, v.effective_date, v.status, v.net) for v in SubscriptionStore(world.rt.store).versions(deal_id)]


def test_quantity_change_goes_on_the_next_invoice_and_journals_post_once(world):
    deal = subscription(world, "さくらネットワークス", STD, 10)
    subscription_proration(as_of="2026-11-10")
    assert versions(world, deal) == [(1, "2026-11-01", "applied", 0)]
    (defer,) = journals(world)  # the sale invoice's 30,000 moved from 売上高 to 前受金
    assert defer["issue_date"] == "2026-11-01" and {d["amount"] for d in defer["details"]} == {30_000}

    # +5 seats from 2026-11-16 (15 of 30 days left): −15,000 for 10 seats, +22,500 for 15 seats
    amend(world, deal, quantity=15, renkei_effective_date="2026-11-16")
    subscription_proration(as_of="2026-11-20")
    assert versions(world, deal)[1] == (2, "2026-11-16", "pending_next", 7_500)
    assert len(invoices(world)) == 1  # create_prorations: nothing invoiced now

    subscription_proration(as_of="2026-12-01")
    sale, december = invoices(world)
    assert december["total_amount"] == (45_000 + 7_500) * 11 // 10
    got = lines_of(world, december["id"])
    assert [a for _, a in got] == [45_000, -15_000, 22_500]
    assert "2026/12/01〜2026/12/31" in got[0][0] and "未使用分" in got[1][0] and "残期間分" in got[2][0]
    assert versions(world, deal)[1][2] == "invoiced"

    posted = journals(world)
    by_memo = sorted((j["issue_date"], j["details"][0]["amount"], j["details"][0]["description"]) for j in posted)
    # Nov: sale deferral, Nov recognition of the sale; Dec invoice deferral; Nov share of the proration
    assert [(d, a) for d, a, _ in by_memo] == [("2026-11-01", 30_000), ("2026-11-30", 30_000),
                                               ("2026-12-01", 7_500), ("2026-12-01", 52_500)]
    adv = {a["name"]: a["id"] for a in world.fr().list_account_items()}
    nov = next(j for j in posted if j["issue_date"] == "2026-11-30")
    assert {(d["entry_side"], d["account_item_id"]) for d in nov["details"]} == {
        ("debit", adv["前受金"]), ("credit", adv["売上高"])}

    # rerun: nothing new anywhere
    subscription_proration(as_of="2026-12-01")
    assert len(invoices(world)) == 2 and len(journals(world)) == 4
    # month close of December: one more journal, once
    subscription_proration(as_of="2026-12-31")
    subscription_proration(as_of="2026-12-31")
    assert len(journals(world)) == 5 and len(invoices(world)) == 2

    # the schedule is on the Artifacts page: every month of every billing, with its journal
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        (art,) = client.read_latest_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["subscription-revenue-schedule"])))
    table = art.data if isinstance(art.data, list) else __import__("json").loads(art.data)
    months = {(r["billing"], r["month"]): (r["amount"], r["journal"]) for r in table}
    assert months[("period:2026-12-01", "2026-11")][0] == "¥7,500"
    assert months[("period:2026-12-01", "2026-12")][0] == "¥45,000"
    assert all(j.startswith("posted") for _, j in months.values())


def test_upgrade_invoiced_immediately(world, monkeypatch):
    policy(world, '[proration]\nbehavior = "always_invoice"\n', monkeypatch)
    deal = subscription(world, "林コンサルティング", STD, 8)
    subscription_proration(as_of="2026-11-10")
    amend(world, deal, **{**PRO, "renkei_effective_date": "2026-11-16"})
    subscription_proration(as_of="2026-11-16")
    sale, proration = invoices(world)
    assert [a for _, a in lines_of(world, proration["id"])] == [-12_000, 20_000]
    assert proration["total_amount"] == 8_800
    assert world.fr().get_invoice(proration["id"])["memo"].startswith(f"renkei:deal:{deal}:proration:v2:2026-11-16")
    assert versions(world, deal)[1] == (2, "2026-11-16", "invoiced", 8_000)
    subscription_proration(as_of="2026-11-20")  # rerun: the same invoice, no second one
    assert len(invoices(world)) == 2
    # a crash after the invoice was committed but before the subscription rows were written: redo, no new invoice
    from sqlalchemy import text

    with world.rt.store.engine.begin() as conn:
        conn.execute(text("delete from subscription_billing where key = 'proration:v2'"))
        conn.execute(text("update subscription_version set status = 'scheduled' where version = 2"))
    subscription_proration(as_of="2026-11-20")
    assert len(invoices(world)) == 2 and versions(world, deal)[1] == (2, "2026-11-16", "invoiced", 8_000)
    assert SubscriptionStore(world.rt.store).billing(deal, "proration:v2").invoice_id == str(proration["id"])
    subscription_proration(as_of="2026-12-01")  # December bills the new plan
    assert invoices(world)[-1]["total_amount"] == 44_000


def test_downgrade_is_a_net_credit_that_waits_for_approval(world):
    from renkei.tasks.reporting import RunReport
    from renkei.tasks.subscriptions import Context, decide, read_subscription

    deal = subscription(world, "田中システム", PRO, 8)
    subscription_proration(as_of="2026-11-10")
    amend(world, deal, **{**STD, "renkei_effective_date": "2026-11-16"})
    subscription_proration(as_of="2026-11-20", start_approvals=False)
    assert versions(world, deal)[1] == (2, "2026-11-16", "awaiting_approval", -8_000)
    (item,) = [r for r in world.rt.store.list_reviews("open") if r.entity == "subscription"]
    assert item.reason_code == "PRORATION_NET_CREDIT" and item.entity_key == f"{deal}:v2"
    subscription_proration(as_of="2026-12-01", start_approvals=False)  # waits: no December invoice yet
    assert len(invoices(world)) == 1

    # finance approves (what the proration-approval run does after the resume)
    (sd,) = world.rt.crm.get_subscription_deals([deal])
    ctx = Context(world.rt, SubscriptionStore(world.rt.store), RunReport("subscription-proration"), None)
    assert decide(ctx, read_subscription(sd), 2, approved=True, approver="keiri@example.co.jp")["outcome"] == "pending_next"
    subscription_proration(as_of="2026-12-01")
    assert invoices(world)[-1]["total_amount"] == (24_000 - 8_000) * 11 // 10
    assert world.rt.store.list_reviews("open") == []


def test_cancellation_at_period_end_bills_nothing_more(world):
    deal = subscription(world, "藤井情報システム", STD, 4)
    subscription_proration(as_of="2026-11-10")
    amend(world, deal, quantity=0, renkei_effective_date="2026-12-01")
    subscription_proration(as_of="2026-11-20")
    assert versions(world, deal)[1] == (2, "2026-12-01", "scheduled", 0)
    subscription_proration(as_of="2026-12-01")
    subscription_proration(as_of="2027-01-01")
    assert versions(world, deal)[1] == (2, "2026-12-01", "applied", 0)
    assert len(invoices(world)) == 1  # only the sale: service ran to 11/30, no credit, no renewals


def test_amendment_without_effective_date_is_a_review_item(world):
    deal = subscription(world, "北斗通信", STD, 3)
    subscription_proration(as_of="2026-11-10")
    amend(world, deal, quantity=5)
    subscription_proration(as_of="2026-11-20")
    assert [r.reason_code for r in world.rt.store.list_reviews("open")] == ["AMENDMENT_WITHOUT_EFFECTIVE_DATE"]
    assert len(versions(world, deal)) == 1 and len(invoices(world)) == 1
