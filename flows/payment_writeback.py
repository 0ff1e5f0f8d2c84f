"""payment-writeback (入金消込 → 入金ステータス): bank deposits are matched to the invoices they pay, recorded
on the freee deals (with the transfer fee booked as 支払手数料), and the HubSpot deal shows whether the
customer has paid.

Per run:

1. finish interrupted applications — a deposit whose ``payment:deposit:<id>`` claim was never committed
   (crash after a freee call) resumes its stored plan; nothing is decided twice;
2. read the open invoices (unsettled income deals + freee請求書 invoices + partners, :func:`tasks.payments.
   load_open_book`) and the payer aliases (:class:`store.aliases.AliasStore`) into one
   :class:`~domain.reconciliation.Reconciler`;
3. deposits parked on an open review item of this flow are read again (an invoice may exist now, the
   line may have been corrected), then the bank lines since the committed cursor (date watermark; lines
   of the last date are read again, the ledger dedupes them), one task per page. Each line is read on
   its own (:func:`tasks.payments.deposit_from_txn`: the payer name is the documented normalisation of
   the description, :func:`domain.payer.payer_name_from_bank`); a line that still cannot become a
   deposit is one ``INVALID_BANK_LINE`` item and never stops the page. A deposit dated outside the
   plausible window (``[plausibility]``, Asia/Tokyo today) is one ``DATE_OUT_OF_RANGE`` item, never
   applied. Every other deposit is decided — ``AUTO`` → applied exactly once
   (:func:`tasks.payments.apply_deposit_once`); ``NEEDS_APPROVAL`` → review item + one
   ``payment-approval`` run (ledger ``approval:deposit:<id>``); ``UNMATCHED`` → review item with the
   engine's reasons; an unexpected error → one ``DEPOSIT_FAILED`` item, the batch goes on. The cursor (a
   plausible date) moves once every page is done, never past a deposit another worker holds; a person
   who closes an ``INVALID_BANK_LINE`` / ``DATE_OUT_OF_RANGE`` item leaves that line alone — except a
   "fixed at source → retry" decision: the line is read again on the next run, once
   (:mod:`tasks.review_retries`), and a problem still there opens an item with its reason;
4. HubSpot ``renkei_payment_*`` through the outbox (:func:`tasks.payments.drain_payment_outbox`): every
   committed application not yet confirmed in HubSpot — this run's and those of a run killed before it
   told HubSpot — plus every open invoice whose status changed (``overdue``), only where the values
   changed; the application is marked written once HubSpot accepted;
5. payment notices (``POST /inbound/payment``, :mod:`tasks.payment_notices`): new notices kept, each closed
   against the settled money that is its money (same amount, day within a few days, payer, invoice —
   :mod:`domain.payment_notices`): a bank line Renkei reconciled, or an invoice the ERP reports paid by
   other means (a person matched the deposit in the ERP; read while a notice waits). A notice nothing
   matched in time → one ``PAYMENT_NOTICE_UNMATCHED`` review item. A notice never writes to the ERP. ERPs
   without bank lines: the same, against the invoices their payment status reports paid.
6. one table artifact: deposits auto-matched / sent to approval / unmatched, yen applied and fees.

An individual payer's name is masked (:func:`domain.payer.payer_display`) in run names, review items,
artifacts and logs; only the approval form shows it to finance.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import get_run_context

from renkei.tasks.approval_expiry import rerequest_expired
from renkei.tasks.payment_notices import settle_payment_notices
from renkei.tasks.payments import pending_writebacks
from renkei.tasks.reporting import run_name, RunReport, flush, publish_report, report_progress
from renkei.tasks.runtime import get_runtime
from renkei.tasks.housekeeping import reap_dead_runs
from renkei.tasks.preflight import preflight
from renkei.tasks.review_retries import finish_retries, pending_retries
from renkei.tasks.payment_writeback_steps import (FLOW, _RUNS, restart_expired_approval, read_open_invoices, read_parked, reconcile_batch,
                                                  report_invalid_line, resume_interrupted, status_from_erp, write_back)

CURSOR = "payment-writeback:freee-deposits"


def _run_name() -> str:
    return run_name(FLOW)


@flow(name=FLOW, flow_run_name=_run_name, log_prints=False)
def payment_writeback(lease_seconds: int = 300, start_approvals: bool = True, max_pages: int = 1000) -> dict[str, Any]:
    """Bank deposits → payments on freee deals (fee as 支払手数料) → HubSpot payment status."""
    reap_dead_runs(FLOW)  # earlier runs killed mid-way: marked Crashed, their leases freed
    preflight(FLOW)  # connections, store and the CRM schema, or one line naming the setting to fix
    log = get_run_logger()
    rt = get_runtime()
    flow_run_id = str(get_run_context().flow_run.id)
    report = RunReport(FLOW, flow_run_id)
    if not rt.erp.capabilities.bank_lines:
        # the ERP has no bank lines to match: it knows which invoices are paid; the CRM deal shows that
        report.merge(status_from_erp(flow_run_id))
        # payment notices: closed against the invoices the ERP reports paid (recorded by the step above)
        report.merge(settle_payment_notices(flow_run_id))
        summary = publish_report(report, "payment-writeback: ERP payment status → CRM")
        log.info("payment-writeback: %s", summary)
        return summary
    try:
        resumed, touched = resume_interrupted(flow_run_id, lease_seconds)
        report.merge(resumed)
        n_open = read_open_invoices(flow_run_id)
        state = _RUNS[flow_run_id]
        report.notes.extend(state.book.skipped[:20])
        if start_approvals:  # approvals that expired unanswered are asked again, once (tasks.approval_expiry)
            rerequest_expired(rt, report, approval_flow="payment-approval", entity="deposit",
                              entity_key_of=lambda run: str((run.parameters or {}).get("deposit_id") or ""),
                              restart=lambda run: restart_expired_approval(run, state, report), review_flow=FLOW)
            flush(rt.store, report)
        if pending_writebacks(rt, limit=1):  # a run that died before telling HubSpot: deliver that first
            report.merge(write_back(flow_run_id, touched))
        retries = pending_retries(rt, FLOW, "deposit")  # decided "fixed at source → retry": read again, once
        parked, parked_report = read_parked(flow_run_id, retry=[r.entity_key for r in retries])
        report.merge(parked_report)
        if parked:
            report.merge(reconcile_batch(parked, len(parked), flow_run_id, lease_seconds, start_approvals))
        raw = rt.store.get_cursor(CURSOR)
        cursor = date.fromisoformat(raw) if raw else None
        latest = cursor
        # bank lines on or after the cursor date, each read on its own by the connector (a line waiting to
        # be matched, or partly matched with its remaining amount, is a deposit)
        pages = rt.erp.iter_bank_lines(cursor)
        for page_no, page in enumerate(pages):
            if page_no >= max_pages:
                latest = cursor  # not read to the end: do not move
                break
            ready = []
            page_report = RunReport(FLOW, flow_run_id)
            for line in page:
                day = line.day
                if state.plausible(day):  # an implausible date (1900, 2100) never moves the cursor
                    latest = day if latest is None or day > latest else latest
                if line.error is not None:  # one bad line never stops the page
                    report_invalid_line(state, page_report, line.error, line.id)
                    continue
                dep = line.deposit
                if dep is not None and dep.erp_id not in state.seen:
                    ready.append(dep)
            flush(rt.store, page_report)
            report.merge(page_report)
            if ready:
                report.merge(reconcile_batch(ready, len(ready), flow_run_id, lease_seconds, start_approvals))
            report_progress(report, sum(n for (side, _), n in report.counts.items() if side == "deposits"))
        watermark = latest
        if watermark is not None and state.held_dates:
            watermark = min(watermark, min(state.held_dates))  # never past a deposit someone holds
        if watermark is not None and watermark != cursor:
            rt.store.set_cursor(CURSOR, watermark.isoformat(), flow_run_id)  # after the work is committed
        report.merge(write_back(flow_run_id, touched))
        # payment notices (inbound webhook): closed against the lines reconciled, overdue ones to finance
        report.merge(settle_payment_notices(flow_run_id))
        flush(rt.store, report)
        finish_retries(rt, FLOW, retries)  # passed, or open again with the new reason
        report.notes.append(f"{n_open} open invoices in view")
    finally:
        _RUNS.pop(flow_run_id, None)
    summary = publish_report(report, f"payment-writeback: {rt.erp.capabilities.label} payments → {rt.crm.capabilities.label}")
    log.info("payment-writeback: %s", summary)
    return summary
