"""Subscription steps (継続課金): versions from HubSpot deals, the billing timeline, prorations, period
invoices and the revenue journals. Used by ``subscription-proration`` and ``proration-approval``.

Representation (``docs/subscriptions.md``)
-------------------------------------------
A subscription is a won HubSpot deal with recurring line items (``recurringbillingfrequency``,
``hs_recurring_billing_start_date``, ``hs_term_in_months``). HubSpot only holds the *current* line items,
so Renkei keeps every version in its store (:class:`store.subscriptions.SubscriptionStore`) and computes
each change against the version that was billed:

* version 1 = the recurring lines without ``renkei_effective_date`` (or dated on/before the start);
* a line item that is added, edited or set to quantity 0 with ``renkei_effective_date`` = E is an
  amendment effective on E (the first day the new terms apply). A quantity-0 line ends the item (its own
  line, or — a new line — the earlier lines of the same product); removing every item cancels. Changes
  with the same date form one new version; a deleted line takes the date of the other changes.

The timeline (one subscription, :func:`advance`)
------------------------------------------------
Events up to ``as_of`` are handled in date order (a version before a period starting the same day):

* **version effective E** in billing period P: when P was billed, the pure rules prorate old → new over
  ``[E, P.end]`` (:func:`domain.proration.prorate_change`). A net credit, or a net above
  ``[proration] approval_amount_threshold``, waits for finance (``proration-approval`` run; the
  subscription's timeline stops until the decision). Then per ``[proration] behavior``:
  ``always_invoice`` → a proration invoice now (a credit → a negative invoice, see the docs);
  ``create_prorations`` → the lines wait for the next period invoice; ``none`` → nothing. A version that
  removes every item (cancellation) is always invoiced immediately. When P was not billed yet the version
  simply applies to P.
* **period start S** (the first period is billed by order-to-invoice at the sale): one period invoice
  with the version in force on S plus the pending proration lines.

Every invoice goes through :func:`tasks.invoicing.create_invoice_once` with its own ledger key
(``invoice:deal:<id>:period:<S>`` / ``invoice:deal:<id>:proration:v<n>:<E>``). Every billing records
revenue segments; :func:`post_journals` books them as manual journals (前受金 ⇄ 売上高), one ledger key
per deal/billing/month.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Collection, Mapping, Sequence

from renkei.connectors.base import SubscriptionDeal
from renkei.connectors.canonical_money import JournalLine, ManualJournal
from renkei.domain.dates import BusinessDayShift, month_end
from renkei.domain.invoice import (InvoiceParams, build_invoice, lines_subtotal, proration_invoice_reference,
                            subscription_invoice_reference)
from renkei.domain.model import Company, Deal, LineItem, PaymentTerms, TaxCategory
from renkei.domain.money import Rounding, format_yen
from renkei.domain.proration import (BillingFrequency, BillingPeriod, DayCount, PlanItem, ProrationBehavior,
                              ProrationKind, ProrationLine, ProrationPolicy, billing_period, period_start,
                              prorate_change)
from renkei.domain.revenue import JournalEntry, monthly_schedule, recognition_journal
from renkei.store.models import SubscriptionBilling, SubscriptionVersion
from renkei.store.subscriptions import SubscriptionStore
from renkei.tasks.approval_form import start_approval_run
from renkei.tasks.invoicing import create_invoice_once, customer_for
from renkei.tasks.reporting import RunReport
from renkei.tasks.runtime import Runtime

FLOW = "subscription-proration"
APPROVAL_FLOW = "proration-approval"
APPROVAL_DEPLOYMENT = "proration-approval/proration-approval"
APPROVAL_TAG = "renkei-approval"

# version statuses
SCHEDULED, APPLIED, PENDING_NEXT, AWAITING, INVOICED, REJECTED = (
    "scheduled", "applied", "pending_next", "awaiting_approval", "invoiced", "rejected")
PROCESSED = {APPLIED, PENDING_NEXT, INVOICED, REJECTED}


class SubscriptionProblem(ValueError):
    """A subscription that cannot be processed as it is in HubSpot (→ review item)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------------
# reading a subscription from a HubSpot deal


LINE_FIELDS = ("key", "name", "code", "unit_price", "quantity", "discount_percent", "tax_category")


@dataclass
class SubLine:
    """One recurring line item as Renkei sees it."""

    line_id: str
    item: LineItem
    start: date
    effective: date | None
    ended: bool  # quantity 0 in HubSpot

    def as_dict(self) -> dict[str, Any]:
        it = self.item
        return {"line_id": self.line_id, "key": it.product_code or it.name, "name": it.name, "code": it.product_code,
                "unit_price": it.unit_price - it.discount, "quantity": _num(it.quantity), "discount_percent": _num(it.discount_percent),
                "tax_category": it.tax_category.value if it.tax_category else None, "start": self.start.isoformat(),
                "frequency": BillingFrequency.parse(it.recurring_frequency).value}


def _num(value: Decimal) -> str:
    return format(Decimal(value).normalize(), "f")


@dataclass
class SubscriptionRead:
    deal: Deal
    frequency: BillingFrequency
    anchor: date
    term_months: int | None
    lines: list[SubLine]


def read_subscription(sd: SubscriptionDeal) -> SubscriptionRead:
    """A CRM subscription deal (:meth:`CRMDeals.subscription_deal`) → :class:`SubscriptionRead`.

    Ended lines (quantity 0 in the CRM) come mapped with quantity 1 and flagged by the connector."""
    if sd.deal is None:
        raise SubscriptionProblem("INVALID_DEAL", sd.error or "the deal cannot be read")
    ended = set(sd.ended_line_ids)
    deal = sd.deal
    recurring = [li for li in deal.line_items if li.recurring_frequency]
    if not recurring:
        raise SubscriptionProblem("NOT_A_SUBSCRIPTION", "no recurring line items")
    try:
        freqs = {BillingFrequency.parse(li.recurring_frequency) for li in recurring}
    except ValueError as exc:
        raise SubscriptionProblem("SUBSCRIPTION_INVALID", str(exc)) from None
    if len(freqs) != 1:
        raise SubscriptionProblem("SUBSCRIPTION_INVALID",
                                  "recurring lines with different billing frequencies: " + ", ".join(sorted(f.value for f in freqs)))
    starts = [li.recurring_start for li in recurring if li.recurring_start]
    anchor = min(starts) if starts else deal.close_date
    if anchor is None:
        raise SubscriptionProblem("SUBSCRIPTION_INVALID", "no hs_recurring_billing_start_date and no close date")
    # the term is the one sold: the lines starting on the anchor (an amended line keeps its start date)
    terms = [li.term_months for li in recurring if li.term_months and (li.recurring_start or anchor) == anchor]
    lines = [SubLine(str(li.crm_id), li, li.effective_date or li.recurring_start or anchor, li.effective_date,
                     str(li.crm_id) in ended) for li in recurring]
    return SubscriptionRead(deal, freqs.pop(), anchor, max(terms) if terms else None, lines)


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in LINE_FIELDS)


def plan_new_versions(sub: SubscriptionRead, latest: SubscriptionVersion | None,
                      history: Sequence[SubscriptionVersion] = ()) -> list[tuple[date, list[dict]]]:
    """The versions to append (effective date, lines) — see the module docstring for the rules.
    ``history`` (all stored versions) tells lines that ended earlier (by a quantity-0 line of the same
    product) from new ones."""
    lines = sub.lines
    if latest is None:
        base = [ln for ln in lines if (ln.effective is None or ln.effective <= sub.anchor) and not ln.ended]
        out = [(sub.anchor, [ln.as_dict() for ln in base])]
        current = {d["line_id"]: d for d in out[0][1]}
        later = sorted({ln.effective for ln in lines if ln.effective and ln.effective > sub.anchor})
        for e in later:
            nxt = dict(current)
            for ln in (ln for ln in lines if ln.effective == e):
                _apply_line(nxt, ln, e)
            if list(nxt.values()) != list(current.values()):
                out.append((e, list(nxt.values())))
            current = nxt
        return out

    stored = {d["line_id"]: d for d in latest.lines}
    now = {ln.line_id: ln for ln in lines}
    last = date.fromisoformat(latest.effective_date)
    changes: list[tuple[date | None, SubLine | None, str]] = []  # (date, line, stored id removed)
    for lid, d in stored.items():
        ln = now.get(lid)
        if ln is None:
            changes.append((None, None, lid))  # deleted in HubSpot
        elif ln.ended or not _same(ln.as_dict(), d):
            changes.append((ln.effective, ln, lid))
    earlier = {d["line_id"]: d for v in history for d in v.lines}
    for lid, ln in now.items():
        if lid in stored:
            continue
        if lid in earlier and not ln.ended and _same(ln.as_dict(), earlier[lid]) \
                and (ln.effective is None or ln.effective <= last):
            continue  # unchanged line that an earlier version ended
        if ln.ended:
            # a new quantity-0 line ends earlier lines of the same product — once: a marker dated on or
            # before the latest version was already applied (or its own line ended in an earlier version)
            e = ln.effective
            fresh = e is None or e > last or (e == last and latest.status == SCHEDULED)
            targets = [d for d in stored.values()
                       if d["key"] == ln.as_dict()["key"] and (e is None or date.fromisoformat(d["start"]) < e)]
            if fresh and targets:
                changes.append((e, ln, ""))
            continue
        changes.append((ln.effective, ln, ""))
    if not changes:
        return []
    dated = {c[0] for c in changes if c[0] is not None}
    if any(c[0] is None for c in changes):
        if len(dated) != 1 or any(c[0] is None and c[1] is not None for c in changes):
            raise SubscriptionProblem(
                "AMENDMENT_WITHOUT_EFFECTIVE_DATE",
                "a recurring line item changed without renkei_effective_date (set the date on the changed line; "
                "end an item with quantity 0 and a date rather than deleting it)")
        only = next(iter(dated))
        changes = [(c[0] or only, c[1], c[2]) for c in changes]
    out: list[tuple[date, list[dict]]] = []
    current = dict(stored)
    for e in sorted({c[0] for c in changes}):
        if e < last or (e == last and latest.status != SCHEDULED):
            raise SubscriptionProblem(
                "AMENDMENT_BEFORE_LAST_VERSION",
                f"change effective {e.isoformat()} is not after version {latest.version} "
                f"(effective {latest.effective_date}); give the changed lines a later renkei_effective_date")
        nxt = dict(current)
        for d, ln, removed in (c for c in changes if c[0] == e):
            if ln is None:
                nxt.pop(removed, None)
            else:
                _apply_line(nxt, ln, e)
        out.append((e, list(nxt.values())))
        current = nxt
    return out


def _apply_line(state: dict[str, dict], ln: SubLine, e: date) -> None:
    d = ln.as_dict()
    if ln.ended:
        if ln.line_id in state:
            state.pop(ln.line_id)
        else:
            for lid in [k for k, v in state.items() if v["key"] == d["key"] and date.fromisoformat(v["start"]) < e]:
                state.pop(lid)
        return
    state[ln.line_id] = {**d, "start": e.isoformat()}


# ---------------------------------------------------------------------------------------------------
# rules glue


def proration_policy(rt: Runtime) -> ProrationPolicy:
    p = rt.policy.proration
    return ProrationPolicy(behavior=ProrationBehavior(p.behavior), day_count=DayCount(p.day_count),
                           charge_rounding=p.charge_rounding, credit_rounding=p.credit_rounding)


def plan_items(lines: Sequence[Mapping[str, Any]], default: TaxCategory) -> list[PlanItem]:
    return [PlanItem(name=d["name"], unit_price=int(d["unit_price"]), quantity=Decimal(d["quantity"]),
                     tax_category=TaxCategory(d["tax_category"]) if d.get("tax_category") else default,
                     code=d.get("code"), discount_percent=Decimal(d.get("discount_percent") or 0)) for d in lines]


def line_items(lines: Sequence[Mapping[str, Any]], period: BillingPeriod) -> list[LineItem]:
    label = f"（{period.start:%Y/%m/%d}〜{period.end:%Y/%m/%d}）"
    out = []
    for d in lines:
        name = d["name"]
        name = (name[: 254 - len(label)] + "…" if len(name) + len(label) > 255 else name) + label
        out.append(LineItem(name=name, product_code=d.get("code"), quantity=Decimal(d["quantity"]),
                            unit_price=int(d["unit_price"]), discount_percent=Decimal(d.get("discount_percent") or 0),
                            tax_category=TaxCategory(d["tax_category"]) if d.get("tax_category") else None))
    return out


def proration_to_json(result, issue: date, cancel: bool) -> dict[str, Any]:
    return {"period": [result.period.start.isoformat(), result.period.end.isoformat(), result.period.months],
            "effective": result.effective.isoformat(), "behavior": result.behavior.value, "issue_date": issue.isoformat(),
            "cancel": cancel, "net": result.net,
            "lines": [{"kind": l.kind.value, "description": l.description, "start": l.period_start.isoformat(),
                       "end": l.period_end.isoformat(), "days": l.days, "total_days": l.total_days, "amount": l.amount,
                       "tax_category": l.tax_category.value, "item_code": l.item_code, "rounding": l.rounding.value}
                      for l in result.lines if l.amount != 0]}


def proration_lines(data: Mapping[str, Any]) -> list[ProrationLine]:
    return [ProrationLine(kind=ProrationKind(l["kind"]), description=l["description"],
                          period_start=date.fromisoformat(l["start"]), period_end=date.fromisoformat(l["end"]),
                          days=l["days"], total_days=l["total_days"], amount=l["amount"],
                          tax_category=TaxCategory(l["tax_category"]), item_code=l.get("item_code"))
            for l in data.get("lines") or []]


def proration_markdown(deal: Deal | None, version: SubscriptionVersion, customer: str | None = None) -> str:
    data = version.proration
    out = [f"### 日割り精算（案） deal {version.deal_id} v{version.version}", ""]
    if deal is not None:
        out.append(f"商談: **{_md(deal.name)}**" + (f" / 請求先: **{_md(customer)}**" if customer else ""))
    out += [f"適用日: {data.get('effective')} / 請求期間: {data['period'][0]}〜{data['period'][1]}"
            + (" / **解約**" if data.get("cancel") else ""), "",
            "| 区分 | 品名 | 日数 | 金額（税抜） |", "|---|---|---:|---:|"]
    for l in data.get("lines") or []:
        out.append(f"| {'未使用分（控除）' if l['kind'] == 'credit' else '残期間分'} | {_md(l['description'])} "
                   f"| {l['days']}/{l['total_days']} | {format_yen(l['amount'])} |")
    net = data.get("net", 0)
    out += ["", f"**差引（税抜） {format_yen(net)}**" + ("（返金・相殺 = マイナス請求書）" if net < 0 else "")]
    return "\n".join(out) + "\n"


def _md(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def fingerprint(data: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------
# invoices


def symmetric_tax_rounding(rule: Rounding) -> Rounding:
    """The tax rule for invoices that may carry credits: freee applies 切り捨て/切り上げ to the magnitude
    (omit = toward zero, round_up = away from zero), while :class:`Rounding` ``FLOOR``/``CEIL`` go toward
    −∞/+∞. Identical for positive per-rate totals; for a negative total (credit) this matches freee."""
    return {Rounding.FLOOR: Rounding.TRUNCATE, Rounding.CEIL: Rounding.AWAY}.get(Rounding(rule), Rounding(rule))


def invoice_params(rt: Runtime, customer: Company, issue: date, transaction: date, reference: str) -> InvoiceParams:
    p = rt.policy
    terms = customer.payment_terms or PaymentTerms(closing_day=p.payment_terms.closing_day,
                                                   pay_month_offset=p.payment_terms.pay_month_offset,
                                                   pay_day=p.payment_terms.pay_day)
    shift = {"none": BusinessDayShift.NONE, "previous_business_day": BusinessDayShift.PREVIOUS,
             "next_business_day": BusinessDayShift.NEXT}[p.payment_terms.holiday_shift]
    return InvoiceParams(issuer_name=p.issuer.name, issuer_registration_number=p.issuer.registration_number,
                         issue_date=issue, default_tax_category=p.tax.default_category,
                         line_rounding=p.tax.line_rounding, tax_rounding=symmetric_tax_rounding(p.tax.rounding),
                         tax_entry_method=p.tax.entry_method, payment_terms=terms, due_date_shift=shift,
                         transaction_date=transaction, reference=reference)


@dataclass
class Context:
    """What one subscription's processing needs besides the store."""

    rt: Runtime
    subs: SubscriptionStore
    report: RunReport
    as_of: date
    lease_seconds: int = 300
    start_approvals: bool = True
    customers: dict[str, Company | None] = field(default_factory=dict)

    def customer(self, deal: Deal) -> Company | None:
        cid = str(deal.company_crm_id or "")
        if cid not in self.customers:
            partner = self.rt.store.erp_id_for("company", cid) if cid else None
            self.customers[cid] = customer_for(self.rt, partner, None) if partner else None
        return self.customers[cid]


def _issue(ctx: Context, deal: Deal, invoice_lines: list[LineItem], extra, *, issue: date, transaction: date,
           reference: str, ledger: str, service: tuple[date, date], approved_by: str | None = None) -> "Created | None":
    customer = ctx.customer(deal)
    if customer is None:
        ctx.report.review(reason_code="COMPANY_NOT_LINKED", entity="deal", entity_key=deal.crm_id,
                          message=f"{deal.name}: the company has no freee partner (run order-to-invoice / customer-sync)")
        return None
    invoice = build_invoice(deal, invoice_lines, customer, invoice_params(ctx.rt, customer, issue, transaction, reference),
                            extra_lines=extra)
    invoice = invoice.model_copy(update={"partner_erp_id": customer.erp_id, "issuer_name": ctx.rt.policy.issuer.name,
                                         "service_period_start": service[0], "service_period_end": service[1]})
    outcome = create_invoice_once(ctx.rt, invoice, deal.crm_id, ctx.report, lease_seconds=ctx.lease_seconds,
                                  ledger=ledger, approved_by=approved_by)
    if outcome.status == "held":
        return None
    # a committed ledger entry (rerun after a crash) may come back without the invoice itself
    erp_id = getattr(outcome, "invoice_id", None) or (outcome.invoice.erp_id if outcome.invoice else None)
    number = getattr(outcome, "number", None) or (outcome.invoice.number if outcome.invoice else None)
    return Created(str(erp_id), number) if erp_id else None


@dataclass(frozen=True)
class Created:
    """The freee invoice an invoice step produced (or found committed in the ledger)."""

    erp_id: str
    number: str | None


# ---------------------------------------------------------------------------------------------------
# the timeline


def initial_ledger_key(deal_id: str) -> str:
    return f"invoice:deal:{deal_id}"  # order-to-invoice's key: the sale invoice bills the first period


def sync_versions(ctx: Context, sub: SubscriptionRead) -> list[SubscriptionVersion]:
    """Append the versions HubSpot shows beyond the stored ones; returns all versions."""
    deal_id = sub.deal.crm_id
    versions = ctx.subs.versions(deal_id)
    latest = versions[-1] if versions else None
    if versions:
        sub.anchor = date.fromisoformat(versions[0].effective_date)  # a running subscription keeps its anchor
    freqs = {d.get("frequency") for v in versions for d in v.lines} - {None}
    if freqs and freqs != {sub.frequency.value}:
        raise SubscriptionProblem("SUBSCRIPTION_INVALID",
                                  f"the billing frequency changed from {', '.join(sorted(freqs))} to {sub.frequency.value}; "
                                  "a change of frequency mid-term is not supported (end it and sell a new one)")
    planned = plan_new_versions(sub, latest, versions)
    n = latest.version if latest else 0
    for e, lines in planned:
        if latest is not None and latest.status == SCHEDULED and e == date.fromisoformat(latest.effective_date):
            ctx.subs.update_version(deal_id, latest.version, lines=lines)  # same date, not processed yet
            continue
        n += 1
        ctx.subs.add_version(deal_id, n, e.isoformat(), lines, status=APPLIED if n == 1 else SCHEDULED)
        ctx.report.count("renkei", "version_recorded")
        ctx.report.event(action="subscription_version", entity="subscription", entity_key=deal_id, system="renkei",
                         deal_id=deal_id,
                         changes={"version": n, "effective_date": e.isoformat(), "items": len(lines)})
    return ctx.subs.versions(deal_id)


def advance(ctx: Context, sub: SubscriptionRead) -> None:
    """Record new versions, then handle every event up to ``as_of`` in date order (module docstring)."""
    deal, deal_id = sub.deal, sub.deal.crm_id
    versions = sync_versions(ctx, sub)
    first = billing_period(sub.anchor, sub.frequency, sub.anchor)
    if ctx.subs.billing(deal_id, f"period:{first.start.isoformat()}") is None:
        sale = ctx.rt.store.ledger_entry(initial_ledger_key(deal_id))
        if sale is None or sale.status != "committed":
            ctx.report.count("renkei", "waiting_for_sale_invoice")
            return
        amount = lines_subtotal(line_items(versions[0].lines, first), ctx.rt.policy.tax.line_rounding)
        ctx.subs.add_billing(SubscriptionBilling(
            deal_id=deal_id, key=f"period:{first.start.isoformat()}", kind="period", period_start=first.start.isoformat(),
            period_end=first.end.isoformat(), version=1, issue_date=first.start.isoformat(),
            amount=amount, invoice_id=sale.external_id, invoice_number=(sale.result or {}).get("number"),
            segments=[{"start": first.start.isoformat(), "end": first.end.isoformat(), "amount": amount,
                       "label": "v1"}]))
    max_periods = None if sub.term_months is None else -(-sub.term_months // sub.frequency.months)
    for _ in range(1000):
        versions = ctx.subs.versions(deal_id)
        waiting = next((v for v in versions if v.status == AWAITING), None)
        if waiting is not None:
            request_approval(ctx, deal, waiting)
            return
        nxt_v = next((v for v in versions if v.status == SCHEDULED
                      and date.fromisoformat(v.effective_date) <= ctx.as_of), None)
        nxt_p = _next_period(ctx, sub, max_periods)
        if nxt_v is None and nxt_p is None:
            return
        if nxt_v is not None and (nxt_p is None or date.fromisoformat(nxt_v.effective_date) <= nxt_p.start):
            if not process_version(ctx, sub, nxt_v):
                return
        else:
            if not bill_period(ctx, sub, nxt_p):
                return


def _next_period(ctx: Context, sub: SubscriptionRead, max_periods: int | None) -> BillingPeriod | None:
    """The first period after the sale's that started by ``as_of`` and is not billed (None: nothing due,
    the term is over, or the subscription ended with a cancellation)."""
    if any(b.kind == "ended" for b in ctx.subs.billings(sub.deal.crm_id)):
        return None
    k = 1
    while True:
        if max_periods is not None and k >= max_periods:
            return None
        s = period_start(sub.anchor, sub.frequency, k)
        if s > ctx.as_of:
            return None
        if ctx.subs.billing(sub.deal.crm_id, f"period:{s.isoformat()}") is None:
            return billing_period(sub.anchor, sub.frequency, s)
        k += 1


def _in_force(versions: Sequence[SubscriptionVersion], on: date) -> SubscriptionVersion:
    applicable = [v for v in versions if date.fromisoformat(v.effective_date) <= on and v.status != SCHEDULED]
    return applicable[-1] if applicable else versions[0]


def billed_version(versions: Sequence[SubscriptionVersion], period_version: int, version: int) -> SubscriptionVersion:
    """What the customer was billed for just before ``version`` takes effect: the version the period invoice
    used, or a later version of the same period whose proration was billed (rejected prorations and
    behaviour ``none`` leave the billed state as it was)."""
    by_no = {x.version: x for x in versions}
    billed = by_no[period_version]
    for x in versions:
        if period_version < x.version < version and (
                x.status in (INVOICED, PENDING_NEXT)
                or (x.status == APPLIED and x.proration.get("behavior") != ProrationBehavior.NONE.value)):
            billed = x
    return billed


def process_version(ctx: Context, sub: SubscriptionRead, v: SubscriptionVersion) -> bool:
    """Prorate one version against the one before it. False: stop this subscription's timeline."""
    deal_id = sub.deal.crm_id
    versions = ctx.subs.versions(deal_id)
    e = date.fromisoformat(v.effective_date)
    period = billing_period(sub.anchor, sub.frequency, e)
    billed = ctx.subs.billing(deal_id, f"period:{period.start.isoformat()}")
    if billed is None or billed.kind == "ended":
        ctx.subs.update_version(deal_id, v.version, status=APPLIED)  # the period is billed with the new version
        ctx.report.count("renkei", "version_applied")
        return True
    prev = billed_version(versions, billed.version, v.version)
    default = ctx.rt.policy.tax.default_category
    result = prorate_change(plan_items(prev.lines, default), plan_items(v.lines, default), period, e,
                            proration_policy(ctx.rt))
    cancel = not v.lines
    # the billing date is fixed the first time (a redo after a crash must look the same invoice up)
    issue = date.fromisoformat(v.proration["issue_date"]) if v.proration.get("issue_date") else max(e, ctx.as_of)
    data = proration_to_json(result, issue, cancel)
    if not data["lines"]:
        ctx.subs.update_version(deal_id, v.version, status=APPLIED, proration=data, net=0)
        ctx.report.count("renkei", "version_applied")
        return True
    v = ctx.subs.update_version(deal_id, v.version, proration=data, net=data["net"])
    threshold = ctx.rt.policy.proration.approval_amount_threshold
    if data["net"] < 0 or abs(data["net"]) > threshold:
        v = ctx.subs.update_version(deal_id, v.version, status=AWAITING)
        reason = "PRORATION_NET_CREDIT" if data["net"] < 0 else "PRORATION_OVER_THRESHOLD"
        # written now, before the approval run exists: a kill in between leaves the item, never a lone run
        ctx.rt.store.add_review(flow=FLOW, flow_run_id=ctx.report.flow_run_id, reason_code=reason,
                                entity="subscription", entity_key=f"{deal_id}:v{v.version}",
                                message=f"{sub.deal.name}: change effective {v.effective_date} prorates to "
                                        f"{format_yen(data['net'])} (税抜) — finance approval required",
                                payload={"deal": deal_id, "version": v.version, "net": data["net"]})
        ctx.report.count("renkei", "review")
        ctx.report.count("renkei", "sent_to_approval")
        ctx.report.row(deal=deal_id, event=f"v{v.version} {v.effective_date}", net=data["net"],
                       outcome="approval:" + reason, invoice="")
        request_approval(ctx, sub.deal, v)
        return False
    return apply_proration(ctx, sub.deal, v)


def apply_proration(ctx: Context, deal: Deal, v: SubscriptionVersion, approved_by: str | None = None) -> bool:
    """Bill an (approved or clean) proration per the policy behaviour."""
    data = v.proration
    deal_id = deal.crm_id
    behavior = ProrationBehavior(data["behavior"])
    e = date.fromisoformat(data["effective"])
    if behavior is ProrationBehavior.NONE:
        ctx.subs.update_version(deal_id, v.version, status=APPLIED, decided_by=approved_by)
        return True
    if behavior is ProrationBehavior.CREATE_PRORATIONS and not data.get("cancel"):
        ctx.subs.update_version(deal_id, v.version, status=PENDING_NEXT, decided_by=approved_by)
        ctx.report.count("renkei", "proration_pending_next_invoice")
        ctx.report.row(deal=deal_id, event=f"v{v.version} {v.effective_date}", net=data["net"],
                       outcome="pending_next_invoice", invoice="")
        return True
    issue = date.fromisoformat(data["issue_date"])
    pend = [ProrationLine.to_invoice_line(l) for l in proration_lines(data)]
    period_end = date.fromisoformat(data["period"][1])
    created = _issue(ctx, deal, [], pend, issue=issue, transaction=e,
                     reference=proration_invoice_reference(deal_id, v.version, e),
                     ledger=f"invoice:deal:{deal_id}:proration:v{v.version}:{e.isoformat()}", service=(e, period_end),
                     approved_by=approved_by)
    if created is None:
        return False
    ctx.subs.add_billing(SubscriptionBilling(
        deal_id=deal_id, key=f"proration:v{v.version}", kind="proration", period_start=e.isoformat(),
        period_end=period_end.isoformat(), version=v.version, issue_date=issue.isoformat(), amount=data["net"],
        invoice_id=created.erp_id, invoice_number=created.number,
        segments=[{"start": e.isoformat(), "end": period_end.isoformat(), "amount": data["net"],
                   "label": f"v{v.version} proration"}]))
    ctx.subs.update_version(deal_id, v.version, status=INVOICED, invoice_id=created.erp_id, decided_by=approved_by)
    ctx.report.count("erp", "proration_invoiced" if data["net"] >= 0 else "credit_note")
    ctx.report.row(deal=deal_id, event=f"v{v.version} {v.effective_date}", net=data["net"],
                   outcome="credit_note" if data["net"] < 0 else "proration_invoice", invoice=created.number or "")
    return True


def bill_period(ctx: Context, sub: SubscriptionRead, period: BillingPeriod) -> bool:
    deal, deal_id = sub.deal, sub.deal.crm_id
    versions = ctx.subs.versions(deal_id)
    current = _in_force(versions, period.start)
    pending = [v for v in versions if v.status == PENDING_NEXT]
    extra = [ProrationLine.to_invoice_line(l) for v in pending for l in proration_lines(v.proration)]
    key = f"period:{period.start.isoformat()}"
    if not current.lines and not extra:
        # cancelled: nothing to bill any more; remember the period as not billed (amount 0, no invoice)
        ctx.subs.add_billing(SubscriptionBilling(deal_id=deal_id, key=key, kind="ended",
                                                 period_start=period.start.isoformat(),
                                                 period_end=period.end.isoformat(), version=current.version,
                                                 issue_date=period.start.isoformat(), amount=0, segments=[]))
        ctx.report.count("renkei", "subscription_ended")
        return False
    items = line_items(current.lines, period)
    created = _issue(ctx, deal, items, extra, issue=period.start, transaction=period.start,
                     reference=subscription_invoice_reference(deal_id, period.start, period.end),
                     ledger=f"invoice:deal:{deal_id}:{key}", service=(period.start, period.end))
    if created is None:
        return False
    recurring = lines_subtotal(items, ctx.rt.policy.tax.line_rounding)
    segments = [{"start": period.start.isoformat(), "end": period.end.isoformat(), "amount": recurring,
                 "label": f"v{current.version}"}] if items else []
    for v in pending:
        segments.append({"start": v.proration["effective"], "end": v.proration["period"][1],
                         "amount": v.proration["net"], "label": f"v{v.version} proration"})
    ctx.subs.add_billing(SubscriptionBilling(
        deal_id=deal_id, key=key, kind="period", period_start=period.start.isoformat(),
        period_end=period.end.isoformat(), version=current.version, issue_date=period.start.isoformat(),
        amount=sum(s["amount"] for s in segments), invoice_id=created.erp_id, invoice_number=created.number,
        segments=segments))
    for v in pending:
        ctx.subs.update_version(deal_id, v.version, status=INVOICED, invoice_id=created.erp_id)
    ctx.report.count("erp", "period_invoiced")
    ctx.report.row(deal=deal_id, event=f"period {period.start}..{period.end}", net=sum(s["amount"] for s in segments),
                   outcome="period_invoice" + (f" +{len(pending)} proration" if pending else ""),
                   invoice=created.number or "")
    return True


# ---------------------------------------------------------------------------------------------------
# approvals


def approval_key(deal_id: str, v: SubscriptionVersion) -> str:
    return f"approval:proration:{deal_id}:v{v.version}:{fingerprint(v.proration)}"


def _run_finished(run_id: str) -> bool:
    """True when the approval run ended without a decision being applied (failed, timed out, cancelled)."""
    from prefect import get_client

    from datetime import datetime, timezone

    from prefect.states import Failed

    from renkei.tasks.approval_expiry import EXPIRED_MESSAGE

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
            deadline = run.state.state_details.pause_timeout if run.state and run.state.is_paused() else None
            if deadline is not None and deadline < datetime.now(timezone.utc):
                # past its deadline but not failed yet (no pause-expiration service): fail it as the server would
                client.set_flow_run_state(run.id, Failed(message=EXPIRED_MESSAGE))
                run = client.read_flow_run(run_id)
    except Exception:  # noqa: BLE001 - unknown run (e.g. another Prefect server): do not pile up runs
        return False
    return bool(run.state and run.state.is_final())


def request_approval(ctx: Context, deal: Deal, v: SubscriptionVersion) -> str | None:
    """One ``proration-approval`` run per version and proration (ledger key); None: not started.

    A run that ended while the version still waits (no decision within ``[approval] timeout_hours``) is
    replaced by a new one when ``[approval] on_timeout = "renotify"``."""
    if not ctx.start_approvals:
        return None

    base = approval_key(deal.crm_id, v)
    owner = f"{FLOW}:{ctx.report.flow_run_id}"
    for attempt in range(20):
        key = base if attempt == 0 else f"{base}:{attempt}"
        entry = ctx.rt.store.ledger_entry(key)
        if entry is not None and entry.status == "committed":
            if ctx.rt.policy.approval.on_timeout == "renotify" and entry.external_id \
                    and _run_finished(entry.external_id):
                continue
            return entry.external_id
        name = f"日割り精算承認 {deal.name[:60]} {format_yen(v.net)} deal-{deal.crm_id} v{v.version}"
        run_id, outcome = start_approval_run(ctx.rt.store, key, owner, deployment=APPROVAL_DEPLOYMENT,
                                             parameters={"deal_id": deal.crm_id, "version": v.version},
                                             run_name=name, tags=[APPROVAL_TAG])
        if outcome == "not_started":
            ctx.report.notes.append(f"deal {deal.crm_id} v{v.version}: approval run not started")
        if outcome != "started":
            return run_id
        ctx.report.event(action="approval_requested", entity="subscription", entity_key=f"{deal.crm_id}:v{v.version}",
                         system="renkei", deal_id=deal.crm_id,
                         changes={"flow_run_id": run_id, "net": v.net, "attempt": attempt})
        return run_id
    return None


def decide(ctx: Context, sub: SubscriptionRead, version: int, *, approved: bool, approver: str,
           comment: str = "") -> dict[str, Any]:
    """Apply finance's decision on a version waiting for approval (used by ``proration-approval``)."""
    deal_id = sub.deal.crm_id
    v = ctx.subs.version(deal_id, version)
    if v is None or v.status != AWAITING:
        return {"deal": deal_id, "version": version, "outcome": "already_decided",
                "status": v.status if v else None}
    ctx.report.event(action="approve" if approved else "reject", entity="subscription",
                     entity_key=f"{deal_id}:v{version}", system="renkei", actor=approver, deal_id=deal_id,
                     changes={"comment": comment, "net": v.net})
    for item in ctx.rt.store.list_reviews("open", flow=FLOW):
        if item.entity == "subscription" and item.entity_key == f"{deal_id}:v{version}":
            ctx.rt.store.decide_review(item.id, decision="approve" if approved else "reject", decided_by=approver,
                                       comment=comment)
    if not approved:
        ctx.subs.update_version(deal_id, version, status=REJECTED, decided_by=approver)
        return {"deal": deal_id, "version": version, "outcome": "rejected"}
    ok = apply_proration(ctx, sub.deal, v, approved_by=approver)
    v = ctx.subs.version(deal_id, version)
    return {"deal": deal_id, "version": version, "outcome": v.status if ok else "not_applied",
            "invoice_id": v.invoice_id}


# ---------------------------------------------------------------------------------------------------
# revenue journals


def account_names(rt: Runtime) -> set[str]:
    return rt.erp.account_names()


def schedule_rows(billing: SubscriptionBilling) -> list[dict[str, Any]]:
    """Monthly recognition of one billing: per-segment straight-line schedules summed per month."""
    months: dict[date, int] = {}
    for s in billing.segments:
        if s["amount"] == 0:
            continue
        for entry in monthly_schedule(int(s["amount"]), date.fromisoformat(s["start"]), date.fromisoformat(s["end"])):
            months[entry.month] = months.get(entry.month, 0) + entry.amount
    out, remaining = [], billing.amount
    for m in sorted(months):
        remaining -= months[m]
        out.append({"month": m, "amount": months[m], "deferred_after": remaining})
    return out


def journal_ref(key: str) -> str:
    """freee ``ref_number`` (≤ 20 chars), deterministic per ledger key (dedupe after an ambiguous POST)."""
    return "RK" + hashlib.sha1(key.encode()).hexdigest()[:18]


def _journal(entry: JournalEntry, ref: str) -> ManualJournal:
    memo = entry.memo[:250]
    return ManualJournal(entry.entry_date, ref, (
        JournalLine("debit", entry.debit_account, entry.amount, memo, tax="non_taxable"),
        JournalLine("credit", entry.credit_account, entry.amount, memo, tax="non_taxable")))


NOT_POSTED = "allocated (no journals in the ERP)"
ALLOCATION_ENTITY = "revenue-allocation"


def keep_allocation(rt: Runtime, rows: Sequence[dict[str, Any]]) -> None:
    """The revenue allocation per billing, kept in the state store (base_snapshot ``revenue-allocation``,
    key ``<deal>:<billing>``) where the ERP takes no journals."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(f"{r['deal']}:{r['billing']}", []).append(
            {"month": r["month"], "amount": r["amount"], "deferred_after": r["deferred_after"],
             "journal": r["journal"]})
    for key, months in by.items():
        rt.store.put_snapshot(ALLOCATION_ENTITY, key, {"months": months})


def post_journals(rt: Runtime, billings: Sequence[SubscriptionBilling], as_of: date, report: RunReport,
                  *, accounts: Collection[str] | None = None, lease_seconds: int = 300) -> list[dict[str, Any]]:
    """For every billing: the deferral (売上高 → 前受金 on the billing date, because freee請求書 books the
    invoice to 売上高) and, for each month closed by ``as_of``, 前受金 → 売上高. Exactly once per ledger key
    ``journal:deal:<id>:<billing key>:<defer|YYYY-MM>``. Returns the schedule rows (for the artifact)."""
    rv = rt.policy.revenue
    post = rt.erp.capabilities.journals  # False: the allocation (売上按分) is kept in the state store only
    if accounts is None:
        accounts = account_names(rt) if post else {rv.advance_account, rv.sales_account}
    missing = [a for a in (rv.advance_account, rv.sales_account) if a not in accounts]
    rows: list[dict[str, Any]] = []
    owner = f"{report.flow}:{report.flow_run_id or rt.worker_id}"
    for b in billings:
        if b.amount == 0 and not b.segments:
            continue
        issue = date.fromisoformat(b.issue_date)
        tag = f"deal {b.deal_id} {b.key}"
        planned: list[tuple[str, JournalEntry | None, dict[str, Any]]] = []
        if b.amount:
            entry = JournalEntry(issue, rv.sales_account, rv.advance_account, abs(b.amount),
                                 f"前受金へ振替 {tag}") if b.amount > 0 else \
                JournalEntry(issue, rv.advance_account, rv.sales_account, abs(b.amount), f"前受金へ振替（控除） {tag}")
            planned.append(("defer", entry, {"deal": b.deal_id, "billing": b.key, "month": "請求時",
                                             "amount": b.amount, "deferred_after": b.amount}))
        for r in schedule_rows(b):
            m: date = r["month"]
            close = month_end(m)
            row = {"deal": b.deal_id, "billing": b.key, "month": f"{m:%Y-%m}", "amount": r["amount"],
                   "deferred_after": r["deferred_after"]}
            if close > as_of or r["amount"] == 0:
                planned.append((f"{m:%Y-%m}", None, row))
                continue
            (entry,) = recognition_journal([_Rec(m, r["amount"], max(close, issue))], reference=tag,
                                           advance_account=rv.advance_account, sales_account=rv.sales_account)
            planned.append((f"{m:%Y-%m}", entry, row))
        for suffix, entry, row in planned:
            key = f"journal:deal:{b.deal_id}:{b.key}:{suffix}"
            if entry is None:
                rows.append({**row, "journal": "scheduled"})
                continue
            if not post:
                rows.append({**row, "journal": NOT_POSTED})
                continue
            done = rt.store.ledger_entry(key)
            if done is not None and done.status == "committed":  # the common case: no write, no API call
                rows.append({**row, "journal": f"posted #{done.external_id}"})
                report.count("erp", "journal_unchanged")
                continue
            if missing:
                rows.append({**row, "journal": "account missing"})
                continue
            claim = rt.store.claim(key, owner, lease_seconds=lease_seconds)
            if claim.state == "committed":
                rows.append({**row, "journal": f"posted #{claim.external_id}"})
                report.count("erp", "journal_unchanged")
                continue
            if claim.state == "held":
                rows.append({**row, "journal": "held"})
                continue
            ref = journal_ref(key)
            created = None
            if claim.must_check_external:
                created = rt.erp.find_journal(ref, on=entry.entry_date)
            if created is None:
                created = rt.erp.post_journal(_journal(entry, ref))
                report.count("erp", "journal_posted")
                report.event(action="create", entity="manual_journal", entity_key=key, system="erp", deal_id=b.deal_id,
                             changes={"id": _id(created), "amount": entry.amount, "date": entry.entry_date.isoformat(),
                                      "debit": entry.debit_account, "credit": entry.credit_account})
            rt.store.commit(key, owner, str(created), {"ref_number": ref, "amount": entry.amount,
                                                       "date": entry.entry_date.isoformat()})
            rows.append({**row, "journal": f"posted #{created}"})
    if not post and rows:
        keep_allocation(rt, rows)
        report.count("erp", "journal_not_posted", sum(1 for r in rows if r["journal"] == NOT_POSTED))
        report.notes.append(f"revenue allocation (売上按分) computed and kept in Renkei's state store; "
                            f"{rt.erp.capabilities.label} takes no journals, so none were posted")
    if missing and billings:
        report.review(reason_code="MISSING_ACCOUNT_ITEM", entity="account_item", entity_key=",".join(missing),
                      message=f"freee has no account item named {', '.join(missing)}; revenue journals wait "
                              "(create it or set [revenue] in the policy)", side="erp")
    return rows


def _id(value: str) -> Any:
    return int(value) if value.isdigit() else value


@dataclass(frozen=True)
class _Rec:
    """Duck-typed :class:`domain.revenue.RecognitionEntry` with an explicit journal date."""

    month: date
    amount: int
    close_date: date
