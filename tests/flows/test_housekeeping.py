"""Runs clean up after themselves: a killed run is marked Crashed by the next run of its flow and the
work it held is recovered at once; a run that completes while work is held by a live run says so."""

from __future__ import annotations

import os
import subprocess
import sys

from renkei.flows.product_sync import product_sync
from renkei.tasks.housekeeping import LABEL, LABEL_AT, held_work_note, process_stamp, stamp_is_dead


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _running_run(client, flow_name: str, stamp: str | None, *, resumed: bool = False):
    """A flow run Prefect shows as Running, stamped as :func:`reap_dead_runs` stamps its own run.
    ``resumed``: the stamp was written by an earlier process, before the run's current state (a suspended
    approval run resumed: Pending, then Running in a new process that has not reached its first line)."""
    from datetime import datetime, timedelta, timezone

    from prefect import flow as prefect_flow
    from prefect.states import Running

    @prefect_flow(name=flow_name)
    def _stub() -> None:  # only its name matters: the run is created, never executed
        return None

    run = client.create_flow_run(_stub, state=Running())
    if stamp:
        at = datetime.now(timezone.utc) + timedelta(seconds=-3600 if resumed else 1)
        client.update_flow_run_labels(run.id, {LABEL: stamp, LABEL_AT: at.isoformat()})
    return run


def test_stamps_name_a_process_and_only_a_gone_one_is_dead():
    assert not stamp_is_dead(process_stamp())  # this very process
    host = process_stamp().split(":")[0]
    assert stamp_is_dead(f"{host}:{_dead_pid()}:0")
    parent = process_stamp(os.getppid())
    start = parent.rsplit(":", 1)[1]
    assert not stamp_is_dead(parent)  # our parent is alive
    if start not in ("0", ""):  # Linux: a recycled pid (other start time) is not the run's process
        assert stamp_is_dead(f"{host}:{os.getppid()}:{int(start) + 1}")
    assert not stamp_is_dead(f"another-host:{_dead_pid()}:0")  # cannot be checked from here: left alone
    assert not stamp_is_dead("garbage")


def test_next_run_marks_the_killed_run_crashed_and_recovers_its_claims(world):
    from prefect.client.orchestration import get_client

    host = process_stamp().split(":")[0]
    with get_client(sync_client=True) as client:
        dead = _running_run(client, "product-sync", f"{host}:{_dead_pid()}:0")
        alive = _running_run(client, "product-sync", process_stamp())
        unstamped = _running_run(client, "product-sync", None)
        resumed = _running_run(client, "product-sync", f"{host}:{_dead_pid()}:0", resumed=True)
        other_flow = _running_run(client, "customer-sync", f"{host}:{_dead_pid()}:0")
    store = world.rt.store
    store.claim("product:item:dead-1", f"product-sync:{dead.id}", lease_seconds=3600)
    store.claim("product:item:alive-1", f"product-sync:{alive.id}", lease_seconds=3600)
    assert [e.key for e in store.unfinished("product:item:")] == []  # both held

    product_sync()

    with get_client(sync_client=True) as client:
        states = {r.id: client.read_flow_run(r.id).state for r in (dead, alive, unstamped, other_flow, resumed)}
    assert states[dead.id].type.value == "CRASHED" and "gone" in states[dead.id].message
    assert states[alive.id].type.value == "RUNNING"  # a live process is never touched
    assert states[unstamped.id].type.value == "RUNNING"  # no stamp: no way to know, left alone
    assert states[resumed.id].type.value == "RUNNING"  # the stamp predates its state: says nothing about it
    assert states[other_flow.id].type.value == "RUNNING"  # each flow reaps its own runs
    # the dead run's claim is free to recover now; the live run's claim is still held
    assert [e.key for e in store.unfinished("product:item:")] == ["product:item:dead-1"]
    assert store.claim("product:item:dead-1", "product-sync:next").state == "recovered"
    assert [h.key for h in store.held_claims("product:item:", exclude_owner="product-sync:next")] == [
        "product:item:alive-1"]
    note = held_work_note(store, "product:item:", owner="product-sync:next", what="items")
    assert note and note.startswith("1 items still held by 1 other run")
    assert held_work_note(store, "invoice:deal:") is None


def test_a_run_prefect_marked_crashed_frees_its_claims_once_its_process_is_gone(world):
    """SIGTERM: Prefect marks the run Crashed itself, its claims stay leased — until the next run sees
    that the process is gone."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    host = process_stamp().split(":")[0]
    with get_client(sync_client=True) as client:
        gone = _running_run(client, "product-sync", f"{host}:{_dead_pid()}:0")
        client.set_flow_run_state(gone.id, Crashed(message="SIGTERM"), force=True)
    store = world.rt.store
    store.claim("product:item:t-1", f"product-sync:{gone.id}", lease_seconds=3600)
    product_sync()
    assert [e.key for e in store.unfinished("product:item:")] == ["product:item:t-1"]
