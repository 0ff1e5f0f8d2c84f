"""The CRM write-back outbox against the HubSpot sandbox: facts committed in the ledger become deal
properties once, in commit order, batched."""

from __future__ import annotations

from renkei.tasks.outbox import DECISION_PREFIX, INVOICE_SPECS, PENDING_PREFIX, drain
from renkei.tasks.reporting import RunReport
from tests.flows.builders import hs_company, hs_deal

PROPS = ["renkei_invoice_status", "renkei_invoice_id", "renkei_invoice_number", "renkei_invoice_comment"]


def _fact(store, key: str, external_id=None, result=None) -> None:
    store.claim(key, "test")
    store.commit(key, "test", external_id, result or {}, writeback=True)


def test_facts_are_written_once_in_commit_order(world):
    store = world.rt.store
    company = hs_company(world, "株式会社送信順")
    approved, waiting, rejected = (hs_deal(world, f"送信順 {i}", company, [{"name": "x", "quantity": 1, "price": 1}])
                                   for i in range(3))
    _fact(store, f"{PENDING_PREFIX}{approved}:fp1")       # first it waited for finance ...
    _fact(store, f"invoice:deal:{approved}", "901", {"number": "R-901", "status": "created", "comment": "承認: a"})
    _fact(store, f"{PENDING_PREFIX}{waiting}:fp2")
    _fact(store, f"{PENDING_PREFIX}{rejected}:fp3")
    _fact(store, f"{DECISION_PREFIX}{rejected}:fp3", None, {"status": "rejected", "comment": "却下: 値引率"})
    _fact(store, f"invoice:deal:{approved}:period:2026-12-01", "902", {"number": "R-902"})  # no deal write-back

    calls: list[dict] = []
    real = world.rt.crm.update_deal_properties

    def write(updates):
        calls.append(dict(updates))
        return real(updates)

    report = RunReport("test")
    assert drain(world.rt, INVOICE_SPECS, report, write=write) == 3
    assert len(calls) == 1  # one batch call for the three deals
    props = {d: world.hs().deals.get(d, properties=PROPS)["properties"] for d in (approved, waiting, rejected)}
    assert props[approved]["renkei_invoice_status"] == "created" and props[approved]["renkei_invoice_id"] == "901"
    assert props[approved]["renkei_invoice_comment"] == "承認: a"
    assert props[waiting]["renkei_invoice_status"] == "pending_approval"
    assert props[rejected]["renkei_invoice_status"] == "rejected"
    assert store.outbox([s.prefix for s in INVOICE_SPECS], limit=100) == []
    assert drain(world.rt, INVOICE_SPECS, report, write=write) == 0 and len(calls) == 1  # nothing twice


def test_more_than_one_batch_is_split_by_100(world):
    store = world.rt.store
    deals = [str(world.hs().deals.create({"dealname": f"大量 {i}", "dealstage": "closedwon"})["id"])
             for i in range(130)]
    for i, d in enumerate(deals):
        _fact(store, f"invoice:deal:{d}", str(5000 + i), {"number": f"R-{i}", "status": "created"})
    sizes: list[int] = []
    real = world.rt.crm.update_deal_properties

    def write(updates):
        sizes.append(len(updates))
        return real(updates)

    assert drain(world.rt, INVOICE_SPECS, RunReport("test"), write=write) == 130
    assert sizes == [100, 30]
    last = world.hs().deals.get(deals[-1], properties=PROPS)["properties"]
    assert last["renkei_invoice_id"] == "5129"


def test_a_failed_write_stays_pending_with_one_review_item(world):
    store = world.rt.store
    _fact(store, "invoice:deal:999999", "1", {"number": "R-1", "status": "created"})  # no such deal in HubSpot
    report = RunReport("order-to-invoice")
    assert drain(world.rt, INVOICE_SPECS, report) == 0
    assert [r["reason_code"] for r in report.reviews] == ["CRM_WRITEBACK_FAILED"]
    assert [e.key for e in store.outbox(["invoice:deal:"])] == ["invoice:deal:999999"]  # retried next run
