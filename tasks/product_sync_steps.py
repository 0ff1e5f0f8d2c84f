"""The steps of the ``product-sync`` flow (:mod:`flows.product_sync`): the Prefect tasks it composes (read the
freee items, upsert one batch of products). The flow module holds the orchestration only.
"""

from __future__ import annotations


from prefect import task

from renkei.domain.model import Product
from renkei.tasks import products as ps
from renkei.tasks.retry import BATCH_TASK
from renkei.tasks.reporting import RunReport, flush
from renkei.tasks.runtime import get_runtime

FLOW = ps.FLOW


@task(**BATCH_TASK, task_run_name="read ERP items")
def read_items(flow_run_id: str) -> tuple[list[Product], RunReport]:
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    items = ps.read_items(rt, report)
    flush(rt.store, report)
    return items, report


@task(**BATCH_TASK, task_run_name="upsert {n} products")
def upsert_batch(items: list[Product], view: ps.CrmView, n: int, flow_run_id: str) -> RunReport:
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    ps.sync_items(rt, items, view.drift, report, adopt=view.adopt, ambiguous=view.ambiguous)
    flush(rt.store, report)
    return report
