"""The approval path of subscription-proration: an immediate cancellation credits the unused days (a net
credit), a suspended ``proration-approval`` run waits for finance, approval creates the credit note in freee.

The approval deployment is served by this test's own ``prefect.serve`` process (the shared
``deployments.serve.Runner`` will serve it once ``proration-approval`` is registered there)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect import get_client

from renkei.flows.subscription_proration import subscription_proration
from renkei.store.subscriptions import SubscriptionStore
from tests.flows.approvals import wait_final, wait_paused
from tests.flows.test_subscription_proration import STD, amend, invoices, lines_of, subscription, versions

ROOT = Path(__file__).resolve().parents[2]
SERVE = ("from prefect import serve\n"
         "from flows.proration_approval import proration_approval\n"
         "serve(proration_approval.to_deployment(name='proration-approval', tags=['renkei', 'renkei-approval']),"
         " limit=2, print_starting_message=False)\n")


@pytest.fixture
def approval_runner(world, tmp_path):
    from renkei.prefect_server import stop

    log = (tmp_path / "serve.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-c", SERVE], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={"PREFECT_RUNNER_POLL_FREQUENCY": "2", **os.environ}, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        with get_client(sync_client=True) as client:
            while True:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
                try:
                    client.read_deployment_by_name("proration-approval/proration-approval")
                    break
                except Exception:  # noqa: BLE001 - not registered yet
                    assert time.monotonic() < deadline, "proration-approval not served in time"
                    time.sleep(0.5)
        yield proc
    finally:
        stop(proc)


def test_immediate_cancellation_credit_is_approved_into_a_credit_note(world, approval_runner):
    from tests.flows.test_subscription_proration import add_advance_account

    add_advance_account(world)
    deal = subscription(world, "すずらん珈琲店", STD, 10)
    subscription_proration(as_of="2026-11-10")
    # cancel from 2026-11-16: the 15 unused days of 10 seats are credited (−15,000), invoiced at once
    amend(world, deal, quantity=0, renkei_effective_date="2026-11-16")
    subscription_proration(as_of="2026-11-16")
    (run,) = wait_paused(1)
    assert run.parameters == {"deal_id": deal, "version": 2}
    assert "日割り精算承認" in run.name and "-¥15,000" in run.name
    assert versions(world, deal)[1] == (2, "2026-11-16", "awaiting_approval", -15_000)
    assert len(invoices(world)) == 1  # nothing credited while waiting

    subscription_proration(as_of="2026-11-17")  # a rerun does not start a second approval run
    assert len(wait_paused(1)) == 1

    cli = subprocess.run([sys.executable, "-m", "renkei.cli", "approvals", "decide", str(run.id), "--approve",
                          "--approver", "keiri@example.co.jp", "--comment", "解約に伴う返金を承認"],
                         capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert wait_final(run.id, timeout=120).state.is_completed()
    sale, credit = invoices(world)
    assert credit["total_amount"] == -16_500  # −15,000 + tax −1,500: the credit note (マイナス請求書)
    assert [a for _, a in lines_of(world, credit["id"])] == [-15_000]
    assert versions(world, deal)[1][2] == "invoiced"
    assert world.rt.store.ledger_entry(f"invoice:deal:{deal}:proration:v2:2026-11-16").result["approved_by"] \
        == "keiri@example.co.jp"
    events = {(e.entity_key, e.action): e for e in world.rt.store.audit_events("subscription")}
    assert events[(f"{deal}:v2", "approve")].actor == "keiri@example.co.jp"
    assert [r for r in world.rt.store.list_reviews("open")] == []

    # nothing more after the cancellation: no December invoice, the credit's revenue reverses in November
    subscription_proration(as_of="2026-12-01")
    subscription_proration(as_of="2026-12-01")
    assert len(invoices(world)) == 2
    billings = {b.key: b.amount for b in SubscriptionStore(world.rt.store).billings(deal)}
    assert billings == {"period:2026-11-01": 30_000, "proration:v2": -15_000, "period:2026-12-01": 0}
    nov = [j for j in world.fr().list_manual_journals(limit=100) if j["issue_date"] == "2026-11-30"]
    assert sorted(j["details"][0]["amount"] for j in nov) == [15_000, 30_000]  # recognised net: 15,000
