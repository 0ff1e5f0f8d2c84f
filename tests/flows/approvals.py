"""Helpers for approval tests: wait for paused runs, resume them like the UI does."""

from __future__ import annotations

import time

from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType, FlowRunFilterTags


def paused_runs(tag: str = "renkei-approval") -> list:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["PAUSED"])),
            tags=FlowRunFilterTags(all_=[tag])))


def wait_for(predicate, timeout: float = 90, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


def wait_paused(count: int, timeout: float = 90) -> list:
    def enough():
        runs = paused_runs()
        return runs if len(runs) >= count else None

    return wait_for(enough, timeout)


def wait_final(run_id, timeout: float = 90):
    def done():
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
        return run if run.state and run.state.is_final() else None

    return wait_for(done, timeout)


def wait_state_name(run_id, names: set[str], timeout: float = 90):
    def check():
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
        return run if run.state and (run.state.name in names or run.state.is_final()) else None

    return wait_for(check, timeout)


HUMAN_TAGS = ("renkei-approval", "renkei-review")


def human_run_ids() -> set:
    """Ids of every approval / review-decision run on the session's Prefect server."""
    from prefect.client.schemas.filters import FlowRunFilterTags as Tags

    with get_client(sync_client=True) as client:
        return {r.id for tag in HUMAN_TAGS for r in client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=Tags(all_=[tag])), limit=200)}


def delete_runs(run_ids) -> None:
    """Delete runs (already gone is fine): a test leaves no waiting approval behind for the next one, whose
    sandbox reuses the same record ids."""
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for run_id in run_ids:
            try:
                client.delete_flow_run(run_id)
            except ObjectNotFound:
                pass
