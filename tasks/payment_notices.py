"""Payment notices in payment-writeback: keep each notice, close it against the reconciled bank line that is
its money, and hand finance the ones no line came for (:mod:`renkei.domain.payment_notices` is the rule).

* :func:`record_settled` — called once a deposit is applied (:func:`renkei.tasks.payments.apply_deposit_once`,
  after the ledger commit): the reconciled line (amount, day, a keyed hash of the payer's comparable name,
  the invoices it paid) is what notices are closed against;
* :func:`settle_payment_notices` — the flow step (a Prefect task working in batches of 500): new notices
  from the webhook receiver's rows (``webhook_event``, ``inbound:payment``, those not kept yet), then
  every open notice matched against the free reconciled lines of its amounts and days, then the overdue
  ones → one ``PAYMENT_NOTICE_UNMATCHED`` review item each (the notice stays matchable: a line that comes
  later closes it and resolves the item).

A notice never writes to the ERP. The payer is shown masked when it is a person (review items, logs).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from prefect import task

from renkei.domain.dates import today_tokyo
from renkei.domain.money import format_yen
from renkei.domain.payer import payer_display
from renkei.domain.payment_notices import (PAYMENT_NOTICE_UNMATCHED, Notice, NoticeRules, SettledDeposit, match_notices,
                                           overdue, payer_key)
from renkei.store.payment_notices import NoticeStore
from renkei.tasks.reporting import RunReport, flush
from renkei.tasks.retry import BATCH_TASK
from renkei.tasks.runtime import get_runtime

log = logging.getLogger("renkei.tasks.payment_notices")

FLOW = "payment-writeback"
BATCH = 500


def notice_rules(settings: Any) -> NoticeRules:
    return NoticeRules(days_before=getattr(settings, "payment_notice_days_before", 2),
                       days_after=getattr(settings, "payment_notice_days_after", 5),
                       unmatched_after_days=getattr(settings, "payment_notice_unmatched_days", 7))


def record_settled(rt: Any, plan: Any, payer_name: str | None) -> None:
    """The applied deposit of ``plan`` as a reconciled line notices can be closed against (idempotent; a
    failure is logged and never undoes or fails the application)."""
    try:
        NoticeStore(rt.store.engine).record_settled(
            plan.deposit_id, plan.amount, plan.received_on, payer_key(payer_name, rt.settings.personal_data_key()),
            [s.invoice_number for s in plan.steps if s.invoice_number])
    except Exception as exc:  # noqa: BLE001 - the payment is applied and committed; only the notice waits
        log.warning("deposit %s: not kept for payment notices (%s)", plan.deposit_id, type(exc).__name__)


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


def _message(row: Any, rules: NoticeRules) -> str:
    who = f" from {row.payer_display}" if row.payer_display else ""
    inv = f" for invoice {row.invoice_number}" if row.invoice_number else ""
    return (f"payment notice {row.notice_key}: {format_yen(int(row.amount))}{who}{inv} on {row.day.isoformat()} — "
            f"no reconciled bank line of that amount between {(row.day - timedelta(days=rules.days_before))} and "
            f"{(row.day + timedelta(days=rules.days_after))}: check the bank account, the amount (a fee deducted?) "
            "and the payer; the notice closes by itself when the line is reconciled")


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
            report.count("notices", "matched")
            report.event(action="close_payment_notice", entity="payment_notice", entity_key=m.notice_key,
                         system="renkei", changes={"deposit": m.deposit_id, "evidence": list(m.evidence)})
            item = items.pop(m.notice_key, None)
            if item is not None:
                rt.store.decide_review(item.id, decision="resolved", decided_by=FLOW, status="resolved",
                                       comment=f"the bank line {m.deposit_id} was reconciled")
        for row in batch:
            if row.notice_key in closed or row.status != "open" or not overdue(_notice(row), today, rules):
                continue
            # the item first, then the state: a crash in between asks again next run, never loses the item
            rt.store.add_review(flow=FLOW, flow_run_id=report.flow_run_id, reason_code=PAYMENT_NOTICE_UNMATCHED,
                                entity="payment_notice", entity_key=row.notice_key, message=_message(row, rules),
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
    """New notices kept, open ones closed against reconciled lines, overdue ones → review items."""
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    rules = notice_rules(rt.settings)
    ingest_notices(rt, report)
    settle_notices(rt, report, today_tokyo(), rules)
    flush(rt.store, report)
    return report


__all__ = ["ingest_notices", "notice_rules", "record_settled", "settle_notices", "settle_payment_notices"]
