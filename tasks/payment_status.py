"""Payment status from the ERP (``bank_lines`` False, ``payment_status`` True): no bank line is matched by
Renkei; the ERP knows which invoices are paid, and the CRM deal shows it.

Per run: read :meth:`ERPMoney.iter_invoice_payment_changes` from the committed watermark (opaque, from the
ERP's data, never today's date); each invoice's state is kept per CRM deal (base_snapshot
``deal-invoice-payments``: invoice id → total, outstanding, paid date, due date), so a CRM deal with several
invoices is judged on all of them; the CRM deal of an invoice comes from its reference
(``renkei:deal:<id>``) or order-to-invoice's ledger. The ``renkei_payment_*`` keys are written through the
same write path as the bank-line path (:func:`tasks.payments.write_payment_status`: only changed values,
the last accepted ones kept in ``deal-payment``); a CRM deal whose write failed stays pending (base_snapshot
``deal-payment-pending``) and is written again next run. Every invoice payment read is also settled money
payment notices are closed against (:func:`tasks.payment_notices.record_paid_invoices`, any invoice, from the
CRM or not). The watermark is committed after each batch.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from renkei.connectors.base import InvoicePaymentStatus
from renkei.tasks.payment_notices import record_paid_invoices
from renkei.tasks.payments import crm_deal_for_invoices, write_payment_status
from renkei.tasks.reporting import RunReport
from renkei.tasks.runtime import Runtime

CURSOR = "payment-writeback:erp-payment-status"
STATE_ENTITY = "deal-invoice-payments"
PENDING_ENTITY = "deal-payment-pending"
PENDING_KEY = "pending"
_REF = re.compile(r"^renkei:deal:([^:\s]+)")


def _state(s: InvoicePaymentStatus) -> dict[str, Any]:
    return {"total": s.total, "outstanding": s.outstanding, "status": s.status,
            "paid_on": s.paid_on.isoformat() if s.paid_on else None,
            "due_date": s.due_date.isoformat() if s.due_date else None}


def _status(invoice_id: str, f: dict[str, Any]) -> InvoicePaymentStatus:
    day = lambda v: date.fromisoformat(v) if v else None  # noqa: E731
    return InvoicePaymentStatus(invoice_erp_id=invoice_id, total=int(f["total"]), outstanding=int(f["outstanding"]),
                                status=f.get("status") or "", paid_on=day(f.get("paid_on")),
                                due_date=day(f.get("due_date")))


def _pending(rt: Runtime) -> set[str]:
    snap = rt.store.get_snapshot(PENDING_ENTITY, PENDING_KEY)
    return set((snap.fields or {}).get("deals", [])) if snap else set()


def write_deals(rt: Runtime, crm_ids: set[str], report: RunReport) -> set[str]:
    """Write the payment status of these CRM deals from their kept invoice states; the ones that show it."""
    snaps = rt.store.get_snapshots(STATE_ENTITY, sorted(crm_ids))
    wanted = {crm: [_status(inv, f) for inv, f in (snap.fields or {}).items()] for crm, snap in snaps.items()}
    synced = write_payment_status(rt, {c: v for c, v in wanted.items() if v}, report)
    rt.store.put_snapshot(PENDING_ENTITY, PENDING_KEY, {"deals": sorted((_pending(rt) | crm_ids) - synced)})
    return synced


def record_payment_facts(rt: Runtime, paid: list[tuple[str, InvoicePaymentStatus]], *, owner: str) -> None:
    """Each payment the ERP reports (an invoice's paid amount) is a committed ledger fact
    ``payment:status:<invoice id>:<paid amount>`` — the payment-status path's counterpart of the bank-line
    path's ``payment:deposit:<id>``. Renkei wrote nothing to the ERP; the CRM is written through the deal
    snapshots above, so the fact carries no outbox state. Seen again (a rerun), it is left as it is."""
    for crm, s in paid:
        key = f"payment:status:{s.invoice_erp_id}:{s.paid_amount}"
        claim = rt.store.claim(key, owner)
        if claim.state in ("won", "recovered"):
            rt.store.commit(key, owner, s.invoice_erp_id, {
                "deal": crm, "paid_amount": s.paid_amount, "outstanding": s.outstanding, "status": s.status,
                "paid_on": s.paid_on.isoformat() if s.paid_on else None})


def sync_payment_status(rt: Runtime, report: RunReport, *, flow_run_id: str | None = None,
                        max_batches: int = 1000) -> int:
    """One pass of the ERP's payment status changes → CRM deals; how many invoices were read."""
    raw = rt.store.get_cursor(CURSOR)
    since = json.loads(raw) if raw else None
    retry = _pending(rt)
    if retry:
        write_deals(rt, retry, report)
    n = 0
    for i, batch in enumerate(rt.erp.iter_invoice_payment_changes(since)):
        if i >= max_batches:
            break
        n += len(batch.records)
        no_ref = [s.invoice_erp_id for s in batch.records if not _REF.match(s.reference or "")]
        from_ledger = crm_deal_for_invoices(rt, no_ref)
        by_crm: dict[str, dict[str, dict[str, Any]]] = {}
        paid: list[tuple[str, InvoicePaymentStatus]] = []
        for s in batch.records:
            m = _REF.match(s.reference or "")
            crm = m.group(1) if m else from_ledger.get(s.invoice_erp_id)
            if crm is None:
                report.count("invoices", "not_from_crm")
                continue
            by_crm.setdefault(crm, {})[s.invoice_erp_id] = _state(s)
            if s.paid_amount > 0:
                paid.append((crm, s))
        kept = rt.store.get_snapshots(STATE_ENTITY, sorted(by_crm))
        for crm, states in by_crm.items():
            merged = {**((kept[crm].fields or {}) if crm in kept else {}), **states}
            rt.store.put_snapshot(STATE_ENTITY, crm, merged)
        if by_crm:
            write_deals(rt, set(by_crm), report)
        record_payment_facts(rt, paid, owner=f"payment-writeback:{flow_run_id or rt.worker_id}")
        record_paid_invoices(rt, batch.records, report)  # what payment notices are closed against
        report.count("invoices", "status_read", len(batch.records))
        if batch.watermark is not None and batch.watermark != since:
            rt.store.set_cursor(CURSOR, json.dumps(batch.watermark), flow_run_id)  # after the batch is written
            since = batch.watermark
    return n
