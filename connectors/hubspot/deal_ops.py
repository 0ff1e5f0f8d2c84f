"""HubSpot deals, line items and deal write-backs in canonical terms (the ``CRMDeals`` part of the contract).

Mixed into :class:`connectors.hubspot.connector.HubSpotCRM`; ``self.client`` is the :class:`HubSpotClient`.
The canonical write-back keys (``renkei_*``, :data:`connectors.canonical_money.DEAL_WRITEBACK_KEYS`) are
HubSpot custom properties of the same names.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

from renkei.connectors.base import MapResult
from renkei.connectors.canonical_money import SubscriptionDeal
from renkei.connectors.hubspot import mapping as m
from renkei.domain.model import Deal


def _quantity_zero(raw_line: Mapping[str, Any]) -> bool:
    q = m.as_decimal((raw_line.get("properties") or {}).get("quantity"))
    return q is not None and q == 0


def is_subscription(raw: Mapping[str, Any]) -> bool:
    return any(m.text((li.get("properties") or {}).get("recurringbillingfrequency"))
               for li in raw.get("line_items") or [])


def subscription_from_hubspot(raw: Mapping[str, Any]) -> SubscriptionDeal | None:
    """A raw HubSpot deal (with ``line_items`` records) → :class:`SubscriptionDeal` (``None``: no recurring
    line). Quantity-0 lines (ended items) are mapped with quantity 1 and listed as ended."""
    if not is_subscription(raw):
        return None
    raw_lines, ended = [], set()
    for li in raw.get("line_items") or []:
        if _quantity_zero(li):
            li = {**li, "properties": {**(li.get("properties") or {}), "quantity": "1"}}
            ended.add(str(li.get("id")))
        raw_lines.append(li)
    res = m.deal_from_hubspot(raw, line_items=raw_lines)
    stage = m.text((raw.get("properties") or {}).get("dealstage"))
    if not res.ok:
        return SubscriptionDeal(str(raw.get("id")), stage, None, f"HubSpot deal cannot be read: {res.error}",
                                frozenset(ended))
    return SubscriptionDeal(str(raw.get("id")), stage, res.value, None, frozenset(ended))


class HubSpotDealOps:
    """Deals: order-to-invoice, payment-writeback, subscription-proration."""

    client: Any

    def subscription_deal(self, record: MapResult[Deal]) -> SubscriptionDeal | None:
        if record.raw is None:
            return None
        return subscription_from_hubspot(record.raw)

    def get_subscription_deals(self, ids: Sequence[str]) -> list[SubscriptionDeal | None]:
        raws = self.client.read_deals_with_associations(list(ids), properties=m.DEAL_PROPERTIES,
                                                        line_item_properties=m.LINE_ITEM_PROPERTIES)
        return [subscription_from_hubspot(r) for r in raws]

    def iter_deal_facts(self) -> Iterator[list[Any]]:
        """Every deal of every pipeline as :class:`~renkei.domain.reporting.DealFact`: probability and
        closed from the stage's metadata (never from a stage name), won = closed at probability 1."""
        return iter_hubspot_deal_facts(self.client)


def _stage_table(client: Any) -> dict[str, tuple[str, str, Any, bool]]:
    """stage id → (pipeline label, stage label, probability as Decimal, closed) over every deal pipeline."""
    from decimal import Decimal, InvalidOperation

    out: dict[str, tuple[str, str, Any, bool]] = {}
    for p in client.pipelines("deals", refresh=True):
        for st in p.get("stages", []):
            meta = st.get("metadata") or {}
            try:
                prob = Decimal(str(meta.get("probability"))) if meta.get("probability") not in (None, "") \
                    else Decimal(0)
            except InvalidOperation:
                prob = Decimal(0)
            out[str(st["id"])] = (str(p.get("label") or p.get("id")), str(st.get("label") or st["id"]), prob,
                                  str(meta.get("isClosed", "false")).lower() == "true")
    return out


def report_amount(value: Any) -> int | None:
    """A deal amount as a report figure: whole yen toward zero (``1500.9`` → 1500); unreadable (text, NaN,
    infinity) → ``None``; the reporting read leaves such a deal out and reports it (``REPORT_RECORD_UNREADABLE``)."""
    try:
        d = m.as_decimal(value)
        return None if d is None else int(d)
    except (ValueError, OverflowError):
        return None


def _deal_fact(raw: Mapping[str, Any], stages: Mapping[str, tuple[str, str, Any, bool]]) -> Any:
    from decimal import Decimal

    from renkei.domain.reporting import DealFact

    p = raw.get("properties") or {}
    stage = m.text(p.get("dealstage")) or ""
    pipe_label, label, prob, closed = stages.get(stage, (m.text(p.get("pipeline")) or "default", stage, Decimal(0),
                                                         False))
    amount = report_amount(p.get("amount"))
    if amount is None and m.text(p.get("amount")):  # text, NaN, infinity: the deal is reported unreadable
        raise ValueError(f"amount {str(p.get('amount'))[:40]!r} is not a number")
    try:
        close = m.as_business_date(p.get("closedate"))
    except ValueError:
        close = None
    return DealFact(crm_id=str(raw["id"]), name=m.text(p.get("dealname")) or "", amount=amount,
                    pipeline=pipe_label, stage=stage, stage_label=label, probability=prob, close_date=close,
                    company_crm_id=m._first_association(raw, "companies"), won=prob == 1 and closed,
                    closed=closed, payment_status=m.text(p.get("renkei_payment_status")),
                    invoice_erp_id=m.text(p.get("renkei_invoice_id")))


def iter_hubspot_deal_facts(client: Any) -> Iterator[list[Any]]:
    """Every deal (list endpoint, 100 a page, primary company inline) as reporting facts."""
    from renkei.domain.reporting import read_facts

    stages = _stage_table(client)
    for page in client.deals.scan_pages(properties=m.DEAL_PROPERTIES, associations=["companies"]):
        yield read_facts("deal", page, lambda r: _deal_fact(r, stages))  # an unreadable deal: left out, reported
