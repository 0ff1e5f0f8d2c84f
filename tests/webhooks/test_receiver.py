"""The webhook receiver without Prefect: signatures, staleness, replays and malformed bodies → only the
valid deliveries emit events (captured by an in-memory emitter at the app boundary); a burst shares one
batch id; the HubSpot sandbox delivers its changes to the receiver on its own (duplicates, out of order)."""

from __future__ import annotations

import json
import time

from fastapi.testclient import TestClient

from renkei.sandboxes.hubspot.webhooks import signature_v3
from renkei.webhooks.app import Receiver, create_app
from renkei.webhooks.emit import ListEmitter
from renkei.webhooks.ledger import Ledger
from renkei.webhooks.signature import hubspot_v3, inbound_signature

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
INBOUND = "inbound-shared-secret"
URL = "http://testserver/webhooks/hubspot"


def _receiver(tmp_path, **kw) -> tuple[Receiver, ListEmitter]:
    emitter = ListEmitter()
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'renkei.db'}")
    return Receiver(ledger=ledger, emitter=emitter, hubspot_secret=SECRET, inbound_secret=INBOUND,
                    won_stages=lambda: {"closedwon"}, batch_seconds=0.05, **kw), emitter


def _hubspot(client, events, *, secret=SECRET, ts_ms=None, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(events).encode()
    ts = str(ts_ms if ts_ms is not None else int(time.time() * 1000))
    return client.post("/webhooks/hubspot", content=body, headers={
        "X-HubSpot-Signature-v3": signature_v3(secret, "POST", URL, body, int(ts)),
        "X-HubSpot-Request-Timestamp": ts, "Content-Type": "application/json"})


def _inbound(client, kind, data, *, secret=INBOUND, ts=None, key=None, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(data).encode()
    ts = str(int(ts if ts is not None else time.time()))
    headers = {"X-Renkei-Signature": inbound_signature(secret, ts, body), "X-Renkei-Timestamp": ts}
    if key:
        headers["Idempotency-Key"] = key
    return client.post(f"/inbound/{kind}", content=body, headers=headers)


def _deal_stage(event_id, deal_id, stage, occurred=1_764_900_000_000):
    return {"eventId": event_id, "subscriptionId": 1, "portalId": 62515, "appId": 54321, "occurredAt": occurred,
            "subscriptionType": "deal.propertyChange", "attemptNumber": 0, "objectId": deal_id,
            "propertyName": "dealstage", "propertyValue": stage, "changeSource": "CRM"}


def test_hubspot_signature_matches_the_reference_vector():
    body = (b'[{"eventId":1,"subscriptionType":"deal.propertyChange","objectId":123,'
            b'"propertyName":"dealstage","propertyValue":"closedwon"}]')
    assert hubspot_v3(SECRET, "POST", "https://example.com/webhooks/hubspot?x=1", body, "1700000000000") \
        == "jVl66nZxGFsp+8mjQ0uXAdA+nWYNvUzn7kQjIrBmCkM="
    # HubSpot decodes %3A etc. before signing: the receiver must too
    assert hubspot_v3(SECRET, "POST", "https://example.com/webhooks/hubspot?a=b%3Ac", b"[]", "1") \
        == hubspot_v3(SECRET, "POST", "https://example.com/webhooks/hubspot?a=b:c", b"[]", "1")


def test_only_valid_fresh_new_hubspot_deliveries_emit_events(tmp_path):
    receiver, emitted = _receiver(tmp_path)
    company = {"eventId": 13, "portalId": 62515, "occurredAt": 1_764_900_000_000, "objectId": 9001,
               "subscriptionType": "company.propertyChange", "propertyName": "name", "propertyValue": "新社名"}
    own_write = {**company, "eventId": 14, "propertyName": "renkei_freee_partner_id", "propertyValue": "77"}
    valid = [_deal_stage(11, 501, "closedwon"), _deal_stage(12, 502, "appointmentscheduled"), company, own_write]
    with TestClient(create_app(receiver)) as client:
        assert _hubspot(client, valid, secret="wrong-secret").status_code == 401
        assert _hubspot(client, valid, ts_ms=int(time.time() * 1000) - 301_000).status_code == 401  # stale
        assert client.post("/webhooks/hubspot", content=json.dumps(valid)).status_code == 401  # unsigned
        assert _hubspot(client, None, raw=b"{not json").status_code == 400
        assert _hubspot(client, None, raw=b'{"eventId": 1}').status_code == 400  # not an array
        assert _hubspot(client, [{"eventId": 5}]).status_code == 400  # no objectId / type
        ok = _hubspot(client, valid)
        assert ok.status_code == 200 and ok.json() == {"accepted": 2, "ignored": 2, "replayed": 0}
        replay = _hubspot(client, valid)  # HubSpot's retry of the same events, freshly signed
        assert replay.status_code == 200 and replay.json() == {"accepted": 0, "ignored": 0, "replayed": 4}
        assert receiver.batcher.flush(5)
        health = client.get("/health").json()
    assert health["rejected"] == 3 and health["malformed"] == 3 and health["emitted"] == 2
    by_name = {e["event"]: e for e in emitted.events}
    assert len(emitted.events) == 2 and set(by_name) == {"renkei.crm.deal.changed", "renkei.crm.company.changed"}
    deal = by_name["renkei.crm.deal.changed"]
    assert deal["resource"]["prefect.resource.id"] == "renkei.crm.deal.501"  # the not-won deal 502: no event
    assert deal["payload"]["deal_ids"] == ["501"] and deal["payload"]["stage"] == "closedwon"
    assert by_name["renkei.crm.company.changed"]["payload"]["company_ids"] == ["9001"]
    # one burst → one batch id (the deployment trigger's for_each: one run per burst)
    assert len({e["resource"]["renkei.batch-id"] for e in emitted.events}) == 2  # one per event name
    assert receiver.ledger.counts() == {"emitted": 2, "ignored": 2}


def test_a_burst_of_won_deals_is_batched_and_pending_rows_survive_a_restart(tmp_path):
    receiver, emitted = _receiver(tmp_path)
    receiver.batcher.window_s = 2.0
    with TestClient(create_app(receiver)) as client:
        for i in range(5):
            assert _hubspot(client, [_deal_stage(100 + i, 600 + i, "closedwon")]).status_code == 200
        assert receiver.batcher.flush(5)
    assert len(emitted.events) == 5
    # the first change after a quiet spell goes at once; the rest of the burst gathers into one batch
    batches = {}
    for e in emitted.events:
        batches.setdefault(e["resource"]["renkei.batch-id"], e["payload"]["deal_ids"])
    assert list(batches.values()) == [["600"], [str(600 + i) for i in range(1, 5)]]
    # the receiver's settings space a burst's batches by the runs they start (RENKEI_WEBHOOK_MAX_RUNS / _RUN_SECONDS)
    from renkei.webhooks.app import Batcher

    assert Batcher(receiver.ledger, emitted, window_s=1.0, max_runs=3, run_seconds=4.0).spacing == 4.0 / 3
    assert Batcher(receiver.ledger, emitted, window_s=1.0, max_runs=0).spacing == 1.0

    # acknowledged but not emitted (the process died): the next start emits it
    second, emitted2 = _receiver(tmp_path)
    second.ledger.record([second.classify(_deal_stage(200, 700, "closedwon"))])
    with TestClient(create_app(second)):
        assert second.batcher.flush(5)
    assert [e["payload"]["deal_ids"] for e in emitted2.events] == [["700"]]


def test_generic_inbound_webhook_same_rules_and_validated_bodies(tmp_path, caplog):
    receiver, emitted = _receiver(tmp_path)
    order = {"id": "zap-order-1", "deal_id": 501, "customer": "株式会社山田商事", "contact": "山田太郎"}
    payment = {"amount": 55000, "date": "2026-12-05", "payer": "ヤマダ タロウ"}
    refused = [("order", {"id": "o-1", "customer": "山田太郎"}),  # no deal reference
               ("order", {"id": "o-2", "deal_id": ""}), ("order", {"id": "o-3", "deal_id": {"id": 5}}),
               ("order", {"id": "o-4", "deal_id": "501; drop"}), ("order", {"id": "o-5", "deal_id": True}),
               ("payment", {"id": "p-1", "amount": 55000.5, "date": "2026-12-05", "payer": "ヤマダ タロウ"}),
               ("payment", {"id": "p-2", "amount": "55000", "date": "2026-12-05"}),
               ("payment", {"id": "p-3", "amount": -1, "date": "2026-12-05"}),
               ("payment", {"id": "p-4", "amount": 55000, "date": "05/12/2026"}),
               ("payment", {"id": "p-5", "amount": 55000}), ("payment", {"id": "p-6", "amount": 1, "date": 20261205}),
               ("payment", {"id": "p-7", "amount": 1, "date": "2026-12-05", "currency": "USD"})]
    with TestClient(create_app(receiver)) as client:
        assert _inbound(client, "order", order, secret="wrong").status_code == 401
        assert _inbound(client, "order", order, ts=time.time() - 400).status_code == 401
        assert _inbound(client, "order", None, raw=b"[1, 2").status_code == 400
        assert _inbound(client, "order", {"deal_id": "1"}).status_code == 400  # no id, no Idempotency-Key
        assert _inbound(client, "order", {"id": "k" * 65, "deal_id": "1"}).status_code == 400  # key too long
        assert _inbound(client, "refund", order).status_code == 404
        for kind, body in refused:  # 422 naming the field, never echoing a value; nothing stored or emitted
            r = _inbound(client, kind, body)
            assert r.status_code == 422, (kind, body)
            assert r.json()["fields"] and "ヤマダ" not in r.text and "山田" not in r.text
        assert receiver.ledger.counts() == {} and receiver.stats["invalid"] == len(refused)
        assert _inbound(client, "order", order).json() == {"accepted": 1, "ignored": 0, "replayed": 0}
        assert _inbound(client, "order", order).json()["replayed"] == 1
        pay = _inbound(client, "payment", payment, key="make-payment-7")
        assert pay.json()["accepted"] == 1
        assert _inbound(client, "payment", payment, key="make-payment-7").json()["replayed"] == 1
        assert receiver.batcher.flush(5)
    assert sorted(e["event"] for e in emitted.events) == ["renkei.inbound.order", "renkei.inbound.payment"]
    ev = next(e for e in emitted.events if e["event"] == "renkei.inbound.order")
    assert ev["resource"]["prefect.resource.id"] == "renkei.inbound.order.zap-order-1"
    assert ev["payload"]["deal_ids"] == ["501"]  # what the order-to-invoice trigger renders as deal_ids
    assert "body" not in ev["payload"]  # the body (names, amounts) stays in the state store, not in the UI
    sent = json.dumps(emitted.events, ensure_ascii=False)
    assert "山田" not in sent and "ヤマダ" not in sent and "55000" not in sent
    assert "山田" not in caplog.text and "ヤマダ" not in caplog.text  # refusals log field names only
    with receiver.ledger.engine.connect() as conn:
        from renkei.webhooks.ledger import TABLE

        stored = conn.execute(TABLE.select().where(TABLE.c.id == ev["payload"]["webhook_event_id"])).one()
    assert stored.payload["body"] == order and stored.status == "emitted"
    assert INBOUND not in json.dumps(emitted.events)


def test_the_hubspot_sandbox_delivers_changes_to_the_receiver_on_its_own(tmp_path):
    """Sandbox → receiver over HTTP: each change about 50 ms after it happened, every batch twice and out of
    order; the receiver emits one event per change all the same."""
    from renkei.sandboxes.common import ServerThread
    from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app as hubspot_app

    receiver, emitted = _receiver(tmp_path)
    with ServerThread(create_app(receiver)) as hook:
        receiver.public_url = None
        app = hubspot_app(HubSpotSandboxConfig(seed="none", rate_limit_per_10s=0, search_per_second=0,
                                               webhook_url=hook.url + "/webhooks/hubspot",
                                               webhook_client_secret=SECRET, webhook_delay_ms=50,
                                               webhook_duplicate_rate=1.0, webhook_reorder=True))
        try:
            store = app.state.store
            ids = [store.create("deals", {"dealname": f"案件{i}", "dealstage": "appointmentscheduled",
                                          "pipeline": "default"}).id for i in range(3)]
            for deal_id in ids:
                store.update("deals", deal_id, {"dealstage": "closedwon"})
            store.update("deals", ids[0], {"amount": "1000"})  # not subscribed: never delivered
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and app.state.webhooks.delivered < 12:
                time.sleep(0.05)
            assert receiver.batcher.flush(5)
        finally:
            app.state.webhooks.stop()
    deliverer = app.state.webhooks
    assert deliverer.delivered == 12 and deliverer.failures == 0  # 6 changes, each delivered twice
    assert receiver.stats["replayed"] == 6 and receiver.stats["rejected"] == 0
    changed = sorted(e["payload"]["change"] + ":" + e["resource"]["renkei.crm.deal-id"] for e in emitted.events)
    assert changed == sorted([f"deal.creation:{i}" for i in ids] + [f"deal.propertyChange:{i}" for i in ids])


def test_concurrent_deliveries_of_one_key_record_it_once(db_url):
    """Two receiver replicas (threads here) get the same event at once: one row, one emission."""
    import threading

    from renkei.webhooks.ledger import Row

    ledger = Ledger.open(db_url)
    results = []
    barrier = threading.Barrier(4)

    def deliver():
        barrier.wait()
        results.append(ledger.record([Row("hubspot", "62515:77", "renkei.crm.deal.changed", "501"),
                                      Row("hubspot", f"62515:{threading.get_ident()}", "", "502")]))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len([r for r in fresh if r.relevant]) for fresh, _ in results) == 1
    assert sum(replays for _, replays in results) == 3
    assert [r.object_id for r in ledger.pending()] == ["501"]


def test_a_created_deal_is_emitted_only_when_its_stage_is_won(tmp_path, hubspot_sandbox):
    """``deal.creation`` carries no stage (and HubSpot does not document a ``dealstage`` propertyChange
    alongside it): the batcher reads the created deals' stages from HubSpot in one batch read — a deal
    created directly in a won stage is emitted at once, one created open is recorded but starts no run; a
    stage that cannot be read is passed on (the flow decides)."""
    from types import SimpleNamespace

    from pydantic import SecretStr

    from renkei.webhooks.config import DealStages

    store = hubspot_sandbox.app.state.store
    won = store.create("deals", {"dealname": "即受注", "dealstage": "closedwon", "pipeline": "default"}).id
    open_ = store.create("deals", {"dealname": "見込み", "dealstage": "appointmentscheduled",
                                   "pipeline": "default"}).id
    reader = DealStages(SimpleNamespace(hubspot_base_url=hubspot_sandbox.url,
                                        hubspot_token=SecretStr(hubspot_sandbox.config.token)))
    receiver, emitted = _receiver(tmp_path, deal_stages=reader)

    def created(event_id, deal_id):
        return {"eventId": event_id, "portalId": 62515, "occurredAt": 1_764_900_000_000, "objectId": int(deal_id),
                "subscriptionType": "deal.creation", "changeFlag": "NEW"}

    with TestClient(create_app(receiver)) as client:
        r = _hubspot(client, [created(31, won), created(32, open_)])
        assert r.json() == {"accepted": 2, "ignored": 0, "replayed": 0}  # recorded; screened before emission
        assert receiver.batcher.flush(5)
        assert [e["resource"]["renkei.crm.deal-id"] for e in emitted.events] == [won]
        assert emitted.events[0]["payload"]["stage"] == "closedwon"
        assert emitted.events[0]["payload"]["deal_ids"] == [won]  # the run asks for the won deal only
        assert receiver.stats["created_open"] == 1
        assert receiver.ledger.counts() == {"emitted": 1, "ignored": 1}
        # the same open deal won later: its stage change is an event of its own
        assert _hubspot(client, [_deal_stage(33, int(open_), "closedwon")]).json()["accepted"] == 1
        # HubSpot unreachable: a created deal's stage is unknown → passed on, the flow decides
        reader.url = "http://127.0.0.1:9/crm/v3/objects/deals/batch/read"
        assert _hubspot(client, [created(34, "777")]).json()["accepted"] == 1
        assert receiver.batcher.flush(5)
    assert [e["resource"]["renkei.crm.deal-id"] for e in emitted.events] == [won, open_, "777"]
