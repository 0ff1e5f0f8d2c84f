"""Salesforce Accounts and Products in canonical terms (the ``CRMCompanies`` part of the contract).

Mixed into :class:`connectors.salesforce.connector.SalesforceCRM`; ``self.client`` is the
:class:`SalesforceClient`. Canonical field paths (``connectors.canonical_sync``) map to Account fields here
(:data:`SF_FIELD`); the linked ERP partner id (canonical ``erp_id``) is ``Renkei_ERP_Partner_Id__c``.

* Reads return :class:`CompanyRecord`: ``version`` is the Account's ``SystemModstamp`` (an update's echo
  carries the same stamp, so a later read of Renkei's own write is recognised); ``merged_ids`` are the
  Accounts merged into it (losers keep ``MasterRecordId``; read with ``queryAll``).
* Live records only in change / full reads; deleted and merged-away ones through
  :meth:`iter_archived_company_ids`.
* Products: Product2 keyed by ``Renkei_Item_Code__c`` (External ID); the price is the standard
  PricebookEntry's ``UnitPrice``; archiving deactivates (``IsActive = false``: products on price books and
  opportunity lines are not deleted in Salesforce).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping, Sequence

from renkei.connectors.base import ChangeBatch, WriteResult
from renkei.connectors.canonical_sync import CompanyEcho, CompanyRecord, CompanyUpdate, CRMProduct, wire_text
from renkei.connectors.http import chunked
from renkei.domain.model import Company, Product
from renkei.domain.normalise import normalise_company_name

from . import mapping as m
from .client import Watermark, is_record_id, parse_sf_datetime, soql_string

# canonical path → Account field
SF_FIELD: dict[str, str] = {
    "name": "Name", "name_kana": "Renkei_Name_Kana__c", "entity_kind": "Renkei_Entity_Kind__c",
    "corporate_number": "Renkei_Corporate_Number__c", "registration_number": "Renkei_Invoice_Registration_Number__c",
    "partner_code": "Renkei_Partner_Code__c", "domain": "Website", "phone": "Phone", "sales_owner": "OwnerId",
    "address.street": "BillingStreet", "address.building": "BillingStreet", "address.city": "BillingCity",
    "address.prefecture": "BillingState", "address.postal_code": "BillingPostalCode",
    "billing_contact_name": "Renkei_Billing_Contact__c", "billing_email": "Renkei_Billing_Email__c",
    "payment_terms": "Renkei_Payment_Terms__c", "credit_hold": "Renkei_Credit_Hold__c",
    "erp_id": "Renkei_ERP_Partner_Id__c",
}
KEY_FIELD = {"erp_id": "Renkei_ERP_Partner_Id__c", "partner_code": "Renkei_Partner_Code__c"}
# canonical product field → where Salesforce holds it ("price" = the standard PricebookEntry)
PRODUCT_FIELD = {"name": "Name", "code": "ProductCode", "unit_price": "price", "tax_category": "Renkei_Tax_Category__c",
                 "erp_id": "Renkei_ERP_Item_Id__c", "cost_price": "Renkei_Cost_Price__c", "stock": "Renkei_Stock__c"}
PRODUCT_READ = ["Id", "Name", "ProductCode", "IsActive", "Renkei_Item_Code__c", "Renkei_ERP_Item_Id__c",
                "Renkei_Tax_Category__c", "Renkei_Cost_Price__c", "Renkei_Stock__c", "SystemModstamp"]


def sf_field(path: str) -> str | None:
    """The Account field holding canonical ``path`` (``None``: Salesforce does not hold it)."""
    return "Renkei_Payment_Terms__c" if path.startswith("payment_terms.") else SF_FIELD.get(path)


def company_record(raw: Mapping[str, Any], merged: Sequence[str] = ()) -> CompanyRecord:
    res = m.company_from_salesforce(raw)
    stamp = raw.get("SystemModstamp")
    return CompanyRecord(source_id=res.source_id, value=res.value, error=res.error, raw=raw,
                         merged_ids=tuple(merged), version=str(stamp) if stamp else None)


def _number_text(v: Any) -> str | None:
    if v is None:
        return None
    return wire_text(m.decimal(v))


class SalesforceCompanyOps:
    """Companies and products: customer-sync and product-sync."""

    client: Any
    lookback_seconds: int

    # -- helpers -----------------------------------------------------------------------------------
    def _account_fields(self) -> list[str]:
        return self._present("Account", m.ACCOUNT_FIELDS)  # type: ignore[attr-defined]

    def _records(self, rows: list[dict]) -> list[CompanyRecord]:
        """Company records with ``merged_ids`` (one queryAll for the page's merge losers)."""
        merged: dict[str, list[str]] = {}
        live = [r["Id"] for r in rows if not r.get("IsDeleted")]
        for chunk in chunked(live, 200):
            ids = ", ".join(soql_string(i) for i in chunk)
            for loser in self.client.query_all(f"SELECT Id, MasterRecordId FROM Account WHERE IsDeleted = true AND "
                                               f"MasterRecordId IN ({ids})", include_deleted=True):
                merged.setdefault(loser["MasterRecordId"], []).append(loser["Id"])
        return [company_record(r, merged.get(r["Id"], ())) for r in rows]

    # -- companies: reads --------------------------------------------------------------------------
    def iter_company_changes(self, since: Any = None, *, lookback_ms: int | None = None
                             ) -> Iterator[ChangeBatch[CompanyRecord]]:
        """Live Accounts changed after ``since`` (``(SystemModstamp, Id)`` watermarks, see the client)."""
        lookback = self.lookback_seconds if lookback_ms is None else -(-int(lookback_ms) // 1000)
        for batch in self.client.changes("Account", self._account_fields(), since, lookback_seconds=lookback):
            yield ChangeBatch(self._records(batch.records), batch.watermark, batch.exhausted)

    def iter_all_companies(self) -> Iterator[list[CompanyRecord]]:
        soql = f"SELECT {', '.join(self._account_fields())} FROM Account"
        for rows, _ in self.client.query_pages(soql):
            if rows:
                yield self._records(rows)

    def company_watermark_now(self) -> Watermark:
        """The latest ``SystemModstamp`` of any Account, without an Id: resuming from it re-reads that second
        (a write in the same second is never lost)."""
        rows = self.client.query_all("SELECT SystemModstamp FROM Account ORDER BY SystemModstamp DESC LIMIT 1")
        ts = parse_sf_datetime(rows[0]["SystemModstamp"]) if rows else datetime(1970, 1, 1, tzinfo=timezone.utc)
        return Watermark(ts)

    def get_companies(self, ids: Sequence[str]) -> list[CompanyRecord]:
        wanted = [i for i in dict.fromkeys(str(x) for x in ids) if is_record_id(i)]
        rows: list[dict] = []
        fields = ", ".join(self._account_fields())
        for chunk in chunked(wanted, 200):
            rows += self.client.query_all(f"SELECT {fields} FROM Account WHERE Id IN "
                                          f"({', '.join(soql_string(i) for i in chunk)})")
        by_id = {r["Id"]: r for r in rows}
        by_id.update({r["Id"][:15]: r for r in rows})
        ordered: dict[str, dict] = {}
        for i in wanted:  # input order, each record once (missing ids are left out)
            r = by_id.get(i) or by_id.get(i[:15])
            if r is not None:
                ordered.setdefault(r["Id"], r)
        return self._records(list(ordered.values()))

    def find_company_candidates(self, company: Company, limit: int = 50) -> list[CompanyRecord]:
        conds = []
        if company.registration_number:
            conds.append(f"Renkei_Invoice_Registration_Number__c = {soql_string(company.registration_number)}")
            conds.append(f"Renkei_Corporate_Number__c = {soql_string(company.registration_number[1:])}")
        if company.corporate_number:
            conds.append(f"Renkei_Corporate_Number__c = {soql_string(company.corporate_number)}")
        if company.partner_code:
            conds.append(f"Renkei_Partner_Code__c = {soql_string(company.partner_code)}")
        core = normalise_company_name(company.name)
        if core:
            like = core.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conds.append(f"Name LIKE {soql_string('%' + like + '%')}")
        if company.phone:
            conds.append(f"Phone = {soql_string(company.phone)}")
        have = self.client.fields("Account")
        conds = [c for c in conds if c.split(" ", 1)[0].lower() in have]
        if not conds:
            return []
        soql = (f"SELECT {', '.join(self._account_fields())} FROM Account WHERE {' OR '.join(conds)} "
                f"LIMIT {int(limit)}")
        return self._records(self.client.query_all(soql))

    def iter_archived_company_ids(self) -> Iterator[list[str]]:
        """Accounts in the Recycle Bin, merged-away ones included (``queryAll``)."""
        for rows, _ in self.client.query_pages("SELECT Id FROM Account WHERE IsDeleted = true", include_deleted=True):
            if rows:
                yield [r["Id"] for r in rows]

    # -- companies: writes -------------------------------------------------------------------------
    def update_companies(self, updates: Sequence[CompanyUpdate]) -> list[WriteResult[CompanyEcho]]:
        """sObject Collections update (200 per call), then one read of the written records for the echo."""
        if not updates:
            return []
        have = self.client.fields("Account")
        results: list[WriteResult[CompanyEcho] | None] = [None] * len(updates)
        body, positions = [], []
        for n, u in enumerate(updates):
            if not is_record_id(str(u.crm_id)):
                results[n] = WriteResult(index=n, ok=False, id=str(u.crm_id), category="MALFORMED_ID",
                                         error=f"not a Salesforce record id: {u.crm_id!r}")
                continue
            only = None if u.fields is None else {sf_field(f) for f in u.fields} - {None}
            fields = m.company_to_salesforce(u.company, only=only, clear_missing=u.fields is not None)
            fields.pop("OwnerId", None)
            if u.company.sales_owner and is_record_id(u.company.sales_owner) and (only is None or "OwnerId" in only):
                fields["OwnerId"] = u.company.sales_owner
            body.append({"attributes": {"type": "Account"}, "Id": str(u.crm_id),
                         **{k: v for k, v in fields.items() if k.lower() in have}})
            positions.append(n)
        written = self.client._collection("PATCH", "composite/sobjects", body) if body else []
        ok_ids = [str(updates[p].crm_id) for p, r in zip(positions, written) if r.ok]
        echoes = {r["Id"]: r for r in self.client.retrieve("Account", ok_ids, self._account_fields())
                  if r} if ok_ids else {}
        for p, r in zip(positions, written):
            u = updates[p]
            echo = None
            if r.ok:
                raw = echoes.get(r.id or "") or echoes.get(str(u.crm_id))
                res = m.company_from_salesforce(raw) if raw else None
                paths = u.fields if u.fields is not None else frozenset(SF_FIELD)
                echo = CompanyEcho(res.value if res is not None and res.ok else None,
                                   frozenset(f for f in paths if sf_field(f) and raw and sf_field(f) in raw)
                                   if res is not None and res.ok else frozenset(),
                                   str(raw["SystemModstamp"]) if raw and raw.get("SystemModstamp") else None)
            results[p] = WriteResult(index=p, ok=r.ok, id=str(u.crm_id), value=echo, error=r.error,
                                     category=r.category, status=r.status, details=r.details)
        return [r for r in results if r is not None]

    def upsert_companies(self, companies: Sequence[Company], key: str = "partner_code", *,
                         only: Sequence[str] | None = None) -> list[WriteResult[Company]]:
        """Create-or-update Accounts by a canonical key (``erp_id`` → ``Renkei_ERP_Partner_Id__c``,
        ``partner_code`` → ``Renkei_Partner_Code__c``; a Salesforce field name or a ``renkei_*`` name also
        works); empty values are not sent (an existing record keeps them)."""
        from .connector import SETUP_HELP, SalesforceSetupError  # the connector module imports this one
        from .fields import field_name

        have = self.client.fields("Account")
        target = KEY_FIELD.get(key) or field_name("Account", key)
        d = have.get(target.lower())
        if d is None or not d.get("externalId"):
            raise SalesforceSetupError(f"Account.{target} is missing or not an External ID field. {SETUP_HELP}",
                                       category="SETUP", code="MISSING_FIELDS")
        target = d["name"]
        only_fields = [sf_field(o) or field_name("Account", o) for o in only] + [target] if only else None
        results: list[WriteResult[Company] | None] = [None] * len(companies)
        payload, positions = [], []
        for i, c in enumerate(companies):
            body = {k: v for k, v in m.company_to_salesforce(c, only=only_fields).items() if k.lower() in have}
            if not body.get(target):
                results[i] = WriteResult(index=i, ok=False, value=c, category="MISSING_KEY",
                                         error=f"no value for the upsert key {target} ({key})")
                continue
            payload.append(body)
            positions.append(i)
        for pos, r in zip(positions, self.client.upsert_records("Account", target, payload) if payload else []):
            c = companies[pos]
            results[pos] = replace(r, index=pos, value=c.model_copy(update={"crm_id": r.id}) if r.ok else c)
        return [r for r in results if r is not None]

    # -- products ----------------------------------------------------------------------------------
    def iter_product_changes(self, since: Any = None) -> Iterator[ChangeBatch[CRMProduct]]:
        fields = self._present("Product2", PRODUCT_READ)  # type: ignore[attr-defined]
        for batch in self.client.changes("Product2", fields, since, lookback_seconds=self.lookback_seconds):
            prices = self._standard_prices([r["Id"] for r in batch.records])
            yield ChangeBatch([self._crm_product(r, prices.get(r["Id"])) for r in batch.records], batch.watermark,
                              batch.exhausted)

    def _standard_prices(self, product_ids: Sequence[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        if not product_ids:
            return out
        std = self.standard_pricebook_id()  # type: ignore[attr-defined]
        for chunk in chunked(list(product_ids), 200):
            ids = ", ".join(soql_string(i) for i in chunk)
            for e in self.client.query_all(f"SELECT Id, Product2Id, UnitPrice, IsActive FROM PricebookEntry "
                                           f"WHERE Pricebook2Id = {soql_string(std)} AND Product2Id IN ({ids})"):
                out[e["Product2Id"]] = e
        return out

    @staticmethod
    def _crm_product(rec: Mapping[str, Any], entry: Mapping[str, Any] | None) -> CRMProduct:
        key = m.text(rec.get("Renkei_Item_Code__c"))
        code = key or m.text(rec.get("ProductCode"))
        values: dict[str, str] = {}
        for f, sf in PRODUCT_FIELD.items():
            if sf == "price":
                v = _number_text(entry.get("UnitPrice")) if entry else None
            elif sf in ("Renkei_Cost_Price__c", "Renkei_Stock__c"):
                v = _number_text(rec.get(sf))
            else:
                v = m.text(rec.get(sf))
            if v not in (None, ""):
                values[f] = v
        return CRMProduct(crm_id=str(rec["Id"]), code=code, keyed=bool(key), values=values,
                          archived=not rec.get("IsActive") or bool(rec.get("IsDeleted")))

    def _product_fields(self, p: Product) -> dict[str, Any]:
        have = self.client.fields("Product2")
        fields = m.product_to_salesforce(p)
        if p.cost_price is not None:
            fields["Renkei_Cost_Price__c"] = p.cost_price
        if p.stock is not None:
            fields["Renkei_Stock__c"] = p.stock
        return {k: v for k, v in fields.items() if k.lower() in have}

    def _set_prices(self, results: list[WriteResult[Any]], products: Sequence[Product]) -> list[WriteResult[Any]]:
        """Create or update the standard PricebookEntry of every written product that has a price; a failure
        there fails that product's result."""
        priced = {r.id: (n, products[n].unit_price) for n, r in enumerate(results)
                  if r.ok and r.id and products[n].unit_price is not None}
        if not priced:
            return results
        std = self.standard_pricebook_id()  # type: ignore[attr-defined]
        entries = self._standard_prices(list(priced))
        creates, create_for, updates, update_for = [], [], {}, []
        for pid, (n, price) in priced.items():
            e = entries.get(pid)
            if e is None:
                creates.append({"Pricebook2Id": std, "Product2Id": pid, "UnitPrice": price, "IsActive": True})
                create_for.append(n)
            elif m.yen(e.get("UnitPrice")) != price or not e.get("IsActive"):
                updates[e["Id"]] = {"UnitPrice": price, "IsActive": True}
                update_for.append(n)
        outcomes = list(zip(create_for, self.client.create_records("PricebookEntry", creates) if creates else []))
        outcomes += list(zip(update_for, self.client.update_records("PricebookEntry", updates) if updates else []))
        for n, r in outcomes:
            if not r.ok:
                results[n] = replace(results[n], ok=False, error=f"standard price: {r.error}", category=r.category,
                                     details=r.details)
        return results

    def upsert_products(self, products: Sequence[Product]) -> list[WriteResult[Product]]:
        """Upsert Product2 by ``Renkei_Item_Code__c``, then set each one's standard price."""
        payload = [self._product_fields(p) for p in products]
        results = [replace(r, value=products[r.index]) for r in
                   (self.client.upsert_records("Product2", "Renkei_Item_Code__c", payload) if payload else [])]
        return self._set_prices(results, products)

    def update_products(self, updates: Mapping[str, Product]) -> list[WriteResult[Any]]:
        """Write the ERP-owned fields onto these Product2 records (a hand-made one gets the upsert key)."""
        items = list(updates.items())
        results = self.client.update_records("Product2", {k: self._product_fields(p) for k, p in items}) if items else []
        results = [replace(r, id=r.id or items[n][0], value=items[n][1]) for n, r in enumerate(results)]
        return self._set_prices(results, [p for _, p in items])

    def archive_products(self, ids: Sequence[str]) -> None:
        """Deactivate (``IsActive = false``): products on price books and lines are kept, not deleted."""
        if ids:
            self.client.update_records("Product2", {str(i): {"IsActive": False} for i in ids})


__all__ = ["KEY_FIELD", "PRODUCT_FIELD", "SF_FIELD", "SalesforceCompanyOps", "company_record", "sf_field"]
