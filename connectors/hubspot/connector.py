"""HubSpot as a :class:`connectors.base.CRMConnector`: the client plus the mapping, in canonical terms."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Collection, Iterator, Mapping, Sequence

from renkei.connectors.base import ChangeBatch, CRMCapabilities, MapResult, WriteResult
from renkei.connectors.hubspot import mapping as m
from renkei.connectors.hubspot.client import HubSpotClient, Watermark
from renkei.connectors.hubspot.company_ops import HubSpotCompanyOps
from renkei.connectors.hubspot.deal_ops import HubSpotDealOps
from renkei.domain.model import Company, Deal, Product


class HubSpotCRM(HubSpotCompanyOps, HubSpotDealOps):
    """Canonical-model façade over :class:`HubSpotClient` (satisfies ``CRMConnector``)."""

    capabilities = CRMCapabilities(name="hubspot", label="HubSpot", merges=True, line_items=True, owners=True)

    def __init__(self, client: HubSpotClient, *, lookback_ms: int = 0, ensure_properties: bool = True):
        self.client = client
        self.lookback_ms = lookback_ms
        self.ensure_properties = ensure_properties

    def prepare(self) -> dict[str, list[str]]:
        """Create the ``renkei_*`` custom properties Renkei writes (idempotent); returns what was created."""
        return self.client.properties.ensure_all()

    def close(self) -> None:
        self.client.close()

    def _ensure(self, object_type: str) -> None:
        if self.ensure_properties:
            self.client.properties.ensure(object_type)

    # deals
    def iter_deal_changes(self, since: Any = None, *, stages: Collection[str] | None = None,
                          until: datetime | None = None,
                          extra_filters: Sequence[Mapping] = ()) -> Iterator[ChangeBatch[MapResult[Deal]]]:
        """Changed deals with their primary company and line items (batched association reads per page);
        ``stages`` (deal stage ids) and ``extra_filters`` (HubSpot search filters) narrow the search."""
        if stages is not None:
            extra_filters = [*extra_filters, {"propertyName": "dealstage", "operator": "IN", "values": sorted(stages)}]
        if until is not None:
            extra_filters = [*extra_filters, {"propertyName": "hs_lastmodifieddate", "operator": "LTE",
                                              "value": str(int(until.timestamp() * 1000))}]
        for batch in self.client.deals.changes(since, properties=m.DEAL_PROPERTIES, lookback_ms=self.lookback_ms,
                                               extra_filters=extra_filters):
            deals = self.client.attach_deal_associations(batch.records, line_item_properties=m.LINE_ITEM_PROPERTIES)
            yield ChangeBatch([m.deal_from_hubspot(d) for d in deals], batch.watermark, batch.exhausted)

    def get_deals(self, ids: Sequence[str], *, with_line_items: bool = True) -> list[MapResult[Deal]]:
        if with_line_items:
            recs = self.client.read_deals_with_associations(ids, properties=m.DEAL_PROPERTIES,
                                                            line_item_properties=m.LINE_ITEM_PROPERTIES)
        else:
            recs = self.client.deals.batch_read(ids, properties=m.DEAL_PROPERTIES)
        return [m.deal_from_hubspot(r) for r in recs]

    def update_deal_properties(self, updates: Mapping[str, Mapping[str, Any]]) -> list[WriteResult[Any]]:
        self._ensure("deals")
        return self.client.deals.batch_update(updates).results

    def won_stage_ids(self) -> set[str]:
        return self.client.won_stage_ids()


__all__ = ["HubSpotCRM", "Watermark"]
