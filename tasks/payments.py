"""Payment steps shared by ``payment-writeback`` and ``payment-approval`` (入金消込 → freee → HubSpot).

Reading
    :func:`load_open_book` — every unsettled income deal (取引, 未決済) of freee with its outstanding
    amount (``due_amount``), joined with its freee請求書 invoice (id, number, memo reference
    ``renkei:deal:<HubSpot deal id>``) and its partner (name, フリガナ): the engine's
    :class:`~domain.reconciliation.OpenInvoice` rows plus what applying and writing back need.
    :func:`deposit_from_txn` — a bank line waiting to be matched (status 1 消込待ち, or 4 消込中 with its
    remaining ``due_amount``) as a :class:`~domain.model.BankDeposit`; anything else is ``None``.

Applying (exactly once per deposit) — :func:`apply_deposit_once`::

    claim ledger key ``payment:deposit:<wallet_txn id>``   committed → nothing to do
    won       → store the plan (state store, base_snapshot ``payment-plan``) before any freee write:
                allocations, freee deal ids and the payment ids each deal had before
    recovered → load the stored plan (never decide again: freee already shows part of it)
    per allocation: ① payment of ``applied`` from the deposit's bank account on the deposit date
                    ② payment of ``fee`` from the fee clearing account (see below)
                    each step is marked done in the plan after the call; a step not marked done is
                    looked up on the deal first (a payment with that date/amount/account whose id was
                    not there before = ours)
    ③ one 振替伝票 for the deposit's fee: 支払手数料 / clearing account (``ref_number`` RKFEE-<id>,
       looked up before it is created again)
    commit the ledger with the payment ids → HubSpot write-back

Fee booking (振込手数料 → 支払手数料, jp-invoicing-rules §5.1): freee's API has no "book the difference as
支払手数料" flag and a manual journal alone would leave the deal 未決済 with ``due_amount`` = the fee.
So the fee part of the receivable is settled like money that arrived through a clearing account:

* a deal payment of the fee from the clearing walletable (a 決済口座 whose name contains 手数料, e.g. a
  "振込手数料精算" wallet finance creates once; without one the first ``wallet`` account, 現金) — the deal
  becomes 完了 (settled, ``due_amount`` 0): 借方 clearing / 貸方 売掛金;
* a manual journal 借方 支払手数料 (its default tax code, 課対仕入10%) / 貸方 clearing account item, for
  the deposit's total fee, with the partner — the clearing account nets to zero.

Both calls are valid against the real freee API (unlike a ``private_account_item`` payment, which freee
limits to 役員借入金 / 事業主借). Idempotent: plan steps + ledger, and ``ref_number`` on the journal.

Writing back (:func:`drain_payment_outbox`, :func:`payment_props`): an outbox derived from committed
facts — each committed ``payment:deposit:<id>`` entry stays in the ledger's outbox (``writeback`` pending)
until HubSpot accepted the status of every HubSpot deal it touched; every run drains it, so a kill between
the ledger commit and HubSpot loses nothing. Per HubSpot deal, from the freee deals of its invoices —
``renkei_payment_status`` paid (nothing outstanding) / overdue (an open invoice past its 支払期日 in
Asia/Tokyo) / partial (some settled) / unpaid; ``renkei_paid_amount`` = settled amount (money received
plus the fee booked for it: paid + outstanding = invoice total); ``renkei_outstanding_amount``;
``renkei_paid_at`` = latest payment date. The last written values are kept (base_snapshot
``deal-payment``) and only changes are written, so a rerun writes nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from pydantic import ValidationError

from renkei.domain.dates import today_tokyo
from renkei.domain.model import BankDeposit
from renkei.domain.money import format_yen
from renkei.domain.payer import payer_display, payer_name_from_bank, redact_payer
from renkei.domain.reconciliation import (Allocation, Candidate, FitKind, MatchDecision, NameEvidence, OpenInvoice,
                                   ReconciliationPolicy)
from renkei.connectors.base import (BankLineRead, InvalidBankLine, InvoicePaymentStatus, JournalLine, ManualJournal,
                                    MoneyAccount, Receivable)
from renkei.connectors.http import PermanentError
from renkei.store.models import LedgerEntry
from renkei.tasks.invoicing import SimulatedCrash
from renkei.tasks.reporting import RunReport
from renkei.tasks.runtime import Runtime

FLOW = "payment-writeback"
PLAN_ENTITY = "payment-plan"
STATUS_ENTITY = "deal-payment"
FEE_ACCOUNT_NAME = "支払手数料"
_REF = re.compile(r"^renkei:deal:([^:\s]+)")

PAYMENT_STATUS_PAID = "paid"
PAYMENT_STATUS_PARTIAL = "partial"
PAYMENT_STATUS_UNPAID = "unpaid"
PAYMENT_STATUS_OVERDUE = "overdue"


def deposit_key(deposit_id: str) -> str:
    return f"payment:deposit:{deposit_id}"


def approval_key(deposit_id: str) -> str:
    return f"approval:deposit:{deposit_id}"


# ---------------------------------------------------------------------------------------------------
# policy


def engine_policy(rt: Runtime) -> ReconciliationPolicy:
    """``[reconciliation]`` of the policy file → the engine's policy (keys mapped; the rest default)."""
    p = rt.policy.reconciliation
    kw: dict[str, Any] = {"fee_max": p.fee_max, "auto_apply_threshold": p.auto_apply_threshold,
                          "auto_apply_margin": p.auto_apply_margin,
                          "max_invoices_per_payment": max(1, min(12, p.max_invoices_per_deposit)),
                          "auto_apply_partial": p.auto_apply_partial,
                          "auto_apply_overpayment": p.auto_apply_partial}  # "partial and over-payments"
    if p.fee_whitelist:
        kw["fee_whitelist"] = frozenset(p.fee_whitelist)
    return ReconciliationPolicy(**kw)


# ---------------------------------------------------------------------------------------------------
# open invoices (freee side)


@dataclass
class OpenRef:
    """What applying and writing back need about one open invoice."""

    invoice_id: str  # the engine's id: the ERP invoice id, or ``deal:<id>`` for a receivable without one
    deal_id: str  # the ERP receivable (freee 取引) id
    crm_deal_id: str | None  # CRM deal (商談) id
    number: str | None
    partner_id: str
    deal: Receivable  # the receivable as read (total, outstanding, due date, payments)


@dataclass
class OpenBook:
    invoices: list[OpenInvoice] = field(default_factory=list)
    refs: dict[str, OpenRef] = field(default_factory=dict)  # invoice id → ref
    partners: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # partner id → (name, kana)
    skipped: list[str] = field(default_factory=list)  # notes: deals that cannot be matched

    def by_label(self, text: str) -> OpenRef | None:
        """An open invoice by id, number or freee deal id (what finance types into the form)."""
        t = text.strip()
        if t in self.refs:
            return self.refs[t]
        for r in self.refs.values():
            if t and (t == (r.number or "") or t == r.deal_id or t == f"deal:{r.deal_id}"):
                return r
        return None


def crm_deal_for_invoices(rt: Runtime, invoice_ids: Iterable[str]) -> dict[str, str]:
    """freee invoice id → HubSpot deal id from order-to-invoice's ledger (``invoice:deal:<id>`` keys)."""
    ids = [i for i in invoice_ids if i]
    out: dict[str, str] = {}
    if not ids:
        return out
    with Session(rt.store.engine) as s:
        for i in range(0, len(ids), 500):
            rows = s.exec(select(LedgerEntry).where(col(LedgerEntry.key).startswith("invoice:deal:"),
                                                    LedgerEntry.status == "committed",
                                                    col(LedgerEntry.external_id).in_(ids[i:i + 500])))
            for row in rows:
                out[str(row.external_id)] = row.key.removeprefix("invoice:deal:")
    return out


def load_open_book(rt: Runtime) -> OpenBook:
    """Open receivables of the ERP (:meth:`ERPMoney.open_receivables`) with their invoices and partners
    → :class:`OpenBook` (the CRM deal from the invoice reference, else order-to-invoice's ledger)."""
    book = OpenBook()
    got = rt.erp.open_receivables()
    book.partners = dict(got.partners)
    book.skipped.extend(got.skipped)
    missing_ref = [r.invoice_erp_id for r in got.receivables
                   if r.invoice_erp_id and not _REF.match(r.reference or "")]
    from_ledger = crm_deal_for_invoices(rt, missing_ref)
    for r in got.receivables:
        if r.outstanding <= 0:
            continue
        if not r.partner_erp_id:
            book.skipped.append(f"freee deal {r.id}: no partner, cannot be matched")
            continue
        partner = book.partners.get(r.partner_erp_id)
        if partner is None:
            book.skipped.append(f"freee deal {r.id}: partner {r.partner_erp_id} not readable")
            continue
        invoice_id = r.invoice_erp_id or f"deal:{r.id}"
        crm = None
        if r.invoice_erp_id:
            m = _REF.match(r.reference or "")
            crm = m.group(1) if m else from_ledger.get(invoice_id)
        try:
            oi = OpenInvoice(
                invoice_id=invoice_id, number=r.invoice_number, partner_id=r.partner_erp_id,
                partner_name=partner[0] or r.partner_erp_id, partner_kana=partner[1] or None,
                total=r.total, outstanding=r.outstanding, issue_date=r.issue_date, due_date=r.due_date)
        except ValueError as exc:  # field names and error types only: a partner name may be a person's
            what = ("; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['type']}"
                              for e in exc.errors(include_input=False, include_url=False))
                    if isinstance(exc, ValidationError) else type(exc).__name__)
            book.skipped.append(f"freee deal {r.id}: cannot be matched ({what})")
            continue
        book.invoices.append(oi)
        book.refs[invoice_id] = OpenRef(invoice_id, r.id, crm, r.invoice_number, r.partner_erp_id, r)
    return book


# ---------------------------------------------------------------------------------------------------
# deposits (bank lines)


INVALID_BANK_LINE = InvalidBankLine.reason_code


def read_bank_line(rt: Runtime, deposit_id: str) -> BankLineRead | None:
    """One bank line read again (``None``: the ERP has no such line)."""
    return rt.erp.get_bank_line(deposit_id)


def safe_text(text: str, payer_name: str | None) -> str:
    """``text`` (an engine explanation, an error) as a person or a log may see it: an individual payer's
    name masked (:func:`domain.payer.redact_payer`)."""
    return redact_payer(text, payer_name)


# ---------------------------------------------------------------------------------------------------
# the plan of one deposit


class PlanStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invoice_id: str
    invoice_number: str | None = None
    deal_id: int | str  # the ERP receivable id (plans stored before the contract hold ints)
    crm_deal_id: str | None = None
    applied: int
    fee: int = 0
    before_payment_ids: list[int | str] = Field(default_factory=list)
    payment_id: int | str | None = None  # set once the bank payment is on the deal
    fee_payment_id: int | str | None = None


class PaymentPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deposit_id: str
    received_on: date
    amount: int
    payer_name: str
    walletable_id: int | str  # the bank account the deposit arrived on
    partner_id: str | None
    steps: list[PlanStep]
    fee: int = 0
    journal_id: int | str | None = None
    approved_by: str | None = None
    kind: str = "auto"  # auto | approved
    explanation: str = ""


def make_plan(book: OpenBook, deposit: BankDeposit, candidate: Candidate, *, approved_by: str | None = None,
              explanation: str = "") -> PaymentPlan:
    steps = []
    for a in candidate.allocations:
        ref = book.refs[a.invoice_id]
        steps.append(PlanStep(invoice_id=a.invoice_id, invoice_number=a.invoice_number, deal_id=ref.deal_id,
                              crm_deal_id=ref.crm_deal_id, applied=a.applied, fee=a.fee,
                              before_payment_ids=sorted(p.id for p in ref.deal.payments)))
    # the plan keeps the payer as a person may see it (an individual masked): it is stored, audited and
    # quoted in the fee journal; matching never reads it again
    return PaymentPlan(deposit_id=deposit.erp_id, received_on=deposit.received_on, amount=int(deposit.amount),
                       payer_name=payer_display(deposit.payer_name), walletable_id=deposit.walletable_id or "0",
                       partner_id=candidate.partner_id, steps=steps, fee=sum(a.fee for a in candidate.allocations),
                       approved_by=approved_by, kind="approved" if approved_by else "auto",
                       explanation=safe_text(explanation or candidate.explanation, deposit.payer_name))


def save_plan(rt: Runtime, plan: PaymentPlan) -> None:
    rt.store.put_snapshot(PLAN_ENTITY, plan.deposit_id, plan.model_dump(mode="json"))


def load_plan(rt: Runtime, deposit_id: str) -> PaymentPlan | None:
    snap = rt.store.get_snapshot(PLAN_ENTITY, deposit_id)
    return PaymentPlan.model_validate(snap.fields) if snap and snap.fields else None


# ---------------------------------------------------------------------------------------------------
# fee accounts


@dataclass
class FeeAccounts:
    fee_account: str  # 支払手数料
    clearing: MoneyAccount  # the clearing account the fee part of the receivable is settled through


def fee_accounts(rt: Runtime) -> FeeAccounts:
    """支払手数料 and the clearing account (see the module docstring), read from the ERP once per process."""
    cached = getattr(rt.erp, "fee_accounts", None)  # kept on the connector: once per process
    if isinstance(cached, FeeAccounts):
        return cached
    if FEE_ACCOUNT_NAME not in rt.erp.account_names():
        raise ValueError(f"freee has no account item {FEE_ACCOUNT_NAME}")
    clearing = next((a for a in rt.erp.money_accounts() if a.kind == "clearing"), None)
    if clearing is None:
        raise ValueError("freee has no wallet to clear transfer fees through (create 振込手数料精算)")
    out = FeeAccounts(FEE_ACCOUNT_NAME, clearing)
    rt.erp.fee_accounts = out  # type: ignore[attr-defined]
    return out


# ---------------------------------------------------------------------------------------------------
# applying


@dataclass
class ApplyOutcome:
    deposit_id: str
    status: str  # applied | existing | held
    plan: PaymentPlan | None = None
    deals: dict[Any, Receivable] = field(default_factory=dict)  # receivable id (as in the plan) → after the payments


def crash_hook_from_env() -> Callable[[str], bool] | None:
    """Test hook: ``RENKEI_TEST_CRASH_AFTER_PAYMENT=<deposit id>`` dies after that deposit's first freee
    payment, before the plan step and the ledger are committed."""
    target = os.environ.get("RENKEI_TEST_CRASH_AFTER_PAYMENT")
    return (lambda deposit_id: deposit_id == target) if target else None


def crash_after_commit_from_env() -> Callable[[str], bool] | None:
    """Test hook: ``RENKEI_TEST_CRASH_AFTER_COMMIT=<deposit id>`` dies right after that deposit's ledger
    entry is committed, before HubSpot is told (the outbox must deliver it on the next run)."""
    target = os.environ.get("RENKEI_TEST_CRASH_AFTER_COMMIT")
    return (lambda deposit_id: deposit_id == target) if target else None


def _find_payment(deal: Receivable, before: Iterable[Any], day: date, amount: int, account_id: Any) -> str | None:
    known = {str(i) for i in before}
    for p in deal.payments:
        if p.id not in known and p.amount == amount and p.day == day and str(p.account_id) == str(account_id):
            return p.id
    return None


def _add_payment(rt: Runtime, step: PlanStep, day: date, amount: int, account: MoneyAccount,
                 taken: set[str]) -> tuple[str, Receivable]:
    deal = rt.erp.add_receivable_payment(str(step.deal_id), day=day, amount=amount, account=account)
    ours = [p.id for p in deal.payments if p.id not in taken and p.amount == amount and p.day == day
            and str(p.account_id) == str(account.id)]
    if not ours:
        raise RuntimeError(f"the payment did not appear on freee deal {step.deal_id}")
    return max(ours, key=lambda i: (len(i), i)), deal


def execute_plan(rt: Runtime, plan: PaymentPlan, report: RunReport, *, recovered: bool,
                 crash_after_payment: Callable[[str], bool] | None = None) -> dict[Any, Receivable]:
    """Run the plan's remaining steps (each marked done in the store after its ERP call)."""
    day = plan.received_on
    bank = MoneyAccount(str(plan.walletable_id), "bank", "")
    deals: dict[Any, Receivable] = {}
    fees = fee_accounts(rt) if plan.fee else None
    actor = plan.approved_by or FLOW
    for step in plan.steps:
        current = None
        taken = {str(i) for i in step.before_payment_ids} | {str(i) for i in (step.payment_id, step.fee_payment_id) if i}
        if recovered and (step.payment_id is None or (step.fee and step.fee_payment_id is None)):
            current = rt.erp.get_receivable(str(step.deal_id))
            if step.payment_id is None and step.applied:
                step.payment_id = _find_payment(current, taken, day, step.applied, plan.walletable_id)
                if step.payment_id:
                    taken.add(str(step.payment_id))
            if step.fee and fees and step.fee_payment_id is None:
                step.fee_payment_id = _find_payment(current, taken, day, step.fee, fees.clearing.id)
            if step.payment_id or step.fee_payment_id:
                report.notes.append(f"deposit {plan.deposit_id}: found payment(s) on deal {step.deal_id} "
                                    "from an interrupted run")
                save_plan(rt, plan)
        if step.applied and step.payment_id is None:
            step.payment_id, current = _add_payment(rt, step, day, step.applied, bank, taken)
            taken.add(str(step.payment_id))
            if crash_after_payment and crash_after_payment(plan.deposit_id):
                raise SimulatedCrash(f"simulated crash after the payment for deposit {plan.deposit_id}")
            save_plan(rt, plan)
            report.count("erp", "payment_recorded")
            report.event(action="payment", entity="invoice", entity_key=step.invoice_id, system="erp", actor=actor,
                         deal_id=step.crm_deal_id,
                         changes={"deal_id": _num(step.deal_id), "payment_id": _num(step.payment_id),
                                  "amount": step.applied, "date": day.isoformat(), "deposit_id": plan.deposit_id})
        if step.fee and fees and step.fee_payment_id is None:
            step.fee_payment_id, current = _add_payment(rt, step, day, step.fee, fees.clearing, taken)
            save_plan(rt, plan)
            report.count("erp", "fee_settled")
            report.event(action="fee_payment", entity="invoice", entity_key=step.invoice_id, system="erp",
                         actor=actor, deal_id=step.crm_deal_id,
                         changes={"deal_id": _num(step.deal_id), "payment_id": _num(step.fee_payment_id),
                                  "fee": step.fee, "deposit_id": plan.deposit_id})
        deals[step.deal_id] = current if current is not None else rt.erp.get_receivable(str(step.deal_id))
    if plan.fee and fees and plan.journal_id is None:
        plan.journal_id = book_fee_journal(rt, plan, fees, report)
        save_plan(rt, plan)
    return deals


def _one_deal(plan: PaymentPlan) -> str | None:
    """The CRM deal a deposit-level event belongs to: the only one it paid (several: each payment event
    carries its own deal)."""
    deals = {s.crm_deal_id for s in plan.steps if s.crm_deal_id}
    return deals.pop() if len(deals) == 1 else None


def _num(value: Any) -> Any:
    """An id as the audit trail showed it before (digits → int)."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


def fee_ref(deposit_id: str) -> str:
    return f"RKFEE-{deposit_id}"[:20]


def book_fee_journal(rt: Runtime, plan: PaymentPlan, fees: FeeAccounts, report: RunReport) -> int:
    """振替伝票 借方 支払手数料 / 貸方 clearing account for the deposit's fee (exactly once by ref_number)."""
    ref = fee_ref(plan.deposit_id)
    day = plan.received_on
    found = rt.erp.find_journal(ref, on=day)
    if found:
        return _num(found)
    text = f"振込手数料 {plan.payer_name} 入金{plan.deposit_id}"[:250]
    journal_id = rt.erp.post_journal(ManualJournal(day, ref, (
        JournalLine("debit", fees.fee_account, plan.fee, text, partner_erp_id=plan.partner_id, tax="default"),
        JournalLine("credit", fees.clearing.ledger_account, plan.fee, text, tax="default"))))
    report.count("erp", "fee_booked")
    report.event(action="fee_journal", entity="deposit", entity_key=plan.deposit_id, system="erp",
                 actor=plan.approved_by or FLOW, deal_id=_one_deal(plan),
                 changes={"journal_id": _num(journal_id), "fee": plan.fee, "ref": ref})
    return _num(journal_id)


def apply_deposit_once(rt: Runtime, book: OpenBook | None, deposit: BankDeposit, candidate: Candidate | None,
                       report: RunReport, *, lease_seconds: int = 300, approved_by: str | None = None,
                       crash_after_payment: Callable[[str], bool] | None = None) -> ApplyOutcome:
    """Apply ``candidate`` for ``deposit`` exactly once (module docstring). ``candidate`` may be ``None``
    when resuming a stored plan."""
    key = deposit_key(deposit.erp_id)
    owner = f"{report.flow}:{report.flow_run_id or rt.worker_id}"
    claim = rt.store.claim(key, owner, lease_seconds=lease_seconds)
    if claim.state == "committed":
        report.count("deposits", "already_applied")
        return ApplyOutcome(deposit.erp_id, "existing")
    if claim.state == "held":
        report.count("deposits", "held")
        report.notes.append(f"deposit {deposit.erp_id}: another worker holds it; retried next run")
        return ApplyOutcome(deposit.erp_id, "held")
    plan = load_plan(rt, deposit.erp_id) if claim.must_check_external else None
    recovered = plan is not None
    if plan is None:
        if candidate is None or book is None:
            rt.store.release(key, owner)
            return ApplyOutcome(deposit.erp_id, "held")
        plan = make_plan(book, deposit, candidate, approved_by=approved_by)
        save_plan(rt, plan)
    # a failure below leaves the claim leased (not released): the next attempt resumes the stored plan
    try:
        deals = execute_plan(rt, plan, report, recovered=recovered, crash_after_payment=crash_after_payment)
    except PermanentError:
        if not any(s.payment_id or s.fee_payment_id for s in plan.steps) and plan.journal_id is None:
            # freee refused the first write (e.g. the invoice was settled meanwhile): nothing was written,
            # so forget the plan and let the next run decide the deposit again
            rt.store.put_snapshot(PLAN_ENTITY, plan.deposit_id, {})
            rt.store.release(key, owner)
        raise
    rt.store.commit(key, owner, ",".join(str(s.payment_id or "") for s in plan.steps), {
        "invoices": [s.invoice_id for s in plan.steps], "deals": [s.deal_id for s in plan.steps],
        "crm_deals": sorted({s.crm_deal_id for s in plan.steps if s.crm_deal_id}),
        "crm_by_deal": {str(s.deal_id): s.crm_deal_id for s in plan.steps if s.crm_deal_id},
        "applied": sum(s.applied for s in plan.steps), "fee": plan.fee, "journal_id": plan.journal_id,
        "approved_by": plan.approved_by, "kind": plan.kind}, writeback=True)
    from renkei.tasks.payment_notices import record_settled

    record_settled(rt, plan, deposit.payer_name)  # a payment notice for this money can be closed against it
    after_commit = crash_after_commit_from_env()
    if after_commit and after_commit(deposit.erp_id):
        raise SimulatedCrash(f"simulated crash after the ledger commit of deposit {deposit.erp_id}")
    report.count("amount_yen", "applied", sum(s.applied for s in plan.steps))
    report.count("amount_yen", "fee", plan.fee)
    report.event(action="apply", entity="deposit", entity_key=deposit.erp_id, system="renkei",
                 actor=plan.approved_by or FLOW, deal_id=_one_deal(plan),
                 changes={"invoices": [s.invoice_number or s.invoice_id for s in plan.steps],
                          "applied": sum(s.applied for s in plan.steps), "fee": plan.fee, "kind": plan.kind,
                          "explanation": plan.explanation[:500]})
    return ApplyOutcome(deposit.erp_id, "applied", plan, deals)


def interrupted_deposits(rt: Runtime, limit: int = 200) -> list[str]:
    """Deposits whose apply claim was never committed (a crash or a failed call after the plan was stored)."""
    with Session(rt.store.engine) as s:
        rows = s.exec(select(LedgerEntry.key).where(col(LedgerEntry.key).startswith("payment:deposit:"),
                                                    LedgerEntry.status == "claimed").limit(limit))
        return [k.removeprefix("payment:deposit:") for k in rows]


def plan_deposit(plan: PaymentPlan) -> BankDeposit:
    return BankDeposit(erp_id=plan.deposit_id, received_on=plan.received_on, amount=plan.amount,
                       payer_name=payer_name_from_bank(plan.payer_name), walletable_id=str(plan.walletable_id))


# ---------------------------------------------------------------------------------------------------
# finance's choice → an allocation


def manual_candidate(book: OpenBook, deposit: BankDeposit, invoice_ids: list[str],
                     policy: ReconciliationPolicy) -> Candidate:
    """Allocate the deposit to invoices finance picked: complete (with a fee within policy on the largest),
    else oldest first (一部入金), a remainder stays unapplied (過入金)."""
    invs = {i.invoice_id: i for i in book.invoices}
    chosen = sorted((invs[i] for i in dict.fromkeys(invoice_ids)),
                    key=lambda i: (i.due_date or i.issue_date, i.issue_date, i.invoice_id))
    if not chosen:
        raise ValueError("no invoice chosen")
    amount = int(deposit.amount)
    total = sum(i.outstanding for i in chosen)
    gap = total - amount
    fees: dict[str, int] = {}
    if gap > 0 and policy.fee_allowed(gap) and min(i.outstanding for i in chosen) > gap:
        fees[max(chosen, key=lambda i: (i.outstanding, i.invoice_id)).invoice_id] = gap
        kind = FitKind.FEE_DEDUCTED if len(chosen) == 1 else FitKind.COMBINED_FEE
        applied = {i.invoice_id: i.outstanding - fees.get(i.invoice_id, 0) for i in chosen}
        over = 0
    elif gap == 0:
        kind = FitKind.EXACT if len(chosen) == 1 else FitKind.COMBINED
        applied = {i.invoice_id: i.outstanding for i in chosen}
        over = 0
    elif gap > 0:
        kind = FitKind.PARTIAL
        left = amount
        applied = {}
        for i in chosen:
            take = min(left, i.outstanding)
            if take > 0:
                applied[i.invoice_id] = take
            left -= take
        chosen = [i for i in chosen if i.invoice_id in applied]
        over = 0
    else:
        kind = FitKind.OVERPAYMENT
        applied = {i.invoice_id: i.outstanding for i in chosen}
        over = -gap
    allocs = tuple(Allocation(invoice_id=i.invoice_id, invoice_number=i.number, partner_id=i.partner_id,
                              applied=applied[i.invoice_id], fee=fees.get(i.invoice_id, 0),
                              outstanding_before=i.outstanding) for i in chosen)
    partners = {i.partner_id for i in chosen}
    first = chosen[0]
    fee = sum(fees.values())
    text = (f"finance chose {' + '.join((i.number or i.invoice_id) + ' ' + format_yen(i.outstanding) for i in chosen)}"
            f" for {format_yen(amount)} ({kind.value}" + (f", fee {format_yen(fee)}" if fee else "")
            + (f", {format_yen(over)} left unapplied" if over else "") + ")")
    return Candidate(partner_id=first.partner_id if len(partners) == 1 else None,
                     partner_name=first.partner_name if len(partners) == 1 else None, fit=kind,
                     name_evidence=NameEvidence.NONE, name_score=0.0, amount_score=1.0, score=1.0,
                     allocations=allocs, fee=fee, overpayment=over,
                     partial=any(a.outstanding_after > 0 for a in allocs), explanation=text)


def options_of(decision: MatchDecision) -> list[Candidate]:
    """The readings shown to finance as options A, B, … (the proposal first)."""
    out: list[Candidate] = []
    seen: set[tuple[str, ...]] = set()
    for c in ([decision.proposal] if decision.proposal else []) + list(decision.alternatives):
        if c.invoice_ids and c.invoice_ids not in seen:
            seen.add(c.invoice_ids)
            out.append(c)
    return out


# ---------------------------------------------------------------------------------------------------
# HubSpot write-back


PaymentState = Receivable | InvoicePaymentStatus  # anything with total, outstanding, paid_on, due_date


def payment_props(deals: Iterable[PaymentState], today: date | None = None) -> dict[str, str]:
    """CRM ``renkei_payment_*`` write-back keys for the invoices (receivables) of one CRM deal."""
    today = today or today_tokyo()
    total = outstanding = 0
    paid_at: date | None = None
    overdue = False
    for d in deals:
        t, o, p, due = d.total, d.outstanding, d.paid_on, d.due_date
        total += t
        outstanding += o
        if p and (paid_at is None or p > paid_at):
            paid_at = p
        if o > 0 and due is not None and due < today:
            overdue = True
    paid = total - outstanding
    status = (PAYMENT_STATUS_PAID if outstanding == 0 else PAYMENT_STATUS_OVERDUE if overdue
              else PAYMENT_STATUS_PARTIAL if paid > 0 else PAYMENT_STATUS_UNPAID)
    props = {"renkei_payment_status": status, "renkei_paid_amount": str(paid),
             "renkei_outstanding_amount": str(outstanding)}
    if paid_at:
        props["renkei_paid_at"] = paid_at.isoformat()
    return props


def write_payment_status(rt: Runtime, deals_by_crm: dict[str, list[PaymentState]], report: RunReport) -> set[str]:
    """Write the changed ``renkei_payment_*`` properties (compared with the last written ones); the HubSpot
    deals that now show their values (written and accepted now, or unchanged since the last write)."""
    wanted = {crm: payment_props(ds) for crm, ds in deals_by_crm.items() if ds}
    last = rt.store.get_snapshots(STATUS_ENTITY, wanted)
    synced = {crm for crm, props in wanted.items() if crm in last and last[crm].fields == props}
    changes = {crm: props for crm, props in wanted.items() if crm not in synced}
    if changes:
        results = rt.crm.update_deal_properties(changes)
        order = list(changes)
        failed = {order[r.index]: r for r in results if not r.ok}
        for crm, props in changes.items():
            if crm in failed:
                report.review(reason_code="CRM_WRITEBACK_FAILED", entity="deal", entity_key=crm,
                              message=f"payment write-back failed: {failed[crm].error}", side="crm")
                continue
            rt.store.put_snapshot(STATUS_ENTITY, crm, props)  # only after HubSpot accepted
            synced.add(crm)
            report.event(action="payment_status", entity="deal", entity_key=crm, system="crm", changes=props,
                         deal_id=crm)
        report.count("crm", "updated", len(changes) - len(failed))
    _close_writeback_reviews(rt, synced)
    return synced


def _close_writeback_reviews(rt: Runtime, synced: set[str]) -> None:
    """A deal whose write-back failed before and now shows its values: its review item is done."""
    if not synced:
        return
    for item in rt.store.list_reviews("open"):
        if item.reason_code == "CRM_WRITEBACK_FAILED" and item.entity == "deal" and item.entity_key in synced:
            rt.store.decide_review(item.id, decision="resolved", decided_by=FLOW, comment="written on retry",
                                   status="resolved")


# ---------------------------------------------------------------------------------------------------
# the HubSpot write-back outbox
#
# What HubSpot must show is derived from committed facts, never from what one run remembers: every
# committed ``payment:deposit:<id>`` ledger entry is committed into the ledger's outbox (``writeback``
# pending, :mod:`tasks.outbox`) until HubSpot accepted the payment status of every HubSpot deal it touched
# (then ``mark_written``). Each run drains the entries still pending — a kill after freee and the ledger committed, before HubSpot was told, is written
# by the next run; the ``deal-payment`` snapshot (last values HubSpot accepted) keeps a value from being
# written twice.

OUTBOX_PREFIX = "payment:deposit:"


def pending_writebacks(rt: Runtime, *, keys: Iterable[str] | None = None, limit: int = 500) -> list[LedgerEntry]:
    """Committed deposit applications whose HubSpot write-back is not yet confirmed (oldest first; the
    ledger's indexed outbox column, see :mod:`tasks.outbox`)."""
    return rt.store.outbox([OUTBOX_PREFIX], keys=keys, limit=limit)


def _outbox_pairs(rt: Runtime, entry: LedgerEntry) -> list[tuple[str, str]]:
    """(ERP receivable id, CRM deal id) pairs a committed application touched."""
    result = entry.result or {}
    if "crm_by_deal" in result:
        return [(str(d), str(c)) for d, c in result["crm_by_deal"].items() if c]
    plan = load_plan(rt, entry.key.removeprefix("payment:deposit:"))  # entries written before the outbox
    return [(str(s.deal_id), s.crm_deal_id) for s in plan.steps if s.crm_deal_id] if plan else []


def drain_payment_outbox(rt: Runtime, book: OpenBook | None, report: RunReport, *,
                         known: Iterable[tuple[str | None, Receivable]] = (), keys: Iterable[str] | None = None,
                         limit: int = 500) -> int:
    """Write the payment status of every HubSpot deal a committed application touched (plus every deal
    of ``book`` whose status changed), then mark the applications written. ``known`` = freee deals as
    read right after this run's payments (saves a read). Returns how many entries were marked."""
    from renkei.connectors.http import PermanentError as _Permanent

    entries = pending_writebacks(rt, keys=keys, limit=limit)
    fresh = {d.id: d for _crm, d in known}
    touched: list[tuple[str | None, Receivable]] = [(c, d) for c, d in known if c]
    waits: dict[str, set[str]] = {}
    for entry in entries:
        pairs = _outbox_pairs(rt, entry)
        try:
            for deal_id, crm in pairs:
                if deal_id not in fresh:
                    fresh[deal_id] = rt.erp.get_receivable(deal_id)
                touched.append((crm, fresh[deal_id]))
        except _Permanent as exc:  # the freee deal cannot be read: tried again next run
            report.notes.append(f"{entry.key}: payment write-back waits ({type(exc).__name__})")
            continue
        waits[entry.key] = {crm for _d, crm in pairs}
    synced = write_payment_status(rt, deals_by_crm(book, touched), report)
    done = [k for k, crms in waits.items() if crms <= synced]
    if done:
        rt.store.mark_written(done)
        report.count("crm", "outbox_delivered", len(done))
    return len(done)


def deals_by_crm(book: OpenBook | None, touched: Iterable[tuple[str | None, Receivable]]
                 ) -> dict[str, list[Receivable]]:
    """CRM deal → its receivables in view (open ones from the book, the ones we just paid)."""
    by: dict[str, dict[str, Receivable]] = {}
    if book is not None:
        for r in book.refs.values():
            if r.crm_deal_id:
                by.setdefault(r.crm_deal_id, {})[r.deal_id] = r.deal
    for crm, deal in touched:
        if crm:
            by.setdefault(crm, {})[deal.id] = deal
    return {crm: list(ds.values()) for crm, ds in by.items()}
