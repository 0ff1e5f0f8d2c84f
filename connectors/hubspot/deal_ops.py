"""HubSpot deals, line items and deal write-backs in canonical terms (the ``CRMDeals`` part of the contract).

Mixed into :class:`connectors.hubspot.connector.HubSpotCRM`; ``self.client`` is the :class:`HubSpotClient`.
The canonical write-back keys (``renkei_*``, :data:`connectors.canonical_money.DEAL_WRITEBACK_KEYS`) are
HubSpot custom properties of the same names.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

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
