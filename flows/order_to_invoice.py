"""order-to-invoice (受注→請求): every HubSpot deal that reaches a won stage becomes one freee請求書 invoice,
exactly once, and the deal shows its number and status.

Per run: read the deals in won stages (probability 1.0 in their pipeline, across pipelines) modified
since the committed cursor, one task per page; for each deal make sure its company has a freee partner,
build the qualified invoice with the pure rules, then either create it through the exactly-once path
(:mod:`tasks.invoicing`) or, when an exception rule fires, open a review item and start one
``invoice-approval`` run for finance (the review item is written before the run is started). The
cursor moves only after a page's work is committed. Deals parked on a review (company not linked,
unreadable deal, a per-deal failure) are retried on every run until they pass; an item closes only when
its deal passed. Any exception while processing one deal is that deal's review item
(``DEAL_PROCESSING_ERROR``), never a failed batch. HubSpot write-backs come from the ledger through the
outbox (:mod:`tasks.outbox`), drained at the start of each run and at the end of each batch. A run that
leaves deals to another live run's claim says so (count + ids) in its summary.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import get_run_context

from renkei.connectors.http import QuotaExhausted
from renkei.tasks.concurrency import drop_run_cache
from renkei.tasks.reporting import records_done, run_name, RunReport, publish_report, report_progress
from renkei.tasks.runtime import get_runtime
from renkei.tasks.housekeeping import reap_dead_runs
from renkei.tasks.preflight import preflight
from renkei.tasks.order_to_invoice_steps import CUSTOMER_CACHE, FLOW, invoice_batch, retry_parked

CURSOR = "order-to-invoice:hubspot-deals"


def _run_name() -> str:
    return run_name(FLOW)


@flow(name=FLOW, flow_run_name=_run_name, log_prints=False)
def order_to_invoice(lease_seconds: int = 300, start_approvals: bool = True, max_pages: int = 1000,
                     deal_ids: list[str] | None = None) -> dict[str, Any]:
    """Won deals → qualified invoices in freee, exactly once; exceptions → finance approval.

    ``deal_ids`` (a webhook-triggered run, ``prefect.yaml`` trigger): just those deals, through the same
    claim path; the cursor, the parked-deal retries and expired approvals are left to the scheduled run
    (the reconciling poll), and so are the dead-run reaper and the preflight checks (a configuration
    error still fails the run, with the error itself), so a burst of won deals is invoiced in seconds."""
    if not deal_ids:  # a webhook run leaves these to the scheduled run: seconds count on that path
        reap_dead_runs(FLOW)  # earlier runs killed mid-way: marked Crashed, their leases freed
        preflight(FLOW)  # connections, store and the CRM schema, or one line naming the setting to fix
    log = get_run_logger()
    rt = get_runtime()
    flow_run_id = str(get_run_context().flow_run.id)
    report = RunReport(FLOW, flow_run_id)
    won = sorted(rt.crm.won_stage_ids())
    if deal_ids:
        return _invoice_deals(rt, report, won, deal_ids, flow_run_id, lease_seconds, start_approvals)
    report.merge(retry_parked(won, flow_run_id, lease_seconds, start_approvals))
    cursor = rt.store.get_cursor(CURSOR)
    # One boundary-safe incremental read for the whole run (pages of up to 200 won deals with their
    # companies and lines; the HTTP layer retries transient errors); one task per page does the work.
    # Upper bound = the run's start: our own write-backs (which bump the modification date) and later
    # edits belong to the next run, so a run always ends.
    started = datetime.fromtimestamp(int(time.time() * 1000) / 1000, tz=timezone.utc)
    try:
        for page_no, batch in enumerate(rt.crm.iter_deal_changes(cursor, stages=won, until=started)):
            if page_no >= max_pages:
                break
            if batch.records:
                report.merge(invoice_batch(batch.records, won, len(batch.records), flow_run_id, lease_seconds,
                                           start_approvals))
            watermark = batch.watermark.encode() if hasattr(batch.watermark, "encode") else batch.watermark
            if watermark is not None and watermark != cursor:
                rt.store.set_cursor(CURSOR, watermark, flow_run_id)  # after the page's work is committed
                cursor = watermark
            report_progress(report, records_done(report), None)
    except QuotaExhausted as exc:
        # Every invoice made so far is committed in the ledger; the cursor stays before the unfinished
        # page, so the next run resumes there (nothing lost or doubled).
        _quota_stop(rt, report, exc, "the next run resumes from the last committed page")
    drop_run_cache(CUSTOMER_CACHE, flow_run_id)
    report.note_held("deal")
    summary = publish_report(report, "order-to-invoice: won deals → invoices")
    log.info("order-to-invoice: %s", summary)
    for note in report.notes:
        if "held by another live run" in note:
            log.warning(note)
    return summary


class _WebhookQueue:
    """The webhook events of won deals as a queue (``renkei.webhooks.ledger``): a run marks its own deals taken,
    then takes the deals of bursts whose runs have not started yet, :data:`TAKE` at a time and at most
    :data:`TAKE_MAX` in all, so a burst behind a full deployment or freee's window is invoiced by the runs
    already under way instead of waiting for a slot each. Only a shortcut: a taken deal's own run still comes
    and finds it invoiced (the claim decides), and a failure here only stops the taking (logged)."""

    TAKE, TAKE_MAX = 5, 200

    def __init__(self, rt: Any, own: list[str]):
        from renkei.webhooks.ledger import DEAL_CHANGED, Ledger

        self.event, self.ledger, self.seen, self.taken = DEAL_CHANGED, Ledger(rt.store.engine), set(own), 0
        self._call(lambda: self.ledger.take(self.event, object_ids=own))

    def take_more(self) -> list[str]:
        if self.taken >= self.TAKE_MAX:
            return []
        more = [d for d in self._call(lambda: self.ledger.take(self.event, limit=self.TAKE)) or [] if d not in self.seen]
        self.seen.update(more)
        self.taken += len(more)
        return more

    def _call(self, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 — a shortcut; the deals' own runs still come
            get_run_logger().warning("webhook queue unavailable (%s); queued deals wait for their own runs",
                                     type(exc).__name__)
            self.TAKE_MAX = 0
            return None


def _quota_stop(rt: Any, report: RunReport, exc: QuotaExhausted, resume: str) -> None:
    """A daily cap — the ERP's or the CRM's, counted under the side whose API it is: the run stops cleanly."""
    side = rt.side_of(exc) or "api"
    report.notes.append(f"{side.upper()} quota exhausted: {exc}; {resume}")
    report.count(side, "quota_exhausted")
    get_run_logger().warning("order-to-invoice stopped: %s quota exhausted (%s)", side.upper(), exc)


def _invoice_deals(rt: Any, report: RunReport, won: list[str], deal_ids: list[str], flow_run_id: str,
                   lease_seconds: int, start_approvals: bool) -> dict[str, Any]:
    ids = list(dict.fromkeys(str(d).strip() for d in deal_ids if str(d).strip()))
    queue = _WebhookQueue(rt, ids)
    todo, total = ids, len(ids)
    try:
        while todo:
            for start in range(0, len(todo), 100):
                chunk = todo[start:start + 100]
                report.merge(invoice_batch(rt.crm.get_deals(chunk), won, len(chunk), flow_run_id, lease_seconds,
                                           start_approvals))
                if total > 100:
                    report_progress(report, records_done(report), total)
            # the deals of later bursts whose runs are still queued (deployment concurrency, freee's window):
            # this run is started and past the wait, so it takes them over a few at a time
            todo = queue.take_more()
            total += len(todo)
            report.count("deal", "taken_from_queue", len(todo))
    except QuotaExhausted as exc:  # the deals not invoiced yet are the scheduled run's (the reconciling poll)
        _quota_stop(rt, report, exc, "the scheduled run invoices the rest")
    drop_run_cache(CUSTOMER_CACHE, flow_run_id)
    report.note_held("deal")
    summary = publish_report(report, f"order-to-invoice: {total} deals from webhooks → invoices")
    get_run_logger().info("order-to-invoice (deals %s): %s", ",".join(ids[:20]), summary)
    return summary
