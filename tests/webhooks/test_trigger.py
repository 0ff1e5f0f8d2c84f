"""The receiver's events, sent to the Prefect REST API with httpx (no Prefect import on that path), fire the
order-to-invoice deployment trigger of prefect.yaml once per burst, with the burst's deal ids as a list."""

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
    from renkei.webhooks.app import DEAL_CHANGED, _event
    from renkei.webhooks.emit import RestEmitter
    from renkei.webhooks.ledger import Row

    name = f"webhook-trigger-{uuid.uuid4().hex[:6]}"
    dep_id = order_to_invoice.to_deployment(name=name, triggers=webhook_triggers("order-to-invoice")).apply()
    try:
        time.sleep(1.0)  # the automation is loaded by the triggers service
        emitter = RestEmitter(prefect_api)
        burst, other = uuid.uuid4().hex, uuid.uuid4().hex
        emitter.emit([_event(DEAL_CHANGED, Row("hubspot", str(k), DEAL_CHANGED, d), burst, ["9101", "9102"])
                      for k, d in ((1, "9101"), (2, "9102"))])
        emitter.emit([_event(DEAL_CHANGED, Row("hubspot", "3", DEAL_CHANGED, "9103"), other, ["9103"])])
        runs = []
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 30
            flt = DeploymentFilter(id=DeploymentFilterId(any_=[dep_id]))
            while time.monotonic() < deadline:
                runs = client.read_flow_runs(deployment_filter=flt)
                if len(runs) >= 2:
                    break
                time.sleep(0.5)
            time.sleep(2.0)  # nothing more arrives for the burst's second event
            runs = client.read_flow_runs(deployment_filter=flt)
            params = sorted((r.parameters.get("deal_ids") for r in runs), key=len)
            for r in runs:
                client.delete_flow_run(r.id)
    finally:
        with get_client(sync_client=True) as client:
            client.delete_resource_owned_automations(f"prefect.deployment.{dep_id}")
            client.delete_deployment(dep_id)
    assert params == [["9103"], ["9101", "9102"]]
