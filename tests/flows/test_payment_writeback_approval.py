"""Deposits the engine cannot apply alone wait as suspended ``payment-approval`` runs; finance picks the
invoice through the resume API (as the Prefect UI does); the payer name is learned for next time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from prefect import resume_flow_run

from renkei.flows.order_to_invoice import order_to_invoice
from renkei.flows.payment_writeback import payment_writeback
from tests.flows.approvals import paused_runs, wait_final, wait_for, wait_paused, wait_state_name
from tests.flows.builders import hs_deal
from tests.flows.test_payment_writeback import customer, deal_props, deposit, freee_deal, invoice_of


RUNNER_WAITS_FOR = "payment-approval/payment-approval"  # see the runner fixture (conftest)
KEIRI, EIGYO, JUNIOR = "keiri@example.co.jp", "eigyo@example.co.jp", "a@example.co.jp"


@pytest.fixture
def authority(world, monkeypatch):
    """Payment authority (set before the runner starts): a junior may decide deposits up to ¥10,000, finance
    any; the salesperson owning a deal is in finance too, but cannot approve the payment of their own deal."""
    from renkei.tasks.runtime import get_runtime
    from tests.flows.conftest import write_policy

    owner = world.hubspot.app.state.store.add_owner(EIGYO, "花子", "佐藤")
    write_policy(world.tmp, f"""
[authority]
roles = {{ finance = ["{KEIRI}", "{EIGYO}"], junior = ["{JUNIOR}"] }}
tiers = {{ payment = [{{ max_amount = 10_000, roles = ["junior", "finance"] }}, {{ roles = ["finance"] }}] }}
owners = {{ "{owner['id']}" = "{EIGYO}" }}
""", monkeypatch)
    world.rt = get_runtime()
    return owner["id"]


def test_ambiguous_deposit_goes_to_finance_and_the_payer_is_remembered(world, authority, runner):
    yamada = customer(world, "株式会社山田商事", "ヤマダショウジ", "7010705000725")
    tanaka = customer(world, "田中物産株式会社", "タナカブッサン", "4011001098993")
    d_yamada = hs_deal(world, "山田商事 保守", yamada, [{"name": "保守", "quantity": 1, "price": 50_000}],
                       hubspot_owner_id=authority)
    d_tanaka = hs_deal(world, "田中物産 保守", tanaka, [{"name": "保守", "quantity": 1, "price": 50_000}])
    order_to_invoice()
    inv_y = [i for i in world.fr().list_invoices(limit=100) if i["partner_display_name"].startswith("株式会社山田")][0]

    # a third party nobody knows pays ¥55,000: two customers have an invoice of that amount
    dep = deposit(world, 55_000, "ﾐﾂﾊｼｻﾝｷﾞﾖｳ(ｶ")
    odd = deposit(world, 55_000, "ｽｽﾞｷ ｲﾁﾛｳ")  # a private person: finance will say it is unrelated
    summary = payment_writeback()
    assert summary["deposits"]["sent_to_approval"] == 2 and "erp" not in summary
    by_deposit = {r.parameters["deposit_id"]: r for r in wait_paused(2)}
    run = by_deposit[dep]
    assert "¥55,000" in run.name and "ﾐﾂﾊｼ" in run.name
    payment_writeback()  # a rerun does not start a second approval run
    assert len(wait_paused(2)) == 2

    # the inbox shows every kind with its amount and reasons (full ids in JSON)
    from renkei.cli import pending_approvals  # what `renkei approvals list --json` prints

    row = {r["run_id"]: r for r in json.loads(json.dumps(pending_approvals(), default=str))}[str(run.id)]
    assert (row["kind"], row["amount"], row["amount_yen"]) == ("payment", 55_000, "¥55,000") and row["reasons"]
    assert row["deadline"].endswith("+09:00")

    # authority: a junior cannot decide a ¥55,000 deposit (tier), the owner of 山田商事's deal cannot approve
    # paying it (self-approval) — both refused and audited, both runs keep waiting
    before = {r.id: r.state.id for r in wait_paused(2)}
    resume_flow_run(by_deposit[odd].id, run_input={"choice": "", "unrelated": True, "approver": JUNIOR,
                                                   "comment": "社員の立替精算"})
    resume_flow_run(run.id, run_input={"choice": inv_y["invoice_number"], "unrelated": False, "approver": EIGYO,
                                       "comment": ""})
    wait_for(lambda: all(p.state.id != before[p.id] for p in paused_runs() if p.id in before) and
             len(paused_runs()) == 2, 90)
    refused = sorted((e.actor, e.entity_key, e.changes["code"]) for e in world.rt.store.audit_events("deposit")
                     if e.action == "approval_refused")
    assert refused == sorted([(JUNIOR, odd, "NOT_IN_ALLOWLIST"), (EIGYO, dep, "SELF_APPROVAL")])

    # through the CLI, as for every approval kind: --reject on a payment = not a customer payment
    cli = subprocess.run([sys.executable, "-m", "renkei.cli", "approvals", "decide", str(by_deposit[odd].id),
                          "--reject", "--approver", "keiri@example.co.jp", "--comment", "社員の立替精算"],
                         capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert wait_final(by_deposit[odd].id).state.is_completed()
    assert world.rt.store.ledger_entry(f"payment:deposit:{odd}").external_id == "unrelated"

    # neither a choice nor "unrelated": the form comes back with the problem on top
    resume_flow_run(run.id, run_input={"choice": "", "unrelated": False, "approver": "keiri@example.co.jp",
                                       "comment": ""})
    wait_state_name(run.id, {"Suspended", "Paused"}, timeout=60)
    wait_paused(1)
    resume_flow_run(run.id, run_input={"choice": inv_y["invoice_number"], "unrelated": False,
                                       "approver": "keiri@example.co.jp", "comment": "山田商事の親会社からの振込"})
    done = wait_final(run.id)
    assert done.state.is_completed()

    assert freee_deal(world, inv_y)["status"] == "settled"
    assert deal_props(world, d_yamada)["renkei_payment_status"] == "paid"
    assert deal_props(world, d_tanaka)["renkei_payment_status"] == "unpaid"
    entry = world.rt.store.ledger_entry(f"payment:deposit:{dep}")
    assert entry.status == "committed" and entry.result["approved_by"] == "keiri@example.co.jp"
    from renkei.store.aliases import AliasStore

    (alias,) = AliasStore(world.rt.store).rows()
    assert (alias.partner_id, alias.source, alias.approved_by) == (str(inv_y["partner_id"]), "learned",
                                                                     "keiri@example.co.jp")
    assert [r for r in world.rt.store.list_reviews("open", flow="payment-writeback")] == []
    assert all(len(freee_deal(world, i).get("payments") or []) <= 1 for i in world.fr().list_invoices(limit=100))

    # the next deposit from that payer is matched without asking
    d2 = hs_deal(world, "山田商事 追加", yamada, [{"name": "追加作業", "quantity": 1, "price": 30_000}])
    order_to_invoice()
    dep2 = deposit(world, 33_000, "ﾐﾂﾊｼｻﾝｷﾞﾖｳ(ｶ")
    summary = payment_writeback()
    assert summary["deposits"]["auto_matched"] == 1 and "sent_to_approval" not in summary["deposits"]
    # the unrelated deposit is still 消込待ち in freee but closed in the ledger: never proposed again
    assert summary["deposits"]["already_applied"] == 1
    assert freee_deal(world, invoice_of(world, 33_000))["status"] == "settled"
    assert deal_props(world, d2)["renkei_payment_status"] == "paid"
    assert world.rt.store.ledger_entry(f"payment:deposit:{dep2}").result["kind"] == "auto"
