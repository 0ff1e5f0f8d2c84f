"""Runs clean up after the runs before them.

:func:`reap_dead_runs` is the first line of every flow. It

1. stamps the current flow run with the process that executes it (label ``renkei.process`` =
   ``<host>:<pid>:<process start time>``), and
2. finds the runs of the same flow that Prefect still shows as Running or Pending and whose stamped
   process is gone, marks each **Crashed** (with a message saying why) and expires the idempotency
   leases the dead run held (also for runs of the last day that Prefect marked Crashed, Failed or
   Cancelled itself, once their process is gone) (ledger owner ``"<flow>:<flow_run_id>"``), so this run recovers that work
   at once instead of waiting out the lease — a recovered claim looks the external reference up before
   creating anything, so this is safe whatever the dead run managed to write.

The liveness rule never marks a live run: a run is dead only when it carries our stamp, the stamp names
*this* host, and no process with that pid and that start time exists (the start time, from
``/proc/<pid>/stat``, guards against a recycled pid). A run without a stamp (killed before its first
line, or started by something else) or stamped on another host is left alone — ``renkei runs`` /
the Prefect UI show it, and its leases expire on their own.

:func:`held_work_note` is for run summaries: work a run that completes now left undone because another
(live) run still holds it.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

LABEL = "renkei.process"
LABEL_AT = "renkei.process_at"  # when the stamp was written (UTC ISO): which state of the run it speaks for
log = logging.getLogger("renkei.housekeeping")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), ``"0"`` where /proc is absent,
    ``None`` when no process ``pid`` exists."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
        return stat.rsplit(")", 1)[1].split()[19]  # field 22 (starttime), counted after "(comm)"
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None  # Linux: no such process
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "0"


def process_stamp(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '0'}"


def stamp_is_dead(stamp: str, host: str | None = None) -> bool:
    """True only when ``stamp`` names this host and its process no longer exists (see module doc)."""
    try:
        stamp_host, pid_s, start = stamp.rsplit(":", 2)
        pid = int(pid_s)
    except (ValueError, AttributeError):
        return False
    if stamp_host != (host or socket.gethostname()) or pid <= 0:
        return False
    now = _start_time(pid)
    if now is None:
        return True
    return start not in ("0", "") and now != "0" and now != start  # the pid was recycled


def stamped_in_current_state(run: Any) -> bool:
    """True when the run's stamp was written after its current state began: the stamped process is the one
    executing this state. A suspended run that was resumed (Pending, then Running in a new process) still
    carries the stamp of the process that suspended it until its first line runs again: that stamp says
    nothing about the new state, so such a run is never reaped on it."""
    from datetime import datetime

    at = (run.labels or {}).get(LABEL_AT)
    if not at or run.state is None or run.state.timestamp is None:
        return False
    try:
        return datetime.fromisoformat(str(at)) >= run.state.timestamp
    except (TypeError, ValueError):
        return False


def reap_dead_runs(flow_name: str) -> list[str]:
    """Stamp this run; mark this flow's dead Running/Pending runs Crashed and free their leases.
    Returns the ids of the runs reaped. Never raises (housekeeping must not fail a run)."""
    try:
        return _reap(flow_name)
    except Exception as exc:  # noqa: BLE001 - reported, never fatal
        log.warning("housekeeping for %s skipped: %s: %s", flow_name, type(exc).__name__, exc)
        return []


def _reap(flow_name: str) -> list[str]:
    from datetime import datetime, timedelta, timezone

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterStartTime,
                                                FlowRunFilterState, FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.context import FlowRunContext
    from prefect.states import Crashed

    ctx = FlowRunContext.get()
    me = str(ctx.flow_run.id) if ctx and ctx.flow_run else None
    reaped: list[str] = []
    dead: list[str] = []
    with get_client(sync_client=True) as client:
        if me:
            client.update_flow_run_labels(ctx.flow_run.id, {LABEL: process_stamp(),
                                                            LABEL_AT: datetime.now(timezone.utc).isoformat()})
        # Running/Pending runs (any age) and runs that ended badly in the last day: a run Prefect itself
        # marked Crashed or Failed (SIGTERM, an engine error) may still hold claims — freed once its
        # process is gone, never while it lives (its writer thread could still be writing).
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))),
            sort=FlowRunSort.START_TIME_DESC, limit=200)
        runs += client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(
                    any_=[StateType.CRASHED, StateType.FAILED, StateType.CANCELLED])),
                start_time=FlowRunFilterStartTime(after_=datetime.now(timezone.utc) - timedelta(days=1))),
            sort=FlowRunSort.START_TIME_DESC, limit=50)
        for run in runs:
            if str(run.id) == me:
                continue
            stamp = (run.labels or {}).get(LABEL)
            if not stamp or not stamp_is_dead(str(stamp)):
                continue
            if run.state is not None and run.state.type in (StateType.RUNNING, StateType.PENDING) \
                    and not stamped_in_current_state(run):
                continue  # e.g. a resumed approval run: its stamp names the process that suspended it
            dead.append(str(run.id))
            if run.state is not None and run.state.type in (StateType.RUNNING, StateType.PENDING):
                client.set_flow_run_state(run.id, Crashed(
                    message=f"its process ({stamp}) is gone — marked Crashed by the next {flow_name} run"),
                    force=True)
                reaped.append(str(run.id))
    if dead:
        from renkei.tasks.runtime import get_runtime

        store = get_runtime().store
        freed = sum(store.expire_leases(f"{flow_name}:{rid}") for rid in dead)
        if reaped or freed:
            log.warning("%s: %d dead run(s) marked Crashed, %d held claim(s) released for recovery",
                        flow_name, len(reaped), freed)
    return reaped


def held_work_note(store: Any, prefix: str, *, owner: str | None = None, what: str = "records") -> str | None:
    """A summary line when live claims under ``prefix`` are held by other runs (``None`` otherwise)."""
    held = store.held_claims(prefix, exclude_owner=owner)
    if not held:
        return None
    owners = sorted({h.owner for h in held})
    until = max(h.lease_until for h in held)
    return (f"{len(held)} {what} still held by {len(owners)} other run(s) "
            f"({', '.join(o.rsplit(':', 1)[-1][:8] for o in owners[:3])}{'…' if len(owners) > 3 else ''}) "
            f"until {until:%H:%M:%S} UTC at the latest: not done by this run, the next run does them")
