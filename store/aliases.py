"""Repository for payer aliases (振込名義 → 取引先) used by bank reconciliation (入金消込).

A row says "deposits whose payer name normalises to ``payer_key`` pay for freee partner ``partner_id``":
``registered`` rows are entered by finance (a parent company paying for a subsidiary), ``learned`` rows
are written by ``payment-approval`` when finance assigns a deposit to a partner. Rows are never
updated by the flows (a second approval of the same pair is a no-op), so the first approver stays on record.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from renkei.domain.payer import payer_display
from renkei.domain.reconciliation import AliasSource, PayerAlias, PayerAliasTable, payer_key
from renkei.store.db import session_scope
from renkei.store.models import PayerAliasRow
from renkei.store.repo import Store

__all__ = ["AliasStore"]


class AliasStore:
    def __init__(self, store: Store):
        self.engine = store.engine

    def rows(self) -> list[PayerAliasRow]:
        with Session(self.engine) as s:
            return list(s.exec(select(PayerAliasRow).order_by(PayerAliasRow.payer_key, PayerAliasRow.partner_id)))

    def table(self) -> PayerAliasTable:
        """Every alias as the engine's immutable :class:`PayerAliasTable`."""
        return PayerAliasTable(aliases=tuple(
            PayerAlias(payer_key=r.payer_key, partner_id=r.partner_id,
                       source=AliasSource.LEARNED if r.source == "learned" else AliasSource.REGISTERED)
            for r in self.rows()))

    def add(self, payer_name: str, partner_id: str, *, source: str = "learned", approved_by: str | None = None,
            deposit_id: str | None = None) -> bool:
        """Remember ``payer_name`` for ``partner_id``; False when the pair was known (or the name is empty)."""
        key = payer_key(payer_name)
        if not key:
            return False
        if source not in ("learned", "registered"):
            raise ValueError("source is learned or registered")
        try:
            with session_scope(self.engine) as s:
                if s.get(PayerAliasRow, (key, str(partner_id))) is not None:
                    return False
                # the name as shown to people (an individual masked); matching uses the key
                s.add(PayerAliasRow(payer_key=key, partner_id=str(partner_id),
                                    payer_name=payer_display(payer_name)[:200],
                                    source=source, approved_by=approved_by, deposit_id=deposit_id))
            return True
        except IntegrityError:  # a concurrent approval inserted the same pair
            return False
