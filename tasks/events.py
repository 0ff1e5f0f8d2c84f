"""Custom Prefect events for business facts, so ops can filter the event feed and automate on them.

=========================  ==============================================  =====================================
event                      resource (``prefect.resource.id``)             labels / related
=========================  ==============================================  =====================================
``renkei.invoice.created``  ``<erp>.invoice.<invoice id>``                 ``renkei.deal.id``, ``renkei.invoice.number``;
                                                                           related ``<crm>.deal.<id>`` (role deal)
``renkei.payment.applied``  ``<erp>.payment.<payment id>``                 ``renkei.deal.id``, ``renkei.invoice.id``,
                                                                           ``renkei.deposit.id``; related invoice, deal
``renkei.approval.rerequested`` ``prefect.flow-run.<new approval run>``  ``renkei.entity``, ``renkei.entity-key``,
                                                                           ``renkei.expired-run.id``
``renkei.review.opened``    ``renkei.review.<review item id>``             ``renkei.flow``, ``renkei.reason-code``,
                                                                           ``renkei.entity``, ``renkei.entity-key``,
                                                                           ``renkei.flow-run.id``
=========================  ==============================================  =====================================

``<crm>`` / ``<erp>`` are the configured systems' registry names (``hubspot``, ``freee``, ``salesforce``,
``moneyforward``). Amounts travel in the payload as integer yen. No personal data and no message text is put in an event (the
review message stays in the state store). Inside a flow or task run Prefect adds the flow run, flow and
deployment as related resources. Emitting is best effort and never fails a run: ``emit_event`` is
fire-and-forget, and without a Prefect API nothing is sent.

A review is *opened* when :meth:`store.repo.Store.add_review` created the item (:func:`add_reviews`); a
still-open item that a later batch or run reports again emits nothing (otherwise every run would re-announce the
same backlog).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

log = logging.getLogger(__name__)

INVOICE_CREATED = "renkei.invoice.created"
PAYMENT_APPLIED = "renkei.payment.applied"
REVIEW_OPENED = "renkei.review.opened"
APPROVAL_REREQUESTED = "renkei.approval.rerequested"


def _naive_utc(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo is not None else dt


def add_reviews(store: Any, report: Any) -> list[Any]:
    """Write ``report.reviews`` (:meth:`Store.add_review`) and return the rows this call *opened*: a row created
    before the call is an open item reported again, not a new one."""
    since = _naive_utc(datetime.now(timezone.utc)) - timedelta(milliseconds=1)
    rows = [store.add_review(flow=report.flow, flow_run_id=report.flow_run_id, **r) for r in report.reviews]
    return [row for row in rows if row.created_at is not None and _naive_utc(row.created_at) >= since]


def _label(value: Any) -> str:
    return "" if value is None else str(value)[:200]


def business_events(flow: str, flow_run_id: str | None, audit: Iterable[dict[str, Any]],
                    reviews: Iterable[Any], *, crm: str | None = None, erp: str | None = None) -> list[dict[str, Any]]:
    """The events (``emit_event`` keyword arguments) for a batch's audit events and the review rows it opened.
    ``crm`` / ``erp``: the systems' registry names (default: the configured ones)."""
    out: list[dict[str, Any]] = []
    audit = list(audit)
    if audit and (crm is None or erp is None):
        from renkei.tasks.reporting import systems

        names = systems()
        crm, erp = crm or names["crm_name"], erp or names["erp_name"]
    for a in audit:
        ch = a.get("changes") or {}
        if a.get("action") == "create" and a.get("entity") == "invoice" and a.get("system") == "erp":
            deal = _label(a.get("entity_key"))
            out.append(dict(
                event=INVOICE_CREATED,
                resource={"prefect.resource.id": f"{erp}.invoice.{_label(ch.get('invoice_id'))}",
                          "prefect.resource.name": _label(ch.get("number") or ch.get("invoice_id")),
                          "renkei.deal.id": deal, "renkei.invoice.number": _label(ch.get("number")),
                          "renkei.flow": flow},
                related=[{"prefect.resource.id": f"{crm}.deal.{deal}", "prefect.resource.role": "deal"}],
                payload={"total": ch.get("total"), "reference": ch.get("reference"), "approved_by": a.get("actor")
                         if a.get("actor") != flow else None}))
        elif a.get("action") == "payment" and a.get("entity") == "invoice" and a.get("system") == "erp":
            invoice, deal = _label(a.get("entity_key")), _label(ch.get("deal_id"))
            out.append(dict(
                event=PAYMENT_APPLIED,
                resource={"prefect.resource.id": f"{erp}.payment.{_label(ch.get('payment_id'))}",
                          "renkei.invoice.id": invoice, "renkei.deal.id": deal,
                          "renkei.deposit.id": _label(ch.get("deposit_id")), "renkei.flow": flow},
                related=[{"prefect.resource.id": f"{erp}.invoice.{invoice}", "prefect.resource.role": "invoice"},
                         {"prefect.resource.id": f"{erp}.deal.{deal}", "prefect.resource.role": "deal"}],
                payload={"amount": ch.get("amount"), "date": _label(ch.get("date"))}))
        elif a.get("action") == "approval_rerequested":
            out.append(dict(
                event=APPROVAL_REREQUESTED,
                resource={"prefect.resource.id": f"prefect.flow-run.{_label(ch.get('flow_run_id'))}",
                          "renkei.entity": _label(a.get("entity")), "renkei.entity-key": _label(a.get("entity_key")),
                          "renkei.expired-run.id": _label(ch.get("expired_run")), "renkei.flow": flow},
                related=[{"prefect.resource.id": f"prefect.flow-run.{_label(ch.get('expired_run'))}",
                          "prefect.resource.role": "expired-approval"}],
                payload={"approval_flow": ch.get("approval_flow")}))
    for row in reviews:
        out.append(dict(
            event=REVIEW_OPENED,
            resource={"prefect.resource.id": f"renkei.review.{row.id}",
                      "prefect.resource.name": f"{row.reason_code} {row.entity} {row.entity_key}"[:200],
                      "renkei.flow": flow, "renkei.reason-code": _label(row.reason_code),
                      "renkei.entity": _label(row.entity), "renkei.entity-key": _label(row.entity_key),
                      "renkei.flow-run.id": _label(flow_run_id)},
            payload={"review_id": row.id}))
    return out


def emit_business_events(flow: str, flow_run_id: str | None, audit: Iterable[dict[str, Any]],
                         reviews: Iterable[Any] = ()) -> int:
    """Emit the business events of one flushed batch; returns how many were handed to Prefect. Never raises."""
    try:
        events = business_events(flow, flow_run_id, audit, reviews)
        if not events:
            return 0
        from prefect.events import emit_event

        sent = 0
        for ev in events:
            if emit_event(**ev) is not None:
                sent += 1
        return sent
    except Exception as exc:  # noqa: BLE001 - events are best effort; the facts are in the state store
        log.warning("business events not emitted (%s)", type(exc).__name__)
        return 0
