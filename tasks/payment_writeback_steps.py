"""The steps of the ``payment-writeback`` flow (:mod:`flows.payment_writeback`): the Prefect tasks it composes
(resume, read open invoices, reconcile a batch, read parked deposits, write back, status from the ERP) and the
per-deposit work behind them (match, apply, review item and approval run). The flow module holds the
orchestration only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Sequence

from prefect import task

from renkei.connectors.http import PermanentError, TransientError
from renkei.domain.dates import today_tokyo
from renkei.domain.model import BankDeposit
from renkei.domain.money import format_yen
from renkei.domain.payer import payer_display
from renkei.domain.plausibility import DATE_OUT_OF_RANGE, PlausibilityRules, date_problem
from renkei.domain.reconciliation import MatchDecision, MatchKind, Reconciler
from renkei.store.aliases import AliasStore
from renkei.tasks.approval_expiry import current_run
from renkei.tasks.approval_form import start_approval_run
from renkei.tasks.invoicing import SimulatedCrash
from renkei.tasks.payments import (INVALID_BANK_LINE, InvalidBankLine, OpenBook, apply_deposit_once, approval_key,
                                   crash_hook_from_env, deposit_key, drain_payment_outbox, engine_policy,
                                   interrupted_deposits, load_open_book, load_plan, plan_deposit, read_bank_line,
                                   safe_text)
from renkei.tasks.payment_status import sync_payment_status
from renkei.tasks.retry import BATCH_TASK
from renkei.tasks.reporting import RunReport, flush
from renkei.tasks.runtime import get_runtime

FLOW = "payment-writeback"
APPROVAL_DEPLOYMENT = "payment-approval/payment-approval"
APPROVAL_TAG = "renkei-approval"
REVIEW_UNMATCHED = "DEPOSIT_UNMATCHED"
REVIEW_APPROVAL = "DEPOSIT_NEEDS_APPROVAL"
REVIEW_ERROR = "DEPOSIT_FAILED"  # an unexpected error while deciding / applying one deposit


# read again every run (the line may have been corrected in freee, an invoice may exist now)
PARKED = (REVIEW_UNMATCHED, REVIEW_APPROVAL, INVALID_BANK_LINE, DATE_OUT_OF_RANGE, REVIEW_ERROR)


# a person who decided one of these leaves the line alone: it is not reported again
LEAVE_ALONE_WHEN_DECIDED = (INVALID_BANK_LINE, DATE_OUT_OF_RANGE)


@dataclass
class _RunState:
    """In-memory state of one flow run, shared by its batch tasks (one process)."""

    book: OpenBook
    reconciler: Reconciler
    touched: list[tuple[str | None, Any]] = field(default_factory=list)  # (CRM deal, receivable) paid now
    seen: set[str] = field(default_factory=set)  # deposits handled in this run
    held_dates: list[date] = field(default_factory=list)
    reviews: dict[str, list] = field(default_factory=dict)  # open review items by deposit (read once per run)
    today: date = field(default_factory=today_tokyo)  # Asia/Tokyo, once per run (plausibility window)
    rules: PlausibilityRules = field(default_factory=PlausibilityRules)
    decided: dict[str, set[str]] | None = None  # reason → deposits a person decided (read when first needed)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def plausible(self, day: date | None) -> bool:
        return day is not None and date_problem(day, self.today, self.rules) is None

    def person_decided(self, deposit_id: str, reason: str) -> bool:
        """A person closed a ``reason`` item for this deposit (dismissed / decided): leave the line alone."""
        if self.decided is None:
            self.decided = {}
            for item in get_runtime().store.list_reviews(None, flow=FLOW):
                if (item.reason_code in LEAVE_ALONE_WHEN_DECIDED and item.status != "open"
                        and item.decided_by not in (None, FLOW) and item.decision != "retry"):
                    self.decided.setdefault(item.reason_code, set()).add(item.entity_key)
        return deposit_id in self.decided.get(reason, set())


_RUNS: dict[str, _RunState] = {}


def approval_run_name(decision: MatchDecision) -> str:
    """Run name ops see in Prefect: an individual payer's name masked (a company's stays readable)."""
    return f"入金承認 {payer_display(decision.payer_name)} {format_yen(decision.amount)} deposit-{decision.deposit_id}"


def start_payment_approval(decision: MatchDecision, report: RunReport, *, key: str | None = None,
                           deployment: str = APPROVAL_DEPLOYMENT) -> str | None:
    """One ``payment-approval`` run per deposit, exactly once (:func:`tasks.approval_form.start_approval_run`);
    its flow run id (None: no runner / deployment yet). Callers write the review item first."""
    rt = get_runtime()
    key = key or approval_key(decision.deposit_id)
    run_id, outcome = start_approval_run(rt.store, key, f"{FLOW}:{report.flow_run_id}", deployment=deployment,
                                         parameters={"deposit_id": decision.deposit_id},
                                         run_name=approval_run_name(decision), tags=[APPROVAL_TAG])
    if outcome == "not_started":
        report.notes.append(f"deposit {decision.deposit_id}: approval run not started (no deployment or server)")
    if outcome == "started":
        report.event(action="approval_requested", entity="deposit", entity_key=decision.deposit_id,
                     system="renkei", changes={"flow_run_id": run_id, "reasons": [r.value for r in decision.reasons]})
        return run_id
    return current_run(rt.store, run_id)  # an expired run was re-requested: the new one stands for it


def restart_expired_approval(run, state: "_RunState", report: RunReport) -> str | None:
    """A ``payment-approval`` run expired unanswered: one fresh run for the deposit as it is now (None when it
    no longer waits: applied, unrelated, gone or invalid)."""
    rt = get_runtime()
    deposit_id = str((run.parameters or {}).get("deposit_id") or "")
    entry = rt.store.ledger_entry(deposit_key(deposit_id)) if deposit_id else None
    if not deposit_id or (entry is not None and entry.status == "committed"):
        return None
    line = read_bank_line(rt, deposit_id)
    if line is None or line.error is not None or line.deposit is None:
        return None
    decision = state.reconciler.decide(line.deposit)
    return start_payment_approval(decision, report, key=f"{approval_key(deposit_id)}:after:{run.id}")


def open_deposit_reviews() -> dict[str, list]:
    """deposit id → its open review items of this flow."""
    out: dict[str, list] = {}
    for item in get_runtime().store.list_reviews("open", flow=FLOW):
        if item.entity == "deposit":
            out.setdefault(item.entity_key, []).append(item)
    return out


def _close_reviews(deposit_id: str, keep: str | None, decision: str, comment: str,
                   reviews: dict[str, list] | None = None) -> None:
    rt = get_runtime()
    items = (reviews if reviews is not None else open_deposit_reviews()).get(deposit_id, [])
    for item in list(items):
        if item.reason_code != keep:
            rt.store.decide_review(item.id, decision=decision, decided_by=FLOW, comment=comment, status="resolved")
            items.remove(item)


def _decision_payload(decision: MatchDecision) -> dict[str, Any]:
    return {"amount": decision.amount, "received_on": decision.received_on.isoformat(),
            "payer_name": payer_display(decision.payer_name), "score": decision.score,
            "reasons": [r.value for r in decision.reasons],
            "candidates": [{"invoices": [a.label for a in c.allocations], "partner": c.partner_name,
                            "fit": c.fit.value, "score": c.score}
                           for c in ([decision.proposal] if decision.proposal else []) + list(decision.alternatives)]}


def process_deposits(deposits: list[BankDeposit], state: _RunState, report: RunReport, *, lease_seconds: int,
                     start_approvals: bool) -> None:
    """Decide and apply / route each deposit of one page (oldest first)."""
    rt = get_runtime()
    crash = crash_hook_from_env()
    for deposit in sorted(deposits, key=lambda d: (d.received_on, d.erp_id)):
        if deposit.erp_id in state.seen:
            continue
        try:
            _process_one(rt, deposit, state, report, lease_seconds=lease_seconds, start_approvals=start_approvals,
                         crash=crash)
        except (TransientError, SimulatedCrash):
            raise  # the batch is retried (transient) / the process "dies" (test hook): nothing to decide here
        except Exception as exc:  # noqa: BLE001 - one deposit never stops the page: one review item instead
            report.review(reason_code=REVIEW_ERROR, entity="deposit", entity_key=deposit.erp_id,
                          message=safe_text(f"could not process the deposit: {type(exc).__name__}: {exc}",
                                            deposit.payer_name)[:500], side="deposits")
            report.count("deposits", "failed")
        state.seen.add(deposit.erp_id)  # after its work: a retried batch takes an interrupted deposit up again
    flush(rt.store, report)


def report_invalid_line(state: _RunState, report: RunReport, exc: Exception, line_id: str) -> None:
    """A bank line that cannot become a deposit: one review item (reason, never the raw values)."""
    deposit_id = getattr(exc, "txn_id", None) or line_id or "?"
    if state.person_decided(deposit_id, INVALID_BANK_LINE):
        report.count("deposits", "left_alone")
        return
    problems = exc.problems if isinstance(exc, InvalidBankLine) else [type(exc).__name__]
    report.review(reason_code=INVALID_BANK_LINE, entity="deposit", entity_key=deposit_id,
                  message="the bank line cannot be read as a deposit: " + "; ".join(problems),
                  payload={"problems": problems}, side="deposits")
    report.count("deposits", "invalid_line")


def _apply(rt, deposit: BankDeposit, state: _RunState, report: RunReport, candidate, **kw):
    """:func:`apply_deposit_once`; a refusal by freee (deal changed by hand, …) becomes a review item and the
    claim stays (the stored plan is tried again next run) — one bad deposit never stops the others."""
    try:
        return apply_deposit_once(rt, state.book if candidate is not None else None, deposit, candidate, report, **kw)
    except PermanentError as exc:
        report.review(reason_code="PAYMENT_FAILED", entity="deposit", entity_key=deposit.erp_id,
                      message=f"freee refused the payment: {exc}", side="erp")
        report.count("deposits", "failed")
        return None


def _process_one(rt, deposit: BankDeposit, state: _RunState, report: RunReport, *, lease_seconds: int,
                 start_approvals: bool, crash) -> None:
    entry = rt.store.ledger_entry(deposit_key(deposit.erp_id))
    if entry is not None and entry.status == "committed":
        report.count("deposits", "already_applied")
        _close_reviews(deposit.erp_id, None, "resolved", "applied", state.reviews)
        return
    plan = load_plan(rt, deposit.erp_id) if entry is not None and entry.status == "claimed" else None
    if plan is not None:  # interrupted earlier: finish the stored plan (or leave it to its holder)
        outcome = _apply(rt, plan_deposit(plan), state, report, None, lease_seconds=lease_seconds,
                         crash_after_payment=crash)
        if outcome is None:
            return
        if outcome.status == "applied":
            report.count("deposits", "resumed")
            _close_reviews(deposit.erp_id, None, "resolved", "applied after an interruption", state.reviews)
            state.touched.extend((s.crm_deal_id, outcome.deals[s.deal_id]) for s in outcome.plan.steps)
        elif outcome.status == "held":
            state.held_dates.append(deposit.received_on)
        return
    pending = rt.store.ledger_entry(approval_key(deposit.erp_id))
    if pending is not None and pending.status == "committed":
        report.count("deposits", "awaiting_approval")
        return
    implausible = date_problem(deposit.received_on, state.today, state.rules)
    if implausible:  # 入金日 outside the plausible window: never applied, a person looks at it
        if state.person_decided(deposit.erp_id, DATE_OUT_OF_RANGE):
            report.count("deposits", "left_alone")
            return
        report.review(reason_code=DATE_OUT_OF_RANGE, entity="deposit", entity_key=deposit.erp_id,
                      message=f"deposit date implausible: {implausible}",
                      payload={"amount": deposit.amount, "received_on": deposit.received_on.isoformat()},
                      side="deposits")
        _close_reviews(deposit.erp_id, DATE_OUT_OF_RANGE, "resolved", "date out of range", state.reviews)
        report.count("deposits", "implausible_date")
        return
    decision = state.reconciler.decide(deposit)
    explanation = safe_text(decision.explanation, deposit.payer_name)
    row = dict(deposit=deposit.erp_id, date=deposit.received_on.isoformat(), amount=deposit.amount,
               payer=payer_display(deposit.payer_name), outcome=decision.kind.value, score=decision.score,
               invoices=",".join(a.label for a in decision.allocations), fee=decision.fee,
               explanation=explanation[:300])
    if decision.kind is MatchKind.AUTO:
        state.reconciler.apply(decision)  # later deposits of this run cannot take the same amounts
        outcome = _apply(rt, deposit, state, report, decision.proposal, lease_seconds=lease_seconds,
                         crash_after_payment=crash)
        if outcome is None:
            report.row(**row)
            return
        if outcome.status == "applied":
            report.count("deposits", "auto_matched")
            state.touched.extend((s.crm_deal_id, outcome.deals[s.deal_id]) for s in outcome.plan.steps)
            _close_reviews(deposit.erp_id, None, "resolved", "auto-matched", state.reviews)
        elif outcome.status == "held":
            state.held_dates.append(deposit.received_on)
        report.row(**row)
        return
    if decision.kind is MatchKind.NEEDS_APPROVAL:
        # The review item is written before the approval run exists: a kill in between leaves an item
        # (and the recovered approval claim finds the run by its tag), never a run without its item.
        review = dict(reason_code=REVIEW_APPROVAL, entity="deposit", entity_key=deposit.erp_id,
                      message=explanation, payload=_decision_payload(decision))
        rt.store.add_review(flow=FLOW, flow_run_id=report.flow_run_id, **review)
        report.count("deposits", "review")
        _close_reviews(deposit.erp_id, REVIEW_APPROVAL, "resolved", "now needs approval", state.reviews)
        run_id = start_payment_approval(decision, report) if start_approvals else None
        if run_id:
            rt.store.add_review(flow=FLOW, flow_run_id=report.flow_run_id,
                                **{**review, "payload": {**review["payload"], "approval_run": run_id}})
        report.count("deposits", "sent_to_approval")
        report.count("amount_yen", "sent_to_approval", deposit.amount)
        report.row(**row, approval_run=run_id or "")
        return
    report.review(reason_code=REVIEW_UNMATCHED, entity="deposit", entity_key=deposit.erp_id,
                  message=explanation, payload=_decision_payload(decision), side="deposits")
    _close_reviews(deposit.erp_id, REVIEW_UNMATCHED, "resolved", "unmatched", state.reviews)
    report.count("deposits", "unmatched")
    report.count("amount_yen", "unmatched", deposit.amount)
    report.row(**row)


@task(**BATCH_TASK)
def resume_interrupted(flow_run_id: str, lease_seconds: int) -> tuple[RunReport, list]:
    """Deposits whose application was interrupted (claim never committed) finish their stored plan."""
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    touched: list = []
    for deposit_id in interrupted_deposits(rt):
        plan = load_plan(rt, deposit_id)
        if plan is None:
            continue  # claimed but nothing planned: no freee write happened; decided again below
        try:
            outcome = apply_deposit_once(rt, None, plan_deposit(plan), None, report, lease_seconds=lease_seconds,
                                         crash_after_payment=crash_hook_from_env())
        except PermanentError as exc:
            report.review(reason_code="PAYMENT_FAILED", entity="deposit", entity_key=deposit_id,
                          message=f"freee refused the payment: {exc}", side="erp")
            continue
        except (TransientError, SimulatedCrash):
            raise
        except Exception as exc:  # noqa: BLE001 - one interrupted deposit never stops the others
            report.review(reason_code=REVIEW_ERROR, entity="deposit", entity_key=deposit_id,
                          message=f"could not finish the interrupted application: {type(exc).__name__}: "
                                  f"{safe_text(str(exc), plan.payer_name)[:300]}", side="deposits")
            continue
        if outcome.status == "applied":
            report.count("deposits", "resumed")
            _close_reviews(deposit_id, None, "resolved", "applied after an interruption")
            touched.extend((s.crm_deal_id, outcome.deals[s.deal_id]) for s in outcome.plan.steps)
    flush(rt.store, report)
    return report, touched


@task(**BATCH_TASK)
def read_open_invoices(flow_run_id: str) -> int:
    rt = get_runtime()
    book = load_open_book(rt)
    reconciler = Reconciler(book.invoices, engine_policy(rt), AliasStore(rt.store).table())
    _RUNS[flow_run_id] = _RunState(book, reconciler, reviews=open_deposit_reviews(),
                                   today=today_tokyo(), rules=rt.policy.plausibility.rules())
    return len(book.invoices)


@task(**BATCH_TASK, task_run_name="reconcile {n} deposits")
def reconcile_batch(deposits: list[BankDeposit], n: int, flow_run_id: str, lease_seconds: int,
                    start_approvals: bool) -> RunReport:
    report = RunReport(FLOW, flow_run_id)
    process_deposits(deposits, _RUNS[flow_run_id], report, lease_seconds=lease_seconds,
                     start_approvals=start_approvals)
    return report


@task(**BATCH_TASK)
def read_parked(flow_run_id: str, limit: int = 500, retry: Sequence[str] = ()) -> tuple[list[BankDeposit], RunReport]:
    """Deposits parked on an open review item, and those a person decided "fixed at source → retry"
    (``retry``): read again; those matched by hand in freee close theirs."""
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    state = _RUNS[flow_run_id]
    out = []
    ids = sorted({r.entity_key for r in rt.store.list_reviews("open", flow=FLOW)
                  if r.entity == "deposit" and r.reason_code in PARKED} | set(retry))[:limit]
    for deposit_id in ids:
        pending = rt.store.ledger_entry(approval_key(deposit_id))
        if pending is not None and pending.status == "committed":
            report.count("deposits", "awaiting_approval")  # its approval run decides; no need to read it
            continue
        try:
            line = read_bank_line(rt, deposit_id)
        except PermanentError as exc:  # its item stays open; read again next run
            report.notes.append(f"deposit {deposit_id}: not readable ({type(exc).__name__})")
            continue
        if line is not None and line.error is not None:  # still not a deposit: its item stays open
            report_invalid_line(state, report, line.error, line.id)
            continue
        dep = line.deposit if line is not None else None
        if dep is None:
            _close_reviews(deposit_id, None, "resolved", "no longer waiting to be matched in freee")
            report.count("deposits", "resolved_outside")
            continue
        out.append(dep)
    return out, report


@task(**BATCH_TASK)
def write_back(flow_run_id: str, touched: list) -> RunReport:
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    state = _RUNS.get(flow_run_id)
    # the outbox: every committed application not yet confirmed in HubSpot (this run's and any earlier
    # run's that died before telling HubSpot), plus open invoices whose status changed (overdue …)
    drain_payment_outbox(rt, state.book if state else None, report,
                         known=list(touched) + (state.touched if state else []))
    flush(rt.store, report)
    return report


@task(**BATCH_TASK)
def status_from_erp(flow_run_id: str) -> RunReport:
    """``bank_lines`` False: the payment status of invoices as the ERP records it → CRM deals
    (:mod:`tasks.payment_status`); nothing is matched or recorded in the ERP."""
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    if not rt.erp.capabilities.payment_status:
        report.notes.append(f"{rt.erp.capabilities.label} offers neither bank lines nor payment status: "
                            "nothing to write back")
        return report
    n = sync_payment_status(rt, report, flow_run_id=flow_run_id)
    report.notes.append(f"{rt.erp.capabilities.label} has no bank lines: payment status of {n} invoices read "
                        "from the ERP")
    flush(rt.store, report)
    return report
