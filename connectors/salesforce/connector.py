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
from .company_ops import SalesforceCompanyOps
from .deal_ops import SalesforceDealOps
from .fields import OBJECTS, RENKEI_FIELDS, convert, field_name

SETUP_HELP = ("Salesforce's data API cannot create fields: an admin deploys them once (connectors/salesforce/"
              "README.md, 'Installing the Renkei fields': the metadata package with `sf project deploy start`, or "
              "Setup → Object Manager → Fields & Relationships) and grants the integration user read/edit on them "
              "through the 'Renkei Integration' permission set.")

_OPS = {"EQ": "=", "NEQ": "!=", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=", "IN": "IN", "NOT_IN": "NOT IN"}


class SalesforceSetupError(PermanentError):
    """The org lacks what Renkei needs (custom fields, external-ID flags, field access)."""


class SalesforceCRM(SalesforceCompanyOps, SalesforceDealOps):
    """Canonical-model façade over :class:`SalesforceClient` (satisfies ``CRMConnector``); companies and
    products in :mod:`.company_ops`, deals in :mod:`.deal_ops`."""

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

    def prepare(self) -> dict[str, list[str]]:
        """Check through ``describe`` that every ``Renkei_*__c`` field exists; one clear error otherwise.
        Creates nothing (Salesforce's data API cannot create fields): returns ``{}``."""
        problems = self.missing_fields()
        if problems:
            raise SalesforceSetupError(f"Salesforce org is missing {len(problems)} Renkei custom field(s): "
                                       f"{', '.join(problems)}. {SETUP_HELP}", category="SETUP",
                                       code="MISSING_FIELDS", details={"missing": problems})
        return {}

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

    # ------------------------------------------------------------------ companies (more in company_ops)
    def update_company_properties(self, updates: Mapping[str, Mapping[str, Any]]) -> list[WriteResult[Any]]:
        """Account id → shared ``renkei_*`` / Salesforce field names → values (per-input results)."""
        return self._update("Account", updates)

    # ------------------------------------------------------------------ products
    def standard_pricebook_id(self) -> str:
        if self._std_pricebook is None:
            rows = self.client.query_all("SELECT Id FROM Pricebook2 WHERE IsStandard = true")
            if not rows:
                raise SalesforceSetupError("the org has no standard price book", category="SETUP")
            self._std_pricebook = rows[0]["Id"]
        return self._std_pricebook

    # ------------------------------------------------------------------ deals
    def _deal_select(self, with_line_items: bool = True) -> str:
        fields = self._present("Opportunity", m.OPPORTUNITY_FIELDS)
        if with_line_items:
            fields.append(m.lines_subquery(self._present("OpportunityLineItem", m.LINE_FIELDS)))
        return ", ".join(fields)

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
