"""order-to-invoice (受注→請求): every HubSpot deal that reaches a won stage becomes one freee請求書 invoice,
exactly once, and the deal shows its number and status.

Per run: read the deals in won stages (probability 1.0 in their pipeline, across pipelines) modified
since the committed cursor, one task per page; for each deal make sure its company has a freee partner,
build the qualified invoice with the pure rules, then either create it through the exactly-once path
(:mod:`tasks.invoicing`) or, when an exception rule fires, open a review item and start one
``invoice-approval`` run for finance. The cursor moves only after a page's work is committed. Deals
parked on a review (company not linked, unreadable deal) are retried on every run until they pass.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.context import get_run_context

from connectors.base import MapResult
from connectors.http import QuotaExhausted
from domain.model import Deal
from domain.money import format_yen
from tasks.customers import ensure_partners, read_crm_companies
from tasks.invoicing import (INVOICE_STATUS_PENDING, Draft, create_invoice_once, crash_hook_from_env, customer_for,
                             draft_invoice, mark_written_back, prefetch_customers, writeback_props)
from tasks.retry import BATCH_TASK
from tasks.reporting import run_name, RunReport, flush, publish_report
from tasks.runtime import get_runtime
from tasks.housekeeping import reap_dead_runs

FLOW = "order-to-invoice"
CURSOR = "order-to-invoice:hubspot-deals"
APPROVAL_DEPLOYMENT = "invoice-approval/invoice-approval"
APPROVAL_TAG = "renkei-approval"
PARKED_REASONS = ("COMPANY_NOT_LINKED", "INVALID_DEAL", "NO_COMPANY")
INVOICE_WORKERS = 16


class _OnceCache:
    """Thread-safe "compute once per key": concurrent callers of one key wait for the first one's result
    (or its exception)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[threading.Event, list]] = {}

    def has(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def put(self, key: str, value) -> None:
        event = threading.Event()
        event.set()
        with self._lock:
            self._entries.setdefault(key, (event, [("ok", value)]))

    def get(self, key: str, compute):
        with self._lock:
            entry = self._entries.get(key)
            owner = entry is None
            if owner:
                entry = self._entries[key] = (threading.Event(), [])
        event, box = entry
        if owner:
            try:
                box.append(("ok", compute()))
            except BaseException as exc:  # noqa: BLE001 - handed to every waiter
                box.append(("err", exc))
                with self._lock:
                    self._entries.pop(key, None)  # a later call may try again
            finally:
                event.set()
        else:
            event.wait()
        kind, value = box[0]
        if kind == "err":
            raise value
        return value


_CUSTOMERS: dict[str, _OnceCache] = {}  # flow run id → partner id → invoice recipient (one read per run)




def draft_fingerprint(draft: Draft) -> str:
    """Identifies what finance is asked to approve: a changed deal needs a new decision."""
    inv = draft.invoice
    body = {"reasons": sorted(r.code.value for r in draft.reasons),
            "total": inv.total if inv else None,
            "lines": [(l.description, str(l.quantity), l.unit_price, l.amount, l.tax_category.value)
                      for l in (inv.lines if inv else [])],
            "recipient": draft.customer.erp_id if draft.customer else None}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def approval_run_name(draft: Draft) -> str:
    customer = draft.customer.name if draft.customer else "（請求先不明）"
    amount = format_yen(draft.invoice.total) if draft.invoice else "金額未確定"
    return f"請求承認 {customer} {amount} deal-{draft.deal.crm_id}"


def start_approval(draft: Draft, report: RunReport, *, deployment: str = APPROVAL_DEPLOYMENT) -> str | None:
    """One ``invoice-approval`` run per deal and draft; returns its flow run id (None: no runner yet)."""
    from prefect.deployments import run_deployment

    rt = get_runtime()
    deal_id = str(draft.deal.crm_id)
    key = f"approval:deal:{deal_id}:{draft_fingerprint(draft)}"
    claim = rt.store.claim(key, f"{FLOW}:{report.flow_run_id}", lease_seconds=600)
    if claim.state == "committed":
        return claim.external_id
    if claim.state == "held":
        return None
    try:
        run = run_deployment(deployment, parameters={"deal_id": deal_id}, timeout=0, tags=[APPROVAL_TAG],
                             flow_run_name=approval_run_name(draft), as_subflow=False)
    except Exception as exc:  # noqa: BLE001 - no deployment yet: the review item still stands
        rt.store.release(key, f"{FLOW}:{report.flow_run_id}")
        report.notes.append(f"deal {deal_id}: approval run not started ({type(exc).__name__}: {exc})")
        return None
    rt.store.commit(key, f"{FLOW}:{report.flow_run_id}", str(run.id), {"name": run.name})
    report.event(action="approval_requested", entity="deal", entity_key=deal_id, system="renkei",
                 changes={"flow_run_id": str(run.id), "reasons": [r.code.value for r in draft.reasons]})
    return str(run.id)


def process_deals(results: list[MapResult[Deal]], won: set[str], report: RunReport, *, lease_seconds: int,
                  start_approvals: bool) -> None:
    """Invoice or route each won deal of one page. Per-deal problems become review items."""
    rt = get_runtime()
    deals: list[Deal] = []
    for res in results:
        if not res.ok:
            report.review(reason_code="INVALID_DEAL", entity="deal", entity_key=str(res.source_id),
                          message=f"HubSpot deal cannot be invoiced: {res.error}", side="crm")
            continue
        if res.value.stage in won:
            deals.append(res.value)
        else:
            report.count("crm", "not_won")
    if not deals:
        return
    with_company = [d for d in deals if d.company_crm_id]
    for d in deals:
        if not d.company_crm_id:
            report.review(reason_code="NO_COMPANY", entity="deal", entity_key=d.crm_id,
                          message=f"{d.name}: no company is associated with the deal", side="crm")
    partners = ensure_partners(rt, [d.company_crm_id for d in with_company], report)
    crm_companies = read_crm_companies(rt, [d.company_crm_id for d in with_company], report)
    writebacks: dict[str, dict[str, str]] = {}
    crash = crash_hook_from_env()
    customers = _CUSTOMERS.setdefault(report.flow_run_id or "", _OnceCache())
    wanted = {partners[str(d.company_crm_id)]: crm_companies.get(str(d.company_crm_id)) for d in with_company
              if str(d.company_crm_id) in partners and not customers.has(partners[str(d.company_crm_id)])}
    for pid, customer in prefetch_customers(rt, wanted).items():
        customers.put(pid, customer)

    def work(deal: Deal) -> tuple[Draft | None, Any]:
        """Recipient (one partner read per customer per run) → draft → invoice when clean. Deals run
        concurrently (I/O bound); the connector's rate limiters pace the ERP calls, so the first invoices
        go out while other customers are still being read."""
        partner_id = partners.get(str(deal.company_crm_id))
        if partner_id is None:
            return None, None
        customer = customers.get(partner_id, lambda: customer_for(rt, partner_id,
                                                                  crm_companies.get(str(deal.company_crm_id))))
        draft = draft_invoice(rt, deal, customer)
        if not draft.clean:
            return draft, None
        return draft, create_invoice_once(rt, draft.invoice, deal.crm_id, report, lease_seconds=lease_seconds,
                                          crash_after_create=crash)

    with ThreadPoolExecutor(max_workers=max(1, min(INVOICE_WORKERS, len(with_company)))) as pool:
        results_by_deal = list(zip(with_company, pool.map(work, with_company)))
    for deal, (draft, outcome) in results_by_deal:
        if draft is None:
            report.review(reason_code="COMPANY_NOT_LINKED", entity="deal", entity_key=deal.crm_id,
                          message=f"{deal.name}: the company has no freee partner yet (see its review item)")
            continue
        if outcome is not None:
            if outcome.crm_shows_it:
                continue  # already invoiced and shown on the deal: nothing to write
            if outcome.status in ("created", "existing", "mismatch"):
                writebacks[deal.crm_id] = writeback_props(
                    "totals_mismatch" if outcome.status == "mismatch" else "created", outcome)
                report.row(deal=deal.crm_id, customer=draft.customer.name, total=draft.invoice.total,
                           invoice=outcome.number or "", outcome=outcome.status)
            continue
        if rt.store.ledger_entry(f"invoice:deal:{deal.crm_id}") is not None:
            report.count("erp", "unchanged")  # invoiced before (or approved); a later edit does not re-invoice
            continue
        reasons = [r.code.value for r in draft.reasons]
        report.review(reason_code=reasons[0], entity="deal", entity_key=deal.crm_id,
                      message="; ".join(r.message for r in draft.reasons),
                      payload={"reasons": reasons, "total": draft.invoice.total if draft.invoice else None,
                               "customer": draft.customer.name if draft.customer else None})
        run_id = start_approval(draft, report) if start_approvals else None
        writebacks[deal.crm_id] = {"renkei_invoice_status": INVOICE_STATUS_PENDING}
        report.count("renkei", "sent_to_approval")
        report.row(deal=deal.crm_id, customer=draft.customer.name if draft.customer else "",
                   total=draft.invoice.total if draft.invoice else "", invoice="", outcome="approval:" + ",".join(reasons),
                   approval_run=run_id or "")
    if writebacks:
        results = rt.crm.update_deal_properties(writebacks)
        failed = [r for r in results if not r.ok]
        report.count("crm", "updated", len(writebacks) - len(failed))
        order = list(writebacks)  # results keep the order of the inputs
        failed_ids = {order[r.index] for r in failed}
        mark_written_back(rt, [d for d, props in writebacks.items()
                               if "renkei_invoice_id" in props and d not in failed_ids])
        for r in failed:
            report.review(reason_code="CRM_WRITEBACK_FAILED", entity="deal", entity_key=order[r.index],
                          message=f"deal write-back failed: {r.error}", side="crm")
    flush(rt.store, report)


@task(**BATCH_TASK, task_run_name="invoice {n} deals")
def invoice_batch(results: list[MapResult[Deal]], won: list[str], n: int, flow_run_id: str, lease_seconds: int,
                  start_approvals: bool) -> RunReport:
    report = RunReport(FLOW, flow_run_id)
    process_deals(results, set(won), report, lease_seconds=lease_seconds, start_approvals=start_approvals)
    return report


@task(**BATCH_TASK)
def retry_parked(won: list[str], flow_run_id: str, lease_seconds: int, start_approvals: bool) -> RunReport:
    """Deals parked on a review item of this flow are tried again; resolved ones close their item."""
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    parked = [r for r in rt.store.list_reviews("open", flow=FLOW) if r.entity == "deal" and r.reason_code in PARKED_REASONS]
    # claims that never committed (a worker died, or freee refused and the claim was released)
    unfinished = [e.key.removeprefix("invoice:deal:") for e in rt.store.unfinished("invoice:deal:")]
    unfinished = [k for k in unfinished if ":" not in k]  # subscription periods are redone by their own flow
    if not parked and not unfinished:
        return report
    ids = sorted({r.entity_key for r in parked} | set(unfinished))[:500]
    process_deals(rt.crm.get_deals(ids), set(won), report, lease_seconds=lease_seconds,
                  start_approvals=start_approvals)
    still = {r["entity_key"] for r in report.reviews}
    for item in parked:
        if item.entity_key not in still:
            rt.store.decide_review(item.id, decision="resolved", decided_by=FLOW, comment="passed on retry",
                                   status="resolved")
    return report


def _run_name() -> str:
    return run_name(FLOW)


@flow(name=FLOW, flow_run_name=_run_name, log_prints=False)
def order_to_invoice(lease_seconds: int = 300, start_approvals: bool = True, max_pages: int = 1000) -> dict[str, Any]:
    """Won deals → qualified invoices in freee, exactly once; exceptions → finance approval."""
    reap_dead_runs(FLOW)  # earlier runs killed mid-way: marked Crashed, their leases freed
    log = get_run_logger()
    rt = get_runtime()
    flow_run_id = str(get_run_context().flow_run.id)
    report = RunReport(FLOW, flow_run_id)
    won = sorted(rt.crm.won_stage_ids())
    report.merge(retry_parked(won, flow_run_id, lease_seconds, start_approvals))
    cursor = rt.store.get_cursor(CURSOR)
    # One boundary-safe incremental read for the whole run (pages of up to 200 won deals with their
    # companies and lines; the HTTP layer retries transient errors); one task per page does the work.
    # Upper bound = the run's start: our own write-backs (which bump the modification date) and later
    # edits belong to the next run, so a run always ends.
    started_ms = str(int(time.time() * 1000))
    stage_filter = [{"propertyName": "dealstage", "operator": "IN", "values": won},
                    {"propertyName": "hs_lastmodifieddate", "operator": "LTE", "value": started_ms}]
    try:
        for page_no, batch in enumerate(rt.crm.iter_deal_changes(cursor, extra_filters=stage_filter)):
            if page_no >= max_pages:
                break
            if batch.records:
                report.merge(invoice_batch(batch.records, won, len(batch.records), flow_run_id, lease_seconds,
                                           start_approvals))
            watermark = batch.watermark.encode() if hasattr(batch.watermark, "encode") else batch.watermark
            if watermark is not None and watermark != cursor:
                rt.store.set_cursor(CURSOR, watermark, flow_run_id)  # after the page's work is committed
                cursor = watermark
    except QuotaExhausted as exc:
        # The ERP's daily cap: stop cleanly. Every invoice made so far is committed in the ledger; the
        # cursor stays before the unfinished page, so the next run resumes there (nothing lost or doubled).
        report.notes.append(f"quota exhausted: {exc}; the next run resumes from the last committed page")
        report.count("erp", "quota_exhausted")
        log.warning("order-to-invoice stopped: quota exhausted (%s)", exc)
    _CUSTOMERS.pop(flow_run_id, None)
    summary = publish_report(report, "order-to-invoice: won deals → invoices")
    log.info("order-to-invoice: %s", summary)
    return summary
