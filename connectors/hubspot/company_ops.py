"""HubSpot companies and products in canonical terms (the ``CRMCompanies`` part of the contract).

Mixed into :class:`connectors.hubspot.connector.HubSpotCRM`; ``self.client`` is the :class:`HubSpotClient`.
Canonical field paths (``connectors.canonical_sync``) map to HubSpot properties here (:data:`HS_PROPERTY`);
the linked ERP partner id (canonical ``erp_id``) is ``renkei_freee_partner_id``.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

from renkei.connectors.base import ChangeBatch, WriteResult
from renkei.connectors.canonical_sync import CompanyEcho, CompanyRecord, CompanyUpdate, CRMProduct
from renkei.connectors.hubspot import mapping as m
from renkei.connectors.hubspot.client import record_ts_ms
from renkei.domain.model import Company, Product
from renkei.domain.normalise import normalise_company_name

# canonical path → HubSpot company property
HS_PROPERTY: dict[str, str] = {
    "name": "name", "name_kana": "renkei_name_kana", "entity_kind": "renkei_entity_kind",
    "corporate_number": "renkei_corporate_number", "registration_number": "renkei_invoice_registration_number",
    "partner_code": "renkei_partner_code", "domain": "domain", "phone": "phone", "sales_owner": "hubspot_owner_id",
    "address.street": "address", "address.building": "address2", "address.city": "city",
    "address.prefecture": "state", "address.postal_code": "zip", "billing_contact_name": "renkei_billing_contact",
    "billing_email": "renkei_billing_email", "payment_terms": "renkei_payment_terms",
    "credit_hold": "renkei_credit_hold", "erp_id": "renkei_freee_partner_id",
}
# canonical upsert key → unique HubSpot property
KEY_PROPERTY = {"erp_id": "renkei_freee_partner_id", "partner_code": "renkei_partner_code"}
COMPANY_READ_PROPERTIES = [*m.COMPANY_PROPERTIES, "hs_merged_object_ids"]
MODIFIED = "hs_lastmodifieddate"
# canonical product field → HubSpot product property (the ERP-owned ones product-sync compares)
PRODUCT_PROPERTY = {"name": "name", "code": "hs_sku", "unit_price": "price", "tax_category": "renkei_tax_category",
                    "erp_id": "renkei_freee_item_id", "cost_price": "hs_cost_of_goods_sold", "stock": "renkei_stock"}


def hs_property(path: str) -> str | None:
    """The HubSpot company property holding canonical ``path`` (``None``: HubSpot does not hold it)."""
    return "renkei_payment_terms" if path.startswith("payment_terms.") else HS_PROPERTY.get(path)


def company_record(raw: Mapping[str, Any]) -> CompanyRecord:
    res = m.company_from_hubspot(raw)
    props = raw.get("properties") or {}
    merged = tuple(x for x in str(props.get("hs_merged_object_ids") or "").split(";") if x)
    version = props.get(MODIFIED)
    return CompanyRecord(source_id=res.source_id, value=res.value, error=res.error, merged_ids=merged,
                         version=str(version) if version else None)


class HubSpotCompanyOps:
    """Companies and products: customer-sync and product-sync."""

    client: Any
    lookback_ms: int

    def _ensure(self, object_type: str) -> None:  # overridden by HubSpotCRM
        ...

    # -- companies: reads ---------------------------------------------------------------------------

    def iter_company_changes(self, since: Any = None, *, lookback_ms: int | None = None
                             ) -> Iterator[ChangeBatch[CompanyRecord]]:
        lb = self.lookback_ms if lookback_ms is None else lookback_ms
        for batch in self.client.companies.changes(since, properties=COMPANY_READ_PROPERTIES, lookback_ms=lb):
            yield ChangeBatch([company_record(r) for r in batch.records], batch.watermark, batch.exhausted)

    def iter_all_companies(self) -> Iterator[list[CompanyRecord]]:
        for page in self.client.companies.read_all(properties=COMPANY_READ_PROPERTIES):
            yield [company_record(r) for r in page]

    def company_watermark_now(self) -> int:
        """The latest ``hs_lastmodifieddate`` in HubSpot now (HubSpot's clock, epoch ms): a full read started
        after this probe sees every record modified at or before it."""
        data = self.client.companies.search(sorts=[{"propertyName": MODIFIED, "direction": "DESCENDING"}],
                                            properties=[MODIFIED], limit=1)
        results = data.get("results") or []
        return record_ts_ms(results[0], MODIFIED) if results else 0

    def get_companies(self, ids: Sequence[str]) -> list[CompanyRecord]:
        return [company_record(r) for r in self.client.companies.batch_read(list(ids),
                                                                            properties=COMPANY_READ_PROPERTIES)]

    def find_company_candidates(self, company: Company, limit: int = 50) -> list[CompanyRecord]:
        groups: list[dict] = []
        if company.registration_number:
            groups.append({"filters": [{"propertyName": "renkei_invoice_registration_number", "operator": "EQ",
                                        "value": company.registration_number}]})
            groups.append({"filters": [{"propertyName": "renkei_corporate_number", "operator": "EQ",
                                        "value": company.registration_number[1:]}]})
        if company.partner_code:
            groups.append({"filters": [{"propertyName": "renkei_partner_code", "operator": "EQ",
                                        "value": company.partner_code}]})
        core = normalise_company_name(company.name)
        if core:
            groups.append({"filters": [{"propertyName": "name", "operator": "CONTAINS_TOKEN", "value": f"*{core}*"}]})
        if company.phone:
            groups.append({"filters": [{"propertyName": "phone", "operator": "EQ", "value": company.phone}]})
        if not groups:
            return []
        data = self.client.companies.search(filter_groups=groups[:5], properties=COMPANY_READ_PROPERTIES,
                                            limit=limit)
        return [company_record(r) for r in data.get("results", [])]

    def iter_archived_company_ids(self) -> Iterator[list[str]]:
        """Search never returns archived records: the archived list is read (one request per 100)."""
        for page in self.client.companies.scan_pages(properties=["name"], archived=True):
            yield [str(r["id"]) for r in page]

    # -- companies: writes --------------------------------------------------------------------------

    def update_companies(self, updates: Sequence[CompanyUpdate]) -> list[WriteResult[CompanyEcho]]:
        """One batch update (100 per request); each result's value is the record as HubSpot echoed it."""
        self._ensure("companies")
        if not updates:
            return []
        by_id: dict[str, dict[str, str]] = {}
        for u in updates:
            only = None if u.fields is None else {hs_property(f) for f in u.fields} - {None}
            by_id[str(u.crm_id)] = m.company_to_hubspot(u.company, only=only, clear_missing=u.fields is not None)
        position = {str(u.crm_id): n for n, u in enumerate(updates)}
        out: list[WriteResult[CompanyEcho]] = []
        for r in self.client.companies.batch_update(by_id).results:
            n = position.get(str(r.id)) if r.id is not None else None
            if n is None and r.index is not None and r.index < len(updates):
                n = r.index
            if n is None:
                continue
            u = updates[n]
            echo = None
            props = (r.value or {}).get("properties") if isinstance(r.value, dict) else None
            if r.ok:
                props = props or {}
                res = m.company_from_hubspot({"id": str(u.crm_id), "properties": props}) if props else None
                fields = frozenset(f for f in (u.fields or HS_PROPERTY) if hs_property(f) in props)
                version = props.get(MODIFIED)
                echo = CompanyEcho(res.value if res is not None and res.ok else None,
                                   fields if res is not None and res.ok else frozenset(),
                                   str(version) if version else None)
            out.append(WriteResult(index=n, ok=r.ok, id=str(u.crm_id), created=r.created, value=echo,
                                   error=r.error, category=r.category, status=r.status, details=r.details))
        return out

    def upsert_companies(self, companies: Sequence[Company], key: str = "partner_code") -> list[WriteResult[Company]]:
        """Create-or-update by a unique ``renkei_*`` property (``key``: canonical ``erp_id`` or
        ``partner_code``); empty values are not sent (an existing record keeps them)."""
        self._ensure("companies")
        prop = KEY_PROPERTY[key]
        inputs = []
        for c in companies:
            props = m.company_to_hubspot(c)
            inputs.append({"id": props.get(prop), "properties": props})
        out: list[WriteResult[Company]] = []
        for r in self.client.companies.batch_upsert(inputs, id_property=prop).results:
            value = None
            if r.ok:
                res = m.company_from_hubspot(r.value if isinstance(r.value, dict) else {"id": r.id, "properties": {}})
                value = res.value if res.ok else None
            out.append(WriteResult(index=r.index, ok=r.ok, id=r.id, created=r.created, value=value, error=r.error,
                                   category=r.category, status=r.status, details=r.details))
        return out

    # -- products -----------------------------------------------------------------------------------

    def iter_product_changes(self, since: Any = None) -> Iterator[ChangeBatch[CRMProduct]]:
        self._ensure("products")
        for batch in self.client.products.changes(since, properties=m.PRODUCT_PROPERTIES):
            yield ChangeBatch([self._crm_product(r) for r in batch.records], batch.watermark, batch.exhausted)

    @staticmethod
    def _crm_product(rec: Mapping[str, Any]) -> CRMProduct:
        p = rec.get("properties") or {}
        key = p.get("renkei_product_code")
        code = key or p.get("hs_sku")
        return CRMProduct(crm_id=str(rec["id"]), code=str(code) if code else None, keyed=bool(key),
                          values={f: str(p[hp]) for f, hp in PRODUCT_PROPERTY.items() if p.get(hp) not in (None, "")},
                          archived=bool(rec.get("archived", False)))

    def upsert_products(self, products: Sequence[Product]) -> list[WriteResult[Product]]:
        self._ensure("products")
        inputs = [{"id": p.code, "properties": m.product_to_hubspot(p)} for p in products]
        return self.client.products.batch_upsert(inputs, id_property="renkei_product_code").results

    def update_products(self, updates: Mapping[str, Product]) -> list[WriteResult[Any]]:
        self._ensure("products")
        return self.client.products.batch_update({k: m.product_to_hubspot(p) for k, p in updates.items()}).results

    def archive_products(self, ids: Sequence[str]) -> None:
        self.client.products.batch_archive([str(i) for i in ids])


__all__ = ["COMPANY_READ_PROPERTIES", "HS_PROPERTY", "HubSpotCompanyOps", "company_record", "hs_property"]
