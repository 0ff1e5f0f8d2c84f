"""The steps of the ``reporting`` flow (:mod:`flows.reporting`): read the CRM deals, the ERP invoices (with their
settlement) and cost records, and the customers on both sides; build the snapshot (:mod:`domain.reporting`)
and store it (:class:`store.reporting.ReportStore`). Each read is one Prefect task over all pages (a batch
flow: never a task per record). The connectors are reached through ``rt.crm`` / ``rt.erp`` only.

The plain functions (``read_*``, :func:`build_and_save`) run without Prefect too (benchmark, tests).

A record a connector cannot read is left out of the facts (``domain.reporting.FactPage.unreadable``) and is one
open review item ``REPORT_RECORD_UNREADABLE`` (entity ``deal`` / ``invoice`` / ``cost_record``, key = the record's
id), closed by the first read that reads it: one bad record never fails the run.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Sequence

from prefect import task

from renkei.domain.dates import today_tokyo
from renkei.domain.model import Company
from renkei.domain.ownership import same
from renkei.domain.reporting import (
    ADDRESS_TEXT_PATHS, REPORT_RECORD_UNREADABLE, CostFact, CustomerFact, DealFact, InvoiceFact, Snapshot,
    address_text, build_snapshot,
)
from renkei.store.reporting import ReportStore
from renkei.tasks.reporting import RunReport, flush
from renkei.tasks.retry import BATCH_TASK
from renkei.tasks.runtime import Runtime, get_runtime

FLOW = "reporting"
COMPANY = "company"


def _unreadable_items(rt: Runtime, report: RunReport, entity: str, side: str, pages: Any,
                      key_of: Any) -> list[Any]:
    """Every fact of ``pages``; each record a page could not read (``FactPage.unreadable``) becomes one open review
    item (:data:`REPORT_RECORD_UNREADABLE`, per record), and the open items of records that read now are closed."""
    label = rt.crm.capabilities.label if side == "crm" else rt.erp.capabilities.label
    out: list[Any] = []
    bad: set[str] = set()
    for page in pages:
        out.extend(page)
        for u in getattr(page, "unreadable", ()):
            bad.add(u.key)
            report.review(reason_code=REPORT_RECORD_UNREADABLE, entity=entity, entity_key=u.key, side=side,
                          message=f"{label} {entity.replace('_', ' ')} {u.key} cannot be read for the report "
                                  f"and is left out of it: {u.reason}",
                          payload={"system": label, "reason": u.reason})
    if bad:
        report.count(side, f"{entity}s_unreadable", len(bad))
        report.notes.append(f"{len(bad)} {label} {entity.replace('_', ' ')}(s) could not be read and are left out "
                            f"of the report (review items {REPORT_RECORD_UNREADABLE})")
    flush(rt.store, report)
    open_keys = {r.entity_key for r in rt.store.list_reviews("open", flow=FLOW)
                 if r.reason_code == REPORT_RECORD_UNREADABLE and r.entity == entity}
    if open_keys:
        readable = open_keys & {str(key_of(f)) for f in out}
        if readable:
            rt.store.resolve_reviews(flow=FLOW, entity=entity, entity_keys=readable,
                                     reason_codes=[REPORT_RECORD_UNREADABLE], comment="the record reads again")
    return out


def read_deals(rt: Runtime, report: RunReport) -> list[DealFact]:
    out = _unreadable_items(rt, report, "deal", "crm", rt.crm.iter_deal_facts(), lambda f: f.crm_id)
    report.count("crm", "deals_read", len(out))
    return out


def read_invoices(rt: Runtime, report: RunReport) -> list[InvoiceFact]:
    out = _unreadable_items(rt, report, "invoice", "erp", rt.erp.iter_invoice_facts(), lambda f: f.erp_id)
    report.count("erp", "invoices_read", len(out))
    return out


def read_costs(rt: Runtime, report: RunReport) -> list[CostFact]:
    if not rt.erp.capabilities.cost_records:
        report.notes.append(f"{rt.erp.capabilities.label} holds no cost records: costs and margins count 0 cost")
        return []
    out = _unreadable_items(rt, report, "cost_record", "erp", rt.erp.iter_cost_facts(), lambda f: f.erp_id)
    report.count("erp", "costs_read", len(out))
    return out


def field_diffs(crm: Company, erp: Company, policy: Any) -> tuple[tuple[str, str], ...]:
    """Synced fields both systems carry whose values differ, with the field's owner (``domain.ownership``)."""
    from renkei.tasks.customer_sync import merge_paths, side_fields

    paths = [p for p in merge_paths(policy) if policy[p].synced]
    a, b = side_fields(crm, "crm", paths), side_fields(erp, "erp", paths)
    one_address = bool(address_text(a)) and address_text(a) == address_text(b)  # split differently, same text
    return tuple((p, policy[p].owner.value) for p in paths if p in b and not same(p, a.get(p), b.get(p))
                 and not (one_address and p in ADDRESS_TEXT_PATHS))


def read_customers(rt: Runtime, report: RunReport) -> list[CustomerFact]:
    """Companies and partners joined by the id map; field differences of linked pairs by the ownership table."""
    from renkei.tasks.customer_sync import policy_table

    policy = policy_table(rt)
    crm: dict[str, Company] = {}
    for page in rt.crm.iter_all_companies():
        for rec in page:
            if rec.ok and rec.value is not None:
                crm[str(rec.value.crm_id or rec.source_id)] = rec.value
    erp: dict[str, Company] = {}
    for page in rt.erp.iter_partners():
        for res in page:
            if res.ok and res.value is not None and res.value.erp_id:
                erp[str(res.value.erp_id)] = res.value
    links = {r.crm_id: r.erp_id for r in rt.store.id_map(COMPANY) if r.status == "active"}
    linked_erp = set()
    out: list[CustomerFact] = []
    for crm_id, c in crm.items():
        erp_id = links.get(crm_id)
        p = erp.get(erp_id) if erp_id else None
        if p is not None:
            linked_erp.add(erp_id)
        src = p or c
        out.append(CustomerFact(crm_id=crm_id, erp_id=erp_id if p is not None else None, name=c.name,
                                sole_trader=src.entity_kind.value == "sole_trader",
                                payment_terms=(p.payment_terms if p is not None else c.payment_terms),
                                field_diffs=field_diffs(c, p, policy) if p is not None else ()))
    for erp_id, p in erp.items():
        if erp_id not in linked_erp:
            out.append(CustomerFact(crm_id=None, erp_id=erp_id, name=p.name,
                                    sole_trader=p.entity_kind.value == "sole_trader", payment_terms=p.payment_terms))
    report.count("crm", "companies_read", len(crm))
    report.count("erp", "partners_read", len(erp))
    return out


def build_and_save(store: Any, *, deals: Sequence[DealFact], invoices: Sequence[InvoiceFact],
                   costs: Sequence[CostFact], customers: Sequence[CustomerFact], as_of: date | None = None,
                   taken_at: datetime | None = None, flow_run_id: str | None = None) -> tuple[Snapshot, int]:
    """Compute the snapshot and store it with the records search and trace read → (snapshot, id)."""
    snap = build_snapshot(deals=deals, invoices=invoices, costs=costs, customers=customers,
                          as_of=as_of or today_tokyo(), taken_at=taken_at or datetime.now(timezone.utc))
    sid = ReportStore(store).save_snapshot(snap, deals=deals, invoices=invoices, customers=customers,
                                           flow_run_id=flow_run_id)
    return snap, sid


def overview(snap: Snapshot) -> dict[str, Any]:
    """The headline figures (integer yen) and drift counts: the flow's return value and ``renkei demo``'s print."""
    return dict(as_of=snap.as_of.isoformat(), **snap.totals(),
                customers=len(snap.customers), drift={c.kind: c.count for c in snap.drift_counts})


# ------------------------------------------------------------------------------------------------- tasks


@task(**BATCH_TASK, task_run_name="read CRM deals")
def read_deals_task(flow_run_id: str) -> tuple[list[DealFact], RunReport]:
    report = RunReport(FLOW, flow_run_id)
    return read_deals(get_runtime(), report), report


@task(**BATCH_TASK, task_run_name="read ERP invoices and payments")
def read_invoices_task(flow_run_id: str) -> tuple[list[InvoiceFact], RunReport]:
    report = RunReport(FLOW, flow_run_id)
    return read_invoices(get_runtime(), report), report


@task(**BATCH_TASK, task_run_name="read ERP cost records")
def read_costs_task(flow_run_id: str) -> tuple[list[CostFact], RunReport]:
    report = RunReport(FLOW, flow_run_id)
    return read_costs(get_runtime(), report), report


@task(**BATCH_TASK, task_run_name="read customers (CRM companies, ERP partners)")
def read_customers_task(flow_run_id: str) -> tuple[list[CustomerFact], RunReport]:
    report = RunReport(FLOW, flow_run_id)
    return read_customers(get_runtime(), report), report


@task(**BATCH_TASK, task_run_name="build and store the snapshot")
def build_snapshot_task(deals: list[DealFact], invoices: list[InvoiceFact], costs: list[CostFact],
                        customers: list[CustomerFact], as_of: str | None, flow_run_id: str) -> tuple[dict, RunReport]:
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    snap, sid = build_and_save(rt.store, deals=deals, invoices=invoices, costs=costs, customers=customers,
                               as_of=date.fromisoformat(as_of) if as_of else None, flow_run_id=flow_run_id)
    report.count("renkei", "snapshot_saved")
    for c in snap.drift_counts:
        if c.count:
            report.count("drift", c.kind, c.count)
    report.event(action="snapshot", entity="report_snapshot", entity_key=str(sid), system="renkei",
                 changes={"as_of": snap.as_of.isoformat(), **{k: v for k, v in snap.totals().items()}})
    flush(rt.store, report)
    return overview(snap), report
