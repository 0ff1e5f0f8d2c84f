"""Repository functions for subscription versions and billings (継続課金の版と請求).

Kept apart from :mod:`store.repo` (same engine, one short transaction per call). Versions are append-only
apart from their ``status``/``proration``/``invoice_id`` fields; a billing row is written once, after its
invoice is committed in the idempotency ledger.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from renkei.store.db import session_scope
from renkei.store.models import SubscriptionBilling, SubscriptionVersion, utcnow
from renkei.store.repo import Store

__all__ = ["SubscriptionStore"]


class SubscriptionStore:
    def __init__(self, store: Store):
        self.engine = store.engine

    # ------------------------------------------------------------------ versions
    def versions(self, deal_id: str) -> list[SubscriptionVersion]:
        with Session(self.engine) as s:
            return list(s.exec(select(SubscriptionVersion).where(SubscriptionVersion.deal_id == deal_id)
                               .order_by(SubscriptionVersion.version)))

    def version(self, deal_id: str, version: int) -> SubscriptionVersion | None:
        with Session(self.engine) as s:
            return s.get(SubscriptionVersion, (deal_id, version))

    def deal_ids(self) -> list[str]:
        with Session(self.engine) as s:
            return sorted(set(s.exec(select(SubscriptionVersion.deal_id))))

    def add_version(self, deal_id: str, version: int, effective_date: str, lines: list[dict[str, Any]],
                    status: str = "scheduled") -> SubscriptionVersion:
        """Append a version; idempotent when the same version already exists (a rerun)."""
        with session_scope(self.engine) as s:
            row = s.get(SubscriptionVersion, (deal_id, version))
            if row is not None:
                return row
            row = SubscriptionVersion(deal_id=deal_id, version=version, effective_date=effective_date,
                                      lines=list(lines), status=status)
            s.add(row)
            return row

    def update_version(self, deal_id: str, version: int, **fields: Any) -> SubscriptionVersion:
        with session_scope(self.engine) as s:
            row = s.get(SubscriptionVersion, (deal_id, version))
            if row is None:
                raise KeyError(f"no version {version} of subscription {deal_id}")
            for k, v in fields.items():
                setattr(row, k, v)
            row.updated_at = utcnow()
            s.add(row)
            return row

    # ------------------------------------------------------------------ billings
    def billings(self, deal_id: str | None = None) -> list[SubscriptionBilling]:
        with Session(self.engine) as s:
            q = select(SubscriptionBilling)
            if deal_id is not None:
                q = q.where(SubscriptionBilling.deal_id == deal_id)
            return list(s.exec(q.order_by(SubscriptionBilling.deal_id, SubscriptionBilling.period_start,
                                          SubscriptionBilling.key)))

    def billing(self, deal_id: str, key: str) -> SubscriptionBilling | None:
        with Session(self.engine) as s:
            return s.get(SubscriptionBilling, (deal_id, key))

    def add_billing(self, row: SubscriptionBilling) -> SubscriptionBilling:
        """Record a billing once; a rerun finds the existing row."""
        with session_scope(self.engine) as s:
            existing = s.get(SubscriptionBilling, (row.deal_id, row.key))
            if existing is not None:
                return existing
            s.add(row)
            return row
