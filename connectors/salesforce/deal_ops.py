"""Salesforce Opportunities, line items and write-backs in canonical terms (the ``CRMDeals`` part of the
contract).

Mixed into :class:`connectors.salesforce.connector.SalesforceCRM`; ``self.client`` is the
:class:`SalesforceClient`. A deal is read in one query with its lines (``(SELECT … FROM
OpportunityLineItems)``); the canonical write-back keys (``renkei_*``) are the ``Renkei_*__c`` fields
(:func:`.fields.field_name`). A subscription is a deal with a line carrying ``Renkei_Billing_Frequency__c``;
Salesforce refuses a zero quantity, so a line that ends an item is marked ``Renkei_Ended__c`` (listed in
``ended_line_ids`` and mapped with quantity 1, as the contract asks).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Collection, Iterator, Mapping, Sequence

from renkei.connectors.base import ChangeBatch, MapResult
from renkei.connectors.canonical_money import SubscriptionDeal
from renkei.domain.model import Deal

from . import mapping as m
from .client import soql_datetime, soql_string


def _lines(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    sub = raw.get("OpportunityLineItems") or {}
    return list(sub.get("records") or []) if isinstance(sub, Mapping) else []


def subscription_from_salesforce(raw: Mapping[str, Any], record: MapResult[Deal] | None = None
                                 ) -> SubscriptionDeal | None:
    lines = _lines(raw)
    if not any(m.text(li.get("Renkei_Billing_Frequency__c")) for li in lines):
        return None
    original = raw
    ended = frozenset(str(li["Id"]) for li in lines if li.get("Renkei_Ended__c"))
    if ended:  # the canonical subscription line needs a positive quantity: ended ones keep Salesforce's
        sub = dict(raw.get("OpportunityLineItems") or {})
        sub["records"] = [{**li, "Renkei_Ended__c": False} for li in lines]
        raw = {**raw, "OpportunityLineItems": sub}
        record = None
    res = record if record is not None else m.deal_from_salesforce(raw)
    stage = m.text(raw.get("StageName"))
    if not res.ok:
        return SubscriptionDeal(str(raw.get("Id")), stage, None, f"Salesforce opportunity cannot be read: {res.error}",
                                ended)
    deal = res.value
    if ended:  # the amount stays the canonical one (without the ended items), as on the deal itself
        deal = deal.model_copy(update={"amount": m.deal_amount(original)})
    return SubscriptionDeal(str(raw.get("Id")), stage, deal, None, ended)


class SalesforceDealOps:
    """Deals: order-to-invoice, payment-writeback, subscription-proration."""

    client: Any
    lookback_seconds: int

    def iter_deal_changes(self, since: Any = None, *, stages: Collection[str] | None = None,
                          until: datetime | None = None, extra_filters: Sequence[Any] = ()
                          ) -> Iterator[ChangeBatch[MapResult[Deal]]]:
        """Changed Opportunities with their line items (one query per page). ``stages``: only these
        ``StageName`` values; ``until``: only those last modified at or before it."""
        conds = []
        if stages is not None:
            conds.append(f"StageName IN ({', '.join(soql_string(s) for s in sorted(stages))})" if stages
                         else "Id = null")
        if until is not None:
            u = until if until.tzinfo else until.replace(tzinfo=timezone.utc)
            conds.append(f"SystemModstamp <= {soql_datetime(u)}")
        if extra_filters:
            where = self._where_from_filters("Opportunity", extra_filters)  # type: ignore[attr-defined]
            if where:
                conds.append(f"({where})")
        fields = self._present("Opportunity", m.OPPORTUNITY_FIELDS)  # type: ignore[attr-defined]
        fields.append(m.lines_subquery(self._present("OpportunityLineItem", m.LINE_FIELDS)))  # type: ignore[attr-defined]
        for batch in self.client.changes("Opportunity", fields, since, where=" AND ".join(conds) or None,
                                         lookback_seconds=self.lookback_seconds):
            yield ChangeBatch([m.deal_from_salesforce(r) for r in batch.records], batch.watermark, batch.exhausted)

    def subscription_deal(self, record: MapResult[Deal]) -> SubscriptionDeal | None:
        if record.raw is None:
            return None
        return subscription_from_salesforce(record.raw, record)

    def get_subscription_deals(self, ids: Sequence[str]) -> list[SubscriptionDeal | None]:
        return [self.subscription_deal(r) for r in self.get_deals(ids)]  # type: ignore[attr-defined]

    def iter_deal_facts(self) -> Iterator[list[Any]]:
        """Every Opportunity as :class:`~renkei.domain.reporting.DealFact` (one SOQL page at a time):
        probability = the Opportunity's ``Probability`` % (else its stage's ``DefaultProbability``) ÷ 100,
        won / closed = ``IsWon`` / ``IsClosed``; Salesforce has one sales process here: pipeline ``default``."""
        from decimal import Decimal

        from renkei.domain.reporting import DealFact, read_facts

        stages = {r["ApiName"]: r for r in self.client.query_all(
            "SELECT ApiName, MasterLabel, DefaultProbability, IsClosed, IsWon FROM OpportunityStage")}
        present = self._present  # type: ignore[attr-defined]
        fields = present("Opportunity", ["Id", "Name", "Amount", "StageName", "Probability", "IsWon", "IsClosed",
                                         "CloseDate", "AccountId", "Renkei_Invoice_Id__c", "Renkei_Payment_Status__c"])
        lines = present("OpportunityLineItem", ["Id", "TotalPrice", "Renkei_Ended__c"])
        soql = f"SELECT {', '.join(fields)}, {m.lines_subquery(lines)} FROM Opportunity ORDER BY Id"
        def fact(r: dict) -> Any:
            st = stages.get(r.get("StageName")) or {}
            prob = r.get("Probability")
            if prob is None:
                prob = st.get("DefaultProbability") or 0
            amount = m.deal_amount(r)  # an Amount that is no number: the Opportunity is reported unreadable
            return DealFact(
                crm_id=str(r["Id"]), name=m.text(r.get("Name")) or "", amount=amount, pipeline="default",
                stage=m.text(r.get("StageName")) or "", stage_label=str(st.get("MasterLabel") or r.get("StageName")
                                                                      or ""),
                probability=(Decimal(str(prob)) / 100), close_date=m.as_date(r.get("CloseDate")),
                company_crm_id=m.text(r.get("AccountId")), won=bool(r.get("IsWon")), closed=bool(r.get("IsClosed")),
                payment_status=m.text(r.get("Renkei_Payment_Status__c")),
                invoice_erp_id=m.text(r.get("Renkei_Invoice_Id__c")))

        for page, _done in self.client.query_pages(soql):  # an unreadable Opportunity: left out, reported
            yield read_facts("deal", page, fact, key=lambda r: r.get("Id"))


__all__ = ["SalesforceDealOps", "subscription_from_salesforce"]
