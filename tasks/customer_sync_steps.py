"""The steps of the ``customer-sync`` flow (:mod:`flows.customer_sync`): the Prefect tasks it composes (freee
read, one task per HubSpot page / freee chunk, review decisions, deletes) and the run's state table. The flow
module holds the orchestration only.
"""

from __future__ import annotations

from prefect import task

from renkei.connectors.base import CompanyRecord, MapResult
from renkei.tasks import customer_sync as cs
from renkei.tasks.retry import BATCH_TASK
from renkei.tasks.reporting import RunReport
from renkei.tasks.runtime import get_runtime

FLOW = cs.FLOW


# The run's SyncState, by flow run id: tasks get the key, not the object (Prefect would walk a large
# parameter looking for futures on every call).
_STATES: dict[str, cs.SyncState] = {}


@task(**BATCH_TASK, task_run_name="read ERP partners since {since}")
def read_erp_changes(since: str | None, flow_run_id: str) -> int:
    """The changed freee partners into the run's state (``SyncState.erp_changed``, kept out of memory);
    returns how many were read (a task's result stays referenced for the whole flow run: keep it small)."""
    state = _STATES[flow_run_id]
    records = cs.read_partners(get_runtime(), since, state.paths)
    state.erp_changed.close()
    state.erp_changed = records
    return len(records)


@task(**BATCH_TASK, task_run_name="sync {n} CRM companies")
def sync_crm_page(records: list[CompanyRecord], n: int, flow_run_id: str) -> RunReport:
    rt = get_runtime()
    state = _STATES[flow_run_id]
    report = RunReport(FLOW, flow_run_id)
    report.count("crm", "read", n)
    cs.sync_crm_records(rt, state, records, report)
    cs.flush_fast(rt, report)
    return report


@task(**BATCH_TASK, task_run_name="sync {n} ERP partners")
def sync_erp_chunk(results: list[MapResult[dict]], n: int, flow_run_id: str) -> RunReport:
    rt = get_runtime()
    state = _STATES[flow_run_id]
    report = RunReport(FLOW, flow_run_id)
    cs.sync_erp_records(rt, state, results, report)
    cs.flush_fast(rt, report)
    return report


@task(**BATCH_TASK, task_run_name="apply decisions on {n} pairs")
def apply_decisions(pairs: list[cs.Pair], n: int, flow_run_id: str) -> RunReport:
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    cs.sync_pairs(rt, _STATES[flow_run_id], pairs, report)
    cs.flush_fast(rt, report)
    return report


@task(**BATCH_TASK, task_run_name="carry out {n} review decisions")
def apply_review_decisions(n: int, flow_run_id: str) -> RunReport:
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    cs.apply_review_decisions(rt, _STATES[flow_run_id], report)
    cs.flush_fast(rt, report)
    return report


@task(**BATCH_TASK)
def check_deletes(flow_run_id: str, crm: bool) -> RunReport:
    rt = get_runtime()
    state = _STATES[flow_run_id]
    report = RunReport(FLOW, flow_run_id)
    if crm:
        cs.check_crm_archived(rt, state, report)
    cs.check_erp_deleted(rt, state, report)
    cs.flush_fast(rt, report)
    return report
