"""The steps of the ``order-to-invoice`` flow (:mod:`flows.order_to_invoice`): the Prefect tasks it composes
(``invoice_batch``, ``retry_parked``) and the per-deal work behind them (draft → invoice, or review item and
approval run). The flow module holds the orchestration only.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from prefect import task

from renkei.connectors.base import MapResult
from renkei.connectors.http import QuotaExhausted, TransientError
from renkei.domain.dates import today_tokyo
from renkei.domain.model import Deal
from renkei.domain.money import format_yen
from renkei.tasks.approval_expiry import current_run, rerequest_expired
from renkei.tasks.approval_form import start_approval_run
from renkei.tasks.concurrency import map_concurrently, run_cache
from renkei.tasks.customers import ensure_partners, read_crm_companies
from renkei.tasks.invoicing import (Draft, SimulatedCrash, create_invoice_once, crash_hook_from_env, customer_for,
                             draft_invoice, ledger_key, prefetch_customers, safe_error)
from renkei.tasks.outbox import DECISION_PREFIX, INVOICE_SPECS, PENDING_PREFIX, drain, kill_before_writeback_hook
from renkei.tasks.retry import BATCH_TASK
from renkei.tasks.review_retries import finish_retries, pending_retries
from renkei.tasks.reporting import plain_text, RunReport, flush
from renkei.tasks.runtime import get_runtime

FLOW = "order-to-invoice"
APPROVAL_DEPLOYMENT = "invoice-approval/invoice-approval"
APPROVAL_TAG = "renkei-approval"
PARKED_REASONS = ("COMPANY_NOT_LINKED", "INVALID_DEAL", "NO_COMPANY", "DEAL_PROCESSING_ERROR")
INVOICE_WORKERS = 16


CUSTOMER_CACHE = "invoice-recipients"  # per flow run: partner id → invoice recipient (one read per run)


def draft_fingerprint(draft: Draft) -> str:
    """Identifies what finance is asked to decide: the deal's amount, its invoice lines and total, its company
    and the invoice recipient. A changed deal needs a new decision; anything else (the exception reasons,
    which depend on today's date and the policy, our own write-backs) does not ask again — a rejection
    sticks until the deal itself changes."""
    inv = draft.invoice
    body = {"amount": draft.deal.amount,
            "company": draft.deal.company_crm_id,
            "total": inv.total if inv else None,
            # sorted: the CRM's association order is not a change of the deal
            "lines": sorted([l.description, str(l.quantity), l.unit_price, l.amount, l.tax_category.value]
                            for l in (inv.lines if inv else [])),
            "deal_lines": [] if inv else sorted(json.dumps(li.model_dump(mode="json", exclude={"crm_id"}),
                                                           sort_keys=True, ensure_ascii=False, default=str)
                                                for li in draft.deal.line_items),
            "recipient": draft.customer.erp_id if draft.customer else None}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()[:16]


def approval_run_name(draft: Draft) -> str:
    customer = plain_text(draft.customer.name) if draft.customer else "（請求先不明）"
    amount = format_yen(draft.invoice.total) if draft.invoice else "金額未確定"
    return f"請求承認 {customer} {amount} deal-{draft.deal.crm_id}"


APPROVAL_CRASH_ENV = "RENKEI_TEST_CRASH_AFTER_APPROVAL_START"
PASSED = ("invoiced", "approval", "not_won", "unchanged", "rejected")  # outcomes that close a parked item


def start_approval(draft: Draft, report: RunReport, *, deployment: str = APPROVAL_DEPLOYMENT,
                   lease_seconds: int = 600, replacing: str | None = None) -> str | None:
    """One ``invoice-approval`` run per deal and draft, exactly once; returns its flow run id (None: no
    runner yet, or another live run holds the claim). Callers write the review item first.
    ``replacing``: the id of an approval run that timed out — one fresh run replaces it (renotify)."""
    rt = get_runtime()
    deal_id = str(draft.deal.crm_id)
    fp = draft_fingerprint(draft)
    key = f"approval:deal:{deal_id}:{fp}" + (f":after:{replacing}" if replacing else "")
    owner = f"{FLOW}:{report.flow_run_id}"

    def crash_hook(run) -> None:
        if os.environ.get(APPROVAL_CRASH_ENV) == deal_id:
            raise SimulatedCrash(f"simulated crash after starting the approval run of deal {deal_id}")

    run_id, outcome = start_approval_run(rt.store, key, owner, deployment=deployment, parameters={"deal_id": deal_id},
                                         run_name=approval_run_name(draft), tags=[APPROVAL_TAG],
                                         lease_seconds=lease_seconds, after_start=crash_hook)
    if outcome == "held":
        report.held(deal_id)
    elif outcome == "not_started":
        report.notes.append(f"deal {deal_id}: approval run not started (no deployment or server)")
    if outcome != "started":
        return current_run(rt.store, run_id)  # an expired run was re-requested: the new one stands for it
    report.event(action="approval_requested", entity="deal", entity_key=deal_id, system="renkei", deal_id=deal_id,
                 changes={"flow_run_id": run_id, "reasons": [r.code.value for r in draft.reasons]})
    return run_id


def rejected(rt, draft: Draft) -> bool:
    """Finance rejected this very draft of the deal (a committed decision fact for its fingerprint)."""
    entry = rt.store.ledger_entry(f"{DECISION_PREFIX}{draft.deal.crm_id}:{draft_fingerprint(draft)}")
    return entry is not None and entry.status == "committed"


def record_pending(rt, draft: Draft, report: RunReport) -> str:
    """Commit the fact "this draft of the deal awaits finance" (CRM outbox: ``pending_approval``)."""
    key = f"{PENDING_PREFIX}{draft.deal.crm_id}:{draft_fingerprint(draft)}"
    owner = f"{FLOW}:{report.flow_run_id}"
    claim = rt.store.claim(key, owner, lease_seconds=60)
    if claim.proceed:
        rt.store.commit(key, owner, None, {"reasons": [r.code.value for r in draft.reasons]}, writeback=True)
    return key


# Exceptions that are not about one record: a test's simulated death, freee's daily cap (the run stops
# cleanly), and transient outages (the batch task retries). Anything else is one deal's problem.
_NOT_PER_RECORD = (SimulatedCrash, QuotaExhausted, TransientError)


def process_deals(results: list[MapResult[Deal]], won: set[str], report: RunReport, *, lease_seconds: int,
                  start_approvals: bool) -> dict[str, str]:
    """Invoice or route each won deal of one page. Per-deal problems become review items.

    Returns each deal's outcome: ``invoiced`` | ``approval`` | ``unchanged`` | ``rejected`` (this draft was
    rejected by finance) | ``not_won`` | ``held`` |
    ``parked:<REASON>`` (a parked review item stands) | ``error:<REASON>`` (a per-deal failure item)."""
    rt = get_runtime()
    outcomes: dict[str, str] = {}
    deals: list[Deal] = []
    for res in results:
        if not res.ok:
            report.review(reason_code="INVALID_DEAL", entity="deal", entity_key=str(res.source_id),
                          message=f"HubSpot deal cannot be invoiced: {res.error}", side="crm")
            outcomes[str(res.source_id)] = "parked:INVALID_DEAL"
            continue
        if res.value.stage in won:
            deals.append(res.value)
        else:
            report.count("crm", "not_won")
            outcomes[str(res.value.crm_id)] = "not_won"
    if not deals:
        flush(rt.store, report)
        return outcomes
    with_company = [d for d in deals if d.company_crm_id]
    for d in deals:
        if not d.company_crm_id:
            report.review(reason_code="NO_COMPANY", entity="deal", entity_key=d.crm_id,
                          message=f"{d.name}: no company is associated with the deal", side="crm")
            outcomes[str(d.crm_id)] = "parked:NO_COMPANY"
    partners = ensure_partners(rt, [d.company_crm_id for d in with_company], report)
    crm_companies = read_crm_companies(rt, [d.company_crm_id for d in with_company], report)
    crash = crash_hook_from_env()
    today = today_tokyo()  # one business date for the whole batch (the pure rules never read the clock)
    customers = run_cache(CUSTOMER_CACHE, report.flow_run_id or "")
    wanted = {partners[str(d.company_crm_id)]: crm_companies.get(str(d.company_crm_id)) for d in with_company
              if str(d.company_crm_id) in partners and not customers.has(partners[str(d.company_crm_id)])}
    for pid, customer in prefetch_customers(rt, wanted).items():
        customers.put(pid, customer)
    touched: list[str] = []  # ledger facts this batch committed: drained to the CRM at its end

    def work(deal: Deal) -> tuple[Draft | None, Any, BaseException | None]:
        """Recipient (one partner read per customer per run) → draft → invoice when clean. Deals run
        concurrently (I/O bound); the connector's rate limiters pace the ERP calls, so the first invoices
        go out while other customers are still being read. Any per-deal failure is returned, not raised."""
        try:
            partner_id = partners.get(str(deal.company_crm_id))
            if partner_id is None:
                return None, None, None
            customer = customers.get(partner_id, lambda: customer_for(rt, partner_id,
                                                                      crm_companies.get(str(deal.company_crm_id))))
            draft = draft_invoice(rt, deal, customer, today=today)
            if draft.clean and rejected(rt, draft):
                # finance rejected this very draft; it now passes the rules only because they changed (a
                # date window moved, a threshold was raised): the rejection stands until the deal changes
                return draft, None, None
            if not draft.clean:
                entry = rt.store.ledger_entry(ledger_key(deal.crm_id))
                if entry is not None and entry.status == "claimed":
                    # an attempt was interrupted while the deal still qualified: finish it (commit the invoice
                    # freee has) before the changed deal goes to finance — never leave it half done
                    outcome = create_invoice_once(rt, draft.invoice or _sent(entry), deal.crm_id, report,
                                                  lease_seconds=lease_seconds, recover_only=True)
                    if outcome.status != "absent":
                        return draft, outcome, None
                return draft, None, None
            return draft, create_invoice_once(rt, draft.invoice, deal.crm_id, report, lease_seconds=lease_seconds,
                                              crash_after_create=crash), None
        except _NOT_PER_RECORD:
            raise
        except Exception as exc:  # noqa: BLE001 - per-deal isolation: one review item, never a failed batch
            return None, None, exc

    results_by_deal = map_concurrently(work, with_company, max_workers=INVOICE_WORKERS)
    for deal, (draft, outcome, error) in results_by_deal:
        try:
            outcomes[str(deal.crm_id)] = _route(rt, deal, draft, outcome, error, report, touched, start_approvals,
                                                lease_seconds)
        except _NOT_PER_RECORD:
            raise
        except Exception as exc:  # noqa: BLE001 - per-deal isolation
            outcomes[str(deal.crm_id)] = _deal_failed(deal.crm_id, exc, report)
    flush(rt.store, report)
    kill_before_writeback_hook()
    drain(rt, INVOICE_SPECS, report, keys=touched)
    flush(rt.store, report)
    return outcomes


def _sent(entry) -> Any:
    from renkei.domain.model import Invoice

    sent = (entry.result or {}).get("sent")
    return Invoice.model_validate(sent) if sent else None


def _deal_failed(deal_id: str, exc: BaseException, report: RunReport) -> str:
    report.review(reason_code="DEAL_PROCESSING_ERROR", entity="deal", entity_key=str(deal_id),
                  message=f"the deal could not be processed ({safe_error(exc)}); retried every run",
                  payload={"exception": type(exc).__name__})
    return "error:DEAL_PROCESSING_ERROR"


def _route(rt, deal: Deal, draft: Draft | None, outcome, error, report: RunReport, touched: list[str],
           start_approvals: bool, lease_seconds: int) -> str:
    """One deal after its draft/invoice step: record the outcome, open its review item, start approval."""
    if error is not None:
        return _deal_failed(deal.crm_id, error, report)
    if draft is None:
        report.review(reason_code="COMPANY_NOT_LINKED", entity="deal", entity_key=deal.crm_id,
                      message=f"{deal.name}: the company has no freee partner yet (see its review item)")
        return "parked:COMPANY_NOT_LINKED"
    if outcome is not None:
        if outcome.status == "held":
            return "held"
        if outcome.crm_shows_it:
            return "invoiced"  # already invoiced and shown on the deal: nothing to write
        touched.append(ledger_key(deal.crm_id))
        if outcome.status in ("created", "mismatch"):
            report.row(deal=deal.crm_id, customer=draft.customer.name, total=draft.invoice.total,
                       invoice=outcome.number or "", invoice_id=outcome.invoice_id or "", outcome=outcome.status)
        return "invoiced"
    entry = rt.store.ledger_entry(ledger_key(deal.crm_id))
    if entry is not None and entry.status == "committed":
        report.count("erp", "unchanged")  # invoiced before (or approved); a later edit does not re-invoice
        return "unchanged"
    if rejected(rt, draft):
        report.count("renkei", "rejected_unchanged")  # finance rejected this very draft: not asked again
        return "rejected"
    reasons = [r.code.value for r in draft.reasons]
    review = dict(reason_code=reasons[0], entity="deal", entity_key=str(deal.crm_id),
                  message="; ".join(r.message for r in draft.reasons),
                  payload={"reasons": reasons, "total": draft.invoice.total if draft.invoice else None,
                           "customer": draft.customer.name if draft.customer else None})
    # The review item is written before the approval run exists: a kill in between leaves an item
    # (and the recovered approval claim finds the run by its tag), never a run without its item.
    rt.store.add_review(flow=FLOW, flow_run_id=report.flow_run_id, **review)
    report.count("renkei", "review")
    touched.append(record_pending(rt, draft, report))
    run_id = start_approval(draft, report, lease_seconds=lease_seconds) if start_approvals else None
    if run_id:
        rt.store.add_review(flow=FLOW, flow_run_id=report.flow_run_id,
                            **{**review, "payload": {**review["payload"], "approval_run": run_id}})
    report.count("renkei", "sent_to_approval")
    report.row(deal=deal.crm_id, customer=draft.customer.name if draft.customer else "",
               total=draft.invoice.total if draft.invoice else "", invoice="", outcome="approval:" + ",".join(reasons),
               approval_run=run_id or "")
    return "approval"


@task(**BATCH_TASK, task_run_name="invoice {n} deals")
def invoice_batch(results: list[MapResult[Deal]], won: list[str], n: int, flow_run_id: str, lease_seconds: int,
                  start_approvals: bool) -> RunReport:
    report = RunReport(FLOW, flow_run_id)
    process_deals(results, set(won), report, lease_seconds=lease_seconds, start_approvals=start_approvals)
    return report


def restart_expired_approval(run, won: set[str], report: RunReport) -> str | None:
    """An ``invoice-approval`` run expired unanswered: one fresh run for the deal as it is now (None when the
    deal no longer needs one — invoiced, rejected, no longer won, or now clean and invoiced by this run)."""
    rt = get_runtime()
    deal_id = str((run.parameters or {}).get("deal_id") or "")
    if not deal_id:
        return None
    entry = rt.store.ledger_entry(ledger_key(deal_id))
    if entry is not None and entry.status == "committed":
        return None
    (res,) = rt.crm.get_deals([deal_id])
    if not res.ok or res.value.stage not in won or not res.value.company_crm_id:
        return None
    deal = res.value
    partners = ensure_partners(rt, [deal.company_crm_id], report)
    crm_company = read_crm_companies(rt, [deal.company_crm_id], report).get(str(deal.company_crm_id))
    customer = customer_for(rt, partners.get(str(deal.company_crm_id)), crm_company)
    draft = draft_invoice(rt, deal, customer, today=today_tokyo())
    if draft.clean or rejected(rt, draft):
        return None
    return start_approval(draft, report, replacing=str(run.id))


@task(**BATCH_TASK)
def retry_parked(won: list[str], flow_run_id: str, lease_seconds: int, start_approvals: bool) -> RunReport:
    """First drain the CRM outbox (write-backs a killed run left), then try again the deals parked on a
    review item of this flow and unfinished claims. A parked item closes only when its deal actually
    passed (invoiced, sent to approval, unchanged since invoiced, or no longer won) — decided from
    :func:`process_deals`' outcomes, not from what is left in the report."""
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    drain(rt, INVOICE_SPECS, report)
    if start_approvals:  # approvals that expired unanswered are asked again, once (tasks.approval_expiry)
        rerequest_expired(rt, report, approval_flow="invoice-approval", entity="deal",
                          entity_key_of=lambda run: str((run.parameters or {}).get("deal_id") or ""),
                          restart=lambda run: restart_expired_approval(run, set(won), report), review_flow=FLOW)
        flush(rt.store, report)
    parked = [r for r in rt.store.list_reviews("open", flow=FLOW) if r.entity == "deal" and r.reason_code in PARKED_REASONS]
    # claims that never committed (a worker died, or freee refused and the claim was released)
    unfinished = [e.key.removeprefix("invoice:deal:") for e in rt.store.unfinished("invoice:deal:")]
    unfinished = [k for k in unfinished if ":" not in k]  # subscription periods are redone by their own flow
    retries = pending_retries(rt, FLOW, "deal")[:500]  # "fixed at source → retry": read again, once
    if not parked and not unfinished and not retries:
        flush(rt.store, report)
        return report
    ids = sorted({r.entity_key for r in parked} | set(unfinished) | {r.entity_key for r in retries})[:1000]
    outcomes = process_deals(rt.crm.get_deals(ids), set(won), report, lease_seconds=lease_seconds,
                             start_approvals=start_approvals)
    for item in parked:
        outcome = outcomes.get(item.entity_key)
        superseded = outcome is not None and outcome.startswith(("parked:", "error:")) \
            and outcome.split(":", 1)[1] != item.reason_code  # another parked reason now has its own item
        if outcome in PASSED or superseded:
            rt.store.decide_review(item.id, decision="resolved", decided_by=FLOW,
                                   comment="passed on retry" if outcome in PASSED else f"now {outcome}",
                                   status="resolved")
    finish_retries(rt, FLOW, retries)
    return report
