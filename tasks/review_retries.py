"""Carrying out "fixed at source → retry" decisions in the flows that park records (order-to-invoice and
subscription-proration for deals, payment-writeback for deposits; customer-sync has its own, for companies).

A person decides an invalid-record item ``retry`` (``renkei reviews resolve ID --choice retry`` or the UI
form): the item is closed as *resolved* and its decision waits (``Store.pending_decisions``). The owning
flow's next run takes the waiting retries (:func:`pending_retries`), reads those records again with the
records it reads anyway, and then marks each decision carried out, once (:func:`finish_retries`):

* the record passes (no open item of the flow left for it, approvals aside) → ``review_decision_passed``;
* a problem is still there → the run's normal path opened an item with the new reason, which stays open;
  the decision is marked ``review_decision_failed`` with that reason. It is never retried again unless a
  person decides the new item.

A run killed between the re-read and the mark retries once more on the next run (reading is harmless:
every write the re-read leads to is exactly-once on its own ledger key).
"""

from __future__ import annotations

from typing import Any, Iterable

from renkei.domain.decisions import kind_of


def pending_retries(rt, flow: str, entity: str) -> list[Any]:
    """Decided ``retry`` items of ``flow`` about ``entity`` records not carried out yet (oldest first)."""
    return [i for i in rt.store.pending_decisions(flow, entity=entity)
            if i.flow == flow and ((i.decision_data or {}).get("effect") or {}).get("retry") is not None]


def finish_retries(rt, flow: str, items: Iterable[Any]) -> dict[int, str]:
    """Mark each retried decision carried out: ``passed``, or ``failed`` with the open item's new reason."""
    items = list(items)
    if not items:
        return {}
    still: dict[str, list[Any]] = {}
    for item in rt.store.list_reviews("open", flow=flow):
        if kind_of(item.flow, item.reason_code, item.entity, item.payload) != "approval":
            still.setdefault(f"{item.entity}:{item.entity_key}", []).append(item)
    out: dict[int, str] = {}
    for item in items:
        now = still.get(f"{item.entity}:{item.entity_key}", [])
        outcome = "failed" if now else "passed"
        rt.store.mark_applied([item.id], actor=flow, outcome=outcome,
                              details={"retry": f"{item.entity}:{item.entity_key}",
                                       "open_now": [{"id": n.id, "reason_code": n.reason_code} for n in now]})
        out[item.id] = outcome
    return out
