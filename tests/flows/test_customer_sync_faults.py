"""customer-sync under injected faults and a crash mid-run: reruns converge, nothing is duplicated."""

from __future__ import annotations

from renkei.flows.customer_sync import customer_sync
from renkei.sandboxes.common import FaultConfig
from tests.flows.builders import freee_partner, hs_company
from tests.flows.test_customer_sync import count_writes, partner, partners, reviews
from tests.flows.test_customer_sync_matching import hs_count

CORP = ["7010705000725", "4011001098993", "7120001168421"]


def _world_data(world, n_new: int = 4) -> tuple[list[str], list[tuple[str, str]]]:
    linked = []
    for i, corp in enumerate(CORP):
        p = freee_partner(world, f"既存{i}株式会社", registration=f"T{corp}", code=f"P-{i}")
        c = hs_company(world, f"既存{i}株式会社", renkei_corporate_number=corp, phone=f"03-1000-000{i}")
        linked.append((c, p))
    new = [hs_company(world, f"新規{i}株式会社", phone=f"06-2000-000{i}") for i in range(n_new)]
    return new, linked


def _converged(world, new, linked) -> None:
    store = world.rt.store
    for c, p in linked:
        assert store.erp_id_for("company", c) == p
        assert partner(world, p)["phone"].startswith("03-1000-000")
    for c in new:
        erp = store.erp_id_for("company", c)
        assert erp and partner(world, erp)["code"] == f"HS-{c}"
    assert len(partners(world)) == len(new) + len(linked) == hs_count(world)  # no duplicates anywhere
    assert len(store.id_map("company")) == len(new) + len(linked)


def test_crash_mid_run_then_rerun_converges_without_duplicates(world, monkeypatch):
    new, linked = _world_data(world)
    monkeypatch.setenv("RENKEI_TEST_CRASH_CUSTOMER_SYNC", "after_erp_writes")
    state = customer_sync(return_state=True)
    assert state.is_failed()
    assert world.rt.store.get_cursor("customer-sync:hubspot-companies") is None  # the page was not committed
    created = len(partners(world))
    assert created == len(new) + len(linked)  # partners were created (and freee updated) before the crash
    monkeypatch.delenv("RENKEI_TEST_CRASH_CUSTOMER_SYNC")

    customer_sync()
    _converged(world, new, linked)
    assert not reviews(world)
    with count_writes(world) as calls:
        customer_sync()
    assert calls == []


def test_injected_faults_are_retried_and_the_result_is_the_same(world):
    new, linked = _world_data(world, n_new=6)
    faults = FaultConfig(fault_rate=0.3, fault_seed=20261125, kinds=("5xx", "429", "drop"))
    for sb in (world.hubspot, world.freee):
        sb.app.state.faults.config = faults
        sb.app.state.faults.reseed()
    customer_sync()
    injected = len(world.hubspot.app.state.faults.injected) + len(world.freee.app.state.faults.injected)
    assert injected >= 3  # the seed makes this deterministic
    for sb in (world.hubspot, world.freee):
        sb.app.state.faults.config = FaultConfig()
    _converged(world, new, linked)
    assert not reviews(world)
    with count_writes(world) as calls:
        customer_sync()
    assert calls == []
