"""Repository functions over the state store. Each call is one short transaction.

The idempotency ledger protocol (design.md, "Exactly once at every external write")::

    claim = store.claim(key, owner)          # before the external call
    if claim.state == "committed": reuse claim.external_id (nothing to do)
    elif claim.state == "held":    another worker holds it → skip this record for now
    else ("won" / "recovered"):    look the deterministic reference up in the external system when
                                   recovered (a previous attempt may have written), create only if
                                   absent, then store.commit(key, owner, external_id)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta
from typing import Any, Iterable, Literal, Sequence

from sqlalchemy import text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from renkei.domain.normalise import mask_personal
from renkei.store.db import engine_for, make_engine, migrate, session_scope
from renkei.store.models import AuditEvent, BaseSnapshot, IdMap, LedgerEntry, ReviewItem, SyncCursor, utcnow

# Keys whose values are personal data: masked in the audit log (and by the log filter).
PERSONAL_KEYS = frozenset({
    "email", "billing_email", "phone", "mobile", "first_name", "last_name", "firstname", "lastname",
    "billing_contact_name", "contact_name", "address", "street", "building", "payer_name", "bank_account",
})


def personal_key() -> bytes:
    """The key of the keyed hashes kept for personal values (``RENKEI_DATA_KEY`` or the generated file)."""
    import os

    return _personal_key(os.environ.get("RENKEI_DATA_KEY"), os.environ.get("RENKEI_HOME"))


@lru_cache(maxsize=16)
def _personal_key(_key: str | None, _home: str | None) -> bytes:  # the settings' inputs: cache key only
    from renkei.settings import Settings

    return Settings().personal_data_key()


def is_personal_path(path: Any) -> bool:
    """A field (``phone``) or dotted path (``address.street``) whose last part is a personal key."""
    return isinstance(path, str) and path.rsplit(".", 1)[-1].lower() in PERSONAL_KEYS


def protect_personal(fields: Any, key: bytes | None = None) -> Any:
    """``fields`` with every personal value (by key, at any depth) replaced by its keyed hash
    (:func:`domain.ownership.protect_value`): what base snapshots keep at rest. Equality is all a 3-way
    merge needs of a base value; the value itself is never kept. Idempotent."""
    from renkei.domain.ownership import protect_value

    key = key if key is not None else personal_key()

    def walk(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: (protect_value(k, v, key) if is_personal_path(k) and v not in (None, "") else walk(v))
                    for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        return obj

    return walk(fields)


def _insert_for(engine: Engine, table):
    """The dialect's INSERT (PostgreSQL and SQLite both speak ``ON CONFLICT``)."""
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)


def upsert_snapshots(engine: Engine, entity: str, rows: Sequence[tuple[str, dict[str, Any], str | None, str | None]]
                     ) -> None:
    """``(key, fields, crm_hash, erp_hash)`` rows written in one transaction, ``INSERT … ON CONFLICT DO
    UPDATE``: concurrent writers of one key never collide (the last one wins). ``fields`` are stored as
    given — callers protect personal values first (:func:`protect_personal`)."""
    if not rows:
        return
    table = BaseSnapshot.__table__
    now = utcnow()
    stmt = _insert_for(engine, table)
    stmt = stmt.on_conflict_do_update(index_elements=["entity", "key"],
                                      set_=dict(fields=stmt.excluded.fields, crm_hash=stmt.excluded.crm_hash,
                                                erp_hash=stmt.excluded.erp_hash, updated_at=stmt.excluded.updated_at))
    values = [dict(entity=entity, key=k, fields=f, crm_hash=ch, erp_hash=eh, updated_at=now) for k, f, ch, eh in rows]
    with session_scope(engine) as s:
        for i in range(0, len(values), 1000):
            s.execute(stmt, values[i:i + 1000])


# Reason codes about a record's own data (what it holds, not what a flow tried): one open item per record
# and reason, whichever flow met it first (customer-sync and order-to-invoice both read companies).
RECORD_DATA_REASONS = ("EMAIL_INVALID", "MARKUP_IN_TEXT", "INVALID_CRM_COMPANY")


def review_dedupe_key(flow: str, reason_code: str, entity: str, entity_key: str) -> str:
    """``flow:reason:entity:key`` — one open review item per key; ``*`` for the flow of a record-data reason."""
    return f"{'*' if reason_code in RECORD_DATA_REASONS else flow}:{reason_code}:{entity}:{entity_key}"


def review_fingerprint(reason_code: str, message: str, payload: Any) -> str:
    """The default fingerprint of a review item's source record: what the item says about it."""
    import hashlib
    import json

    raw = json.dumps([reason_code, message, payload], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class IdConflict(Exception):
    """The pair would break the one-to-one ID map."""


@dataclass(frozen=True)
class Claim:
    state: Literal["won", "recovered", "committed", "held"]
    key: str
    external_id: str | None = None
    result: dict[str, Any] | None = None
    attempts: int = 1
    writeback: str | None = None  # committed rows: the CRM outbox state (pending | done | None)

    @property
    def sent(self) -> dict[str, Any] | None:
        """What an earlier attempt stored as being sent (:meth:`Store.stash`), if anything."""
        return (self.result or {}).get("sent")

    @property
    def must_check_external(self) -> bool:
        """A previous attempt may have written before crashing: look the reference up first."""
        return self.state == "recovered"

    @property
    def proceed(self) -> bool:
        return self.state in ("won", "recovered")


def _mask_message(message: str) -> str:
    from renkei.logmask import mask_text

    return mask_text(message or "")


def _is_hashed(v: Any) -> bool:
    return isinstance(v, str) and v.startswith("hmac-sha256:")


def mask_changes(changes: Any) -> Any:
    """Recursively mask personal values (by key) in a change description."""
    if isinstance(changes, dict):
        out = {}
        for k, v in changes.items():
            if is_personal_path(k) and not isinstance(v, (dict, list)):
                out[k] = v if _is_hashed(v) else (mask_personal(str(v)) if v not in (None, "") else v)
            elif is_personal_path(k) and isinstance(v, dict):
                out[k] = {kk: (mask_personal(str(vv)) if vv not in (None, "") else vv) for kk, vv in v.items()}
            else:
                out[k] = mask_changes(v)
        return out
    if isinstance(changes, list):
        return [mask_changes(v) for v in changes]
    return changes


class Store:
    """The state store. ``Store.open(url)`` migrates the database to head first."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, run_migrations: bool = True, cached: bool = True) -> "Store":
        if run_migrations:
            migrate(url)
        return cls(engine_for(url) if cached else make_engine(url))

    # ---------------------------------------------------------------- ID map
    def link(self, entity: str, crm_id: str, erp_id: str) -> IdMap:
        """Record a pair; idempotent for the same pair (also when two writers race to record it),
        :class:`IdConflict` when either side is already linked to something else.

        One ``INSERT … ON CONFLICT DO NOTHING`` (either unique constraint), then the rows are read back:
        a concurrent identical link is success, never a crash."""
        now = utcnow()
        with session_scope(self.engine) as s:
            s.execute(_insert_for(self.engine, IdMap.__table__)
                      .values(entity=entity, crm_id=crm_id, erp_id=erp_id, status="active", created_at=now,
                              updated_at=now)
                      .on_conflict_do_nothing())
        with Session(self.engine) as s:
            existing = s.exec(select(IdMap).where(IdMap.entity == entity, IdMap.crm_id == crm_id)).first()
            if existing is not None and existing.erp_id == erp_id:
                return existing
            if existing is not None:
                raise IdConflict(f"{entity} crm {crm_id} is already linked to erp {existing.erp_id}")
            taken = s.exec(select(IdMap).where(IdMap.entity == entity, IdMap.erp_id == erp_id)).first()
            raise IdConflict(f"{entity} erp {erp_id} is already linked to crm "
                             f"{taken.crm_id if taken else '(a row that vanished)'}")

    def link_or_adopt(self, entity: str, crm_id: str, erp_id: str) -> str | None:
        """:meth:`link`, resolving a race: when another writer linked ``crm_id`` first, its pair wins and
        its ERP id is returned (the caller adopts it). ``None`` when ``erp_id`` belongs to another CRM
        record and ``crm_id`` has no pair (a true conflict for a person)."""
        try:
            return self.link(entity, crm_id, erp_id).erp_id
        except IdConflict:
            return self.erp_id_for(entity, crm_id)

    def erp_id_for(self, entity: str, crm_id: str) -> str | None:
        with Session(self.engine) as s:
            row = s.exec(select(IdMap).where(IdMap.entity == entity, IdMap.crm_id == crm_id)).first()
            return row.erp_id if row else None

    def crm_id_for(self, entity: str, erp_id: str) -> str | None:
        with Session(self.engine) as s:
            row = s.exec(select(IdMap).where(IdMap.entity == entity, IdMap.erp_id == erp_id)).first()
            return row.crm_id if row else None

    def id_map(self, entity: str) -> list[IdMap]:
        with Session(self.engine) as s:
            return list(s.exec(select(IdMap).where(IdMap.entity == entity).order_by(IdMap.id)))

    def relink_crm(self, entity: str, old_crm_id: str, new_crm_id: str, status: str = "active") -> None:
        """A CRM merge gave the record a new id: move the pair to it."""
        with session_scope(self.engine) as s:
            row = s.exec(select(IdMap).where(IdMap.entity == entity, IdMap.crm_id == old_crm_id)).one()
            row.crm_id, row.status, row.updated_at = new_crm_id, status, utcnow()
            s.add(row)

    def set_link_status(self, entity: str, crm_id: str, status: str) -> None:
        with session_scope(self.engine) as s:
            row = s.exec(select(IdMap).where(IdMap.entity == entity, IdMap.crm_id == crm_id)).one()
            row.status, row.updated_at = status, utcnow()
            s.add(row)

    # ---------------------------------------------------------------- cursors
    def get_cursor(self, name: str) -> str | None:
        with Session(self.engine) as s:
            row = s.get(SyncCursor, name)
            return row.value if row else None

    def set_cursor(self, name: str, value: str, flow_run_id: str | None = None) -> None:
        """Commit a watermark. Call only after the work it covers is committed."""
        now = utcnow()
        stmt = _insert_for(self.engine, SyncCursor.__table__).values(name=name, value=value, flow_run_id=flow_run_id,
                                                                     updated_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_=dict(value=value, flow_run_id=flow_run_id,
                                                                             updated_at=now))
        with session_scope(self.engine) as s:
            s.execute(stmt)

    # ---------------------------------------------------------------- base snapshots
    def get_snapshot(self, entity: str, key: str) -> BaseSnapshot | None:
        with Session(self.engine) as s:
            return s.get(BaseSnapshot, (entity, key))

    def get_snapshots(self, entity: str, keys: Iterable[str]) -> dict[str, BaseSnapshot]:
        keys = list(keys)
        out: dict[str, BaseSnapshot] = {}
        with Session(self.engine) as s:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                rows = s.exec(select(BaseSnapshot).where(BaseSnapshot.entity == entity,
                                                         col(BaseSnapshot.key).in_(chunk)))
                out.update({r.key: r for r in rows})
        return out

    def put_snapshot(self, entity: str, key: str, fields: dict[str, Any], *, crm_hash: str | None = None,
                     erp_hash: str | None = None) -> None:
        """Upsert one snapshot row. ``fields`` are stored as given: a caller keeping a 3-way-merge base of
        personal data passes them through :func:`protect_personal` first (customer-sync does)."""
        upsert_snapshots(self.engine, entity, [(key, dict(fields), crm_hash, erp_hash)])

    # ---------------------------------------------------------------- idempotency ledger
    def claim(self, key: str, owner: str, *, lease_seconds: int = 300) -> Claim:
        """Claim ``key`` before an external write. Exactly one of concurrent claimers wins."""
        now = utcnow()
        lease = now + timedelta(seconds=lease_seconds)
        try:
            with session_scope(self.engine) as s:
                s.add(LedgerEntry(key=key, owner=owner, status="claimed", claimed_at=now, lease_until=lease))
            return Claim("won", key)
        except IntegrityError:
            pass
        with session_scope(self.engine) as s:
            row = s.get(LedgerEntry, key)
            if row is None:  # released and purged between our insert and read: try again once
                return self.claim(key, owner, lease_seconds=lease_seconds)
            if row.status == "committed":
                return Claim("committed", key, row.external_id, dict(row.result), row.attempts, row.writeback)
            prev_status, prev_owner, prev_attempts = row.status, row.owner, row.attempts
            prev_result = dict(row.result or {})
            stale = row.status == "released" or (row.status == "claimed" and row.lease_until < now)
            if not stale and row.owner != owner:
                return Claim("held", key, attempts=prev_attempts)
            # Take over atomically: only one worker's conditional update matches.
            res = s.execute(
                update(LedgerEntry)
                .where(col(LedgerEntry.key) == key, col(LedgerEntry.status) == prev_status,
                       col(LedgerEntry.owner) == prev_owner, col(LedgerEntry.attempts) == prev_attempts)
                .values(owner=owner, status="claimed", attempts=prev_attempts + 1, claimed_at=now, lease_until=lease)
                .execution_options(synchronize_session=False)
            )
            if res.rowcount != 1:
                return Claim("held", key, attempts=prev_attempts)
            # A released claim had no external effect; an expired one may have: check the reference.
            state = "won" if prev_status == "released" else "recovered"
            return Claim(state, key, result=prev_result, attempts=prev_attempts + 1)

    def stash(self, key: str, owner: str, facts: dict[str, Any]) -> None:
        """Store facts on a claim this owner holds, before the external call — typically
        ``{"sent": <the exact request>}``, so that a recovery (maybe on another day) re-sends and looks
        up exactly what may already have been sent instead of re-deriving it."""
        with session_scope(self.engine) as s:
            row = s.get(LedgerEntry, key)
            if row is None or row.status != "claimed" or row.owner != owner:
                raise KeyError(f"ledger key {key} is not claimed by {owner}")
            row.result = {**(row.result or {}), **facts}
            s.add(row)

    def commit(self, key: str, owner: str, external_id: str | None, result: dict[str, Any] | None = None, *,
               writeback: bool = False) -> None:
        """Record the outcome of the external write (committed rows are final). ``result`` is merged
        into what the claim stashed. ``writeback=True`` puts the fact in the CRM outbox (pending)."""
        with session_scope(self.engine) as s:
            row = s.get(LedgerEntry, key)
            if row is None:
                raise KeyError(f"ledger key {key} was never claimed")
            if row.status == "committed":
                if row.external_id != external_id:
                    raise IdConflict(f"ledger {key} already committed to {row.external_id}")
                return
            row.status, row.owner, row.external_id = "committed", owner, external_id
            row.result, row.committed_at = {**(row.result or {}), **(result or {})}, utcnow()
            if writeback:
                row.writeback = "pending"
            s.add(row)

    def annotate(self, keys: Iterable[str], updates: dict[str, Any]) -> None:
        """Add facts to committed entries' results (e.g. that the CRM shows the outcome)."""
        keys = list(keys)
        with session_scope(self.engine) as s:
            for i in range(0, len(keys), 500):
                for row in s.exec(select(LedgerEntry).where(col(LedgerEntry.key).in_(keys[i:i + 500]))):
                    if row.status == "committed":
                        row.result = {**row.result, **updates}
                        s.add(row)

    def release(self, key: str, owner: str) -> None:
        """Give a claim back after a failure that had no external effect."""
        with session_scope(self.engine) as s:
            row = s.get(LedgerEntry, key)
            if row is not None and row.status == "claimed" and row.owner == owner:
                row.status = "released"
                s.add(row)

    def unfinished(self, prefix: str, *, limit: int = 500) -> list[LedgerEntry]:
        """Claims under ``prefix`` that never committed and are free to take again (released, or whose
        lease has expired: a worker died or gave up) — work to redo even if no cursor points at it."""
        now = utcnow()
        with Session(self.engine) as s:
            q = select(LedgerEntry).where(col(LedgerEntry.key).startswith(prefix),
                                          col(LedgerEntry.status) != "committed")
            rows = list(s.exec(q.order_by(LedgerEntry.key).limit(limit * 4)))
        return [r for r in rows if r.status == "released" or r.lease_until < now][:limit]

    def ledger_entry(self, key: str) -> LedgerEntry | None:
        with Session(self.engine) as s:
            return s.get(LedgerEntry, key)

    def ledger_entries(self, prefix: str, *, limit: int = 1000) -> list[LedgerEntry]:
        """Entries under ``prefix`` (any status), by key — bounded."""
        with Session(self.engine) as s:
            q = select(LedgerEntry).where(col(LedgerEntry.key).startswith(prefix))
            return list(s.exec(q.order_by(LedgerEntry.key).limit(limit)))

    def outbox(self, prefixes: Sequence[str], *, limit: int = 100, keys: Iterable[str] | None = None
               ) -> list[LedgerEntry]:
        """Committed facts under ``prefixes`` whose CRM write-back is still pending, oldest commit first
        (index ``ix_ledger_writeback``); ``keys`` narrows to those keys. Bounded by ``limit``."""
        if not prefixes:
            return []
        from sqlalchemy import or_

        with Session(self.engine) as s:
            q = select(LedgerEntry).where(col(LedgerEntry.writeback) == "pending",
                                          col(LedgerEntry.status) == "committed",
                                          or_(*[col(LedgerEntry.key).startswith(p) for p in prefixes]))
            if keys is not None:
                keys = list(keys)
                if not keys:
                    return []
                q = q.where(col(LedgerEntry.key).in_(keys))
            q = q.order_by(col(LedgerEntry.committed_at), col(LedgerEntry.key)).limit(limit)
            return list(s.exec(q))

    def mark_written(self, keys: Iterable[str]) -> None:
        """The CRM shows these committed facts: take them out of the outbox."""
        keys = list(keys)
        with session_scope(self.engine) as s:
            for i in range(0, len(keys), 500):
                s.execute(update(LedgerEntry)
                          .where(col(LedgerEntry.key).in_(keys[i:i + 500]), col(LedgerEntry.writeback) == "pending")
                          .values(writeback="done").execution_options(synchronize_session=False))

    # ---------------------------------------------------------------- review items
    def add_review(self, *, flow: str, reason_code: str, entity: str, entity_key: str, message: str = "",
                   payload: dict[str, Any] | None = None, flow_run_id: str | None = None,
                   fingerprint: str | None = None) -> ReviewItem:
        """Open a review item; while one is open for the same flow/reason/record, update it instead. A
        problem of the record's own data (:data:`RECORD_DATA_REASONS`) is one item whichever flow met it.

        ``fingerprint`` identifies the state of the source record (default: a hash of the masked message
        and payload). An item a person dismissed stays dismissed while the record's fingerprint is the
        same: the dismissed row is returned and nothing is opened; a changed record opens a new item."""
        dedupe = review_dedupe_key(flow, reason_code, entity, entity_key)
        shown_message, shown_payload = _mask_message(message)[:2000], mask_changes(payload or {})
        fp = fingerprint or review_fingerprint(reason_code, shown_message, shown_payload)
        with session_scope(self.engine) as s:
            # Concurrent runs: one open item per key, never two (there is no unique constraint to lean on).
            if self.engine.dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": dedupe})
            elif self.engine.dialect.name == "sqlite":  # a write first: the transaction takes the write lock
                s.execute(text("UPDATE review_item SET status = status WHERE id = -1"))
            row = s.exec(select(ReviewItem).where(ReviewItem.dedupe_key == dedupe, ReviewItem.status == "open")).first()
            if row is None:
                dismissed = s.exec(select(ReviewItem).where(ReviewItem.dedupe_key == dedupe,
                                                            ReviewItem.status == "dismissed",
                                                            ReviewItem.fingerprint == fp)).first()
                if dismissed is not None:  # a person dismissed this very record state: it stays dismissed
                    return dismissed
                row = ReviewItem(flow=flow, reason_code=reason_code, entity=entity, entity_key=entity_key,
                                 dedupe_key=dedupe)
            # what a person reads: e-mail addresses, phone numbers and secrets masked wherever they came from
            # (an API's error text quotes the value it refused)
            row.message, row.payload, row.fingerprint = shown_message, shown_payload, fp
            row.flow_run_id, row.updated_at = flow_run_id, utcnow()
            s.add(row)
            s.flush()
            return row

    def resolve_reviews(self, *, flow: str, entity: str, entity_keys: Iterable[str], reason_codes: Iterable[str],
                        comment: str) -> int:
        """Close the open items of these records and reasons: the records pass now (one statement per
        500 records). Returns how many were closed."""
        keys, codes, n = list(dict.fromkeys(str(k) for k in entity_keys)), list(reason_codes), 0
        now = utcnow()
        # items about the record's own data are closed by whichever flow sees the record pass
        by_flow = [c for c in codes if c not in RECORD_DATA_REASONS]
        flow_rule = (col(ReviewItem.reason_code).in_(RECORD_DATA_REASONS) | (col(ReviewItem.flow) == flow)) \
            if len(by_flow) < len(codes) else (col(ReviewItem.flow) == flow)
        with session_scope(self.engine) as s:
            for i in range(0, len(keys), 500):
                res = s.execute(update(ReviewItem)
                                .where(flow_rule, col(ReviewItem.entity) == entity,
                                       col(ReviewItem.status) == "open", col(ReviewItem.reason_code).in_(codes),
                                       col(ReviewItem.entity_key).in_(keys[i:i + 500]))
                                .values(status="resolved", decision="resolved", decided_by=flow, comment=comment,
                                        decided_at=now, updated_at=now)
                                .execution_options(synchronize_session=False))
                n += int(res.rowcount or 0)
        return n

    def list_reviews(self, status: str | None = "open", flow: str | None = None) -> list[ReviewItem]:
        with Session(self.engine) as s:
            q = select(ReviewItem)
            if status:
                q = q.where(ReviewItem.status == status)
            if flow:
                q = q.where(ReviewItem.flow == flow)
            return list(s.exec(q.order_by(ReviewItem.id)))

    def decide_review(self, review_id: int, *, decision: str, decided_by: str, comment: str | None = None,
                      status: str | None = None) -> ReviewItem:
        with session_scope(self.engine) as s:
            row = s.get(ReviewItem, review_id)
            if row is None:
                raise KeyError(f"no review item {review_id}")
            row.decision, row.decided_by, row.comment = decision, decided_by, comment
            row.decided_at = row.updated_at = utcnow()
            row.status = status or {"approve": "approved", "reject": "rejected"}.get(decision, "resolved")
            s.add(row)
            return row

    def get_review(self, review_id: int) -> ReviewItem | None:
        with Session(self.engine) as s:
            return s.get(ReviewItem, int(review_id))

    def record_decision(self, review_id: int, *, choice: str, by: str, reason: str = "", value: Any = None,
                        via: str = "cli") -> ReviewItem:
        """Validate a person's decision against the item (:func:`domain.decisions.decide`) and store it
        with the item, audited, in one transaction (the row is locked: two deciders never both win).
        A decision that needs no flow (dismiss, acknowledge) is applied at once; the others wait for the
        owning flow's next run (:meth:`pending_decisions`). Refusals raise
        :class:`domain.decisions.DecisionRefused` and are audited too."""
        from renkei.domain.decisions import DecisionRefused, decide

        refused: str | None = None
        with session_scope(self.engine) as s:
            q = select(ReviewItem).where(ReviewItem.id == int(review_id))
            if self.engine.dialect.name == "postgresql":
                q = q.with_for_update()
            elif self.engine.dialect.name == "sqlite":
                s.execute(text("UPDATE review_item SET status = status WHERE id = -1"))
            row = s.exec(q).first()
            if row is None:
                raise KeyError(f"no review item {review_id}")
            try:
                d = decide(flow=row.flow, reason_code=row.reason_code, entity=row.entity, entity_key=row.entity_key,
                           payload=row.payload, status=row.status, choice=choice, by=by, reason=reason, value=value)
            except DecisionRefused as exc:
                refused = str(exc)
            else:
                now = utcnow()
                row.decision, row.decided_by, row.comment = d.choice, d.by, d.reason or None
                row.decided_at = row.updated_at = now
                row.status = d.status
                row.decision_data = {**d.as_dict(), "via": via}
                row.applied_at = None if d.needs_apply else now
                s.add(row)
                s.add(AuditEvent(actor=d.by, action="review_decided", entity="review_item", entity_key=str(row.id),
                                 changes=mask_changes({"choice": d.choice, "target": d.target,
                                                       **({d.effect.get("field") or "value": d.value}
                                                          if d.value is not None else {}),
                                                       "reason": d.reason, "via": via, "status": d.status,
                                                       "effect": d.effect, "reason_code": row.reason_code,
                                                       "record": f"{row.entity}:{row.entity_key}"})))
                s.flush()
                return row
        self.audit(actor=str(by or "unknown")[:254], action="review_decision_refused", entity="review_item",
                   entity_key=str(review_id), changes={"choice": choice, "reason": reason, "via": via,
                                                      "refused": refused})
        raise DecisionRefused(refused)

    def pending_decisions(self, flow: str | None = None, entity: str | None = None) -> list[ReviewItem]:
        """Decided items the owning flow has not carried out yet (oldest first)."""
        with Session(self.engine) as s:
            q = select(ReviewItem).where(col(ReviewItem.decision_data).is_not(None),
                                         col(ReviewItem.applied_at).is_(None),
                                         col(ReviewItem.status).in_(("resolved", "dismissed")))
            if flow:
                # items about a record's own data are shared by the flows reading that record
                q = q.where((col(ReviewItem.flow) == flow) | col(ReviewItem.reason_code).in_(RECORD_DATA_REASONS))
            if entity:
                q = q.where(ReviewItem.entity == entity)
            return list(s.exec(q.order_by(ReviewItem.id)))

    def mark_applied(self, review_ids: Iterable[int], *, actor: str, outcome: str = "applied",
                     details: dict[str, Any] | None = None, session: Session | None = None) -> int:
        """Mark decisions carried out (only those not marked yet), with an audit event each. Pass the
        ``session`` of the effect's own transaction to make effect and mark one commit."""
        ids = [int(i) for i in review_ids]
        if not ids:
            return 0
        if session is None:
            with session_scope(self.engine) as s:
                return self.mark_applied(ids, actor=actor, outcome=outcome, details=details, session=s)
        now, n = utcnow(), 0
        for i in ids:  # a handful per run; one audit event per decision actually marked now
            res = session.execute(update(ReviewItem)
                                  .where(col(ReviewItem.id) == i, col(ReviewItem.applied_at).is_(None))
                                  .values(applied_at=now, updated_at=now).execution_options(synchronize_session=False))
            if res.rowcount:
                n += 1
                session.add(AuditEvent(actor=actor, action=f"review_decision_{outcome}", entity="review_item",
                                       entity_key=str(i), changes=mask_changes(details or {})))
        return n

    def link_decided(self, entity: str, crm_id: str, erp_id: str, review_id: int, *, actor: str) -> str:
        """A match decision's effect: the ID-map pair and the decision's applied mark in ONE transaction.
        ``linked`` (or ``already`` when this very pair exists: a re-run after a crash); :class:`IdConflict`
        when either side is linked to something else (nothing is written then)."""
        now = utcnow()
        with session_scope(self.engine) as s:
            rows = s.exec(select(IdMap).where(IdMap.entity == entity,
                                              (col(IdMap.crm_id) == crm_id) | (col(IdMap.erp_id) == erp_id))).all()
            if any(r.crm_id == crm_id and r.erp_id == erp_id for r in rows):
                outcome = "already"
            elif rows:
                r = rows[0]
                raise IdConflict(f"{entity} crm {r.crm_id} ⇄ erp {r.erp_id} is linked already")
            else:
                s.add(IdMap(entity=entity, crm_id=crm_id, erp_id=erp_id, status="active", created_at=now,
                            updated_at=now))
                s.flush()
                outcome = "linked"
            self.mark_applied([review_id], actor=actor, details={"link": {"crm_id": crm_id, "erp_id": erp_id},
                                                                 "outcome": outcome}, session=s)
        return outcome

    def review_history(self, review_id: int) -> list[AuditEvent]:
        return self.audit_events("review_item", str(review_id))

    # ---------------------------------------------------------------- audit log (append-only)
    def audit(self, *, actor: str, action: str, entity: str, entity_key: str, changes: dict[str, Any] | None = None,
              system: str = "renkei", flow_run_id: str | None = None, deal_id: str | None = None) -> None:
        """Append one event; ``deal_id``: the CRM deal it belongs to (what a deal's trace reads by)."""
        self.audit_many([dict(actor=actor, action=action, entity=entity, entity_key=entity_key,
                              changes=changes or {}, system=system, flow_run_id=flow_run_id, deal_id=deal_id)])

    def audit_many(self, events: Sequence[dict[str, Any]]) -> None:
        if not events:
            return
        with session_scope(self.engine) as s:
            for e in events:
                s.add(AuditEvent(**{**e, "changes": mask_changes(e.get("changes") or {})}))

    def audit_events(self, entity: str | None = None, entity_key: str | None = None,
                     since: datetime | None = None) -> list[AuditEvent]:
        with Session(self.engine) as s:
            q = select(AuditEvent)
            if entity:
                q = q.where(AuditEvent.entity == entity)
            if entity_key:
                q = q.where(AuditEvent.entity_key == entity_key)
            if since:
                q = q.where(AuditEvent.at >= since)
            return list(s.exec(q.order_by(AuditEvent.id)))

    # ---------------------------------------------------------------- dead runs' leases, held work
    def expire_leases(self, owner: str) -> int:
        """End the leases of live claims held by ``owner`` (``"<flow>:<flow_run_id>"``, a run known to be
        dead): the next claimer recovers them at once (it looks the reference up before creating, so
        this is safe even when the dead run wrote). Returns how many claims were freed."""
        past = utcnow() - timedelta(seconds=1)
        with session_scope(self.engine) as s:
            res = s.execute(update(LedgerEntry)
                            .where(col(LedgerEntry.owner) == owner, col(LedgerEntry.status) == "claimed",
                                   col(LedgerEntry.lease_until) > past)
                            .values(lease_until=past)
                            .execution_options(synchronize_session=False))
            return int(res.rowcount or 0)

    def held_claims(self, prefix: str, *, exclude_owner: str | None = None, limit: int = 1000) -> list[LedgerEntry]:
        """Claims under key ``prefix`` that another worker still holds (not committed, lease running):
        work a run that completes now did not do — its summary says so."""
        now = utcnow()
        with Session(self.engine) as s:
            q = select(LedgerEntry).where(col(LedgerEntry.key).startswith(prefix),
                                          col(LedgerEntry.status) == "claimed", col(LedgerEntry.lease_until) >= now)
            if exclude_owner:
                q = q.where(col(LedgerEntry.owner) != exclude_owner)
            return list(s.exec(q.order_by(LedgerEntry.key).limit(limit)))
