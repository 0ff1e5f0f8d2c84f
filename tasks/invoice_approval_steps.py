"""The steps of the ``invoice-approval`` flow (:mod:`flows.invoice_approval`): reading the deal's current draft
and closing its review items. The flow module holds the orchestration only.
"""

from __future__ import annotations



from renkei.domain.dates import today_tokyo
from renkei.tasks.customers import ensure_partners, read_crm_companies
from renkei.tasks.invoicing import customer_for, draft_invoice
from renkei.tasks.reporting import RunReport
from renkei.tasks.runtime import get_runtime


def _draft(deal_id: str, report: RunReport):
    rt = get_runtime()
    (res,) = rt.crm.get_deals([deal_id])
    if not res.ok:
        raise ValueError(f"deal {deal_id} cannot be read: {res.error}")
    deal = res.value
    partners = ensure_partners(rt, [deal.company_crm_id] if deal.company_crm_id else [], report)
    crm_company = read_crm_companies(rt, [deal.company_crm_id], report).get(str(deal.company_crm_id)) \
        if deal.company_crm_id else None
    customer = customer_for(rt, partners.get(str(deal.company_crm_id)), crm_company) if deal.company_crm_id else None
    return draft_invoice(rt, deal, customer, today=today_tokyo())


def _close_reviews(deal_id: str, decision: str, approver: str, comment: str) -> None:
    rt = get_runtime()
    for item in rt.store.list_reviews("open", flow="order-to-invoice"):
        if item.entity == "deal" and item.entity_key == deal_id:
            rt.store.decide_review(item.id, decision=decision, decided_by=approver, comment=comment)
