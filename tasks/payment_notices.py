"""Payment notices in payment-writeback: keep each notice, close it against the settled money that is its
money, and hand finance the ones nothing settled came for (:mod:`renkei.domain.payment_notices` is the rule).

* :func:`record_settled` — called once a deposit is applied (:func:`renkei.tasks.payments.apply_deposit_once`,
  after the ledger commit): the reconciled line (amount, day, a keyed hash of the payer's comparable name,
  the invoices it paid) is what notices are closed against; what it paid on each invoice is noted as
  accounted for (``notice-invoice-paid``), so the same money is never settled twice;
* :func:`record_paid_invoices` — invoices the ERP reports paid (``payment_status``): each rise of an invoice's
  paid amount not accounted for — a person matched the deposit in the ERP, or an ERP without bank lines
  (where payment-writeback reads the payment status anyway, :mod:`tasks.payment_status`) — is settled money
  of its own (:func:`~renkei.domain.payment_notices.paid_in_erp`); with bank lines, the payment status is read
  for it (:func:`read_paid_invoices`, its own watermark) only while some notice waits;
* :func:`settle_payment_notices` — the flow step (a Prefect task working in batches of 500): new notices
  from the webhook receiver's rows (``webhook_event``, ``inbound:payment``, those not kept yet), then
  every open notice matched against the free settled money of its amounts and days, then the overdue
  ones → one ``PAYMENT_NOTICE_UNMATCHED`` review item each (the notice stays matchable: money settled
  later closes it and resolves the item). Each closure is an audit event saying how the money was settled
  (``reconciled_by_renkei`` / ``paid_in_erp``).

A notice never writes to the ERP. The payer is shown masked when it is a person (review items, logs).
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from typing import Any

from prefect import task

from renkei.domain.dates import today_tokyo
from renkei.domain.money import format_yen
from renkei.domain.payer import payer_display
from renkei.domain.payment_notices import (PAID_IN_ERP, PAID_IN_ERP_PREFIX, PAYMENT_NOTICE_UNMATCHED, Notice,
                                           NoticeRules, SettledDeposit, how_settled, match_notices, overdue,
                                           paid_in_erp, payer_key)
from renkei.store.payment_notices import NoticeStore
from renkei.tasks.reporting import RunReport, flush
from renkei.tasks.retry import BATCH_TASK
from renkei.tasks.runtime import get_runtime

log = logging.getLogger("renkei.tasks.payment_notices")

FLOW = "payment-writeback"
BATCH = 500
ACCOUNTED = "notice-invoice-paid"  # base_snapshot: ERP invoice id → {"paid": the paid amount accounted for}
PAID_CURSOR = "payment-notices:erp-payment-status"  # with bank lines: the payment status read for notices


def notice_rules(settings: Any) -> NoticeRules:
    return NoticeRules(days_before=getattr(settings, "payment_notice_days_before", 2),
                       days_after=getattr(settings, "payment_notice_days_after", 5),
                       unmatched_after_days=getattr(settings, "payment_notice_unmatched_days", 7))


def record_settled(rt: Any, plan: Any, payer_name: str | None) -> None:
    """The applied deposit of ``plan`` as a reconciled line notices can be closed against, and what it paid
    on each invoice as accounted for (idempotent; a failure is logged and never undoes or fails the
    application)."""
    try:
        new = NoticeStore(rt.store.engine).record_settled(
            plan.deposit_id, plan.amount, plan.received_on, payer_key(payer_name, rt.settings.personal_data_key()),
            [s.invoice_number for s in plan.steps if s.invoice_number])
        if new:  # once per deposit: the ERP will report these invoices paid by this very money
            paid: dict[str, int] = {}
            for s in plan.steps:
                if not str(s.invoice_id).startswith("deal:"):
                    paid[str(s.invoice_id)] = paid.get(str(s.invoice_id), 0) + int(s.applied) + int(s.fee)
            kept = rt.store.get_snapshots(ACCOUNTED, sorted(paid))
            for invoice_id, amount in paid.items():
                before = int((kept[invoice_id].fields or {}).get("paid", 0)) if invoice_id in kept else 0
                rt.store.put_snapshot(ACCOUNTED, invoice_id, {"paid": before + amount})
    except Exception as exc:  # noqa: BLE001 - the payment is applied and committed; only the notice waits
        log.warning("deposit %s: not kept for payment notices (%s)", plan.deposit_id, type(exc).__name__)


def record_paid_invoices(rt: Any, statuses: Any, report: RunReport | None = None) -> int:
    """Invoices the ERP reports (:class:`~renkei.connectors.base.InvoicePaymentStatus`): each rise of a paid
    amount not accounted for yet becomes settled money notices can be closed against; how many. An invoice
    first seen here that a bank line Renkei reconciled on its payment day names is accounted for by that
    line. A failure is logged: the payment status path goes on, the notices wait."""
    paid = [s for s in statuses if s.paid_amount > 0 and s.paid_on is not None]
    if not paid:
        return 0
    try:
        notices = NoticeStore(rt.store.engine)
        kept = rt.store.get_snapshots(ACCOUNTED, sorted({s.invoice_erp_id for s in paid}))
        ours: dict[Any, set[str]] = {}
        for row in notices.settled_on({s.paid_on for s in paid if s.invoice_erp_id not in kept}):
            if not row.deposit_id.startswith(PAID_IN_ERP_PREFIX):
                ours.setdefault(row.day, set()).update(str(n) for n in row.invoice_numbers or ())
        added = 0
        for s in paid:
            if s.invoice_erp_id in kept:
                accounted = int((kept[s.invoice_erp_id].fields or {}).get("paid", 0))
            else:
                accounted = s.paid_amount if s.invoice_number and s.invoice_number in ours.get(s.paid_on, ()) else 0
            got = paid_in_erp(s.invoice_erp_id, s.invoice_number, s.paid_amount, s.paid_on, accounted)
            if got is not None and notices.record_settled(got.deposit_id, got.amount, got.day, None,
                                                          got.invoice_numbers):
                added += 1
            if accounted != s.paid_amount:  # a rise settled now, or a payment taken back in the ERP
                rt.store.put_snapshot(ACCOUNTED, s.invoice_erp_id, {"paid": s.paid_amount})
        if report is not None:
            report.count("notices", "paid_in_erp", added)
        return added
    except Exception as exc:  # noqa: BLE001 - the payment status is written; only the notices wait
        log.warning("invoice payments not kept for payment notices (%s)", type(exc).__name__)
        return 0


def read_paid_invoices(rt: Any, report: RunReport) -> int:
    """With bank lines, payment-writeback reads no payment status: read it here (its own watermark, committed
    after the read) for :func:`record_paid_invoices` — invoices a person settled in the ERP."""
    raw = rt.store.get_cursor(PAID_CURSOR)
    since = json.loads(raw) if raw else None
    added = 0
    for batch in rt.erp.iter_invoice_payment_changes(since):
        added += record_paid_invoices(rt, batch.records, report)
        if batch.watermark is not None and batch.watermark != since:
            rt.store.set_cursor(PAID_CURSOR, json.dumps(batch.watermark), report.flow_run_id)
            since = batch.watermark
    return added


def ingest_notices(rt: Any, report: RunReport) -> int:
    """Notices the receiver took since the cursor → ``payment_notice`` rows (a redelivered key once)."""
    from renkei.webhooks.inbound import validate

    notices = NoticeStore(rt.store.engine)
    secret = rt.settings.personal_data_key()
    after = 0
    added = 0
    while True:
        rows = notices.webhook_payments(after, BATCH)  # the receiver's rows not kept yet (any order of commit)
        for event_id, key, body in rows:
            parsed, _errors = validate("payment", body)
            if parsed is None:  # refused at the door already; an old row of another shape is skipped
                report.count("notices", "invalid")
                continue
            if notices.add_notice(notice_key=key, webhook_event_id=event_id, amount=parsed.amount, day=parsed.date,
                                  payer_key=payer_key(parsed.payer_name, secret),
                                  payer_display=payer_display(parsed.payer_name)[:255],
                                  invoice_number=parsed.invoice_number):
                added += 1
        if rows:
            after = rows[-1][0]
        if len(rows) < BATCH:
            break
    report.count("notices", "received", added)
    return added


def _notice(row: Any) -> Notice:
    return Notice(row.notice_key, int(row.amount), row.day, row.payer_key, row.invoice_number)


def _message(row: Any, rules: NoticeRules, bank_lines: bool = True) -> str:
    who = f" from {row.payer_display}" if row.payer_display else ""
    inv = f" for invoice {row.invoice_number}" if row.invoice_number else ""
    seen = "reconciled bank line or invoice paid in the ERP" if bank_lines else "invoice paid in the ERP"
    return (f"payment notice {row.notice_key}: {format_yen(int(row.amount))}{who}{inv} on {row.day.isoformat()} — "
            f"no {seen} of that amount between {(row.day - timedelta(days=rules.days_before))} and "
            f"{(row.day + timedelta(days=rules.days_after))}: check the bank account, the amount (a fee deducted?) "
            "and the payer; the notice closes by itself when the money is settled")


def settle_notices(rt: Any, report: RunReport, today: date, rules: NoticeRules) -> None:
    notices = NoticeStore(rt.store.engine)
    items = {i.entity_key: i for i in rt.store.list_reviews("open", flow=FLOW)
             if i.reason_code == PAYMENT_NOTICE_UNMATCHED}
    after = 0
    while True:
        batch = notices.notices(after_id=after, limit=BATCH)
        if not batch:
            break
        after = batch[-1].id
        first = min(r.day for r in batch) - timedelta(days=rules.days_before)
        last = max(r.day for r in batch) + timedelta(days=rules.days_after)
        lines = [SettledDeposit(d.deposit_id, int(d.amount), d.day, d.payer_key, tuple(d.invoice_numbers or ()))
                 for d in notices.free_settled({r.amount for r in batch}, first, last)]
        closed: set[str] = set()
        for m in match_notices([_notice(r) for r in batch], lines, rules):
            if not notices.close(m.notice_key, m.deposit_id, ",".join(m.evidence)):
                continue  # another worker closed it (or took the line) first
            closed.add(m.notice_key)
            how = how_settled(m.deposit_id)
            report.count("notices", "matched")
            changes: dict[str, Any] = {"deposit": m.deposit_id, "evidence": list(m.evidence), "how": how}
            if how == PAID_IN_ERP:
                changes["invoice"] = m.deposit_id.removeprefix(PAID_IN_ERP_PREFIX).rsplit(":", 1)[0]
            report.event(action="close_payment_notice", entity="payment_notice", entity_key=m.notice_key,
                         system="renkei", changes=changes)
            item = items.pop(m.notice_key, None)
            if item is not None:
                rt.store.decide_review(item.id, decision="resolved", decided_by=FLOW, status="resolved",
                                       comment=(f"invoice {changes['invoice']} was paid in the ERP"
                                                if how == PAID_IN_ERP else f"the bank line {m.deposit_id} was reconciled"))
        for row in batch:
            if row.notice_key in closed or row.status != "open" or not overdue(_notice(row), today, rules):
                continue
            # the item first, then the state: a crash in between asks again next run, never loses the item
            rt.store.add_review(flow=FLOW, flow_run_id=report.flow_run_id, reason_code=PAYMENT_NOTICE_UNMATCHED,
                                entity="payment_notice", entity_key=row.notice_key,
                                message=_message(row, rules, rt.erp.capabilities.bank_lines),
                                payload={"amount": int(row.amount), "day": row.day.isoformat(),
                                         "payer": row.payer_display, "invoice_number": row.invoice_number,
                                         "window_days": [-rules.days_before, rules.days_after]})
            notices.mark_unmatched(row.notice_key)
            report.count("notices", "unmatched")
            report.count("amount_yen", "notice_unmatched", int(row.amount))
        if len(batch) < BATCH:
            break


@task(**BATCH_TASK)
def settle_payment_notices(flow_run_id: str) -> RunReport:
    """New notices kept, open ones closed against settled money, overdue ones → review items."""
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    rules = notice_rules(rt.settings)
    ingest_notices(rt, report)
    caps = rt.erp.capabilities
    # without bank lines the flow's payment-status step recorded the paid invoices already
    if caps.bank_lines and caps.payment_status and NoticeStore(rt.store.engine).has_open():
        try:
            read_paid_invoices(rt, report)
        except Exception as exc:  # noqa: BLE001 - the deposits are done; these notices wait for the next run
            report.notes.append(f"invoices paid in the ERP not read for payment notices ({type(exc).__name__}); "
                                "read again next run")
    settle_notices(rt, report, today_tokyo(), rules)
    flush(rt.store, report)
    return report


__all__ = ["ingest_notices", "notice_rules", "read_paid_invoices", "record_paid_invoices", "record_settled",
           "settle_notices", "settle_payment_notices"]
