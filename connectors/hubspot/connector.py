"""HubSpot as a :class:`connectors.base.CRMConnector`: the client plus the mapping, in canonical terms."""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

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

    def prepare(self) -> None:
        """Create the ``renkei_*`` custom properties Renkei writes (idempotent)."""
        self.client.properties.ensure_all()

    def close(self) -> None:
        self.client.close()

    def _ensure(self, object_type: str) -> None:
        if self.ensure_properties:
            self.client.properties.ensure(object_type)

    # companies
    def iter_company_changes(self, since: Any = None) -> Iterator[ChangeBatch[MapResult[Company]]]:
        for batch in self.client.companies.changes(since, properties=m.COMPANY_PROPERTIES, lookback_ms=self.lookback_ms):
            yield ChangeBatch([m.company_from_hubspot(r) for r in batch.records], batch.watermark, batch.exhausted)

    def upsert_companies(self, companies: Sequence[Company], id_property: str = "renkei_partner_code",
                         only: Sequence[str] | None = None) -> list[WriteResult[Company]]:
        """Create-or-update by a unique ``renkei_*`` property (created on first use)."""
        self._ensure("companies")
        inputs = []
        for c in companies:
            props = m.company_to_hubspot(c, only=[*only, id_property] if only else None)
            inputs.append({"id": props.get(id_property), "properties": props})
        return self.client.companies.batch_upsert(inputs, id_property=id_property).results

    def update_company_properties(self, updates: Mapping[str, Mapping[str, Any]]) -> list[WriteResult[Any]]:
        self._ensure("companies")
        return self.client.companies.batch_update(updates).results

    # deals
    def iter_deal_changes(self, since: Any = None, *, extra_filters: Sequence[Mapping] = ()
                          ) -> Iterator[ChangeBatch[MapResult[Deal]]]:
        """Changed deals with their primary company and line items (batched association reads per page);
        ``extra_filters`` narrow the search (e.g. ``dealstage IN`` the won stages)."""
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

    # products
    def upsert_products(self, products: Sequence[Product]) -> list[WriteResult[Product]]:
        self._ensure("products")
        inputs = [{"id": p.code, "properties": m.product_to_hubspot(p)} for p in products]
        return self.client.products.batch_upsert(inputs, id_property="renkei_product_code").results

    def won_stage_ids(self) -> set[str]:
        return self.client.won_stage_ids()


__all__ = ["HubSpotCRM", "Watermark"]
