"""Alerts as Prefect automations (``renkei setup``) against a real Prefect server and a local HTTP receiver:
a failing run, an overdue approval and a review flood each deliver a notification; the credentials block
round-trips without showing a secret; setup is idempotent."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import uuid4

import pytest


class Receiver:
    """A tiny HTTP server on loopback that records every POSTed JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n)
                try:
                    outer.bodies.append(json.loads(raw))
                except ValueError:
                    outer.bodies.append({"raw": raw.decode("utf-8", "replace")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [b for b in list(self.bodies) if predicate(b)]
            if hits:
                return hits
            time.sleep(0.25)
        return [b for b in list(self.bodies) if predicate(b)]

    def close(self) -> None:
        self.server.shutdown()


REMINDER_S = 12  # the shortest proactive window Prefect accepts is 10 s
FLOOD = 3


@pytest.fixture(scope="module")
def alerts(prefect_api, tmp_path_factory):
    from prefect import get_client

    from renkei.deployments.automations import APPROVAL_REMINDER, APPROVAL_REREQUESTED, REVIEW_FLOOD, RUN_FAILED
    from renkei.setup import run_setup

    receiver = Receiver()
    policy = tmp_path_factory.mktemp("alerts") / "policy.toml"
    policy.write_text(f"[alerts]\napproval_reminder_hours = {REMINDER_S / 3600!r}\n"
                      f"review_flood_threshold = {FLOOD}\nreview_flood_window_hours = 1\n", encoding="utf-8")
    rows = run_setup(notify=f"webhook:{receiver.url}", credentials_block=None, policy_file=str(policy),
                     save_credentials=False)
    outcomes = {name: outcome for what, name, outcome in rows if what == "automation"}
    assert set(outcomes) == {RUN_FAILED, APPROVAL_REMINDER, REVIEW_FLOOD, APPROVAL_REREQUESTED}
    again = run_setup(notify=None, credentials_block=None, policy_file=str(policy), save_credentials=False)
    assert {n: o for w, n, o in again if w == "automation"} == dict.fromkeys(outcomes, "updated")
    with get_client(sync_client=True) as client:
        for name in outcomes:
            assert len(client.read_automations_by_name(name)) == 1  # idempotent: updated in place
    time.sleep(2)  # let the triggers service load the automations
    yield receiver
    receiver.close()
    with get_client(sync_client=True) as client:  # the server is shared with the rest of the session
        for name in outcomes:
            for a in client.read_automations_by_name(name):
                client.delete_automation(a.id)


def test_a_failing_renkei_run_notifies(alerts):
    from prefect import flow

    marker = uuid4().hex[:8]

    @flow(name="order-to-invoice", flow_run_name=f"failing-{marker}")
    def failing():
        raise RuntimeError("freee said no")

    state = failing(return_state=True)
    assert state.is_failed()
    hits = alerts.wait_for(lambda b: f"failing-{marker}" in b.get("subject", ""), 30)
    assert len(hits) == 1, alerts.bodies
    assert "Failed" in hits[0]["subject"] and "freee said no" in hits[0]["body"]


def test_an_overdue_approval_gets_a_reminder(alerts):
    from prefect import get_client
    from prefect.states import Paused, Running

    marker = uuid4().hex[:8]
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(flow=_flow_stub("invoice-approval"), name=f"approval-{marker}",
                                     tags=["renkei-approval"])
        other = client.create_flow_run(flow=_flow_stub("invoice-approval"), name=f"untagged-{marker}")
        for r in (run, other):
            client.set_flow_run_state(r.id, Running(), force=True)
            client.set_flow_run_state(r.id, Paused(timeout_seconds=600), force=True)
    started = time.monotonic()
    hits = alerts.wait_for(lambda b: f"approval-{marker}" in b.get("subject", ""), REMINDER_S + 40)
    assert len(hits) == 1, alerts.bodies
    assert time.monotonic() - started >= REMINDER_S - 3  # a reminder, not an immediate echo
    assert "waited more than" in hits[0]["body"]
    assert not [b for b in alerts.bodies if f"untagged-{marker}" in json.dumps(b)]  # only approval runs


def test_a_rerequested_approval_notifies(alerts):
    from renkei.tasks.events import emit_business_events

    marker = uuid4().hex[:8]
    emit_business_events("order-to-invoice", "run-1", [dict(
        actor="order-to-invoice", action="approval_rerequested", entity="deal", entity_key=f"deal-{marker}",
        system="renkei", changes={"expired_run": "old-run", "flow_run_id": f"new-{marker}",
                                  "approval_flow": "invoice-approval"})])
    hits = alerts.wait_for(lambda b: f"deal-{marker}" in b.get("subject", ""), 30)
    assert len(hits) == 1, alerts.bodies
    assert "old-run" in hits[0]["body"] and f"prefect.flow-run.new-{marker}" in hits[0]["body"]


def _flow_stub(name: str):
    from prefect import flow

    @flow(name=name)
    def stub():
        return None

    return stub


def test_a_review_flood_notifies_once_per_run(alerts, tmp_path):
    from renkei.store.repo import Store
    from renkei.tasks.reporting import RunReport, flush

    store = Store.open(f"sqlite:///{tmp_path / 'renkei.db'}", cached=False)
    flood, calm = f"run-{uuid4().hex[:8]}", f"run-{uuid4().hex[:8]}"
    for run_id, n in ((flood, FLOOD), (calm, FLOOD - 1)):
        report = RunReport(flow="customer-sync", flow_run_id=run_id)
        for i in range(n):
            report.review(reason_code="EMAIL_INVALID", entity="company", entity_key=f"{run_id}-{i}",
                          message="billing e-mail is not an address")
        flush(store, report)
    # the same open items reported again by a later batch are not "opened" again
    report = RunReport(flow="customer-sync", flow_run_id=calm)
    report.review(reason_code="EMAIL_INVALID", entity="company", entity_key=f"{calm}-0", message="again")
    flush(store, report)
    hits = alerts.wait_for(lambda b: flood in b.get("body", ""), 20)
    assert len(hits) == 1, alerts.bodies
    assert "customer-sync" in hits[0]["subject"] and f"at least {FLOOD}" in hits[0]["body"]
    assert "not an address" not in json.dumps(hits[0])  # review text stays in the store
    time.sleep(3)
    assert not [b for b in alerts.bodies if calm in b.get("body", "")]


def test_credentials_block_round_trip_never_shows_a_secret(prefect_api, monkeypatch):
    from renkei.blocks import RenkeiCredentials, save_credentials, settings_with_block
    from renkei.settings import Settings

    monkeypatch.setenv("RENKEI_HUBSPOT_TOKEN", "pat-secret-hubspot-123")
    monkeypatch.setenv("RENKEI_FREEE_CLIENT_SECRET", "freee-secret-456")
    monkeypatch.setenv("RENKEI_FREEE_CLIENT_ID", "cid")
    monkeypatch.setenv("RENKEI_FREEE_COMPANY_ID", "42")
    name = f"renkei-test-{uuid4().hex[:6]}"
    save_credentials(Settings(), name)
    block = RenkeiCredentials.load(name, _sync=True)
    assert "pat-secret" not in repr(block) and "freee-secret" not in repr(block)
    for var in ("RENKEI_HUBSPOT_TOKEN", "RENKEI_FREEE_CLIENT_SECRET", "RENKEI_FREEE_CLIENT_ID",
                "RENKEI_FREEE_COMPANY_ID"):
        monkeypatch.delenv(var)
    s = settings_with_block(Settings(credentials_block=name))
    assert s.hubspot_token.get_secret_value() == "pat-secret-hubspot-123"
    assert s.freee_client_secret.get_secret_value() == "freee-secret-456" and s.freee_company_id == 42
    with pytest.raises(RuntimeError, match="renkei setup"):
        settings_with_block(Settings(credentials_block="no-such-block"))
