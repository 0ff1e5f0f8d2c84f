"""CRM write-back outbox: what HubSpot must show is derived from committed ledger facts, never from the
in-memory results of a batch — so a kill at any line between the ERP write / ledger commit and the CRM
write loses nothing, and the next drain writes it.

How it works
------------
1. A flow commits a ledger fact with ``store.commit(key, owner, external_id, result, writeback=True)``:
   the row is ``writeback = "pending"`` in the same transaction that makes the fact final.
2. :func:`drain` reads pending facts (``Store.outbox``: indexed on ``(writeback, key)``, bounded, oldest
   commit first), turns each into CRM properties with its :class:`OutboxSpec`, merges them per CRM record
   in commit order (a later fact overrides an earlier one: "pending approval" then "created" ends as
   "created"), writes them in batches of 100 (one HubSpot batch call each), and marks exactly the written
   facts ``done``. A record whose write fails stays pending (and gets one ``CRM_WRITEBACK_FAILED`` review
   item); it is retried by the next drain.
3. Flows drain at the start of each run (everything left by a killed run) and at the end of each batch
   (the facts that batch committed, ``keys=``).

Reuse for another flow: define an :class:`OutboxSpec` per ledger key prefix — ``record_id`` (which CRM
record the fact belongs to; ``None`` = nothing to write, the fact is marked done) and ``props`` (the
properties to set; ``None`` likewise) — commit facts with ``writeback=True`` and call
``drain(rt, [spec, ...], report, write=...)`` with the CRM batch-update function of that object type
(default: ``rt.crm.update_deal_properties``, ``{record id: {property: value}}`` → per-input results with
``ok`` / ``index`` / ``error``). All specs of one ``drain`` call write one CRM object type (``entity``).

A write may be repeated only if two runs drain the same pending fact at the same moment (the values are
the same; HubSpot property writes are idempotent); a run never writes a fact it has seen marked done.

The order-to-invoice facts (:data:`INVOICE_SPECS`):

* ``invoice:deal:<deal>`` — the invoice (status created / totals_mismatch, id, number, invoiced at, the
  approver's comment when approved); subscription period / proration keys (``invoice:deal:<deal>:…``)
  are not written back (the deal shows its sale invoice).
* ``approval-pending:deal:<deal>:<draft fingerprint>`` — the draft awaits finance (``pending_approval``);
  ignored once the deal's invoice is committed.
* ``approval-decision:deal:<deal>:<draft fingerprint>`` — finance rejected that draft (``rejected`` and
  the comment).

A pending or decision fact drained after a *later* fact of the same deal was committed (a run killed
before its write-back, drained by the next run after finance decided) is marked done without being
written (:func:`superseded`): the deal never goes back from ``rejected`` to ``pending_approval``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from typing import Any, Callable, Iterable, Sequence

from renkei.store.models import LedgerEntry
from renkei.tasks.reporting import RunReport
from renkei.tasks.runtime import Runtime

BATCH = 100  # records per HubSpot batch call

INVOICE_PREFIX = "invoice:deal:"
PENDING_PREFIX = "approval-pending:deal:"
DECISION_PREFIX = "approval-decision:deal:"


@dataclass(frozen=True)
class OutboxSpec:
    """How committed facts under ``prefix`` become CRM properties."""

    prefix: str
    record_id: Callable[[LedgerEntry], str | None]
    props: Callable[[Runtime, LedgerEntry], dict[str, str] | None]
    entity: str = "deal"  # the CRM object type (review items of failed writes name it)


def _iso(entry: LedgerEntry) -> str:
    at = entry.committed_at
    if at is None:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _deal_of(entry: LedgerEntry, prefix: str) -> str | None:
    rest = entry.key.removeprefix(prefix)
    return rest.split(":", 1)[0] or None


def _invoice_record(entry: LedgerEntry) -> str | None:
    rest = entry.key.removeprefix(INVOICE_PREFIX)
    return None if ":" in rest else rest  # subscription periods / prorations: no deal write-back


def invoice_props(rt: Runtime, entry: LedgerEntry) -> dict[str, str] | None:
    result = entry.result or {}
    props = {"renkei_invoice_status": str(result.get("status") or "created"),
             "renkei_invoice_id": str(entry.external_id or ""),
             "renkei_invoice_number": str(result.get("number") or ""),
             "renkei_invoiced_at": _iso(entry)}
    if result.get("comment"):
        props["renkei_invoice_comment"] = str(result["comment"])[:1000]
    return props


def _when(entry: LedgerEntry):
    at = entry.committed_at
    return at.replace(tzinfo=timezone.utc) if at is not None and at.tzinfo is None else at


def superseded(rt: Runtime, entry: LedgerEntry, prefix: str) -> bool:
    """A later committed fact about the same deal stands (an invoice, a decision, a newer draft awaiting
    finance): this older fact must not be written over it. Facts drained in one call are merged in commit
    order anyway; this guards facts drained late — a run killed before its write-back leaves its
    ``pending_approval`` pending while finance rejects or approves meanwhile, and the next run's drain
    must not set the deal back to ``pending_approval``."""
    deal = _deal_of(entry, prefix)
    if not deal:
        return False
    mine = _when(entry)
    invoiced = rt.store.ledger_entry(INVOICE_PREFIX + deal)
    others = [invoiced] if invoiced is not None else []
    others += rt.store.ledger_entries(f"{PENDING_PREFIX}{deal}:") + rt.store.ledger_entries(f"{DECISION_PREFIX}{deal}:")
    return any(o.key != entry.key and o.status == "committed" and mine is not None and _when(o) is not None
               and _when(o) > mine for o in others)


def pending_props(rt: Runtime, entry: LedgerEntry) -> dict[str, str] | None:
    deal = _deal_of(entry, PENDING_PREFIX)
    invoiced = rt.store.ledger_entry(INVOICE_PREFIX + str(deal))
    if invoiced is not None and invoiced.status == "committed":
        return None  # invoiced since: the invoice fact is what the deal shows
    if superseded(rt, entry, PENDING_PREFIX):
        return None  # decided (or asked again about a newer draft) since
    return {"renkei_invoice_status": "pending_approval"}


def decision_props(rt: Runtime, entry: LedgerEntry) -> dict[str, str] | None:
    if superseded(rt, entry, DECISION_PREFIX):
        return None  # the deal was invoiced, or a changed deal awaits finance again, since this decision
    result = entry.result or {}
    props = {"renkei_invoice_status": str(result.get("status") or "rejected")}
    if result.get("comment"):
        props["renkei_invoice_comment"] = str(result["comment"])[:1000]
    return props


INVOICE_SPECS: tuple[OutboxSpec, ...] = (
    OutboxSpec(PENDING_PREFIX, lambda e: _deal_of(e, PENDING_PREFIX), pending_props),
    OutboxSpec(DECISION_PREFIX, lambda e: _deal_of(e, DECISION_PREFIX), decision_props),
    OutboxSpec(INVOICE_PREFIX, _invoice_record, invoice_props),
)


def kill_before_writeback_hook() -> None:
    """Test hook: ``RENKEI_TEST_KILL_BEFORE_WRITEBACK=1`` raises (as a process death would stop the run)
    where a kill between the ledger commit and the CRM write would fall."""
    import os

    from renkei.tasks.invoicing import SimulatedCrash

    if os.environ.get("RENKEI_TEST_KILL_BEFORE_WRITEBACK"):
        raise SimulatedCrash("simulated kill after the ledger commit, before the CRM write-back")


def drain(rt: Runtime, specs: Sequence[OutboxSpec], report: RunReport, *, keys: Iterable[str] | None = None,
          write: Callable[[dict[str, dict[str, str]]], list[Any]] | None = None, max_batches: int = 50) -> int:
    """Write pending facts to the CRM (module docstring). ``keys`` narrows to those ledger keys (a batch's
    own facts); returns the number of records written."""
    write = write or rt.crm.update_deal_properties
    by_prefix = sorted(specs, key=lambda s: -len(s.prefix))  # the most specific prefix wins
    prefixes = [s.prefix for s in specs]
    key_list = list(keys) if keys is not None else None
    written = 0
    failed_records: set[str] = set()
    for _ in range(max_batches):
        entries = rt.store.outbox(prefixes, limit=BATCH * 5, keys=key_list)
        entries = [e for e in entries if e.key not in failed_records]
        if not entries:
            break
        props_by_record: dict[str, dict[str, str]] = {}
        keys_by_record: dict[str, list[str]] = {}
        entity_of: dict[str, str] = {}
        nothing: list[str] = []
        for entry in entries:  # oldest commit first: later facts override earlier ones
            spec = next(s for s in by_prefix if entry.key.startswith(s.prefix))
            record = spec.record_id(entry)
            props = spec.props(rt, entry) if record else None
            if not record or not props:
                nothing.append(entry.key)
                continue
            if record not in props_by_record and len(props_by_record) >= BATCH:
                continue  # the next round
            props_by_record.setdefault(record, {}).update(props)
            keys_by_record.setdefault(record, []).append(entry.key)
            entity_of[record] = spec.entity
        if nothing:
            rt.store.mark_written(nothing)
        if not props_by_record:
            if not nothing:
                break
            continue
        order = list(props_by_record)
        results = write(props_by_record)
        bad = {order[r.index]: r for r in results if not r.ok}
        done = [k for rec in order if rec not in bad for k in keys_by_record[rec]]
        rt.store.mark_written(done)
        written += len(order) - len(bad)
        report.count("crm", "updated", len(order) - len(bad))
        for rec, r in bad.items():
            report.review(reason_code="CRM_WRITEBACK_FAILED", entity=entity_of[rec], entity_key=rec,
                          message=f"{entity_of[rec]} write-back failed (retried next run): {r.error}", side="crm")
            failed_records.update(keys_by_record[rec])
    return written
