"""Customer (company ⇄ partner) steps shared by customer-sync and order-to-invoice.

:func:`ensure_partners` makes sure each given HubSpot company has a freee partner: an existing ID-map
row, else a confident match (linked), else a new partner created idempotently by a deterministic
取引先コード (``PUT /partners/upsert_by_code``: a retry or rerun finds the same partner). Doubtful
matches become review items; nothing is linked on a guess.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from renkei.domain.matching import MatchIndex, MatchKind, match_batch
from renkei.domain.model import Company
from renkei.domain.plausibility import Finding, PlausibilityRules, text_findings
from renkei.domain.normalise import safe_text
from renkei.tasks.reporting import RunReport
from renkei.tasks.runtime import Runtime


def partner_code_for(crm_id: str) -> str:
    """Deterministic 取引先コード for a partner Renkei creates from HubSpot company ``crm_id``."""
    return f"HS-{crm_id}"


# Plausibility of a company's text (domain.plausibility). A finding in the NAME holds the whole record:
# nothing of it is copied into freee (no partner is created, linked by name or updated with it) — a
# partner named "<b>…</b>" would be printed on invoices. A finding in any other field drops only that
# field (freee keeps its own value or none; an invoice then waits on MISSING_BILLING_INFO rather than
# going to "not-an-email@@"). Either way the company gets exactly one open review item per reason code
# (EMAIL_INVALID, MARKUP_IN_TEXT), listing every finding, until the text is fixed in HubSpot.
PLAUSIBILITY_REASONS = ("EMAIL_INVALID", "MARKUP_IN_TEXT")
HOLD_WHOLE_RECORD = frozenset({"name"})


def display_name(company: Company) -> str:
    """A company's name as a message, log or artifact may show it: a sole trader's name is a person's
    name (masked), any name has its markup escaped."""
    from renkei.domain.model import EntityKind
    from renkei.domain.normalise import mask_personal

    if company.entity_kind == EntityKind.SOLE_TRADER:
        return mask_personal(company.name)
    return safe_text(company.name)


def flat_findings(flat: Mapping[str, Any], rules: PlausibilityRules) -> list[Finding]:
    """Findings over a flat ``{path: value}`` record's text values (e-mail syntax on ``*email`` paths);
    findings in the name first."""
    texts = {p: v for p, v in flat.items() if isinstance(v, str) and not v.startswith("hmac-sha256:")}
    found = text_findings(texts, rules, email_fields=tuple(p for p in texts if p.rsplit(".", 1)[-1].endswith("email")))
    return sorted(found, key=lambda f: f.field not in HOLD_WHOLE_RECORD)


def company_text(company: Company) -> dict[str, Any]:
    rec = company.model_dump(mode="json", exclude={"crm_id", "erp_id"})
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items() if isinstance(vv, str)})
        elif isinstance(v, str):
            out[k] = v
    return out


def review_findings(report: RunReport, crm_id: str, findings: list[Finding], *, held: bool, side: str = "crm") -> None:
    """One review item per company and reason code; the message names the fields, never their values."""
    by_code: dict[str, list[Finding]] = {}
    for f in findings:
        by_code.setdefault(f.code, []).append(f)
    for code, fs in by_code.items():
        what = "not written to freee" if held else "those fields not written to freee"
        report.review(reason_code=code, entity="company", entity_key=str(crm_id),
                      message=f"HubSpot company {crm_id}: " + "; ".join(f.message for f in fs) + f" — {what}; "
                              "fix it in HubSpot",
                      payload={"crm_id": str(crm_id), "fields": [f.field for f in fs], "held": held},
                      side=side)


def plausible_company(rt: Runtime, company: Company, report: RunReport) -> Company | None:
    """``company`` as it may be copied into freee: ``None`` when held whole (the name has a finding),
    else with every field that has a finding cleared. Findings become review items."""
    findings = flat_findings(company_text(company), rt.policy.plausibility.rules())
    if not findings:
        return company
    held = any(f.field in HOLD_WHOLE_RECORD for f in findings)
    review_findings(report, str(company.crm_id), findings, held=held)
    if held:
        return None
    update: dict[str, Any] = {}
    for f in findings:
        head, _, tail = f.field.partition(".")
        if tail:
            sub = update.get(head) or getattr(company, head)
            update[head] = sub.model_copy(update={tail: None}) if sub is not None else None
        else:
            update[head] = None
    return company.model_copy(update=update)


def read_crm_companies(rt: Runtime, crm_ids: Iterable[str], report: RunReport) -> dict[str, Company]:
    """Batch-read companies (100 per call); invalid ones become review items. Companies are returned as
    they may be copied into freee (:func:`plausible_company`): one whose name fails plausibility is left
    out (held, with its review item), implausible fields of the others are cleared."""
    ids = sorted({str(i) for i in crm_ids})
    out: dict[str, Company] = {}
    if not ids:
        return out
    passed: list[str] = []
    for res in rt.crm.get_companies(ids):
        if res.ok:
            company = plausible_company(rt, res.value, report)
            if company is not None:
                out[str(res.value.crm_id)] = company
            if company is res.value:
                passed.append(str(res.value.crm_id))
        else:
            report.review(reason_code="INVALID_CRM_COMPANY", entity="company", entity_key=str(res.source_id),
                          message=f"HubSpot company cannot be read: {res.error}", side="crm",
                          fingerprint=f"hubspot:{res.version}" if getattr(res, "version", None) else None)
    if passed:  # fixed in HubSpot: their plausibility items close themselves
        rt.store.resolve_reviews(flow=report.flow, entity="company", entity_keys=passed,
                                 reason_codes=PLAUSIBILITY_REASONS, comment="the company text passes now")
    return out


def partner_index(rt: Runtime) -> MatchIndex:
    """Index over every freee partner (one pass, 100 per page); mapped partners are marked as such."""
    partners: list[Company] = []
    for page in rt.erp.iter_partners():
        partners.extend(r.value for r in page if r.ok)
    mapped = {row.erp_id for row in rt.store.id_map("company")}
    return MatchIndex(partners, id_field="erp_id", source_id_field="crm_id", mapped_ids=mapped)


def _link(rt: Runtime, crm_id: str, erp_id: str, report: RunReport, rule: str, *, count: bool = True) -> str | None:
    """Link a pair and return the company's partner: ``erp_id``, or — when a concurrent run linked the
    company first — the winner's partner (adopted). ``None`` when ``erp_id`` is another company's
    partner: a conflict for a person."""
    got = rt.store.link_or_adopt("company", crm_id, erp_id)
    if got == erp_id:
        if count:
            report.count("erp", "linked")
        report.event(action="link", entity="company", entity_key=crm_id, system="renkei",
                     changes={"erp_id": erp_id, "rule": rule})
    elif got is not None:
        report.count("erp", "adopted")
        report.event(action="link_adopted", entity="company", entity_key=crm_id, system="renkei",
                     changes={"erp_id": got, "not_linked": erp_id, "rule": rule})
    else:
        report.review(reason_code="PARTNER_LINKED_ELSEWHERE", entity="company", entity_key=crm_id,
                      message=f"freee partner {erp_id} is already linked to another HubSpot company — pick the partner",
                      payload={"erp_id": erp_id, "rule": rule})
    return got


def partner_ledger_key(crm_id: str) -> str:
    return f"partner:company:{crm_id}"


def create_partner_once(rt: Runtime, company: Company, report: RunReport) -> tuple[Company | None, bool]:
    """A new partner for a company when the ERP company does NOT use 取引先コード (no code is sent,
    upsert by code is unavailable): claim ``partner:company:<crm id>``, look the partner up by its
    name (unique in a freee company) when an earlier attempt may have created it, create it only if
    absent, commit. → (partner, created); ``(None, False)`` while another worker holds the claim."""
    from renkei.connectors.http import PermanentError

    def found_by_name() -> Company | None:
        res = rt.erp.find_partner_by_name(company.name)
        if res is None:
            return None
        if not res.ok:
            raise ValueError(f"partner {res.source_id}: {res.error}")
        return res.value

    def by_id(erp_id: str) -> Company:
        res = rt.erp.get_partner(erp_id)
        if not res.ok:
            raise ValueError(f"partner {res.source_id}: {res.error}")
        return res.value  # type: ignore[return-value]

    crm_id = str(company.crm_id)
    key, owner = partner_ledger_key(crm_id), f"{report.flow}:{report.flow_run_id or rt.worker_id}"
    claim = rt.store.claim(key, owner)
    if claim.state == "committed" and claim.external_id:
        return by_id(claim.external_id), False
    if claim.state == "held":
        report.held(crm_id)
        return None, False
    found = found_by_name() if claim.must_check_external else None
    created = False
    if found is None:
        try:
            found, created = rt.erp.create_partner(company.model_copy(update={"partner_code": None})), True
        except Exception as exc:
            # a partner of that name appeared meanwhile (a concurrent run): it is the one
            again = found_by_name() if isinstance(exc, PermanentError) else None
            if again is None:
                rt.store.release(key, owner)
                raise
            found = again
    rt.store.commit(key, owner, str(found.erp_id))
    return found, created


def ensure_partners(rt: Runtime, crm_ids: Iterable[str], report: RunReport,
                    index: MatchIndex | None = None) -> dict[str, str]:
    """crm company id → freee partner id for every company that has (or now gets) a partner. With
    取引先コード on, new partners are upserted by the deterministic code ``HS-<id>``; with it off, no code
    is ever sent and each creation is a ledger claim with a lookup by name (:func:`create_partner_once`)."""
    from renkei.tasks.invoicing import company_settings

    codes = company_settings(rt).use_partner_code
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
            got = _link(rt, crm_id, erp_id, report, "partner_code")
            if got is not None:
                index.mapped_ids.add(erp_id)
                resolved[crm_id] = got
            del companies[crm_id]
    for company, result in zip(companies.values(), match_batch(list(companies.values()), index)):
        crm_id = str(company.crm_id)
        if result.kind == MatchKind.LINK:
            erp_id = str(result.target)
            got = _link(rt, crm_id, erp_id, report, str(result.rule))
            if got is not None:
                resolved[crm_id] = got
        elif result.kind == MatchKind.CREATE:
            code = company.partner_code or partner_code_for(crm_id)
            if codes:
                created, new = rt.erp.upsert_partner(company.model_copy(update={"partner_code": code}))
            else:
                made, new = create_partner_once(rt, company, report)
                if made is None:
                    continue
                created, code = made, None
            if new:
                report.count("erp", "created")
                report.event(action="create", entity="company", entity_key=crm_id, system="erp",
                             changes={"erp_id": created.erp_id, "partner_code": code, "name": display_name(company)})
            # A concurrent run may have created (same code: the same partner) or linked it first.
            got = _link(rt, crm_id, str(created.erp_id), report, "partner_code", count=False)
            if got is not None:
                resolved[crm_id] = got
        else:
            # a concurrent run (overlapping webhook runs for deals of one customer) may have linked the
            # company after this run read the ID map — its partner then shows as "already mapped": nothing
            # for a person to decide, the link in the map is the answer
            linked = rt.store.erp_id_for("company", crm_id)
            if linked:
                resolved[crm_id] = linked
                continue
            report.review(reason_code=str(result.reason or "DOUBTFUL_MATCH"), entity="company", entity_key=crm_id,
                          message=f"{display_name(company)}: {result.reason} — pick the partner or create one",
                          payload={"candidates": [{"erp_id": c.target_id, "name": c.name, "reasons": list(c.reasons),
                                                   "score": c.score} for c in result.candidates]})
    return resolved
