"""Delivered webhook events in the state store (table ``webhook_event``, migration 0008): a key seen once
is a replay forever after; rows stay ``pending`` until their Prefect event is emitted, so a crash between
the acknowledgement and the emission loses nothing (pending rows are emitted again at start)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from renkei.store.models import WebhookEvent

TABLE = WebhookEvent.__table__


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

    def pending(self, limit: int = 1000) -> list[Row]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(TABLE).where(TABLE.c.status == "pending").order_by(TABLE.c.id).limit(limit))
            return [Row(source=r.source, event_key=r.event_key, event=r.event, object_id=r.object_id,
                        payload=r.payload or {}, occurred_at=r.occurred_at, id=r.id) for r in rows]

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return {s: n for s, n in conn.execute(select(TABLE.c.status, func.count()).group_by(TABLE.c.status))}
