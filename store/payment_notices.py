"""Payment notices and the settled money they are closed against — reconciled bank lines and invoice payments
the ERP reports (tables ``payment_notice``, ``settled_deposit``; migration 0010). Every change is one short transaction and guarded by the row's
state, so two workers closing the same notice (or taking the same line) do it once."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.engine import Engine

from renkei.store.models import PaymentNotice, SettledDeposit, WebhookEvent

NOTICES = PaymentNotice.__table__
SETTLED = SettledDeposit.__table__
EVENTS = WebhookEvent.__table__
OPEN_STATES = ("open", "unmatched")


class NoticeStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # -- notices in
    def webhook_payments(self, after_id: int, limit: int = 500) -> list[tuple[int, str, dict[str, Any]]]:
        """``(webhook_event id, idempotency key, body)`` of inbound payment notices after ``after_id`` not kept
        yet. Not a cursor on the id: concurrent deliveries may commit a lower id after a higher one."""
        kept = select(NOTICES.c.id).where(NOTICES.c.notice_key == EVENTS.c.event_key).exists()
        with self.engine.connect() as conn:
            rows = conn.execute(select(EVENTS.c.id, EVENTS.c.event_key, EVENTS.c.payload)
                                .where(EVENTS.c.source == "inbound:payment", EVENTS.c.id > after_id, ~kept)
                                .order_by(EVENTS.c.id).limit(limit))
            return [(int(r.id), str(r.event_key), dict((r.payload or {}).get("body") or {})) for r in rows]

    def add_notice(self, **values: Any) -> bool:
        """Keep a notice (False: its key is known already — a redelivery)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(NOTICES.insert().values(status="open", received_at=datetime.now(timezone.utc), **values))
            return True
        except IntegrityError:
            return False

    def notices(self, *, states: Sequence[str] = OPEN_STATES, after_id: int = 0, limit: int = 500
                ) -> list[PaymentNotice]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(NOTICES).where(NOTICES.c.status.in_(list(states)), NOTICES.c.id > after_id)
                                .order_by(NOTICES.c.id).limit(limit))
            return [PaymentNotice(**r._mapping) for r in rows]

    def notice(self, key: str) -> PaymentNotice | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(NOTICES).where(NOTICES.c.notice_key == key)).first()
            return PaymentNotice(**r._mapping) if r is not None else None

    # -- reconciled bank lines
    def record_settled(self, deposit_id: str, amount: int, day: date, payer_key: str | None,
                       invoice_numbers: Iterable[str]) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(SETTLED.insert().values(deposit_id=str(deposit_id), amount=int(amount), day=day,
                                                     payer_key=payer_key, invoice_numbers=list(invoice_numbers),
                                                     settled_at=datetime.now(timezone.utc)))
            return True
        except IntegrityError:
            return False

    def free_settled(self, amounts: Iterable[int], first: date, last: date) -> list[SettledDeposit]:
        """Reconciled lines no notice took yet, of these amounts, dated ``first`` … ``last``."""
        amounts = sorted({int(a) for a in amounts})
        if not amounts:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(select(SETTLED).where(SETTLED.c.amount.in_(amounts), SETTLED.c.day >= first,
                                                      SETTLED.c.day <= last, SETTLED.c.notice_key.is_(None)))
            return [SettledDeposit(**r._mapping) for r in rows]

    def settled_on(self, days: Iterable[date]) -> list[SettledDeposit]:
        """Every settled row dated on one of ``days`` (taken by a notice or not)."""
        days = sorted(set(days))
        if not days:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(select(SETTLED).where(SETTLED.c.day.in_(days)))
            return [SettledDeposit(**r._mapping) for r in rows]

    def has_open(self) -> bool:
        """Some notice waits for its money (open or unmatched)."""
        with self.engine.connect() as conn:
            return conn.execute(select(NOTICES.c.id).where(NOTICES.c.status.in_(list(OPEN_STATES))).limit(1)).first() \
                is not None

    # -- decisions
    def close(self, notice_key: str, deposit_id: str, evidence: str) -> bool:
        """The notice is the line's money: both rows in one transaction, or neither (another worker won)."""
        with self.engine.connect() as conn:
            with conn.begin() as tx:
                took = conn.execute(update(SETTLED).where(SETTLED.c.deposit_id == deposit_id,
                                                          SETTLED.c.notice_key.is_(None))
                                    .values(notice_key=notice_key)).rowcount
                closed = conn.execute(update(NOTICES).where(NOTICES.c.notice_key == notice_key,
                                                            NOTICES.c.status.in_(list(OPEN_STATES)))
                                      .values(status="matched", deposit_id=deposit_id, evidence=evidence[:128],
                                              closed_at=datetime.now(timezone.utc))).rowcount
                if took != 1 or closed != 1:
                    tx.rollback()
                    return False
        return True

    def mark_unmatched(self, notice_key: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(update(NOTICES).where(and_(NOTICES.c.notice_key == notice_key,
                                                           NOTICES.c.status == "open"))
                                .values(status="unmatched")).rowcount == 1

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(select(NOTICES.c.status, func.count()).group_by(NOTICES.c.status))}


__all__ = ["NoticeStore", "OPEN_STATES"]
