"""Salesforce as a :class:`connectors.base.CRMConnector`: the client plus the mapping, in canonical terms.

Property names: flows write the shared ``renkei_*`` names (``renkei_invoice_number`` …) and a few HubSpot
standard names; :func:`.fields.field_name` turns them into Salesforce fields (``Renkei_Invoice_Number__c``,
``Name`` …), checked against ``describe`` before anything is sent — an unknown or read-only field is a
per-input failure, never a failed batch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterator, Mapping, Sequence

from renkei.connectors.base import ChangeBatch, CRMCapabilities, MapResult, WriteResult
from renkei.connectors.http import PermanentError, chunked

from . import mapping as m
from .client import SalesforceClient, Watermark, is_record_id, soql_string
from .fields import OBJECTS, RENKEI_FIELDS, convert, field_name

SETUP_HELP = ("Salesforce's data API cannot create fields: an admin deploys them once (connectors/salesforce/"
              "README.md, 'Installing the Renkei fields': the metadata package with `sf project deploy start`, or "
              "Setup → Object Manager → Fields & Relationships) and grants the integration user read/edit on them "
              "through the 'Renkei Integration' permission set.")

_OPS = {"EQ": "=", "NEQ": "!=", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=", "IN": "IN", "NOT_IN": "NOT IN"}


class SalesforceSetupError(PermanentError):
    """The org lacks what Renkei needs (custom fields, external-ID flags, field access)."""


class SalesforceCRM:
    """Canonical-model façade over :class:`SalesforceClient` (satisfies ``CRMConnector``)."""

    def __init__(self, client: SalesforceClient, *, lookback_seconds: int = 0):
        self.client = client
        self.lookback_seconds = lookback_seconds
        self._std_pricebook: str | None = None

    @property
    def capabilities(self) -> CRMCapabilities:
        return CRMCapabilities(name="salesforce", label="Salesforce", merges=True, line_items=True, owners=True,
                               daily_api_limit=self.client.budget.max or self.client.settings.daily_api_limit)

    # ------------------------------------------------------------------ setup
    def missing_fields(self) -> list[str]:
        """``Object.Field__c`` names Renkei needs that the integration user cannot see (or that lack the
        External ID flag they need)."""
        problems = []
        for obj in OBJECTS:
            have = {f["name"].lower(): f for f in self.client.describe(obj, refresh=True)["fields"]}
            for f in (x for x in RENKEI_FIELDS if x.object == obj):
                d = have.get(f.name.lower())
                if d is None:
                    problems.append(f.full_name)
                elif f.external_id and not d.get("externalId"):
                    problems.append(f"{f.full_name} (must be marked External ID)")
        return problems

    def prepare(self) -> None:
        """Check through ``describe`` that every ``Renkei_*__c`` field exists; one clear error otherwise."""
        problems = self.missing_fields()
        if problems:
            raise SalesforceSetupError(f"Salesforce org is missing {len(problems)} Renkei custom field(s): "
                                       f"{', '.join(problems)}. {SETUP_HELP}", category="SETUP",
                                       code="MISSING_FIELDS", details={"missing": problems})

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ helpers
    def _present(self, sobject: str, fields: Sequence[str]) -> list[str]:
        """``fields`` that exist for the integration user (relationship paths checked on their target)."""
        out = []
        for f in fields:
            rel, _, name = f.rpartition(".")
            target = {"Product2": "Product2", "Account": "Account"}.get(rel, sobject) if rel else sobject
            if name.lower() in self.client.fields(target):
                out.append(f)
        return out

    def _where_from_filters(self, sobject: str, filters: Sequence[Any]) -> str | None:
        """HubSpot-shaped filters (``{"propertyName": "dealstage", "operator": "IN", "values": [...]}``) or raw
        SOQL strings → one SOQL condition."""
        have = self.client.fields(sobject)
        conds = []
        for f in filters:
            if isinstance(f, str):
                conds.append(f"({f})")
                continue
            name = field_name(sobject, str(f["propertyName"]))
            d = have.get(name.lower())
            op = _OPS.get(str(f.get("operator", "EQ")).upper())
            if d is None or op is None:
                raise ValueError(f"cannot filter {sobject} on {f!r}")

            def lit(v: Any) -> str:
                v = convert(d, v)
                if v is None:
                    return "null"
                if isinstance(v, bool):
                    return "true" if v else "false"
                if d["type"] in ("currency", "double", "percent", "int"):
                    return str(v)
                if d["type"] in ("date", "datetime"):
                    from .client import soql_datetime

                    return v.isoformat() if d["type"] == "date" else soql_datetime(v)
                return soql_string(str(v))

            if op in ("IN", "NOT IN"):
                vals = list(f.get("values") or [])
                if not vals:
                    conds.append("Id = null" if op == "IN" else "Id != null")
                    continue
                conds.append(f"{d['name']} {op} ({', '.join(lit(v) for v in vals)})")
            else:
                conds.append(f"{d['name']} {op} {lit(f.get('value'))}")
        return " AND ".join(conds) or None

    def _update(self, sobject: str, updates: Mapping[str, Mapping[str, Any]]) -> list[WriteResult[Any]]:
        have = self.client.fields(sobject)
        results: list[WriteResult[Any] | None] = [None] * len(updates)
        payload: dict[str, dict] = {}
        positions: list[int] = []
        for i, (rid, props) in enumerate(updates.items()):
            if not is_record_id(rid):
                results[i] = WriteResult(index=i, ok=False, id=str(rid), error=f"not a Salesforce record id: {rid!r}",
                                         category="MALFORMED_ID")
                continue
            body, errs = {}, []
            props = dict(props)
            if sobject == "Account" and "address2" in props:
                if "address" not in props:
                    errs.append("address2: Salesforce keeps street and building in BillingStreet; send address too")
                else:
                    props["address"] = "\n".join(x for x in (props.pop("address"), props.pop("address2")) if x)
            for key, value in props.items():
                name = field_name(sobject, key)
                d = have.get(name.lower())
                if d is None:
                    errs.append(f"{key}: {sobject} has no field {name}")
                    continue
                if not d.get("updateable"):
                    errs.append(f"{key}: {sobject}.{d['name']} is read-only")
                    continue
                try:
                    body[d["name"]] = convert(d, value)
                except (ValueError, TypeError) as exc:
                    errs.append(f"{key}: {exc}")
            if errs:
                results[i] = WriteResult(index=i, ok=False, id=rid, error="; ".join(errs), category="INVALID_FIELD")
                continue
            payload[rid] = body
            positions.append(i)
        for pos, r in zip(positions, self.client.update_records(sobject, payload) if payload else []):
            results[pos] = replace(r, index=pos, id=r.id or list(payload)[positions.index(pos)])
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------ companies
    def iter_company_changes(self, since: Any = None) -> Iterator[ChangeBatch[MapResult[Any]]]:
        """Changed Accounts, deleted and merged-away ones included (``queryAll``; they map ``archived``)."""
        fields = self._present("Account", m.ACCOUNT_FIELDS)
        for batch in self.client.changes("Account", fields, since, include_deleted=True,
                                         lookback_seconds=self.lookback_seconds):
            yield ChangeBatch([m.company_from_salesforce(r) for r in batch.records], batch.watermark, batch.exhausted)

    def upsert_companies(self, companies: Sequence[Any], id_property: str = "renkei_partner_code",
                         only: Sequence[str] | None = None) -> list[WriteResult[Any]]:
        """Create-or-update Accounts by an External ID field (``renkei_partner_code`` →
        ``Renkei_Partner_Code__c``; ``renkei_freee_partner_id`` → ``Renkei_ERP_Partner_Id__c``)."""
        have = self.client.fields("Account")
        key = field_name("Account", id_property)
        d = have.get(key.lower())
        if d is None or not d.get("externalId"):
            raise SalesforceSetupError(f"Account.{key} is missing or not an External ID field. {SETUP_HELP}",
                                       category="SETUP", code="MISSING_FIELDS")
        key = d["name"]
        only_fields = [field_name("Account", o) for o in only] + [key] if only else None
        results: list[WriteResult[Any] | None] = [None] * len(companies)
        payload, positions = [], []
        for i, c in enumerate(companies):
            body = {k: v for k, v in m.company_to_salesforce(c, only=only_fields).items() if k.lower() in have}
            if not body.get(key):
                results[i] = WriteResult(index=i, ok=False, value=c, category="MISSING_KEY",
                                         error=f"no value for the upsert key {key} ({id_property})")
                continue
            payload.append(body)
            positions.append(i)
        for pos, r in zip(positions, self.client.upsert_records("Account", key, payload) if payload else []):
            results[pos] = replace(r, index=pos, value=companies[pos])
        return [r for r in results if r is not None]

    def update_company_properties(self, updates: Mapping[str, Mapping[str, Any]]) -> list[WriteResult[Any]]:
        return self._update("Account", updates)

    # ------------------------------------------------------------------ products
    def standard_pricebook_id(self) -> str:
        if self._std_pricebook is None:
            rows = self.client.query_all("SELECT Id FROM Pricebook2 WHERE IsStandard = true")
            if not rows:
                raise SalesforceSetupError("the org has no standard price book", category="SETUP")
            self._std_pricebook = rows[0]["Id"]
        return self._std_pricebook

    def upsert_products(self, products: Sequence[Any]) -> list[WriteResult[Any]]:
        """Upsert Product2 by ``Renkei_Item_Code__c``, then set each one's standard price (PricebookEntry)."""
        have = self.client.fields("Product2")
        payload = [{k: v for k, v in m.product_to_salesforce(p).items() if k.lower() in have} for p in products]
        results = [replace(r, value=products[r.index]) for r in
                   (self.client.upsert_records("Product2", "Renkei_Item_Code__c", payload) if payload else [])]
        priced = {r.id: (r.index, products[r.index].unit_price) for r in results
                  if r.ok and r.id and products[r.index].unit_price is not None}
        if not priced:
            return results
        std = self.standard_pricebook_id()
        entries: dict[str, dict] = {}
        for chunk in chunked(list(priced), 200):
            ids = ", ".join(soql_string(i) for i in chunk)
            for e in self.client.query_all(f"SELECT Id, Product2Id, UnitPrice, IsActive FROM PricebookEntry "
                                           f"WHERE Pricebook2Id = {soql_string(std)} AND Product2Id IN ({ids})"):
                entries[e["Product2Id"]] = e
        creates, create_for, updates, update_for = [], [], {}, []
        for pid, (idx, price) in priced.items():
            e = entries.get(pid)
            if e is None:
                creates.append({"Pricebook2Id": std, "Product2Id": pid, "UnitPrice": price, "IsActive": True})
                create_for.append(idx)
            elif m.yen(e.get("UnitPrice")) != price or not e.get("IsActive"):
                updates[e["Id"]] = {"UnitPrice": price, "IsActive": True}
                update_for.append(idx)
        outcomes = list(zip(create_for, self.client.create_records("PricebookEntry", creates) if creates else []))
        outcomes += list(zip(update_for, self.client.update_records("PricebookEntry", updates) if updates else []))
        for idx, r in outcomes:
            if not r.ok:
                results[idx] = replace(results[idx], ok=False, error=f"standard price: {r.error}", category=r.category,
                                       details=r.details)
        return results

    # ------------------------------------------------------------------ deals
    def _deal_select(self, with_line_items: bool = True) -> str:
        fields = self._present("Opportunity", m.OPPORTUNITY_FIELDS)
        if with_line_items:
            fields.append(m.lines_subquery(self._present("OpportunityLineItem", m.LINE_FIELDS)))
        return ", ".join(fields)

    def iter_deal_changes(self, since: Any = None, *, extra_filters: Sequence[Any] = ()
                          ) -> Iterator[ChangeBatch[MapResult[Any]]]:
        """Changed Opportunities with their line items (one query: a child subquery). ``extra_filters`` narrow
        it (HubSpot-shaped filters on shared names, e.g. ``dealstage IN`` the won stages, or SOQL)."""
        where = self._where_from_filters("Opportunity", extra_filters) if extra_filters else None
        fields = [f for f in self._present("Opportunity", m.OPPORTUNITY_FIELDS)]
        fields.append(m.lines_subquery(self._present("OpportunityLineItem", m.LINE_FIELDS)))
        for batch in self.client.changes("Opportunity", fields, since, where=where,
                                         lookback_seconds=self.lookback_seconds):
            yield ChangeBatch([m.deal_from_salesforce(r) for r in batch.records], batch.watermark, batch.exhausted)

    def get_deals(self, ids: Sequence[str], *, with_line_items: bool = True) -> list[MapResult[Any]]:
        """One result per input id, in order; an unknown or deleted id is a failed MapResult."""
        found: dict[str, MapResult[Any]] = {}
        valid = [i for i in dict.fromkeys(ids) if is_record_id(i)]
        select = self._deal_select(with_line_items)
        for chunk in chunked(valid, 200):
            soql = f"SELECT {select} FROM Opportunity WHERE Id IN ({', '.join(soql_string(i) for i in chunk)})"
            for r in self.client.query_all(soql):
                res = m.deal_from_salesforce(r)
                found[r["Id"]] = res
                found[r["Id"][:15]] = res
        out = []
        for i in ids:
            res = found.get(i) or (found.get(i[:15]) if is_record_id(i) else None)
            out.append(res if res is not None else MapResult(
                source_id=i, error=("not a Salesforce record id" if not is_record_id(i)
                                    else f"Opportunity {i} not found (deleted, merged or not visible)")))
        return out

    def update_deal_properties(self, updates: Mapping[str, Mapping[str, Any]]) -> list[WriteResult[Any]]:
        return self._update("Opportunity", updates)

    def won_stage_ids(self) -> set[str]:
        rows = self.client.query_all("SELECT ApiName FROM OpportunityStage WHERE IsWon = true AND IsActive = true")
        return {r["ApiName"] for r in rows}


__all__ = ["SalesforceCRM", "SalesforceSetupError", "Watermark"]
