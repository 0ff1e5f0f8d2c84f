"""The receiver's events, sent to the Prefect REST API with httpx (no Prefect import on that path), fire the
order-to-invoice deployment trigger of prefect.yaml once per burst, with the burst's deal ids as a list — a
HubSpot deal change and a generic inbound order alike; an inbound payment notice burst starts one
payment-writeback run."""

from __future__ import annotations

import time
import uuid

import pytest

pytestmark = pytest.mark.prefect


def test_rest_events_of_one_burst_start_one_run_with_the_deal_ids(prefect_api):
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    from renkei.deployments.serve import webhook_triggers
    from renkei.flows.order_to_invoice import order_to_invoice
    from renkei.flows.payment_writeback import payment_writeback
    from renkei.webhooks.app import DEAL_CHANGED, INBOUND_ORDER, INBOUND_PAYMENT, _event
    from renkei.webhooks.emit import RestEmitter
    from renkei.webhooks.ledger import Row

    name = f"webhook-trigger-{uuid.uuid4().hex[:6]}"
    dep_id = order_to_invoice.to_deployment(name=name, triggers=webhook_triggers("order-to-invoice")).apply()
    pay_id = payment_writeback.to_deployment(name=name, triggers=webhook_triggers("payment-writeback")).apply()
    try:
        time.sleep(1.0)  # the automation is loaded by the triggers service
        emitter = RestEmitter(prefect_api)
        burst, other = uuid.uuid4().hex, uuid.uuid4().hex
        emitter.emit([_event(DEAL_CHANGED, Row("hubspot", str(k), DEAL_CHANGED, d), burst, ["9101", "9102"])
                      for k, d in ((1, "9101"), (2, "9102"))])
        emitter.emit([_event(DEAL_CHANGED, Row("hubspot", "3", DEAL_CHANGED, "9103"), other, ["9103"])])
        order = Row("inbound:order", "zap-1", INBOUND_ORDER, "zap-1", {"idempotency_key": "zap-1", "deal_id": "9104"})
        emitter.emit([_event(INBOUND_ORDER, order, uuid.uuid4().hex, ["zap-1"], deal_ids=["9104"])])
        notices = uuid.uuid4().hex
        emitter.emit([_event(INBOUND_PAYMENT, Row("inbound:payment", k, INBOUND_PAYMENT, k, {"idempotency_key": k}),
                             notices, ["bank-1", "bank-2"]) for k in ("bank-1", "bank-2")])
        runs, pay_runs = [], []
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 30
            flt = DeploymentFilter(id=DeploymentFilterId(any_=[dep_id]))
            pay_flt = DeploymentFilter(id=DeploymentFilterId(any_=[pay_id]))
            while time.monotonic() < deadline:
                runs = client.read_flow_runs(deployment_filter=flt)
                pay_runs = client.read_flow_runs(deployment_filter=pay_flt)
                if len(runs) >= 3 and pay_runs:
                    break
                time.sleep(0.5)
            time.sleep(2.0)  # nothing more arrives for the bursts' second events
            runs = client.read_flow_runs(deployment_filter=flt)
            pay_runs = client.read_flow_runs(deployment_filter=pay_flt)
            params = sorted((r.parameters.get("deal_ids") for r in runs), key=lambda ids: (len(ids), ids))
            pay_params = [r.parameters for r in pay_runs]
            for r in runs + pay_runs:
                client.delete_flow_run(r.id)
    finally:
        with get_client(sync_client=True) as client:
            for d in (dep_id, pay_id):
                client.delete_resource_owned_automations(f"prefect.deployment.{d}")
                client.delete_deployment(d)
    assert params == [["9103"], ["9104"], ["9101", "9102"]]
    assert pay_params == [{}]  # one run for the burst of notices; the flow reads the bank lines itself
