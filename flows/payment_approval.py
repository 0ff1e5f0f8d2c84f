"""payment-approval: one run per deposit the engine could not apply on its own, waiting for finance.

The run suspends with the typed form :class:`PaymentDecision`; its description shows the deposit (date,
amount, 振込名義), the engine's explanation and the candidate readings as options A, B, … with their
invoices, plus the other open invoices of the candidate partners. Finance either

* types an option letter (``A``) or invoice numbers / ids separated by commas (``INV-12, INV-13``) in
  ``choice`` — the deposit is allocated to those invoices (complete with a fee within policy, else
  oldest first as 一部入金; a remainder stays unapplied as 過入金) — or
* ticks ``unrelated`` (not a customer payment: interest, refund, a transfer between own accounts) with a
  comment — the deposit is closed without a payment;

and gives an e-mail (``approver``, checked by the schema) and an optional comment. Who may decide is the policy's ``[authority]`` (kind ``payment``, tiers by the deposit amount); a refusal is
audited and the run keeps waiting. No decision within ``[approval] timeout_hours`` → the server fails the run
and, with ``on_timeout = "renotify"``, the next payment-writeback run starts one fresh approval run; the review
item stays open either way. The Prefect UI renders
the form from its JSON schema; rules the schema cannot express (exactly one of choice / unrelated, known
invoices, a comment for unrelated, the choice still fitting) are checked after the resume, and the form
is shown again with the problem on top.

After the resume Prefect runs the flow again from the top: the open invoices are read afresh, so the
choice is checked against freee's current outstanding amounts (:meth:`Reconciler.apply` refuses an
allocation that no longer fits) before it is applied through the same exactly-once path as automatic
matches (``payment:deposit:<id>``, ``approved_by`` recorded). The approved payer name is remembered as a
learned alias of the partner (:class:`store.aliases.AliasStore`) unless it already is the partner's
own kana/name, so the next deposit from that payer is matched automatically.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.context import get_run_context

from renkei.domain.normalise import mask_personal
from renkei.domain.payer import payer_display, redact_payer
from renkei.domain.reconciliation import NameEvidence, Reconciler
from renkei.store.aliases import AliasStore
from renkei.tasks.approval_form import await_decision
from renkei.tasks.payments import (apply_deposit_once, deposit_key, drain_payment_outbox, engine_policy, load_open_book, manual_candidate, options_of, read_bank_line)
from renkei.tasks.payment_approval_steps import PaymentDecision, _close, _options_markdown, _resolve
from renkei.tasks.reporting import RunReport, flush, publish_report
from renkei.tasks.runtime import get_runtime
from renkei.tasks.housekeeping import reap_dead_runs
from renkei.tasks.preflight import preflight

FLOW = "payment-approval"


@flow(name=FLOW, log_prints=False)
def payment_approval(deposit_id: str, timeout_hours: float | None = None, lease_seconds: int = 300) -> dict[str, Any]:
    """Wait for finance to assign the deposit ``deposit_id`` to invoices (or mark it unrelated), then apply."""
    reap_dead_runs(FLOW)  # earlier runs killed mid-way: marked Crashed, their leases freed
    preflight(FLOW)  # connections, store and the CRM schema, or one line naming the setting to fix
    log = get_run_logger()
    rt = get_runtime()
    flow_run_id = str(get_run_context().flow_run.id)
    report = RunReport(FLOW, flow_run_id)
    entry = rt.store.ledger_entry(deposit_key(deposit_id))
    if entry is not None and entry.status == "committed":
        return {"deposit": deposit_id, "outcome": "already_applied", "result": dict(entry.result)}
    line = read_bank_line(rt, deposit_id)
    if line is not None and line.error is not None:  # payment-writeback keeps its INVALID_BANK_LINE item open
        return {"deposit": deposit_id, "outcome": "invalid_line", "problems": line.error.problems}
    deposit = line.deposit if line is not None else None
    if deposit is None:
        _close(deposit_id, "resolved", FLOW, "no longer waiting to be matched in freee")
        return {"deposit": deposit_id, "outcome": "not_waiting"}

    policy = engine_policy(rt)
    aliases = AliasStore(rt.store)
    state: dict[str, Any] = {}

    def render() -> tuple[str, dict[str, Any]]:
        book = load_open_book(rt)  # re-read on every pass: the choice is checked against freee as it is now
        rec = Reconciler(book.invoices, policy, aliases.table())
        decision = rec.decide(deposit)
        options = options_of(decision)
        state.update(book=book, rec=rec, decision=decision, options=options, candidate=None)
        return _options_markdown(decision, options, book), {"choice": "A" if options else ""}

    def problem_of(answer: PaymentDecision) -> str | None:
        ids, problem = _resolve(answer, state["options"], state["book"])
        if ids:
            try:
                candidate = manual_candidate(state["book"], deposit, ids, policy)
                state["rec"].apply(candidate)  # refuses an allocation that no longer fits freee's outstanding amounts
                state["candidate"] = candidate
            except ValueError as exc:
                problem = f"the chosen invoices do not fit: {exc}"
        return problem

    timeout_s = int(round((timeout_hours or rt.policy.approval.timeout_hours) * 3600))
    # An expired wait ends the run Failed on the server; the next payment-writeback run re-requests it once.
    answer, approvers = await_decision(
        rt, run_id=flow_run_id, kind="payment", entity="deposit", entity_key=deposit_id, amount=int(deposit.amount),
        timeout_s=timeout_s, render=render, form=PaymentDecision, problem_of=problem_of,
        approving=lambda a: not a.unrelated,
        artifact_text=lambda text: redact_payer(text, deposit.payer_name),  # an individual's name: the form only
        summary={"reasons": [], "title": f"入金消込承認 deposit {deposit_id}", "received_on": deposit.received_on.isoformat()})
    book, rec, decision, candidate = state["book"], state["rec"], state["decision"], state["candidate"]

    if answer.unrelated:
        owner = f"{FLOW}:{flow_run_id}"
        claim = rt.store.claim(deposit_key(deposit_id), owner, lease_seconds=lease_seconds)
        if claim.proceed:
            rt.store.commit(deposit_key(deposit_id), owner, "unrelated",
                            {"kind": "unrelated", "approved_by": answer.approver, "comment": answer.comment})
        report.event(action="unrelated", entity="deposit", entity_key=deposit_id, system="renkei",
                     actor=answer.approver, changes={"comment": answer.comment, "amount": deposit.amount})
        _close(deposit_id, "reject", answer.approver, answer.comment)
        flush(rt.store, report)
        return {"deposit": deposit_id, "outcome": "unrelated", "approver": answer.approver}

    report.event(action="approve", entity="deposit", entity_key=deposit_id, system="renkei", actor=answer.approver,
                 changes={"invoices": list(candidate.invoice_ids), "comment": answer.comment, "approvers": approvers,
                          "engine": decision.kind.value, "reasons": [r.value for r in decision.reasons]})
    outcome = apply_deposit_once(rt, book, deposit, candidate, report, lease_seconds=lease_seconds,
                                 approved_by=answer.approver)
    learned = False
    if outcome.status == "applied" and candidate.partner_id:
        own = [h for h in rec.name_hits(deposit.payer_name) if h.partner_id == candidate.partner_id
               and h.evidence in (NameEvidence.KANA, NameEvidence.NAME)]
        if not own:
            learned = aliases.add(deposit.payer_name, candidate.partner_id, source="learned",
                                  approved_by=answer.approver, deposit_id=deposit_id)
            if learned:
                report.event(action="alias_learned", entity="partner", entity_key=candidate.partner_id,
                             system="renkei", actor=answer.approver,
                             changes={"payer_name": payer_display(deposit.payer_name), "deposit_id": deposit_id})
    if outcome.status in ("applied", "existing"):
        # HubSpot through the outbox: this deposit's committed application (a kill before this line is
        # delivered by the next payment-writeback run)
        touched = [(s.crm_deal_id, outcome.deals[s.deal_id]) for s in outcome.plan.steps] if outcome.plan else []
        drain_payment_outbox(rt, book, report, known=touched, keys=[deposit_key(deposit_id)])
    if outcome.status == "applied":
        _close(deposit_id, "approve", answer.approver, answer.comment)
    flush(rt.store, report)
    publish_report(report, f"payment approval for deposit {deposit_id}")
    result = {"deposit": deposit_id, "outcome": outcome.status, "invoices": list(candidate.invoice_ids),
              "fee": candidate.fee, "approver": answer.approver, "alias_learned": learned}
    log.info("deposit %s: %s by %s", deposit_id, result["outcome"], mask_personal(answer.approver))
    return result


