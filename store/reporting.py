"""Reporting snapshots in the state store, and the two read paths built on them: trace and search.

:class:`ReportStore` wraps a :class:`~renkei.store.repo.Store` (same engine, one short transaction per
call). A snapshot is one JSON document (:class:`~renkei.domain.reporting.Snapshot`) plus its drift counts
(the trend) plus one :class:`~renkei.store.models.ReportRecord` per deal, invoice and payment it read:
search and trace read the records of the latest snapshot, and trace adds every audit event keyed by the
deal (``audit_event.deal_id``) — no manual join.

Typed results for the console and the CLI: :class:`Trace` (with :class:`TraceInvoice`,
:class:`TracePayment`, :class:`TraceJournal`, :class:`TraceEvent`) and :class:`SearchHit`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import delete, false, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from renkei.domain.normalise import normalise_company_name
from renkei.domain.reporting import (
    CustomerFact, DealFact, DriftCount, InvoiceFact, Snapshot, mask_name, snapshot_from_json, snapshot_to_json,
)
from renkei.store.db import session_scope
from renkei.store.models import AuditEvent, ReportRecord, ReportSnapshot, SubscriptionBilling
from renkei.store.repo import Store, mask_changes

__all__ = ["ReportStore", "SearchHit", "Trace", "TraceEvent", "TraceInvoice", "TracePayment", "TraceJournal",
           "SEARCH_KINDS", "KEEP_SNAPSHOT_RECORDS"]

SEARCH_KINDS = ("deal", "invoice", "payment")
KEEP_SNAPSHOT_RECORDS = 2  # the records of the latest snapshots are kept; older snapshots keep figures only
KIND_LABELS_JA = {"deal": "商談", "invoice": "請求書", "payment": "入金"}


@dataclass(frozen=True)
class SearchHit:
    kind: str  # deal | invoice | payment
    key: str  # deal id, invoice id, payment id
    day: date | None  # close date / 請求日 / 入金日 (Asia/Tokyo)
    amount: int  # deal amount (税抜) / 請求金額 (税込) / 入金額
    counterparty: str  # company name (a 個人事業者's masked)
    deal_id: str | None
    label: str  # deal name / invoice number / the invoice a payment was applied to


@dataclass(frozen=True)
class TraceInvoice:
    erp_id: str
    number: str | None
    issue_date: date
    due_date: date | None
    subtotal: int
    total: int
    outstanding: int
    rate_totals: tuple[tuple[str, int, int], ...]  # (tax category, 対価の額, 消費税額) per rate
    status: str  # open | paid | cancelled


@dataclass(frozen=True)
class TracePayment:
    id: str
    invoice_erp_id: str
    day: date | None
    amount: int
    fee: int


@dataclass(frozen=True)
class TraceJournal:
    """A revenue allocation (売上按分) of the deal: a subscription billing and its monthly recognition."""

    key: str
    kind: str
    period_start: str
    period_end: str
    amount: int
    invoice_id: str | None
    segments: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class TraceEvent:
    at: datetime
    actor: str
    action: str
    system: str
    entity: str
    entity_key: str
    changes: dict[str, Any]  # personal values masked
    approved_by: str | None  # the approver's e-mail when a person approved (actor ≠ the flow)


@dataclass(frozen=True)
class Trace:
    deal_id: str
    found: bool
    deal: dict[str, Any] = field(default_factory=dict)  # name, amount, stage, pipeline, close_date, won
    company: dict[str, Any] = field(default_factory=dict)  # crm_id, erp_id, name (masked for a 個人事業者)
    invoices: tuple[TraceInvoice, ...] = ()
    payments: tuple[TracePayment, ...] = ()
    journals: tuple[TraceJournal, ...] = ()
    events: tuple[TraceEvent, ...] = ()
    snapshot_taken_at: datetime | None = None

    @property
    def approvers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.approved_by for e in self.events if e.approved_by))

    def to_json(self) -> dict[str, Any]:
        def conv(v: Any) -> Any:
            if isinstance(v, (date, datetime)):
                return v.isoformat()
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            if hasattr(v, "__dataclass_fields__"):
                return {k: conv(getattr(v, k)) for k in v.__dataclass_fields__}
            return v

        out = conv(self)
        out["approvers"] = list(self.approvers)
        return out


def _d(v: str | None) -> date | None:
    return date.fromisoformat(v) if v else None


def _iso(v: date | None) -> str | None:
    return v.isoformat() if v else None


def _approved_by(ev: AuditEvent) -> str | None:
    """A person approved when the actor is an e-mail (flows act under their own names)."""
    return ev.actor if "@" in (ev.actor or "") else None


class ReportStore:
    """Snapshots, drift trend, trace and search over the state store."""

    def __init__(self, store: Store):
        self.store = store
        self.engine = store.engine

    # ------------------------------------------------------------------ snapshots
    def save_snapshot(self, snapshot: Snapshot, *, deals: Iterable[DealFact] = (),
                      invoices: Iterable[InvoiceFact] = (), customers: Iterable[CustomerFact] = (),
                      flow_run_id: str | None = None) -> int:
        """Store ``snapshot`` and the records search and trace read; returns the snapshot id. Records of
        snapshots older than the last :data:`KEEP_SNAPSHOT_RECORDS` are dropped (their figures stay)."""
        data = snapshot_to_json(snapshot)
        items = data.pop("drift_items")
        drift = {c.kind: c.count for c in snapshot.drift_counts}
        with session_scope(self.engine) as s:
            row = ReportSnapshot(taken_at=snapshot.taken_at, as_of=snapshot.as_of.isoformat(),
                                 flow_run_id=flow_run_id, data=data, drift=drift, drift_items=items)
            s.add(row)
            s.flush()
            sid = int(row.id)
        self._save_records(sid, deals, invoices, customers)
        with session_scope(self.engine) as s:
            keep = list(s.exec(select(ReportSnapshot.id).order_by(col(ReportSnapshot.id).desc())
                               .limit(KEEP_SNAPSHOT_RECORDS)))
            if keep:
                s.execute(delete(ReportRecord).where(col(ReportRecord.snapshot_id) < min(keep)))
        return sid

    def _save_records(self, sid: int, deals: Iterable[DealFact], invoices: Iterable[InvoiceFact],
                      customers: Iterable[CustomerFact]) -> None:
        by_crm: dict[str, CustomerFact] = {}
        by_erp: dict[str, CustomerFact] = {}
        for c in customers:
            if c.crm_id:
                by_crm[c.crm_id] = c
            if c.erp_id:
                by_erp[c.erp_id] = c

        parties: dict[int, tuple[str, str, dict[str, Any]]] = {}

        def party(c: CustomerFact | None) -> tuple[str, str, dict[str, Any]]:
            if c is None:
                return "", "", {}
            got = parties.get(id(c))
            if got is None:  # once per customer: normalising a name is the costly part
                name = mask_name(c.name, c.sole_trader)
                got = parties[id(c)] = (name, "" if c.sole_trader else normalise_company_name(c.name),
                                        dict(crm_id=c.crm_id, erp_id=c.erp_id, name=name))
            return got

        rows: list[dict[str, Any]] = []
        table = ReportRecord.__table__

        cols = ("snapshot_id", "kind", "key", "day", "amount", "counterparty", "counterparty_key", "deal_id", "data")
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})"
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

        def flush(force: bool = False) -> None:
            # the driver's executemany with the JSON encoded once here: several times faster than the ORM
            if rows and (force or len(rows) >= 5000):
                params = [tuple(r[c] for c in cols[:-1]) + (dumps(r["data"]),) for r in rows]
                with self.engine.begin() as conn:
                    conn.exec_driver_sql(sql, params)
                rows.clear()

        for d in deals:
            name, key, comp = party(by_crm.get(d.company_crm_id or ""))
            rows.append(dict(snapshot_id=sid, kind="deal", key=d.crm_id, day=_iso(d.close_date), amount=d.amount or 0,
                             counterparty=name, counterparty_key=key, deal_id=d.crm_id,
                             data=dict(name=d.name, stage=d.stage, stage_label=d.stage_label, pipeline=d.pipeline,
                                       probability=str(d.probability), won=d.won, closed=d.closed,
                                       payment_status=d.payment_status, company=comp)))
            flush()
        for inv in invoices:
            name, key, comp = party(by_erp.get(inv.partner_erp_id or ""))
            status = "cancelled" if inv.cancelled else ("paid" if inv.outstanding <= 0 else "open")
            rows.append(dict(snapshot_id=sid, kind="invoice", key=inv.erp_id, day=inv.issue_date.isoformat(),
                             amount=inv.total, counterparty=name, counterparty_key=key, deal_id=inv.deal_crm_id,
                             data=dict(number=inv.number, reference=inv.reference, due_date=_iso(inv.due_date),
                                       subtotal=inv.subtotal, outstanding=inv.outstanding, status=status,
                                       rate_totals=[[r.tax_category, r.subtotal, r.tax] for r in inv.rate_totals],
                                       company=comp)))
            for p in inv.payments:
                rows.append(dict(snapshot_id=sid, kind="payment", key=p.id, day=_iso(p.day), amount=p.amount,
                                 counterparty=name, counterparty_key=key, deal_id=inv.deal_crm_id,
                                 data=dict(invoice_erp_id=inv.erp_id, invoice_number=inv.number, fee=p.fee)))
            flush()
        flush(True)

    def latest_snapshot(self, *, drift_items: bool = True) -> Snapshot | None:
        """The newest snapshot; ``drift_items=False`` leaves the (possibly long) drift item list out — what a
        page showing figures and drift counts needs, and much faster to load."""
        cols = (ReportSnapshot.data, ReportSnapshot.drift_items) if drift_items else (ReportSnapshot.data,)
        with Session(self.engine) as s:
            row = s.execute(sa_select(*cols).order_by(col(ReportSnapshot.id).desc()).limit(1)).first()
        if row is None:
            return None
        return snapshot_from_json({**row[0], "drift_items": row[1] if drift_items else []})

    def latest_snapshot_id(self) -> int | None:
        with Session(self.engine) as s:
            return s.exec(select(func.max(ReportSnapshot.id))).first()

    def snapshot_history(self, kind: str = "drift", limit: int = 90) -> list[tuple[datetime, tuple[DriftCount, ...]]]:
        """Drift counts per snapshot, oldest first (the last ``limit`` snapshots): the data-quality trend."""
        if kind != "drift":
            raise ValueError(f"unknown history kind {kind!r} (only 'drift')")
        with Session(self.engine) as s:
            rows = list(s.exec(select(ReportSnapshot.taken_at, ReportSnapshot.drift)
                               .order_by(col(ReportSnapshot.id).desc()).limit(limit)))
        return [(taken, tuple(DriftCount(k, int(v)) for k, v in (drift or {}).items())) for taken, drift in rows[::-1]]

    # ------------------------------------------------------------------ trace
    def trace(self, deal_id: str) -> Trace:
        """Deal → company/partner → invoices (per-rate tax) → payments and fees → revenue journals, with every
        audit event keyed by the deal (and, for events written before the key existed, by its invoices)."""
        sid = self.latest_snapshot_id()
        with Session(self.engine) as s:
            recs = list(s.exec(select(ReportRecord).where(ReportRecord.snapshot_id == sid,
                                                          ReportRecord.deal_id == deal_id))) if sid else []
            taken = s.exec(select(ReportSnapshot.taken_at).where(ReportSnapshot.id == sid)).first() if sid else None
            invoice_ids = [r.key for r in recs if r.kind == "invoice"]
            # keyed by the deal; events written before audit_event.deal_id existed: by the deal or its invoices
            conds = [AuditEvent.deal_id == deal_id,
                     col(AuditEvent.entity).in_(("deal", "subscription", "invoice"))
                     & (AuditEvent.entity_key == deal_id)]
            if invoice_ids:
                conds.append((AuditEvent.entity == "invoice") & col(AuditEvent.entity_key).in_(invoice_ids))
            q = select(AuditEvent).where(or_(*conds))
            events = list(s.exec(q.order_by(col(AuditEvent.at), col(AuditEvent.id))))
            billings = list(s.exec(select(SubscriptionBilling).where(SubscriptionBilling.deal_id == deal_id)
                                   .order_by(col(SubscriptionBilling.issue_date))))
        deal = next((r for r in recs if r.kind == "deal"), None)
        invoices = [r for r in recs if r.kind == "invoice"]
        company = (deal.data.get("company") if deal else None) or next(
            (r.data.get("company") for r in invoices if r.data.get("company")), {}) or {}
        return Trace(
            deal_id=deal_id, found=bool(recs or events),
            deal=dict(name=deal.data.get("name"), amount=deal.amount, stage=deal.data.get("stage_label"),
                      pipeline=deal.data.get("pipeline"), close_date=_d(deal.day), won=deal.data.get("won"),
                      payment_status=deal.data.get("payment_status")) if deal else {},
            company=dict(company),
            invoices=tuple(TraceInvoice(erp_id=r.key, number=r.data.get("number"), issue_date=_d(r.day),
                                        due_date=_d(r.data.get("due_date")), subtotal=r.data.get("subtotal", 0),
                                        total=r.amount, outstanding=r.data.get("outstanding", 0),
                                        rate_totals=tuple(tuple(x) for x in r.data.get("rate_totals", ())),
                                        status=r.data.get("status", "open")) for r in invoices),
            payments=tuple(TracePayment(id=r.key, invoice_erp_id=r.data.get("invoice_erp_id"), day=_d(r.day),
                                        amount=r.amount, fee=r.data.get("fee", 0))
                           for r in recs if r.kind == "payment"),
            journals=tuple(TraceJournal(key=b.key, kind=b.kind, period_start=b.period_start, period_end=b.period_end,
                                        amount=b.amount, invoice_id=b.invoice_id, segments=tuple(b.segments or ()))
                           for b in billings),
            events=tuple(TraceEvent(at=e.at, actor=e.actor, action=e.action,
                                    system=e.system, entity=e.entity, entity_key=e.entity_key,
                                    changes=mask_changes(e.changes or {}), approved_by=_approved_by(e))
                         for e in events),
            snapshot_taken_at=taken,
        )

    # ------------------------------------------------------------------ search
    def search(self, date_from: date | None = None, date_to: date | None = None, min_amount: int | None = None,
               max_amount: int | None = None, counterparty: str | None = None,
               kinds: Sequence[str] = SEARCH_KINDS, limit: int = 500) -> list[SearchHit]:
        """Deals, invoices and payments of the latest snapshot by date range (close / issue / payment date,
        both ends included), amount range (yen, both included) and counterparty (the normalised company
        name contains the normalised query; a 個人事業者 is not found by name); newest first."""
        bad = [k for k in kinds if k not in SEARCH_KINDS]
        if bad:
            raise ValueError(f"unknown kind(s) {bad}; use {', '.join(SEARCH_KINDS)}")
        sid = self.latest_snapshot_id()
        if sid is None:
            return []
        q = select(ReportRecord).where(ReportRecord.snapshot_id == sid, col(ReportRecord.kind).in_(list(kinds)))
        if date_from:
            q = q.where(col(ReportRecord.day) >= date_from.isoformat())
        if date_to:
            q = q.where(col(ReportRecord.day) <= date_to.isoformat())
        if min_amount is not None:
            q = q.where(col(ReportRecord.amount) >= min_amount)
        if max_amount is not None:
            q = q.where(col(ReportRecord.amount) <= max_amount)
        if counterparty:
            # the few distinct names (an index-only scan) are matched here, then looked up by the index
            needle = normalise_company_name(counterparty)
            with Session(self.engine) as s:
                names = [k for k in s.exec(select(ReportRecord.counterparty_key).distinct()
                                           .where(ReportRecord.snapshot_id == sid)) if needle and k and needle in k]
            q = q.where(col(ReportRecord.counterparty_key).in_(names) if names else false())
        q = q.order_by(col(ReportRecord.day).desc(), col(ReportRecord.kind), col(ReportRecord.key)).limit(limit)
        with Session(self.engine) as s:
            rows = list(s.exec(q))
        out = []
        for r in rows:
            label = (r.data.get("name") if r.kind == "deal" else
                     r.data.get("number") or r.key if r.kind == "invoice" else
                     r.data.get("invoice_number") or r.data.get("invoice_erp_id") or "")
            out.append(SearchHit(kind=r.kind, key=r.key, day=_d(r.day), amount=r.amount, counterparty=r.counterparty,
                                 deal_id=r.deal_id, label=str(label or "")))
        return out
