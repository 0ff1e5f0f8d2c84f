"""Webhooks → targeted runs, against both sandboxes: the HubSpot sandbox delivers every change twice and
out of order to the receiver; the events name the won deal once; order-to-invoice with the deal_ids the
trigger would pass (once per event batch, and once more as if a duplicate had slipped through) makes ONE
invoice in freee; the deal that did not reach a won stage produces no event, so no run is requested. A
company change → customer-sync with company_ids creates that one partner. A generic inbound order (Zapier /
Make naming the CRM deal), delivered twice, → one event with the deal_ids the trigger renders → one invoice."""

from __future__ import annotations

import time
from collections import defaultdict

from renkei.flows.customer_sync import customer_sync
from renkei.flows.order_to_invoice import order_to_invoice
from renkei.sandboxes.common import ServerThread
from renkei.sandboxes.hubspot.webhooks import Deliverer
from renkei.webhooks.app import Receiver, create_app
from renkei.webhooks.emit import ListEmitter
from renkei.webhooks.ledger import Ledger
from renkei.webhooks.signature import inbound_signature
from tests.flows.builders import freee_invoices, freee_partner, hs_company, hs_deal, move_stage

SECRET = "sandbox-app-client-secret"
INBOUND = "zapier-shared-secret"


def test_duplicate_and_out_of_order_webhooks_make_one_invoice_and_no_run_for_a_deal_not_won(world):
    freee_partner(world, "株式会社青木製作所", registration="T7010705000725")
    company = hs_company(world, "株式会社青木製作所", renkei_corporate_number="7010705000725")
    won = hs_deal(world, "青木製作所 12月分", company, [{"name": "保守", "quantity": 2, "price": 15000}],
                  stage="qualifiedtobuy")
    lost = hs_deal(world, "青木製作所 追加見込み", company, [{"name": "追加", "quantity": 1, "price": 1000}],
                   stage="appointmentscheduled")
    emitter = ListEmitter()
    receiver = Receiver(ledger=Ledger.open(world.env["RENKEI_DATABASE_URL"]), emitter=emitter,
                        hubspot_secret=SECRET, won_stages=lambda: world.rt.crm.won_stage_ids(), batch_seconds=0.1)
    with ServerThread(create_app(receiver)) as hook:
        deliverer = Deliverer(world.hubspot.app.state.store, hook.url + "/webhooks/hubspot", SECRET, delay_ms=50,
                              subscriptions=("deal.propertyChange:dealstage", "company.propertyChange"),
                              duplicate_rate=1.0, reorder=True, seed=1).start()
        try:
            move_stage(world, won, "contractsent")
            move_stage(world, won, "closedwon")
            move_stage(world, lost, "qualifiedtobuy")
            world.hs().companies.update(company, {"phone": "03-1234-5678"})
            deadline = time.monotonic() + 10
            while deliverer.delivered < 8 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert receiver.batcher.flush(5)
        finally:
            deliverer.stop()
    assert deliverer.delivered == 8 and receiver.stats["replayed"] == 4  # every change twice
    batches: dict[str, dict] = defaultdict(dict)
    for e in emitter.events:
        batches[e["event"]][e["resource"]["renkei.batch-id"]] = e["payload"]
    deal_runs = [p["deal_ids"] for p in batches["renkei.crm.deal.changed"].values()]
    assert deal_runs == [[won]]  # the lost deal's change never became an event: no run requested for it

    for ids in deal_runs + [[won]]:  # the trigger's run, then a duplicate run on top
        summary = order_to_invoice(deal_ids=ids)
    assert summary["erp"].get("created") is None
    (inv,) = freee_invoices(world)
    assert inv["total_amount"] == 33_000
    assert world.rt.store.ledger_entry(f"invoice:deal:{won}").status == "committed"
    assert world.rt.store.ledger_entry(f"invoice:deal:{lost}") is None

    (company_ids,) = [p["company_ids"] for p in batches["renkei.crm.company.changed"].values()]
    assert company_ids == [company]
    customer_sync(company_ids=company_ids)
    assert world.rt.store.erp_id_for("company", company) is not None


def test_an_inbound_order_delivered_twice_makes_one_invoice_and_none_for_a_deal_not_won(world):
    import json

    from fastapi.testclient import TestClient

    freee_partner(world, "株式会社青木製作所", registration="T7010705000725")
    company = hs_company(world, "株式会社青木製作所", renkei_corporate_number="7010705000725")
    won = hs_deal(world, "青木製作所 1月分", company, [{"name": "保守", "quantity": 3, "price": 10000}])
    open_deal = hs_deal(world, "青木製作所 見込み", company, [{"name": "追加", "quantity": 1, "price": 1000}],
                        stage="appointmentscheduled")
    emitter = ListEmitter()
    receiver = Receiver(ledger=Ledger.open(world.env["RENKEI_DATABASE_URL"]), emitter=emitter,
                        inbound_secret=INBOUND, batch_seconds=1.0)

    def post(client, body: dict):
        raw = json.dumps(body, ensure_ascii=False).encode()
        ts = str(int(time.time()))
        return client.post("/inbound/order", content=raw, headers={
            "X-Renkei-Timestamp": ts, "X-Renkei-Signature": inbound_signature(INBOUND, ts, raw)})

    with TestClient(create_app(receiver)) as client:
        receiver.batcher.last_sent = time.monotonic()  # inside a burst window: the orders go as one batch
        order = {"id": "zap-1", "deal_id": won, "customer": "株式会社青木製作所", "contact": "青木一郎"}
        assert post(client, order).json()["accepted"] == 1
        assert post(client, order).json() == {"accepted": 0, "ignored": 0, "replayed": 1}  # Zapier's retry
        assert post(client, {"id": "zap-2", "deal_id": int(open_deal)}).json()["accepted"] == 1
        assert post(client, {"id": "zap-3", "customer": "青木一郎"}).status_code == 422  # no deal named
        assert receiver.batcher.flush(5)
    batches = {e["resource"]["renkei.batch-id"]: e["payload"] for e in emitter.events}
    assert len(emitter.events) == 2 and len(batches) == 1  # one burst → one trigger run
    (payload,) = batches.values()
    assert payload["deal_ids"] == [won, open_deal] and "青木" not in json.dumps(emitter.events, ensure_ascii=False)

    summary = order_to_invoice(deal_ids=payload["deal_ids"])  # the run the trigger starts
    assert summary["crm"].get("not_won") == 1
    (inv,) = freee_invoices(world)
    assert inv["total_amount"] == 33_000
    assert world.rt.store.ledger_entry(f"invoice:deal:{won}").status == "committed"
    assert world.rt.store.ledger_entry(f"invoice:deal:{open_deal}") is None


def test_a_webhook_run_under_way_takes_the_deals_whose_runs_are_still_queued(world):
    """Three bursts, three triggered runs; the first run to start also invoices the two deals whose runs wait
    for a slot, and those runs then find their deal invoiced: three invoices, no duplicate."""
    from datetime import datetime, timezone

    from renkei.webhooks.ledger import DEAL_CHANGED, Row

    freee_partner(world, "株式会社青木製作所", registration="T7010705000725")
    company = hs_company(world, "株式会社青木製作所", renkei_corporate_number="7010705000725")
    deals = [hs_deal(world, f"青木製作所 {m}月分", company, [{"name": "保守", "quantity": 1, "price": 10000 * m}])
             for m in (1, 2, 3)]
    ledger = Ledger(world.rt.store.engine)
    for n, deal in enumerate(deals):  # one burst each, emitted: each has its run requested
        (row,), _ = ledger.record([Row(source="hubspot", event_key=f"evt-{n}", event=DEAL_CHANGED, object_id=deal,
                                       occurred_at=datetime.now(timezone.utc))])
        ledger.mark_emitted([row.id], f"batch-{n}")
    first = order_to_invoice(deal_ids=[deals[0]])
    assert first["deal"]["taken_from_queue"] == 2
    assert sorted(i["total_amount"] for i in freee_invoices(world)) == [11_000, 22_000, 33_000]
    assert ledger.counts() == {"taken": 3}
    for deal in deals[1:]:  # the queued runs come: nothing left to do
        later = order_to_invoice(deal_ids=[deal])
        assert later.get("erp", {}).get("created") is None and "taken_from_queue" not in later.get("deal", {})
    assert len(freee_invoices(world)) == 3
