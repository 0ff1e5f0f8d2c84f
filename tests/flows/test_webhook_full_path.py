"""The whole webhook path, as deployed: the HubSpot sandbox delivers signed webhooks (every batch twice and
out of order) to the receiver in its own process (``python -m renkei.webhooks``), which sends Prefect
events over REST; the order-to-invoice deployment's trigger (served by ``python -m renkei.deployments.serve
--triggers-only``, one process per run) starts runs with ``deal_ids``; the invoices appear in the freee
sandbox. A deal won by a stage change and a deal created directly in a won stage → one invoice each; the
duplicates, the out-of-order batches and a later delivery of the same change with a new event id → still
one invoice each; a deal moved to a stage that is not won and a deal created open → no run asks for them.

Fast on purpose: the runner polls every second, the receiver's window is 0.3 s, one runner start for the
whole test (about 20–30 s on a busy 2-core machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from renkei.prefect_server import free_port, stop
from renkei.sandboxes.hubspot.webhooks import Deliverer, deliver
from tests.flows.builders import freee_invoices, freee_partner, hs_company, hs_deal, move_stage

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(180)]

SECRET = "full-path-app-client-secret"
DEPLOYMENT = "order-to-invoice/order-to-invoice"


def _drop_deployment(name: str) -> None:
    """A deployment of that name left by an earlier test of this session (its automation included)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        try:
            dep = client.read_deployment_by_name(name)
        except Exception:  # noqa: BLE001 - none
            return
        client.delete_resource_owned_automations(f"prefect.deployment.{dep.id}")
        client.delete_deployment(dep.id)


def _runs(deployment_id) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def _wait(predicate, timeout_s: float, what: str, log=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def test_signed_webhooks_through_the_receiver_and_a_served_trigger_make_one_invoice_per_won_deal(world):
    from prefect import get_client

    from renkei.deployments.serve import Runner

    freee_partner(world, "株式会社青木製作所", registration="T7010705000725")
    company = hs_company(world, "株式会社青木製作所", renkei_corporate_number="7010705000725")
    won = hs_deal(world, "青木製作所 12月分", company, [{"name": "保守", "quantity": 2, "price": 15000}],
                  stage="contractsent")
    lost = hs_deal(world, "青木製作所 追加見込み", company, [{"name": "追加", "quantity": 1, "price": 1000}],
                   stage="appointmentscheduled")

    _drop_deployment(DEPLOYMENT)
    port = free_port()
    hook = f"http://127.0.0.1:{port}"
    rx_log = world.tmp / "receiver.log"
    receiver = subprocess.Popen(  # its own process, as deployed; started while the runner starts
        [sys.executable, "-m", "renkei.webhooks", "--port", str(port)], stdout=rx_log.open("ab"),
        stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "RENKEI_WEBHOOK_HUBSPOT_SECRET": SECRET, "RENKEI_WEBHOOK_BATCH_SECONDS": "0.3"})
    runner = Runner(args=["--triggers-only", "--flows", "order-to-invoice", "--no-approvals", "--warm"],
                    env={"PREFECT_RUNNER_POLL_FREQUENCY": "1"}, log_path=world.tmp / "runner.log")
    deliverer = None
    try:
        runner.start(wait_for=DEPLOYMENT, timeout_s=120)
        with get_client(sync_client=True) as client:
            dep_id = client.read_deployment_by_name(DEPLOYMENT).id

            def trigger_registered() -> bool:  # created just after the deployment
                return any(getattr(a.actions[0], "deployment_id", None) == dep_id for a in client.read_automations())

            _wait(trigger_registered, 30, "the deployment's webhook trigger", world.tmp / "runner.log")

        def health() -> dict | None:
            try:
                return httpx.get(hook + "/health", timeout=2).json()
            except httpx.HTTPError:
                assert receiver.poll() is None, rx_log.read_text(errors="replace")[-3000:]
                return None

        _wait(health, 60, "the receiver", rx_log)
        time.sleep(1.0)  # the new automation reaches the server's triggers service
        store = world.hubspot.app.state.store
        deliverer = Deliverer(store, hook + "/webhooks/hubspot", SECRET, delay_ms=50, duplicate_rate=1.0,
                              reorder=True, seed=3,
                              subscriptions=("deal.creation", "deal.propertyChange:dealstage")).start()
        move_stage(world, won, "closedwon")
        move_stage(world, lost, "qualifiedtobuy")  # not won: no event, no run
        created_won = hs_deal(world, "青木製作所 即決", company, [{"name": "導入", "quantity": 1, "price": 50000}])
        created_open = hs_deal(world, "青木製作所 相談中", company, [{"name": "相談", "quantity": 1, "price": 5000}],
                               stage="appointmentscheduled")

        def invoiced() -> bool:
            entries = [world.rt.store.ledger_entry(f"invoice:deal:{d}") for d in (won, created_won)]
            return all(e is not None and e.status == "committed" for e in entries)

        _wait(invoiced, 90, "both won deals invoiced", world.tmp / "runner.log")
        # HubSpot sends the same change again later (a retry it gave a new event id, or the stage set to
        # won once more): a new event, a new run — and still no second invoice
        again = [e for e in store.events if e["subscriptionType"] == "deal.propertyChange"
                 and str(e["objectId"]) == won and e.get("propertyValue") == "closedwon"][-1]
        hook_url = hook + "/webhooks/hubspot"
        stale = deliver([again], hook_url, SECRET, timestamp_ms=int(time.time() * 1000), attempt_number=2)
        assert stale.json() == {"accepted": 0, "ignored": 0, "replayed": 1}  # the very same event: a replay
        fresh = deliver([{**again, "eventId": again["eventId"] + 10_000}], hook_url, SECRET,
                        timestamp_ms=int(time.time() * 1000))
        assert fresh.json()["accepted"] == 1

        def settled() -> list | None:
            runs = _runs(dep_id)
            asked = [str(d) for r in runs for d in r.parameters.get("deal_ids") or []]
            done = all(r.state is not None and r.state.is_final() for r in runs)
            return runs if done and asked.count(won) >= 2 else None

        runs = _wait(settled, 60, "the run for the repeated change", world.tmp / "runner.log")
        time.sleep(1.0)  # nothing else arrives
        runs = _runs(dep_id)
        stats = health()
    finally:
        if deliverer is not None:
            deliverer.stop()
        stop(receiver)
        runner.stop()
        with get_client(sync_client=True) as client:
            try:
                dep = client.read_deployment_by_name(DEPLOYMENT)
                for r in _runs(dep.id):
                    client.delete_flow_run(r.id)
            except Exception:  # noqa: BLE001 - nothing registered
                pass
        _drop_deployment(DEPLOYMENT)

    invoices = freee_invoices(world)
    assert sorted(i["total_amount"] for i in invoices) == [33_000, 55_000], json.dumps(invoices, ensure_ascii=False)
    for deal in (won, created_won):
        assert world.rt.store.ledger_entry(f"invoice:deal:{deal}").status == "committed"
    for deal in (lost, created_open):
        assert world.rt.store.ledger_entry(f"invoice:deal:{deal}") is None
    asked = [str(d) for r in runs for d in r.parameters.get("deal_ids") or []]
    assert lost not in asked and created_open not in asked  # no run was requested for a deal not won
    assert asked.count(created_won) == 1 and asked.count(won) == 2  # the trigger's run, then the repeat's
    assert {r.state.type.value for r in runs} == {"COMPLETED"}, [(r.name, r.state.message) for r in runs]
    assert deliverer.delivered >= 2 * 4 and stats["replayed"] >= 5  # every batch twice, plus the stale one
    assert stats["created_open"] == 1 and stats["rejected"] == 0


def test_a_company_linked_by_an_overlapping_run_is_adopted_not_sent_to_review(world, monkeypatch):
    """Two webhook runs for deals of one new customer overlap: run B reads the ID map (company not linked),
    run A links the company to its partner, B then finds that partner "already mapped". B adopts the link
    instead of opening a TARGET_ALREADY_MAPPED review and parking its deal (the latency benchmark met this at
    concurrency 6: one deal waited for a person)."""
    from renkei.tasks.customers import ensure_partners, partner_index
    from renkei.tasks.reporting import RunReport

    partner = freee_partner(world, "株式会社並行商事", registration="T1010001000006")
    company = hs_company(world, "株式会社並行商事", renkei_corporate_number="1010001000006")
    store = world.rt.store
    real = store.erp_id_for
    calls = {"n": 0}

    def first_unlinked(kind, crm_id):  # B's first look, before A's link
        calls["n"] += 1
        return None if calls["n"] == 1 else real(kind, crm_id)

    monkeypatch.setattr(store, "erp_id_for", first_unlinked)
    assert store.link_or_adopt("company", company, partner) == partner  # run A links it
    report = RunReport(flow="order-to-invoice")
    assert ensure_partners(world.rt, [company], report, index=partner_index(world.rt)) == {company: partner}
    assert report.reviews == []  # before the fix: TARGET_ALREADY_MAPPED, and the deal parked
