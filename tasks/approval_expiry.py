"""Expired approvals are re-requested, exactly once, by the flow that owns them.

A suspended approval run is not running while it waits, so its own ``timeout`` handling never executes:
when ``[approval] timeout_hours`` pass, Prefect's pause-expiration service fails the run with
"The flow was paused and never resumed." (or "… failed and never resumed." when the client gave up first;
``prefect-automations-and-events.md`` §7). The owning flow (order-to-invoice for invoice approvals,
payment-writeback for payment approvals) looks for such runs at the start of each run:

* ``on_timeout = "renotify"`` → for each expired run, once (ledger key ``approval-expired:<run id>``): the
  owner's ``restart(run)`` starts one fresh approval run through
  :func:`tasks.approval_form.start_approval_run` (its own key names the expired run, so a crash anywhere
  never starts two), the open review item is pointed at the new run, and an ``approval_rerequested`` audit
  event (Prefect event ``renkei.approval.rerequested``, for notification automations) is written.
* ``on_timeout = "expire"`` → nothing is started; the review item stays open (``renkei reviews list``).
"""

from __future__ import annotations

from typing import Any, Callable

from renkei.tasks.reporting import RunReport

NEVER_RESUMED = "never resumed"
EXPIRED_MESSAGE = "The flow was paused and never resumed."  # the server's own words (pause expirations)
APPROVAL_TAG = "renkei-approval"
EXPIRED_PREFIX = "approval-expired:"


def expired_approval_runs(flow_name: str, *, limit: int = 200, only: set[str] | None = None) -> list[Any]:
    """Runs of ``flow_name`` that expired while waiting (newest first): Failed "… never resumed", and runs
    still Paused past their deadline — which the server's pause-expiration service would fail (it does not
    run in an ephemeral server, or may be disabled): those are failed here the same way first, so a late
    resume can no longer act on the old run."""
    from datetime import datetime, timezone

    from prefect import get_client
    from prefect.client.schemas.filters import (FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterState,
                                                FlowRunFilterStateType, FlowRunFilterTags)
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.states import Failed

    def runs_in(client, state: str) -> list[Any]:
        return client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[state])),
                                          tags=FlowRunFilterTags(all_=[APPROVAL_TAG])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit)

    now = datetime.now(timezone.utc)
    with get_client(sync_client=True) as client:
        for run in runs_in(client, "PAUSED"):
            deadline = run.state.state_details.pause_timeout if run.state else None
            if deadline is not None and deadline < now and (only is None or str(run.id) in only):
                client.set_flow_run_state(run.id, Failed(message=EXPIRED_MESSAGE))
        runs = runs_in(client, "FAILED")
    return [r for r in runs if r.state is not None and NEVER_RESUMED in (r.state.message or "")
            and (only is None or str(r.id) in only)]


def current_run(store, run_id: str | None) -> str | None:
    """The approval run standing for ``run_id`` now: following re-requests of expired runs."""
    seen: set[str] = set()
    while run_id and run_id not in seen:
        seen.add(run_id)
        nxt = store.ledger_entry(EXPIRED_PREFIX + run_id)
        if nxt is None or nxt.status != "committed" or not nxt.external_id:
            break
        run_id = nxt.external_id
    return run_id


def rerequest_expired(rt, report: RunReport, *, approval_flow: str, entity: str, entity_key_of: Callable[[Any], str],
                      restart: Callable[[Any], str | None], review_flow: str) -> list[tuple[str, str | None]]:
    """Re-request every expired ``approval_flow`` run once (module docstring); returns (expired, new run)."""
    if rt.policy.approval.on_timeout != "renotify":
        return []
    # only this installation's approvals: runs an open review item of this state store waits on (a Prefect
    # server may hold other installations' runs, or runs whose decision was already taken another way)
    waiting = {str((item.payload or {}).get("approval_run")) for item in rt.store.list_reviews("open", flow=review_flow)
               if item.entity == entity and (item.payload or {}).get("approval_run")}
    if not waiting:
        return []
    try:
        expired = expired_approval_runs(approval_flow, only=waiting)
    except Exception as exc:  # noqa: BLE001 - no Prefect API: nothing can have expired there
        report.notes.append(f"expired approvals not checked ({type(exc).__name__})")
        return []
    done: list[tuple[str, str | None]] = []
    owner = f"{report.flow}:{report.flow_run_id}"
    for run in expired:
        old = str(run.id)
        if old not in waiting:
            continue
        key = EXPIRED_PREFIX + old
        entry = rt.store.ledger_entry(key)
        if entry is not None and entry.status == "committed":
            continue
        claim = rt.store.claim(key, owner, lease_seconds=600)
        if not claim.proceed:
            continue
        entity_key = entity_key_of(run)
        try:
            new = restart(run)  # exactly once by its own ledger key (naming the expired run); None = not needed
        except Exception as exc:  # noqa: BLE001 - one record's problem: a review item, retried next run
            rt.store.release(key, owner)
            report.review(reason_code="APPROVAL_RENOTIFY_FAILED", entity=entity, entity_key=entity_key,
                          message=f"the expired approval run {old} could not be requested again "
                                  f"({type(exc).__name__}); retried on the next run")
            continue
        rt.store.commit(key, owner, new, {"entity": entity, "entity_key": entity_key})
        if new is None:
            continue
        for item in rt.store.list_reviews("open", flow=review_flow):
            if item.entity == entity and item.entity_key == entity_key:
                rt.store.add_review(flow=item.flow, reason_code=item.reason_code, entity=entity, entity_key=entity_key,
                                    message=item.message, flow_run_id=report.flow_run_id,
                                    payload={**(item.payload or {}), "approval_run": new, "expired_run": old})
        report.event(action="approval_rerequested", entity=entity, entity_key=entity_key, system="renkei",
                     changes={"expired_run": old, "flow_run_id": new, "approval_flow": approval_flow})
        report.count("renkei", "approval_rerequested")
        done.append((old, new))
    return done
