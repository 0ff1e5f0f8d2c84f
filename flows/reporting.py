"""reporting (経営レポート): a nightly snapshot of pipeline, invoiced, collected, aging, customer profitability,
cash forecast and drift between the systems, stored in the state store (``renkei console``, ``renkei trace``,
``renkei search`` read it). Read-only towards the CRM and the ERP.

Per run: read every CRM deal, every ERP invoice with its settlement, the ERP's cost records (capability
``cost_records``) and the customers on both sides (one task each, all pages), then build and store the
snapshot (rules: :mod:`domain.reporting`, docs/reporting.md).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.context import get_run_context

from renkei.tasks.housekeeping import reap_dead_runs
from renkei.tasks.preflight import preflight
from renkei.tasks.reporting import RunReport, publish_report, run_name
from renkei.tasks.reporting_steps import (FLOW, build_snapshot_task, read_costs_task, read_customers_task,
                                          read_deals_task, read_invoices_task)
from renkei.tasks.runtime import get_runtime


def _run_name() -> str:
    try:  # the configured systems, by label
        rt = get_runtime()
        return run_name(FLOW, f"{rt.crm.capabilities.label}+{rt.erp.capabilities.label}")
    except Exception:  # noqa: BLE001 - a name must never fail the run
        return run_name(FLOW, "CRM+ERP")


@flow(name=FLOW, flow_run_name=_run_name, log_prints=False)
def reporting(as_of: str | None = None) -> dict[str, Any]:
    """Build and store the reporting snapshot; returns the overview figures (integer yen) and drift counts.
    ``as_of``: the Asia/Tokyo business date the aging and forecast are computed for (default today)."""
    reap_dead_runs(FLOW)
    preflight(FLOW, crm_schema=False)  # read-only: the CRM schema is not touched
    log = get_run_logger()
    flow_run_id = str(get_run_context().flow_run.id)
    report = RunReport(FLOW, flow_run_id)
    deals_f = read_deals_task.submit(flow_run_id)
    invoices_f = read_invoices_task.submit(flow_run_id)
    costs_f = read_costs_task.submit(flow_run_id)
    customers_f = read_customers_task.submit(flow_run_id)
    deals, r1 = deals_f.result()
    invoices, r2 = invoices_f.result()
    costs, r3 = costs_f.result()
    customers, r4 = customers_f.result()
    for r in (r1, r2, r3, r4):
        report.merge(r)
    overview, r5 = build_snapshot_task(deals, invoices, costs, customers, as_of, flow_run_id)
    report.merge(r5)
    rt = get_runtime()
    publish_report(report, f"reporting: {rt.crm.capabilities.label} + {rt.erp.capabilities.label} snapshot")
    log.info("reporting: %s", overview)
    return overview
