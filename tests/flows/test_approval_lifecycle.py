"""Approval lifecycle and authority, end to end on the sandboxes and the served approval deployments:
who may approve (allowlist, no self-approval, two approvers above a threshold — refusals audited and the run
keeps waiting), a rejection that sticks until the deal changes, and an expired approval re-requested once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from prefect import get_client, resume_flow_run

from renkei.flows.order_to_invoice import order_to_invoice
from tests.flows.approvals import paused_runs, wait_final, wait_for, wait_paused
from tests.flows.builders import freee_invoices, freee_partner, hs_company, hs_deal
from tests.flows.conftest import write_policy

FINANCE, BUCHO, KACHO, SALES = ("keiri@example.co.jp", "bucho@example.co.jp", "kacho@example.co.jp",
                                "eigyo@example.co.jp")


def renkei(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "renkei.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "100"}, timeout=120)


def _approval_run_ids() -> set:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with get_client(sync_client=True) as client:
        return {r.id for r in client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["renkei-approval"])))}


@pytest.fixture
def policy_file(world, monkeypatch):
    """The policy path is set before the runner starts (its runs read the file, written by the test). On the
    way out (after the runner stopped) the approval runs this test left waiting or expired are deleted from
    the session's shared Prefect server, so no later test sees them."""
    path = world.tmp / "policy.toml"
    path.write_text("", encoding="utf-8")
    monkeypatch.setenv("RENKEI_POLICY_FILE", str(path))
    before = _approval_run_ids()
    yield path
    with get_client(sync_client=True) as client:
        for run_id in _approval_run_ids() - before:
            client.delete_flow_run(run_id)


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "renkei.cli", *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "100"})


def _state_id(run_id):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state.id


def resume(run_id, run_input: dict, before=None):
    """Resume like the UI does; returns a wait for the run to wait again (a new Paused state) or end."""
    before = before or _state_id(run_id)
    resume_flow_run(run_id, run_input=run_input)

    def settled():
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
        return run if run.state and run.state.id != before and (run.state.is_paused() or run.state.is_final()) \
            else None

    return lambda: wait_for(settled, 90)


def _deal_items(world, deal_id: str, status: str = "open") -> list:
    return [r for r in world.rt.store.list_reviews(status, flow="order-to-invoice") if r.entity_key == deal_id]


def test_authority_and_a_rejection_that_sticks(world, policy_file, runner, monkeypatch):
    owner = world.hubspot.app.state.store.add_owner(KACHO, "一郎", "山本")
    write_policy(world.tmp, f"""
[authority]
roles = {{ finance = ["{FINANCE}", "{BUCHO}", "{KACHO}"] }}
tiers = {{ invoice = [{{ roles = ["finance"] }}] }}
second_approval_above = {{ invoice = 5_000_000 }}
owners = {{ "{owner['id']}" = "{KACHO}" }}
""", monkeypatch)
    from renkei.tasks.runtime import get_runtime

    world.rt = get_runtime()
    freee_partner(world, "株式会社高橋食品", registration="T1180301018771")
    company = hs_company(world, "株式会社高橋食品", renkei_corporate_number="1180301018771")
    big = hs_deal(world, "高橋食品 年間契約", company, [
        {"name": "年間保守", "quantity": 1, "price": 6_000_000, "renkei_tax_category": "standard_10"}],
        hubspot_owner_id=owner["id"])
    disc = hs_deal(world, "高橋食品 特別値引", company, [
        {"name": "食品セット", "quantity": 10, "price": 5000, "hs_discount_percentage": 50,
         "renkei_tax_category": "reduced_8"}], amount=25_000,
        closedate="2028-06-01T00:00:00.000Z")  # a date-dependent reason too (DATE_OUT_OF_RANGE today)

    order_to_invoice()
    by_deal = {r.parameters["deal_id"]: r for r in wait_paused(2)}
    run = by_deal[big]

    # the inbox: kind, amount, reasons, deadline, link; full ids in JSON (three CLI calls at once)
    listed, table, shown = [p.communicate(timeout=120)[0] for p in (
        cli("approvals", "list", "--json"), cli("approvals", "list"), cli("approvals", "show", str(run.id)))]
    row = {r["run_id"]: r for r in json.loads(listed)}[str(run.id)]
    assert (row["kind"], row["amount"], row["reasons"]) == ("invoice", 6_600_000, ["AMOUNT_OVER_THRESHOLD"])
    assert row["deadline"].endswith("+09:00") and row["url"].endswith(f"/runs/flow-run/{run.id}")
    assert f"{run.id}  " in table and "¥6,600,000" in table  # 100 columns: full ids listed under the table
    assert "高橋食品" in shown and "AMOUNT_OVER_THRESHOLD" in shown and str(run.id) in shown  # the draft as shown
    with get_client(sync_client=True) as client:  # the draft on its own page before anyone resumes
        arts = client.read_artifacts()
    assert any(a.key == f"approval-invoice-{big}" and "¥6,600,000" in (a.data or "") for a in arts)

    # a rejection without a comment is refused by the server: the run is not resumed
    with pytest.raises(RuntimeError, match="comment"):
        resume_flow_run(run.id, run_input={"approved": False, "approver": FINANCE, "comment": ""})
    assert len(wait_paused(2)) == 2

    # someone not on the allowlist, and the deal's owner, try to approve: refused, audited, still waiting
    other = by_deal[disc].id
    waits = [resume(other, {"approved": True, "approver": SALES, "comment": ""}),
             resume(run.id, {"approved": True, "approver": KACHO, "comment": ""})]
    assert all(w().state.is_paused() for w in waits)
    # the other deal is rejected through the CLI; above ¥5,000,000 two different approvers are needed: the
    # first is recorded and the run waits for the second
    before = _state_id(run.id)
    rejected = renkei("approvals", "decide", str(other), "--reject", "--approver", FINANCE,
                      "--comment", "値引率が社内規定を超えています")
    assert rejected.returncode == 0, rejected.stderr
    first = resume(run.id, {"approved": True, "approver": FINANCE, "comment": "一次承認"}, before=before)
    assert first().state.is_paused() and wait_final(other).state.is_completed()
    assert freee_invoices(world) == []
    done = resume(run.id, {"approved": True, "approver": BUCHO, "comment": "二次承認"})()
    assert done.state.is_completed(), done.state.message

    (inv,) = freee_invoices(world)
    assert inv["total_amount"] == 6_600_000
    assert world.rt.store.ledger_entry(f"invoice:deal:{big}").result["approved_by"] == f"{FINANCE}, {BUCHO}"
    events = [e for e in world.rt.store.audit_events("deal", big)]
    refused = [(e.actor, e.changes["code"]) for e in world.rt.store.audit_events("deal") if e.action == "approval_refused"]
    assert sorted(refused) == [(SALES, "NOT_IN_ALLOWLIST"), (KACHO, "SELF_APPROVAL")]  # once each, not per replay
    assert [e.actor for e in events if e.action == "first_approval"] == [FINANCE]
    (approve,) = [e for e in events if e.action == "approve"]
    assert approve.changes["approvers"] == [FINANCE, BUCHO]

    # the rejection sticks: five runs, the deal edited in between (not its amount, lines or company)
    hs = world.hs().deals
    for i in range(5):
        hs.update(disc, {"dealname": f"高橋食品 特別値引 ({i})"})
        order_to_invoice()
        assert _deal_items(world, disc) == []
        assert hs.get(disc, properties=["renkei_invoice_status"])["properties"]["renkei_invoice_status"] == "rejected"
    assert paused_runs() == [] and len(freee_invoices(world)) == 1
    # a changed deal asks again
    hs.update(disc, {"amount": "30000"})
    order_to_invoice()
    (again,) = wait_paused(1)
    assert again.parameters == {"deal_id": disc} and again.id != by_deal[disc].id
    assert [i.payload["approval_run"] for i in _deal_items(world, disc)] == [str(again.id)]
    assert hs.get(disc, properties=["renkei_invoice_status"])["properties"]["renkei_invoice_status"] \
        == "pending_approval"


def test_an_expired_approval_is_requested_again_once(world, policy_file, runner, monkeypatch):
    """An invoice approval and a payment approval, both with a 20-second timeout: each owning flow asks again
    in one fresh run, exactly once."""
    from datetime import datetime, timezone

    from renkei.flows.payment_writeback import payment_writeback
    from tests.flows.test_payment_writeback import customer, deposit

    write_policy(world.tmp, "[approval]\ntimeout_hours = 0.0055556\non_timeout = \"renotify\"\n", monkeypatch)  # 20 s
    from renkei.tasks.runtime import get_runtime

    world.rt = get_runtime()
    freee_partner(world, "株式会社伊藤商会", registration="T7120001168421")
    company = hs_company(world, "株式会社伊藤商会", renkei_corporate_number="7120001168421")
    deal = hs_deal(world, "伊藤商会 大口", company, [{"name": "機器", "quantity": 1, "price": 7_000_000}])
    for name, kana, corp in (("株式会社山田商事", "ヤマダショウジ", "7010705000725"),
                             ("田中物産株式会社", "タナカブッサン", "4011001098993")):
        hs_deal(world, f"{name} 保守", customer(world, name, kana, corp), [{"name": "保守", "quantity": 1, "price": 50_000}])
    order_to_invoice()
    dep = deposit(world, 55_000, "ﾐﾂﾊｼｻﾝｷﾞﾖｳ(ｶ")  # fits two customers' invoices: finance decides
    assert payment_writeback()["deposits"]["sent_to_approval"] == 1
    first = {run.flow_id: run for run in wait_paused(2)}
    for run in first.values():
        assert 15 <= (run.state.state_details.pause_timeout - run.state.timestamp).total_seconds() <= 25
    deadline = max(r.state.state_details.pause_timeout for r in first.values())
    wait_for(lambda: datetime.now(timezone.utc) > deadline, 60)

    for _ in range(2):  # finds the expired runs (fails them as the server would), asks again — once
        order_to_invoice()
        payment_writeback()
    second = {run.flow_id: run for run in wait_paused(2)}
    assert set(second) == set(first) and not {r.id for r in second.values()} & {r.id for r in first.values()}
    by_param = {tuple(r.parameters.items()): r for r in second.values()}
    new_invoice, new_payment = by_param[(("deal_id", deal),)], by_param[(("deposit_id", dep),)]
    with get_client(sync_client=True) as client:
        for old in first.values():
            old = client.read_flow_run(old.id)
            assert old.state.is_failed() and "never resumed" in old.state.message
            assert world.rt.store.ledger_entry(f"approval-expired:{old.id}").external_id in (
                str(new_invoice.id), str(new_payment.id))
    (item,) = _deal_items(world, deal)
    assert item.payload["approval_run"] == str(new_invoice.id)  # the review item points at the new run
    (event,) = [e for e in world.rt.store.audit_events("deal", deal) if e.action == "approval_rerequested"]
    assert event.changes["flow_run_id"] == str(new_invoice.id)
    (event,) = [e for e in world.rt.store.audit_events("deposit", dep) if e.action == "approval_rerequested"]
    assert event.changes["flow_run_id"] == str(new_payment.id)
    items = [r for r in world.rt.store.list_reviews("open", flow="payment-writeback") if r.entity_key == dep]
    assert [r.payload.get("approval_run") for r in items] == [str(new_payment.id)]


def test_a_rejection_sticks_when_the_pending_writeback_is_drained_late(world, policy_file, runner, monkeypatch):
    """The way finance meets it: order-to-invoice dies after committing "this draft awaits finance" but before
    writing it to the deal; finance rejects the suspended approval run (Prefect resume, as the UI and
    `renkei approvals decide` do). Five later runs — the first drains the left-over pending_approval fact, and
    the rules change so the very draft would now pass — keep the deal rejected: no pending_approval again, no
    fresh review item, no new approval run, no invoice. A changed amount opens a new decision."""
    from renkei.tasks.runtime import get_runtime

    world.rt = get_runtime()
    freee_partner(world, "株式会社佐藤製作所", registration="T3010401011971")
    company = hs_company(world, "株式会社佐藤製作所", renkei_corporate_number="3010401011971")
    deal = hs_deal(world, "佐藤製作所 設備一式", company, [
        {"name": "設備", "quantity": 1, "price": 6_000_000, "renkei_tax_category": "standard_10"}])
    def status() -> str:
        return world.hs().deals.get(deal, properties=["renkei_invoice_status"])["properties"].get("renkei_invoice_status")

    monkeypatch.setenv("RENKEI_TEST_KILL_BEFORE_WRITEBACK", "1")
    with pytest.raises(Exception, match="simulated kill"):
        order_to_invoice()
    monkeypatch.delenv("RENKEI_TEST_KILL_BEFORE_WRITEBACK")
    (run,) = wait_paused(1)
    assert status() != "pending_approval"  # killed before the write-back: the fact waits in the outbox
    rejected = renkei("approvals", "decide", str(run.id), "--reject", "--approver", FINANCE,
                      "--comment", "受注内容を営業に確認中")
    assert rejected.returncode == 0, rejected.stderr
    assert wait_final(run.id).state.is_completed() and status() == "rejected"

    # the rules change (threshold raised): the very draft that was rejected would now pass on its own
    write_policy(world.tmp, "[approval]\namount_threshold = 100_000_000\n", monkeypatch)
    world.rt = get_runtime()
    for i in range(5):
        world.hs().deals.update(deal, {"dealname": f"佐藤製作所 設備一式 ({i})"})  # an edit that is not a new draft
        order_to_invoice()
        assert status() == "rejected", f"run {i + 1}"
        assert _deal_items(world, deal) == []
    assert paused_runs() == [] and freee_invoices(world) == []
    (item,) = [r for r in world.rt.store.list_reviews("rejected", flow="order-to-invoice") if r.entity_key == deal]
    assert item.decided_by == FINANCE

    # a changed deal is a new decision (the old rules again: still above the threshold)
    write_policy(world.tmp, "", monkeypatch)
    world.rt = get_runtime()
    world.hs().deals.update(deal, {"amount": "6100000"})
    order_to_invoice()
    (again,) = wait_paused(1)
    assert again.id != run.id and status() == "pending_approval"
    assert [i.payload["approval_run"] for i in _deal_items(world, deal)] == [str(again.id)]
