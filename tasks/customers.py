"""Customer (company ⇄ partner) steps shared by customer-sync and order-to-invoice.

:func:`ensure_partners` makes sure each given HubSpot company has a freee partner: an existing ID-map
row, else a confident match (linked), else a new partner created idempotently by a deterministic
取引先コード (``PUT /partners/upsert_by_code``: a retry or rerun finds the same partner). Doubtful
matches become review items; nothing is linked on a guess.
"""

from __future__ import annotations

from typing import Iterable

from connectors.hubspot import mapping as hs_map
from domain.matching import MatchIndex, MatchKind, match_batch
from domain.model import Company
from tasks.reporting import RunReport
from tasks.runtime import Runtime


def partner_code_for(crm_id: str) -> str:
    """Deterministic 取引先コード for a partner Renkei creates from HubSpot company ``crm_id``."""
    return f"HS-{crm_id}"


def read_crm_companies(rt: Runtime, crm_ids: Iterable[str], report: RunReport) -> dict[str, Company]:
    """Batch-read companies (100 per call); invalid ones become review items."""
    ids = sorted({str(i) for i in crm_ids})
    out: dict[str, Company] = {}
    if not ids:
        return out
    for record in rt.crm.client.companies.batch_read(ids, properties=hs_map.COMPANY_PROPERTIES):
        res = hs_map.company_from_hubspot(record)
        if res.ok:
            out[str(res.value.crm_id)] = res.value
        else:
            report.review(reason_code="INVALID_CRM_COMPANY", entity="company", entity_key=str(res.source_id),
                          message=f"HubSpot company cannot be read: {res.error}", side="crm")
    return out


def partner_index(rt: Runtime) -> MatchIndex:
    """Index over every freee partner (one pass, 100 per page); mapped partners are marked as such."""
    partners: list[Company] = []
    for page in rt.erp.iter_partners():
        partners.extend(r.value for r in page if r.ok)
    mapped = {row.erp_id for row in rt.store.id_map("company")}
    return MatchIndex(partners, id_field="erp_id", source_id_field="crm_id", mapped_ids=mapped)


def ensure_partners(rt: Runtime, crm_ids: Iterable[str], report: RunReport,
                    index: MatchIndex | None = None) -> dict[str, str]:
    """crm company id → freee partner id for every company that has (or now gets) a partner."""
    resolved: dict[str, str] = {}
    missing: list[str] = []
    for crm_id in {str(i) for i in crm_ids if i}:
        erp_id = rt.store.erp_id_for("company", crm_id)
        if erp_id:
            resolved[crm_id] = erp_id
        else:
            missing.append(crm_id)
    if not missing:
        return resolved
    companies = read_crm_companies(rt, missing, report)
    index = index or partner_index(rt)
    # Our own partner for the company (created by a run that crashed before linking): link it, no guess.
    ours = {str(r.partner_code): r for r in index.records if r.partner_code}
    for crm_id in list(companies):
        target = ours.get(partner_code_for(crm_id))
        if target is not None and str(target.erp_id) not in index.mapped_ids:
            erp_id = str(target.erp_id)
            rt.store.link("company", crm_id, erp_id)
            index.mapped_ids.add(erp_id)
            report.count("erp", "linked")
            report.event(action="link", entity="company", entity_key=crm_id, system="renkei",
                         changes={"erp_id": erp_id, "rule": "partner_code"})
            resolved[crm_id] = erp_id
            del companies[crm_id]
    for company, result in zip(companies.values(), match_batch(list(companies.values()), index)):
        crm_id = str(company.crm_id)
        if result.kind == MatchKind.LINK:
            erp_id = str(result.target)
            rt.store.link("company", crm_id, erp_id)
            report.count("erp", "linked")
            report.event(action="link", entity="company", entity_key=crm_id, system="renkei",
                         changes={"erp_id": erp_id, "rule": str(result.rule)})
            resolved[crm_id] = erp_id
        elif result.kind == MatchKind.CREATE:
            code = company.partner_code or partner_code_for(crm_id)
            created, _new = rt.erp.upsert_partner(company.model_copy(update={"partner_code": code}))
            rt.store.link("company", crm_id, str(created.erp_id))
            report.count("erp", "created")
            report.event(action="create", entity="company", entity_key=crm_id, system="erp",
                         changes={"erp_id": created.erp_id, "partner_code": code, "name": company.name})
            resolved[crm_id] = str(created.erp_id)
        else:
            report.review(reason_code=str(result.reason or "DOUBTFUL_MATCH"), entity="company", entity_key=crm_id,
                          message=f"{company.name}: {result.reason} — pick the partner or create one",
                          payload={"candidates": [{"erp_id": c.target_id, "name": c.name, "reasons": list(c.reasons),
                                                   "score": c.score} for c in result.candidates]})
    return resolved
