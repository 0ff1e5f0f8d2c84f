"""Delivered webhook events in the state store (table ``webhook_event``, migration 0008): a key seen once
is a replay forever after; rows stay ``pending`` until their Prefect event is emitted, so a crash between
the acknowledgement and the emission loses nothing (pending rows are emitted again at start).

An emitted row is also a queue entry: a webhook-triggered run that is already working (its process started,
freee's pace waited for) :meth:`Ledger.take`\ s the deals whose runs are still queued and invoices them too
(status ``taken``). Taking is only a shortcut — each taken deal's own run still comes and finds it invoiced
(the ledger's claim decides), and a run that dies after taking loses nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from renkei.store.models import WebhookEvent

TABLE = WebhookEvent.__table__
DEAL_CHANGED = "renkei.crm.deal.changed"  # a deal moved to a won stage (or was created won): its invoice is due


@dataclass
class Row:
    source: str
    event_key: str
    event: str = ""  # Prefect event name; "" = ignored
    object_id: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    id: int | None = None

    @property
    def relevant(self) -> bool:
        return bool(self.event)


class Ledger:
    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> "Ledger":
        from renkei.store.db import engine_for, migrate as run_migrations

        if migrate:
            run_migrations(url)
        return cls(engine_for(url))

    def record(self, rows: list[Row]) -> tuple[list[Row], int]:
        """Insert each new key; returns (the new rows with their ids, how many were replays). One row per
        key even under concurrent deliveries (the unique constraint decides)."""
        fresh: list[Row] = []
        replays = 0
        now = datetime.now(timezone.utc)
        with self.engine.connect() as conn:
            for row in rows:
                values = dict(source=row.source, event_key=row.event_key, event=row.event, object_id=row.object_id,
                              status="pending" if row.relevant else "ignored", payload=row.payload or None,
                              occurred_at=row.occurred_at, received_at=now)
                try:
                    with conn.begin():
                        res = conn.execute(TABLE.insert().values(**values))
                    row.id = int(res.inserted_primary_key[0])
                    fresh.append(row)
                except IntegrityError:
                    replays += 1
        return fresh, replays

    def mark_emitted(self, ids: list[int], batch_id: str) -> None:
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(update(TABLE).where(TABLE.c.id.in_(ids))
                         .values(status="emitted", batch_id=batch_id, emitted_at=datetime.now(timezone.utc)))

    def mark_ignored(self, ids: list[int]) -> None:
        """Rows found irrelevant after they were recorded (a deal created in a stage that is not won)."""
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(update(TABLE).where(TABLE.c.id.in_(ids)).values(status="ignored"))

    def take(self, event: str, *, object_ids: list[str] | None = None, limit: int = 10,
             within_s: float = 900.0) -> list[str]:
        """Mark emitted rows of ``event`` ``taken`` and return their object ids, oldest first: the rows of
        ``object_ids`` (a run's own deals, so no other run takes them), or else up to ``limit`` rows emitted in
        the last ``within_s`` seconds. Atomic: each row goes to one caller."""
        from datetime import timedelta

        cond = (TABLE.c.status == "emitted") & (TABLE.c.event == event)
        if object_ids is not None:
            if not object_ids:
                return []
            cond &= TABLE.c.object_id.in_([str(i) for i in object_ids])
        else:
            cond &= TABLE.c.emitted_at >= datetime.now(timezone.utc) - timedelta(seconds=within_s)
        with self.engine.begin() as conn:
            pick = select(TABLE.c.id).where(cond).order_by(TABLE.c.id)
            if object_ids is None:
                pick = pick.limit(limit)
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            rows = conn.execute(update(TABLE).where(TABLE.c.id.in_(pick), TABLE.c.status == "emitted")
                                .values(status="taken").returning(TABLE.c.id, TABLE.c.object_id)).all()
        return list(dict.fromkeys(r.object_id for r in sorted(rows)))

    def pending(self, limit: int = 1000) -> list[Row]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(TABLE).where(TABLE.c.status == "pending").order_by(TABLE.c.id).limit(limit))
            return [Row(source=r.source, event_key=r.event_key, event=r.event, object_id=r.object_id,
                        payload=r.payload or {}, occurred_at=r.occurred_at, id=r.id) for r in rows]

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return {s: n for s, n in conn.execute(select(TABLE.c.status, func.count()).group_by(TABLE.c.status))}
