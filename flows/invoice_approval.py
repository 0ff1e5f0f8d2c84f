"""invoice-approval: one run per exception deal, waiting for finance's decision in the Prefect UI.

The run suspends (no process held while it waits — days, not minutes) with the typed form
:class:`tasks.approval_form.ApprovalDecision`, whose description shows the deal, the customer, the lines,
the per-rate totals and the reasons in yen. After the resume Prefect re-executes the flow from the top;
the reads before the suspend are repeated and :func:`prefect.suspend_flow_run` returns the input.

* approve → the same exactly-once invoice creation as the clean path (``approved_by`` recorded)
* reject  → the deal's ``renkei_invoice_status`` says rejected, with the comment
* who may decide: the policy's ``[authority]`` (allowlists per amount tier, no self-approval by the deal
  owner, a second approver above a threshold); a refusal is audited and the run keeps waiting
* no decision within ``timeout_hours`` → the server fails the run; per policy ``on_timeout`` the next
  order-to-invoice run starts one fresh approval run (``renotify``) or leaves the review item open
  (``expire``) — :mod:`tasks.approval_expiry`. A decision for a deal that changed since it was shown is
  not applied: a new approval run shows the new version.

Both decisions are committed ledger facts (the invoice, or ``approval-decision:deal:<id>:<run>``); the
deal's properties are written from them through the outbox (:mod:`tasks.outbox`), so a kill after the
decision loses nothing: the next drain (this flow's or order-to-invoice's) writes them.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.context import get_run_context

from renkei.tasks.approval_form import await_decision
from renkei.tasks.invoicing import INVOICE_STATUS_REJECTED, create_invoice_once, ledger_key
from renkei.tasks.outbox import DECISION_PREFIX, INVOICE_SPECS, drain
from renkei.tasks.invoice_approval_steps import _close_reviews, _draft
from renkei.tasks.reporting import RunReport, flush, publish_report
from renkei.tasks.runtime import get_runtime
from renkei.tasks.housekeeping import reap_dead_runs
from renkei.tasks.preflight import preflight

FLOW = "invoice-approval"


@flow(name=FLOW, log_prints=False)
def invoice_approval(deal_id: str, timeout_hours: float | None = None, lease_seconds: int = 300) -> dict[str, Any]:
    """Wait for finance to approve or reject the invoice of ``deal_id``, then apply the decision."""
    reap_dead_runs(FLOW)  # earlier runs killed mid-way: marked Crashed, their leases freed
    preflight(FLOW)  # connections, store and the CRM schema, or one line naming the setting to fix
    from renkei.tasks.order_to_invoice_steps import approval_run_name, draft_fingerprint, start_approval

    log = get_run_logger()
    rt = get_runtime()
    flow_run_id = str(get_run_context().flow_run.id)
    report = RunReport(FLOW, flow_run_id)
    committed = rt.store.ledger_entry(ledger_key(deal_id))
    if committed is not None and committed.status == "committed":
        return {"deal": deal_id, "outcome": "already_invoiced", "invoice_id": committed.external_id}

    draft = _draft(deal_id, report)
    shown = draft_fingerprint(draft)
    description = draft.markdown(rt.policy.issuer.name, rt.policy.tax.rounding) + (
        f"\n\n承認すると {rt.erp.capabilities.label} に請求書を作成します。却下する場合はコメントを入力してください。"
        f"\n\nApprove to create the invoice in {rt.erp.capabilities.label}; a comment is required to reject.")
    timeout_s = int(round((timeout_hours or rt.policy.approval.timeout_hours) * 3600))
    amount = draft.invoice.total if draft.invoice else (draft.deal.amount or 0)
    decision, approvers = await_decision(
        rt, run_id=flow_run_id, kind="invoice", entity="deal", entity_key=deal_id, amount=int(amount),
        timeout_s=timeout_s, render=lambda: (description, {}), owner_ids=[draft.deal.owner] if draft.deal.owner else [],
        summary={"reasons": [r.code.value for r in draft.reasons], "title": approval_run_name(draft),
                 "customer": draft.customer.name if draft.customer else None})
    # An expired wait ends the run Failed on the server ("paused and never resumed"); the next
    # order-to-invoice run re-requests it once (tasks.approval_expiry), per [approval] on_timeout.

    fresh = _draft(deal_id, report)
    if draft_fingerprint(fresh) != shown:
        report.notes.append("the deal changed after it was shown; a new approval run shows the new version")
        new_run = start_approval(fresh, RunReport("order-to-invoice", flow_run_id))
        return {"deal": deal_id, "outcome": "changed_since_shown", "new_approval_run": new_run}

    report.event(action="approve" if decision.approved else "reject", entity="deal", entity_key=deal_id,
                 system="renkei", actor=decision.approver,
                 changes={"comment": decision.comment, "reasons": [r.code.value for r in fresh.reasons],
                          "approvers": approvers})
    if decision.approved:
        if fresh.invoice is None:
            raise ValueError(f"deal {deal_id}: approved, but no invoice can be built: {fresh.errors}")
        outcome = create_invoice_once(rt, fresh.invoice, deal_id, report, lease_seconds=lease_seconds,
                                      approved_by=", ".join(approvers),
                                      comment=f"承認: {', '.join(approvers)} {decision.comment}".strip())
        result = {"deal": deal_id, "outcome": "invoiced", "invoice_id": outcome.invoice_id,
                  "invoice_number": outcome.number}
        keys = [ledger_key(deal_id)]
    else:
        key = f"{DECISION_PREFIX}{deal_id}:{shown}"  # this draft is rejected: order-to-invoice won't re-ask
        owner = f"{FLOW}:{flow_run_id}"
        if rt.store.claim(key, owner).proceed:
            rt.store.commit(key, owner, None, {"status": INVOICE_STATUS_REJECTED, "approver": decision.approver,
                                               "comment": f"却下: {decision.approver} {decision.comment}"},
                            writeback=True)
        result = {"deal": deal_id, "outcome": "rejected"}
        keys = [key]
    drain(rt, INVOICE_SPECS, report, keys=keys)
    _close_reviews(deal_id, "approve" if decision.approved else "reject", decision.approver, decision.comment)
    flush(rt.store, report)
    publish_report(report, f"invoice approval for deal {deal_id}")
    result |= {"approver": decision.approver, "approvers": approvers, "comment": decision.comment}
    log.info("deal %s: %s by %s", deal_id, result["outcome"], decision.approver)
    return result
