"""product-sync (品目連携): freee items → HubSpot products, one way; the CRM never overwrites the ERP.

Per run: read every freee item (3,000 per request — item lists are small), read the HubSpot products
edited since the committed cursor (to put back ERP-held values someone changed in HubSpot), upsert the
new and changed items by ``renkei_product_code`` (= ``hs_sku``) 100 per request, archive the products
of deactivated items. Unchanged items (content hash of the properties sent) are not written: a rerun
with nothing changed writes nothing.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.context import get_run_context

from renkei.tasks import products as ps
from renkei.tasks.reporting import run_name, RunReport, publish_report
from renkei.tasks.runtime import get_runtime
from renkei.tasks.housekeeping import reap_dead_runs
from renkei.tasks.preflight import preflight
from renkei.tasks.product_sync_steps import FLOW, read_items, upsert_batch


def _run_name() -> str:
    try:  # the configured systems, by label
        rt = get_runtime()
        return run_name("product-sync", f"{rt.erp.capabilities.label}→{rt.crm.capabilities.label}")
    except Exception:  # noqa: BLE001 - a name must never fail the run
        return run_name("product-sync", "ERP→CRM")


@flow(name=FLOW, flow_run_name=_run_name, log_prints=False)
def product_sync(batch_size: int = 500) -> dict[str, Any]:
    """freee items → HubSpot products. Returns the counts per side."""
    reap_dead_runs(FLOW)  # earlier runs killed mid-way: marked Crashed, their leases freed
    preflight(FLOW)  # connections, store and the CRM schema, or one line naming the setting to fix
    log = get_run_logger()
    rt = get_runtime()
    flow_run_id = str(get_run_context().flow_run.id)
    report = RunReport(FLOW, flow_run_id)
    items, read_report = read_items(flow_run_id)
    report.merge(read_report)
    by_code = {i.code: i for i in items}
    cursor = rt.store.get_cursor(ps.CRM_CURSOR)
    view = ps.crm_view(rt, cursor, by_code, report)
    for i in range(0, len(items), batch_size):
        chunk = items[i:i + batch_size]
        report.merge(upsert_batch(chunk, view, len(chunk), flow_run_id))
    if view.watermark and view.watermark != cursor:
        rt.store.set_cursor(ps.CRM_CURSOR, view.watermark, flow_run_id)  # after the corrections are written
    summary = publish_report(report, f"product-sync: {rt.erp.capabilities.label} items → {rt.crm.capabilities.label} products")
    log.info("product-sync: %s", summary)
    return summary
