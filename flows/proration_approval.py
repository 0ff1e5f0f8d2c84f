"""proration-approval: one run per subscription change whose proration needs finance's decision (a net
credit, or a net above ``[proration] approval_amount_threshold``). Modelled on ``invoice-approval``.

The run suspends with :class:`tasks.approval_form.ApprovalDecision`; the description shows the deal, the
effective date, the credit and charge lines and the net. After the resume Prefect re-executes the flow from
the top (only reads happen before the suspend).

* approve → the proration is billed per ``[proration] behavior`` through the same exactly-once invoice
  path (a net credit → a negative invoice in freee = the credit note), or waits for the next period invoice
* reject  → the version stays in force but nothing is prorated (status ``rejected``), comment recorded
* a proration that changed since it was shown (the version was decided elsewhere) is not applied
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.context import get_run_context

from renkei.domain.dates import today_tokyo
from renkei.store.subscriptions import SubscriptionStore
from renkei.tasks.approval_form import await_decision
from renkei.tasks.reporting import RunReport, flush, publish_report
from renkei.tasks.runtime import get_runtime
from renkei.tasks.subscriptions import AWAITING, APPROVAL_FLOW, Context, decide, fingerprint, proration_markdown
from renkei.tasks.housekeeping import reap_dead_runs
from renkei.tasks.preflight import preflight
from renkei.tasks.proration_approval_steps import _read


@flow(name=APPROVAL_FLOW, log_prints=False)
def proration_approval(deal_id: str, version: int, timeout_hours: float | None = None,
                       lease_seconds: int = 300) -> dict[str, Any]:
    """Wait for finance to approve or reject the proration of ``deal_id`` version ``version``."""
    reap_dead_runs(APPROVAL_FLOW)  # earlier runs killed mid-way: marked Crashed, their leases freed
    preflight(APPROVAL_FLOW)  # connections, store and the CRM schema, or one line naming the setting to fix
    log = get_run_logger()
    rt = get_runtime()
    subs = SubscriptionStore(rt.store)
    flow_run_id = str(get_run_context().flow_run.id)
    report = RunReport("subscription-proration", flow_run_id)
    v = subs.version(deal_id, version)
    if v is None or v.status != AWAITING:
        return {"deal": deal_id, "version": version, "outcome": "already_decided", "status": v.status if v else None}
    shown = fingerprint(v.proration)
    sub = _read(deal_id)
    ctx = Context(rt, subs, report, today_tokyo(), lease_seconds, start_approvals=False)
    customer = ctx.customer(sub.deal)
    description = proration_markdown(sub.deal, v, customer.name if customer else None) + (
        f"\n\n承認すると {rt.erp.capabilities.label} に日割り精算を計上します（差引がマイナスの場合はマイナス請求書）。"
        "却下する場合はコメントを入力してください。"
        f"\n\nApprove to bill the proration in {rt.erp.capabilities.label} (a net credit becomes a negative invoice); "
        "a comment is required to reject.")
    timeout_s = int(round((timeout_hours or rt.policy.approval.timeout_hours) * 3600))
    net = int((v.proration or {}).get("net", 0))
    decision, approvers = await_decision(
        rt, run_id=flow_run_id, kind="proration", entity="deal", entity_key=deal_id, amount=net, timeout_s=timeout_s,
        render=lambda: (description, {}), owner_ids=[sub.deal.owner] if sub.deal.owner else [],
        summary={"reasons": ["PRORATION_NET_CREDIT" if net < 0 else "PRORATION_OVER_THRESHOLD"],
                 "title": f"日割り精算承認 deal-{deal_id} v{version}", "version": version})

    v = subs.version(deal_id, version)
    if v is None or v.status != AWAITING or fingerprint(v.proration) != shown:
        return {"deal": deal_id, "version": version, "outcome": "changed_since_shown"}
    result = decide(ctx, sub, version, approved=decision.approved, approver=", ".join(approvers) or decision.approver,
                    comment=decision.comment)
    flush(rt.store, report)
    publish_report(report, f"proration approval for deal {deal_id} v{version}")
    result |= {"approver": decision.approver, "approvers": approvers, "comment": decision.comment}
    log.info("deal %s v%s: %s by %s", deal_id, version, result["outcome"], decision.approver)
    return result
