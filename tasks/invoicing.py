"""Invoice steps shared by order-to-invoice, invoice-approval and subscription-proration.

The exactly-once path (design.md, "One deal, end to end", step 4)::

    claim ledger key ``invoice:deal:<id>``          → committed: reuse the recorded invoice
    store the exact draft in the claim (``sent``)   → what is sent belongs to the claim
    recovered claim (an earlier attempt may have written before dying)
                                                   → take the stored draft (never re-draft with today's
                                                     date), look its deterministic reference up in freee
                                                     (partner-wide, paged: not filtered on today)
    create only if absent → compare freee's totals with ours → commit the ledger with the invoice id
                                                   (the deal write-back goes to the outbox, tasks.outbox)

``crash_after_create`` exists for tests: it simulates a process dying between the ERP call and the
ledger commit.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable

from renkei.connectors.base import InvoiceNumberTaken, InvoiceSettingMismatch, InvoiceSettings
from renkei.connectors.http import PermanentError, QuotaExhausted, RateLimited
from renkei.domain.dates import BusinessDayShift, today_tokyo
from renkei.domain.exceptions import ExceptionReason, ExceptionRules, evaluate
from renkei.domain.invoice import (InvoiceParams, amount_discrepancy, build_invoice, line_problem, lines_subtotal,
                            render_invoice_markdown)
from renkei.domain.model import Company, Deal, Invoice, PaymentTerms
from renkei.domain.money import format_yen
from renkei.tasks.reporting import RunReport
from renkei.tasks.runtime import Runtime

INVOICE_STATUS_CREATED = "created"
INVOICE_STATUS_PENDING = "pending_approval"
INVOICE_STATUS_REJECTED = "rejected"
INVOICE_STATUS_MISMATCH = "totals_mismatch"


class SimulatedCrash(RuntimeError):
    """Raised by the test hook between "invoice created" and "ledger committed"."""


def ledger_key(deal_id: str) -> str:
    return f"invoice:deal:{deal_id}"


# ------------------------------------------------------------------------------------ company settings
SETTINGS_TTL_S = 300.0
_SETTINGS_LOCK = threading.Lock()
NUMBERING_MISMATCH = "FREEE_NUMBERING_MISMATCH"
NUMBER_TAKEN = "INVOICE_NUMBER_TAKEN"


def company_settings(rt: Runtime, *, refresh: bool = False) -> InvoiceSettings:
    """The ERP account's invoice settings (:meth:`ERPMoney.read_invoice_settings`: partner codes,
    端数処理, registration number; the numbering mode from the policy where the ERP's API does not expose
    it), applied to the runtime: the connector sends partner codes only when the account uses them and an
    invoice number only when Renkei numbers; with ``[freee] tax_rounding = "company"`` the account's
    端数処理 replaces ``[tax] rounding`` so Renkei's totals are the ERP's. Read once per ``SETTINGS_TTL_S``
    per process (every run starts with it). ``renkei doctor`` calls this too.

    An ERP that cannot number invoices (``erp_numbering`` False) with the policy's mode ``auto``: the
    invoices wait (one ``NUMBERING_MISMATCH`` review item says to set ``[invoice_numbering] mode =
    "manual"``); nothing is sent."""
    with _SETTINGS_LOCK:
        cached = getattr(rt.erp, "company_settings", None)
        if cached is not None and not refresh and time.monotonic() - cached[0] < SETTINGS_TTL_S:
            return cached[1]
        mode = rt.policy.invoice_numbering.mode
        settings = rt.erp.read_invoice_settings(as_of=today_tokyo(), numbering=mode)
        if rt.policy.freee.tax_rounding == "company" and rt.policy.tax.rounding != settings.tax_rounding:
            rt.policy = rt.policy.model_copy(update={"tax": rt.policy.tax.model_copy(
                update={"rounding": settings.tax_rounding})})
        rt.erp.configure_invoices(settings, tax_rounding=rt.policy.tax.rounding)
        rt.erp.company_settings = (time.monotonic(), settings)  # type: ignore[attr-defined]
        rt.erp.numbering_error = None  # type: ignore[attr-defined]  # tried again with the settings just read
        rt.erp.numbering_unconfirmed = True  # type: ignore[attr-defined]
        if mode == "auto" and not rt.erp.capabilities.erp_numbering:
            rt.erp.numbering_error = numbering_refusal(rt)  # type: ignore[attr-defined]
        return settings


def numbering_refusal(rt: Runtime) -> str:
    return (f"{rt.erp.capabilities.label} cannot number invoices itself: set [invoice_numbering] mode = "
            "\"manual\" in the policy (Renkei numbers the invoices)")


def _settings_entity(rt: Runtime) -> str:
    return f"{rt.erp.capabilities.name}-company"


def _company_key(rt: Runtime) -> str:
    return str(company_settings(rt).account_id)


# ------------------------------------------------------------------------------- invoice numbers (手動採番)
class _Raced(Exception):
    pass


def reserve_invoice_number(rt: Runtime, key: str, owner: str, day) -> str:
    """The invoice number of the claim ``key`` (held by ``owner``), for billing date ``day``: the one
    already reserved in the claim, else the next of the policy's sequence.

    Gapless and crash-safe: in ONE state-store transaction the sequence's counter (a ``sync_cursor`` row
    ``invoice-number:<period>``) moves by compare-and-set and the number is written into the claim
    (``result.invoice_number``). A crash before the commit takes nothing; after it, the claim keeps the
    number and every retry or recovery sends it again. Concurrent workers: the conditional update lets
    exactly one win each value; the loser tries the next."""
    from sqlalchemy import update as sa_update
    from sqlmodel import col

    from renkei.store.db import session_scope
    from renkei.store.models import LedgerEntry, SyncCursor, utcnow
    from renkei.store.repo import _insert_for

    fmt = rt.policy.invoice_numbering.number_format()
    counter = f"invoice-number:{fmt.period(day)}"
    for _ in range(100):
        try:
            with session_scope(rt.store.engine) as s:
                row = s.get(LedgerEntry, key)
                if row is None or row.status != "claimed" or row.owner != owner:
                    raise KeyError(f"ledger key {key} is not claimed by {owner}")
                got = (row.result or {}).get("invoice_number")
                if got:
                    return str(got)
                s.execute(_insert_for(rt.store.engine, SyncCursor.__table__)
                          .values(name=counter, value="0", updated_at=utcnow())
                          .on_conflict_do_nothing(index_elements=["name"]))
                current = s.execute(
                    SyncCursor.__table__.select().where(SyncCursor.__table__.c.name == counter)).one().value
                seq = int(current) + 1
                res = s.execute(sa_update(SyncCursor).where(col(SyncCursor.name) == counter,
                                                            col(SyncCursor.value) == current)
                                .values(value=str(seq), updated_at=utcnow())
                                .execution_options(synchronize_session=False))
                if res.rowcount != 1:
                    raise _Raced()
                number = fmt.render(day, seq)
                row.result = {**(row.result or {}), "invoice_number": number, "invoice_number_seq": counter}
                s.add(row)
            return number
        except _Raced:
            continue
    raise RuntimeError(f"could not reserve an invoice number in {counter}: too much contention")


def _forget_number(rt: Runtime, key: str, owner: str) -> None:
    """Drop the claim's reserved number (freee says another invoice has it): the next attempt takes the
    next number of the sequence. freee has no gap: the refused number is on that other invoice."""
    from renkei.store.db import session_scope
    from renkei.store.models import LedgerEntry

    with session_scope(rt.store.engine) as s:
        row = s.get(LedgerEntry, key)
        if row is not None and row.status == "claimed" and row.owner == owner:
            result = {k: v for k, v in (row.result or {}).items() if k not in ("invoice_number", "sent")}
            row.result = {**result, "number_taken": True}
            s.add(row)


@dataclass
class Draft:
    """An invoice built from a deal by the pure rules, with its exception reasons."""

    deal: Deal
    customer: Company | None
    invoice: Invoice | None
    reasons: list[ExceptionReason] = field(default_factory=list)
    discrepancy: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.invoice is not None and not self.reasons

    def markdown(self, issuer_name: str, tax_rounding: Any = None) -> str:
        if self.invoice is None:
            return f"### 請求書を作成できません — deal {self.deal.crm_id}\n\n" + "\n".join(
                [f"- {e}" for e in self.errors] + [f"- **{r.code.value}** — {r.message}" for r in self.reasons])
        text = render_invoice_markdown(self.invoice, deal=self.deal, company=self.customer, issuer_name=issuer_name,
                                       discrepancy=self.discrepancy, tax_rounding=tax_rounding)
        if self.reasons:
            text += "\n\n#### 承認が必要な理由 / Why this needs approval\n" + "\n".join(
                f"- **{r.code.value}** — {r.message}" for r in self.reasons)
        return text


def exception_rules(rt: Runtime, today=None) -> ExceptionRules:
    """The policy's exception and plausibility rules; ``today`` (Asia/Tokyo) enables the date window."""
    a = rt.policy.approval
    return ExceptionRules(
        amount_threshold=a.amount_threshold,
        max_discount_percent=Decimal(a.discount_percent_limit),
        amount_mismatch_tolerance=a.amount_mismatch_tolerance,
        require_issuer_registration=True,
        require_customer_registration=a.require_registration_number,
        required_billing_fields=("billing_email",) if a.require_billing_email else (),
        line_rounding=rt.policy.tax.line_rounding,
        plausibility=rt.policy.plausibility.rules(),
        today=today,
    )


def customer_for(rt: Runtime, partner_erp_id: str | None, crm_company: Company | None) -> Company | None:
    """The invoice recipient: the freee partner (billing info is ERP-owned) with the CRM's credit hold."""
    if partner_erp_id is None:
        return crm_company
    res = rt.erp.get_invoice_recipient(str(partner_erp_id))
    if not res.ok:
        return None
    partner = res.value
    update: dict[str, Any] = {"crm_id": crm_company.crm_id if crm_company else None}
    if crm_company is not None and crm_company.credit_hold:
        update["credit_hold"] = True
    return partner.model_copy(update=update)


def prefetch_customers(rt: Runtime, wanted: dict[str, Company | None], *, min_for_listing: int = 10
                       ) -> dict[str, Company | None]:
    """Recipients for many partners at once: listing partners (100 per request) beats one read each
    when many are needed; stops as soon as all are found. Fewer than ``min_for_listing``: nothing."""
    if len(wanted) < min_for_listing:
        return {}
    found: dict[str, Company | None] = {}
    for page in rt.erp.iter_partners():
        for res in page:
            if res.ok and str(res.value.erp_id) in wanted and str(res.value.erp_id) not in found:
                crm_company = wanted[str(res.value.erp_id)]
                update: dict[str, Any] = {"crm_id": crm_company.crm_id if crm_company else None}
                if crm_company is not None and crm_company.credit_hold:
                    update["credit_hold"] = True
                found[str(res.value.erp_id)] = res.value.model_copy(update=update)
        if len(found) == len(wanted):
            break
    return found


def draft_invoice(rt: Runtime, deal: Deal, customer: Company | None, *, issue_date=None, today=None) -> Draft:
    """Build the qualified invoice and run the exception and plausibility rules (pure rules; no writes).
    ``today`` (Asia/Tokyo; default: read here, at the task level) is the issue date unless ``issue_date``
    is given, and the centre of the plausibility date window. Never raises for a hostile deal: an
    unpriceable line is a reason code."""
    p = rt.policy
    today = today or today_tokyo()
    issue = issue_date or today
    terms = (customer.payment_terms if customer and customer.payment_terms else
             PaymentTerms(closing_day=p.payment_terms.closing_day, pay_month_offset=p.payment_terms.pay_month_offset,
                          pay_day=p.payment_terms.pay_day))
    params = InvoiceParams(
        issuer_name=p.issuer.name, issuer_registration_number=p.issuer.registration_number, issue_date=issue,
        default_tax_category=p.tax.default_category, line_rounding=p.tax.line_rounding,
        tax_rounding=p.tax.rounding, tax_entry_method=p.tax.entry_method, payment_terms=terms,
        due_date_shift=BusinessDayShift(p.payment_terms.holiday_shift) if p.payment_terms.holiday_shift != "none"
        else BusinessDayShift.NONE,
        transaction_date=deal.close_date or issue,
    )
    # A subscription deal may already carry dated amendments (renkei_effective_date after the sale):
    # the sale invoice bills the deal as sold; subscription-proration bills the amendments.
    sold = [li for li in deal.line_items if li.quantity > 0 and (
        li.effective_date is None or (deal.close_date is not None and li.effective_date <= deal.close_date))]
    amendments = [li for li in deal.line_items if li not in sold]
    eval_deal = deal
    priceable = not any(line_problem(li) for li in deal.line_items)
    if amendments and deal.amount is not None and priceable:
        # the deal amount includes the amendment lines; compare it with all lines, invoice the sold ones
        eval_deal = deal.model_copy(update={"amount": deal.amount - (lines_subtotal(deal.line_items, p.tax.line_rounding)
                                                                     - lines_subtotal(sold, p.tax.line_rounding))})
    invoice, errors = None, []
    if customer is not None and priceable:
        try:
            invoice = build_invoice(deal, sold, customer, params)
            invoice = invoice.model_copy(update={"partner_erp_id": customer.erp_id, "issuer_name": p.issuer.name})
        except (ValueError, ArithmeticError) as exc:
            errors.append(str(exc))
    discrepancy = amount_discrepancy(eval_deal, invoice) if invoice is not None else None
    reasons = evaluate(eval_deal, sold, customer, invoice, exception_rules(rt, today), validation_errors=errors)
    return Draft(deal, customer, invoice, reasons, discrepancy, errors)


@dataclass
class Outcome:
    deal_id: str
    status: str  # created | existing | held | mismatch | absent (recover_only: nothing to finish)
    invoice: Invoice | None = None
    note: str = ""
    invoice_id: str | None = None
    number: str | None = None
    crm_shows_it: bool = False  # the deal already carries this outcome (no write-back needed)

    def __post_init__(self) -> None:
        if self.invoice is not None:
            self.invoice_id = self.invoice_id or self.invoice.erp_id
            self.number = self.number or self.invoice.number


def _totals(inv: Invoice) -> tuple:
    return (inv.total, sorted((t.tax_category.value, t.subtotal, t.tax) for t in inv.rate_totals))


def create_invoice_once(rt: Runtime, invoice: Invoice, deal_id: str, report: RunReport, *,
                        lease_seconds: int = 300, approved_by: str | None = None,
                        crash_after_create: Callable[[str], bool] | None = None,
                        ledger: str | None = None, comment: str | None = None,
                        writeback: bool | None = None, recover_only: bool = False) -> Outcome:
    """Create the ERP invoice for ``deal_id`` exactly once (see module docstring). ``ledger`` overrides the
    ledger key for deals invoiced more than once (subscription periods and prorations). ``writeback``
    (default: only for the deal's own key) puts the committed invoice in the CRM outbox; ``comment``
    (an approval note) is written back with it. ``recover_only``: the deal no longer qualifies for a clean
    invoice — only finish an interrupted attempt (commit the invoice it made, if freee has it); otherwise
    give the claim back (status ``absent``) and create nothing."""
    key = ledger or ledger_key(deal_id)
    settings = company_settings(rt)
    manual = settings.invoice_numbering == "manual"
    if writeback is None:
        writeback = ledger is None or ledger == ledger_key(deal_id)
    owner = f"{report.flow}:{report.flow_run_id or rt.worker_id}"
    claim = rt.store.claim(key, owner, lease_seconds=lease_seconds)
    if claim.state == "committed":  # invoiced before: the ledger has what the write-back needs
        report.count("erp", "unchanged")
        result = claim.result or {}
        return Outcome(deal_id, "existing", None, "already invoiced", claim.external_id, result.get("number"),
                       crm_shows_it=claim.writeback != "pending")
    if claim.state == "held":
        report.count("erp", "held")
        report.held(deal_id)
        return Outcome(deal_id, "held", None, "claimed by another worker")
    if getattr(rt.erp, "numbering_error", None) and claim.state != "recovered":
        # the company's 採番の設定 is not the policy's (one review item says so): no request, no number taken
        rt.store.release(key, owner)
        report.count("erp", "held")
        if not rt.erp.capabilities.erp_numbering:
            report.review(reason_code=NUMBERING_MISMATCH, entity=_settings_entity(rt), entity_key=_company_key(rt),
                          message=f"invoices wait: {rt.erp.numbering_error}",
                          payload={"policy": "[invoice_numbering] mode", "value": settings.invoice_numbering},
                          side="erp")
        return Outcome(deal_id, "held", None, "invoice numbering setting mismatch")
    # What is sent belongs to the claim: an earlier attempt's stored draft is re-sent exactly (its billing
    # date, reference, lines, totals and number), never re-drafted with today's date.
    stored = claim.sent if claim.state == "recovered" else None
    if recover_only and stored is None:
        rt.store.release(key, owner)  # nothing was in flight for this deal
        return Outcome(deal_id, "absent", None, "no interrupted attempt")
    if stored is not None:
        invoice = Invoice.model_validate(stored)
        if manual and not invoice.number:  # stored by an attempt that had no number to send (自動採番 then)
            invoice = invoice.model_copy(update={"number": reserve_invoice_number(rt, key, owner, invoice.issue_date)})
            rt.store.stash(key, owner, {"sent": invoice.model_dump(mode="json")})
    else:
        # 手動採番: the number is reserved in the claim (atomically with the sequence) before anything is
        # sent, and is part of the stored draft: a retry or recovery sends the same number.
        invoice = invoice.model_copy(update={"number": reserve_invoice_number(rt, key, owner, invoice.issue_date)
                                             if manual else None})
        rt.store.stash(key, owner, {"sent": invoice.model_dump(mode="json")})
    # A failure below leaves the claim leased (not released): the ERP call may have reached freee, so the
    # next attempt after the lease looks the reference up instead of risking a second invoice.
    created = None
    if claim.must_check_external:
        created = rt.erp.find_invoice_by_reference(invoice.reference, partner_erp_id=invoice.partner_erp_id,
                                                   around=invoice.issue_date)
        if created is not None:
            report.notes.append(f"deal {deal_id}: found invoice {created.number} from an interrupted run")
    status = "existing" if created is not None else "created"
    if created is None and recover_only:
        rt.store.release(key, owner)  # the interrupted attempt never reached freee: nothing to finish
        return Outcome(deal_id, "absent", None, "the interrupted attempt created nothing")
    if created is None:
        try:
            created = rt.erp.create_invoice(invoice)
        except InvoiceSettingMismatch as exc:
            rt.store.release(key, owner)  # nothing was created; the reserved number stays with the claim
            rt.erp.numbering_error = str(exc)  # type: ignore[attr-defined]
            report.count("erp", "held")
            report.review(reason_code=NUMBERING_MISMATCH, entity=_settings_entity(rt), entity_key=_company_key(rt),
                          message=f"invoices wait: {exc.message}",
                          payload={"policy": "[invoice_numbering] mode", "value": settings.invoice_numbering},
                          side="erp")
            return Outcome(deal_id, "held", None, "invoice numbering setting mismatch")
        except InvoiceNumberTaken as exc:
            # Another invoice in freee has this number (typed by hand?). Ours, from an attempt we lost
            # track of? Look the reference up; else the next attempt takes the next number.
            created = rt.erp.find_invoice_by_reference(invoice.reference, partner_erp_id=invoice.partner_erp_id,
                                                       around=invoice.issue_date)
            if created is None:
                _forget_number(rt, key, owner)
                rt.store.release(key, owner)
                report.count("erp", "held")
                report.review(reason_code=NUMBER_TAKEN, entity="deal", entity_key=str(deal_id),
                              message=f"freee refused invoice number {invoice.number} as already used "
                                      f"({exc.message}); the next run takes the next number",
                              payload={"number": invoice.number}, side="erp")
                return Outcome(deal_id, "held", None, "invoice number taken")
            status = "existing"
        except (QuotaExhausted, RateLimited, PermanentError):
            # freee refused the request: nothing was created, so the claim can be taken again at once
            rt.store.release(key, owner)
            raise
        if crash_after_create and crash_after_create(deal_id):
            raise SimulatedCrash(f"simulated crash after creating the invoice for deal {deal_id}")
    if status == "created":
        report.count("erp", "created")
        report.event(action="create", entity="invoice", entity_key=deal_id, system="erp", actor=approved_by,
                     deal_id=deal_id,
                     changes={"invoice_id": created.erp_id, "number": created.number, "total": created.total,
                              "reference": invoice.reference})
    mismatch = _totals(created) != _totals(invoice)
    result = {"number": created.number, "total": created.total, "reference": invoice.reference,
              "issue_date": invoice.issue_date.isoformat(),
              "status": INVOICE_STATUS_MISMATCH if mismatch else INVOICE_STATUS_CREATED, "approved_by": approved_by}
    if comment:
        result["comment"] = comment[:1000]
    rt.store.commit(key, owner, created.erp_id, result, writeback=writeback)
    if status == "created" and getattr(rt.erp, "numbering_unconfirmed", False):
        rt.erp.numbering_unconfirmed = False  # type: ignore[attr-defined]  # freee took it: the setting fits
        rt.store.resolve_reviews(flow=report.flow, entity=_settings_entity(rt), entity_keys=[_company_key(rt)],
                                 reason_codes=[NUMBERING_MISMATCH], comment="an invoice was created")
    if (claim.result or {}).get("number_taken"):
        rt.store.resolve_reviews(flow=report.flow, entity="deal", entity_keys=[str(deal_id)],
                                 reason_codes=[NUMBER_TAKEN], comment=f"invoiced as {created.number}")
    if mismatch:
        report.review(reason_code="ERP_TOTALS_MISMATCH", entity="invoice", entity_key=deal_id,
                      message=f"freee computed {format_yen(created.total)}, Renkei {format_yen(invoice.total)}",
                      payload={"ours": _totals(invoice)[1], "erp": _totals(created)[1], "invoice_id": created.erp_id},
                      side="erp")
        return Outcome(deal_id, "mismatch", created, "ERP totals differ from ours")
    return Outcome(deal_id, status, created)


def writeback_props(outcome_status: str, outcome: "Outcome | None", comment: str | None = None) -> dict[str, str]:
    """``renkei_invoice_*`` properties of the HubSpot deal for an outcome."""
    props = {"renkei_invoice_status": outcome_status}
    if outcome is not None and outcome.invoice_id:
        props |= {"renkei_invoice_id": str(outcome.invoice_id), "renkei_invoice_number": str(outcome.number or "")}
        if outcome.status != "existing":
            props["renkei_invoiced_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if comment:
        props["renkei_invoice_comment"] = comment[:1000]
    return props


def mark_written_back(rt: Runtime, deal_ids: list[str]) -> None:
    """Remember that these deals show their invoice (takes them out of the outbox, :mod:`tasks.outbox`)."""
    rt.store.mark_written([ledger_key(d) for d in deal_ids])


def safe_error(exc: BaseException) -> str:
    """The exception class and a short message without record values (a pydantic error lists only the
    fields; anything else: its first line, at most 200 characters)."""
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__name__ == "ValidationError":
        try:
            fields = sorted({".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()})
            return f"{type(exc).__name__}: invalid {', '.join(fields)[:200]}"
        except Exception:  # noqa: BLE001
            pass
    first = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:200]}"


def crash_hook_from_env() -> Callable[[str], bool] | None:
    """Test hook: ``RENKEI_TEST_CRASH_AFTER_INVOICE=<deal id>`` simulates a crash after that deal's invoice."""
    target = os.environ.get("RENKEI_TEST_CRASH_AFTER_INVOICE")
    return (lambda deal_id: deal_id == target) if target else None
