"""Management reporting rules: pipeline, invoiced, collected, aging, profitability, cash forecast, drift.

Pure functions (no Prefect, no HTTP, no database) from *facts* read from the CRM and the ERP
(:class:`DealFact`, :class:`InvoiceFact`, :class:`CostFact`, :class:`CustomerFact`) to a
:class:`Snapshot`. Money is integer yen; ratios are :class:`~decimal.Decimal`; dates are Asia/Tokyo
business dates. Every rule below is named and documented in ``docs/reporting.md``.

Rules
=====
* **Weighted pipeline** (:func:`weighted_amount`): per deal, ``amount × probability`` rounded once to
  whole yen with :data:`WEIGHT_ROUNDING` (四捨五入, half up), then summed. Unweighted is the plain amount.
  A deal without an amount counts 0 yen.
* **Pipeline by month** (:func:`month_figures`): *open* deals (neither won nor lost) by the month of
  their expected close date. An open deal whose close date has passed counts in the month of its close
  date (it is late, not gone); an open deal without a close date is left out of the months and shown
  in the stage table with close month ``""``.
* **Invoiced** per month: 請求金額 (税込 ``total``) of every invoice not cancelled, by its 請求日 month.
  **Collected** per month: every payment applied to such an invoice (入金額, 税込, fees not included),
  by its 入金日 month.
* **Aging** (:func:`aging_bucket`): the outstanding amount of each open invoice, by days overdue
  = ``as_of − due_date`` (Tokyo dates): ≤ 0 → ``current``, 1–30, 31–60, 61–90, > 90 → ``90+``. An
  invoice without a due date is ``current``.
* **Customer profitability**: sales = Σ 税抜 subtotal of the customer's invoices (not cancelled); cost
  = Σ 税抜 amount of the ERP's cost records tagged to the customer's partner; gross margin = sales −
  cost; margin rate = margin / sales rounded half-up to 4 decimal places (0 when there are no sales).
  collected to date = Σ payments; open receivable = Σ outstanding.
* **LTV projection** (:func:`ltv_projection`): collected to date + 12 × the customer's average monthly
  collection so far, where the average = collected ÷ months active (first invoice month to the as-of
  month, both counted), rounded down to whole yen.
* **Cash forecast** (:func:`cash_forecast`): for :data:`FORECAST_MONTHS` months starting with the as-of
  month: open invoices' outstanding amounts by due month (overdue ones and those without a due date fall
  in the as-of month), plus each open deal's weighted amount (税抜; tax is not added because a pipeline
  deal's tax categories are not known yet) by the due date its customer's payment terms give for the
  expected close date (:func:`renkei.domain.dates.due_date`; default 月末締め翌月末払い). A due month
  before the as-of month counts in the as-of month; beyond the horizon it is left out.
* **Drift** (:func:`drift_items`): see :data:`DRIFT_KINDS`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable, Mapping, Sequence

from renkei.domain.model import PaymentTerms

# --------------------------------------------------------------------------------------------------
# named rules

WEIGHT_ROUNDING = ROUND_HALF_UP  # 四捨五入 per deal, before summing
MARGIN_RATE_PLACES = Decimal("0.0001")
LTV_HORIZON_MONTHS = 12
FORECAST_MONTHS = 6
AGING_LABELS: tuple[str, ...] = ("current", "1-30", "31-60", "61-90", "90+")
AGING_LABELS_JA = {"current": "期日前", "1-30": "1〜30日", "31-60": "31〜60日", "61-90": "61〜90日", "90+": "90日超"}

DRIFT_COMPANY_FIELD = "company_field"  # a linked company and partner differ on a field (by its owner)
DRIFT_DEAL_AMOUNT = "deal_amount"  # deal amount (税抜) ≠ its invoice's 税抜 subtotal
DRIFT_PAYMENT_STATUS = "payment_status"  # paid in the ERP, not shown as paid in the CRM (or the reverse)
DRIFT_INVOICE_NO_DEAL = "invoice_no_deal"  # an invoice whose deal is unknown
DRIFT_WON_NO_INVOICE = "won_no_invoice"  # a won deal without an invoice
DRIFT_KINDS: tuple[str, ...] = (DRIFT_COMPANY_FIELD, DRIFT_DEAL_AMOUNT, DRIFT_PAYMENT_STATUS,
                                DRIFT_INVOICE_NO_DEAL, DRIFT_WON_NO_INVOICE)
DRIFT_LABELS_JA = {
    DRIFT_COMPANY_FIELD: "会社と取引先の項目差異",
    DRIFT_DEAL_AMOUNT: "商談金額と請求額の差異",
    DRIFT_PAYMENT_STATUS: "入金状況の不一致",
    DRIFT_INVOICE_NO_DEAL: "商談のない請求書",
    DRIFT_WON_NO_INVOICE: "請求書のない受注商談",
}
CRM_PAID = "paid"  # the CRM payment status (renkei_payment_status) of a fully paid deal


# --------------------------------------------------------------------------------------------------
# facts (inputs): what a connector reads, already mapped; no personal data beyond the company name


@dataclass(frozen=True)
class DealFact:
    """A CRM deal as reporting needs it (any pipeline, any stage)."""

    crm_id: str
    name: str
    amount: int | None
    pipeline: str
    stage: str
    stage_label: str
    probability: Decimal  # 0..1, the stage's (or the deal's own) win probability
    close_date: date | None
    company_crm_id: str | None
    won: bool = False
    closed: bool = False  # won or lost
    payment_status: str | None = None  # what the CRM shows (renkei_payment_status), None = nothing written
    invoice_erp_id: str | None = None  # the invoice id written back to the deal, if any


@dataclass(frozen=True)
class PaymentFact:
    id: str
    day: date | None
    amount: int
    fee: int = 0


@dataclass(frozen=True)
class RateTotalFact:
    tax_category: str  # TaxCategory value
    subtotal: int
    tax: int


@dataclass(frozen=True)
class InvoiceFact:
    """An ERP invoice with its settlement."""

    erp_id: str
    number: str | None
    reference: str | None
    deal_crm_id: str | None  # from the reference renkei:deal:<id> or the id map
    partner_erp_id: str | None
    issue_date: date
    due_date: date | None
    total: int  # 税込
    subtotal: int  # 税抜
    outstanding: int
    cancelled: bool = False
    rate_totals: tuple[RateTotalFact, ...] = ()
    payments: tuple[PaymentFact, ...] = ()

    @property
    def collected(self) -> int:
        return sum(p.amount for p in self.payments)


@dataclass(frozen=True)
class CostFact:
    """An ERP cost record (freee: an expense 取引 with the customer as partner), 税抜."""

    erp_id: str
    partner_erp_id: str
    day: date
    amount: int


@dataclass(frozen=True)
class CustomerFact:
    """A customer: a CRM company and/or an ERP partner (linked through the id map)."""

    crm_id: str | None
    erp_id: str | None
    name: str
    sole_trader: bool = False  # a 個人事業者's name is personal data: masked
    payment_terms: PaymentTerms | None = None
    field_diffs: tuple[tuple[str, str], ...] = ()  # (field path, owner) where company ≠ partner

    @property
    def key(self) -> str:
        return customer_key(self.crm_id, self.erp_id)


# ------------------------------------------------------------------------------------------------- reading facts
# A report read never fails on one record: a record that cannot be read is left out of the facts and becomes one
# open review item (reason REPORT_RECORD_UNREADABLE), closed by a later read that reads it.

REPORT_RECORD_UNREADABLE = "REPORT_RECORD_UNREADABLE"


@dataclass(frozen=True)
class UnreadableRecord:
    """A source record left out of a report read: ``entity`` (``deal`` / ``invoice`` / ``cost_record``), its id in
    its system (``"?"`` when it has none) and why (an exception's text, without the record)."""

    entity: str
    key: str
    reason: str


class FactPage(list):  # type: ignore[type-arg]
    """One page of facts (a plain list to every reader) plus the page's records that could not be read."""

    def __init__(self, facts: Iterable[Any] = (), unreadable: Iterable[UnreadableRecord] = ()) -> None:
        super().__init__(facts)
        self.unreadable: list[UnreadableRecord] = list(unreadable)


def whole_yen(value: Any, what: str = "amount") -> int:
    """A money value from a source record as integer yen; ``None``/``""`` → 0. A fraction of a yen, text, NaN,
    infinity or a boolean raises ``ValueError`` (the record is unreadable, never silently truncated)."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"{what} {value!r} is not integer yen")
    if isinstance(value, int):
        return value
    try:
        d = Decimal(str(value).strip())
    except ArithmeticError:
        raise ValueError(f"{what} {str(value)[:40]!r} is not a number") from None
    if not d.is_finite() or d != d.to_integral_value():
        raise ValueError(f"{what} {str(value)[:40]!r} is not integer yen")
    return int(d)


def _check_text(name: str, value: Any) -> None:
    if value is not None and "\x00" in str(value):
        raise ValueError(f"{name} holds a NUL character (cannot be stored)")


def check_fact(fact: Any) -> Any:
    """A built fact as the snapshot can use it, or ``ValueError``: ids present, money integer yen, the dates the
    rules compute with are dates, no text that the store cannot hold."""
    def money(*names: str) -> None:
        for n in names:
            v = getattr(fact, n)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise ValueError(f"{n} {v!r} is not integer yen")

    def day(n: str, required: bool) -> None:
        v = getattr(fact, n)
        if (v is None and required) or (v is not None and (not isinstance(v, date) or isinstance(v, datetime))):
            raise ValueError(f"{n} {v!r} is not a date")

    for n in ("crm_id", "erp_id"):
        if hasattr(fact, n) and not str(getattr(fact, n) or "").strip():
            raise ValueError(f"{n} is missing")
    if isinstance(fact, DealFact):
        money("amount")
        day("close_date", False)
        for n in ("name", "stage", "stage_label", "pipeline", "company_crm_id", "payment_status", "invoice_erp_id"):
            _check_text(n, getattr(fact, n))
    elif isinstance(fact, InvoiceFact):
        money("total", "subtotal", "outstanding")
        day("issue_date", True)
        day("due_date", False)
        for n in ("number", "reference", "deal_crm_id", "partner_erp_id"):
            _check_text(n, getattr(fact, n))
        for p in fact.payments:
            if not isinstance(p.amount, int) or not isinstance(p.fee, int) or (p.day is not None
                                                                                and not isinstance(p.day, date)):
                raise ValueError(f"payment {p.id} is not integer yen on a date")
        for t in fact.rate_totals:
            if not isinstance(t.subtotal, int) or not isinstance(t.tax, int):
                raise ValueError(f"rate total {t.tax_category} is not integer yen")
    elif isinstance(fact, CostFact):
        money("amount")
        day("day", True)
        if not str(fact.partner_erp_id or "").strip():
            raise ValueError("partner is missing")
    return fact


def read_facts(entity: str, raws: Iterable[Any], build: Any, key: Any = None) -> FactPage:
    """Build one fact per raw record (``build(raw)`` → fact, or None for a record the read leaves out by rule)
    and check it (:func:`check_fact`); a record whose build or check fails is an :class:`UnreadableRecord`
    instead. ``key(raw)``: the record's id (default ``raw["id"]``)."""
    page = FactPage()
    for raw in raws:
        try:
            fact = build(raw)
            if fact is not None:
                page.append(check_fact(fact))
        except Exception as exc:  # noqa: BLE001 - one record never fails the read
            try:
                k = key(raw) if key else (raw.get("id") if isinstance(raw, Mapping) else None)
            except Exception:  # noqa: BLE001
                k = None
            page.unreadable.append(UnreadableRecord(entity, str(k) if k not in (None, "") else "?",
                                                    f"{type(exc).__name__}: {str(exc)[:300]}"))
    return page


_DEAL_REF = re.compile(r"^renkei:deal:([^:\s]+)")


_ORDER_REF = re.compile(r"^renkei:deal:[^:\s]+$")


def is_order_invoice(reference: str | None) -> bool:
    """Whether an invoice is the deal's one order invoice (``renkei:deal:<id>``, or no Renkei reference), not a
    subscription period or proration invoice (``renkei:deal:<id>:period:…`` / ``:proration:…``), whose subtotal
    is a part of the deal by design."""
    return not reference or not reference.startswith("renkei:deal:") or bool(_ORDER_REF.match(reference))


ADDRESS_TEXT_PATHS = ("address.prefecture", "address.city", "address.street", "address.building")


def address_text(fields: Mapping[str, Any]) -> str:
    """The address as one string (prefecture + city + street + building, white space removed), so that one address
    split differently by two systems (freee keeps the city inside ``street_name1``) compares equal."""
    return re.sub(r"\s+", "", "".join(str(fields.get(p) or "") for p in ADDRESS_TEXT_PATHS))


def deal_id_from_reference(reference: str | None) -> str | None:
    """The CRM deal id of an invoice reference ``renkei:deal:<id>[:period:…|:proration:…]`` (else None)."""
    m = _DEAL_REF.match(reference or "")
    return m.group(1) if m else None


def customer_key(crm_id: str | None, erp_id: str | None) -> str:
    """The customer's key in reports: ``crm:<company id>`` when known, else ``erp:<partner id>``."""
    return f"crm:{crm_id}" if crm_id else f"erp:{erp_id}"


# --------------------------------------------------------------------------------------------------
# figures (outputs)


@dataclass(frozen=True)
class MonthFigures:
    month: str  # 'YYYY-MM'
    pipeline_weighted: int = 0
    pipeline_unweighted: int = 0
    invoiced: int = 0
    collected: int = 0


@dataclass(frozen=True)
class PipelineStage:
    stage: str  # "<pipeline>/<stage label>"
    close_month: str  # 'YYYY-MM', or "" without a close date
    count: int
    weighted: int
    unweighted: int


@dataclass(frozen=True)
class AgingBucket:
    label: str  # one of AGING_LABELS
    count: int
    amount: int


@dataclass(frozen=True)
class CustomerProfit:
    customer_key: str
    name_masked: str
    sales: int
    cost: int
    gross_margin: int
    margin_rate: Decimal
    collected_to_date: int
    ltv_projection: int
    open_receivable: int


@dataclass(frozen=True)
class CashForecastMonth:
    month: str
    open_invoices_due: int
    weighted_pipeline_expected: int

    @property
    def total(self) -> int:
        return self.open_invoices_due + self.weighted_pipeline_expected


@dataclass(frozen=True)
class DriftCount:
    kind: str
    count: int


@dataclass(frozen=True)
class DriftItem:
    kind: str
    crm_id: str | None
    erp_id: str | None
    detail: str  # field names, amounts, statuses — never a personal value


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    as_of: date  # Asia/Tokyo
    months: tuple[MonthFigures, ...] = ()
    stages: tuple[PipelineStage, ...] = ()
    aging: tuple[AgingBucket, ...] = ()
    customers: tuple[CustomerProfit, ...] = ()
    cash_forecast: tuple[CashForecastMonth, ...] = ()
    drift_counts: tuple[DriftCount, ...] = ()
    drift_items: tuple[DriftItem, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return snapshot_to_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Snapshot":
        return snapshot_from_json(data)

    def totals(self) -> dict[str, int]:
        """The overview headline: open weighted / unweighted pipeline, invoiced, collected, receivable."""
        return dict(
            pipeline_weighted=sum(m.pipeline_weighted for m in self.months),
            pipeline_unweighted=sum(m.pipeline_unweighted for m in self.months),
            invoiced=sum(m.invoiced for m in self.months),
            collected=sum(m.collected for m in self.months),
            open_receivable=sum(b.amount for b in self.aging),
        )


# --------------------------------------------------------------------------------------------------
# rules


def month_key(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _month_index(m: str) -> int:
    return int(m[:4]) * 12 + int(m[5:7]) - 1


def _month_from_index(i: int) -> str:
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


def weighted_amount(amount: int | None, probability: Decimal) -> int:
    """``amount × probability`` rounded half up (四捨五入) to whole yen: ¥1,000,001 × 0.5 → ¥500,001."""
    if not amount:
        return 0
    if not isinstance(probability, Decimal):
        raise TypeError("probability must be a Decimal")
    return int((Decimal(amount) * probability).quantize(Decimal(1), rounding=WEIGHT_ROUNDING))


def aging_bucket(as_of: date, due: date | None) -> str:
    """Bucket of an open invoice by days overdue (``as_of − due``): 0 → current, 1 → 1-30, 91 → 90+."""
    if due is None:
        return "current"
    days = (as_of - due).days
    if days <= 0:
        return "current"
    if days <= 30:
        return "1-30"
    if days <= 60:
        return "31-60"
    if days <= 90:
        return "61-90"
    return "90+"


def margin_rate(sales: int, margin: int) -> Decimal:
    """margin ÷ sales, 4 places half up (0 without sales): 1,000,000 / 333,333 → 0.3333."""
    if sales == 0:
        return Decimal(0)
    return (Decimal(margin) / Decimal(sales)).quantize(MARGIN_RATE_PLACES, rounding=ROUND_HALF_UP)


def ltv_projection(collected: int, first_month: str | None, as_of: date) -> int:
    """collected + 12 × floor(collected ÷ months active) (months from ``first_month`` to ``as_of``,
    both counted, at least 1): ¥300,000 over 3 months → 300,000 + 12 × 100,000 = ¥1,500,000."""
    if not collected or not first_month:
        return collected
    months = max(1, _month_index(month_key(as_of)) - _month_index(first_month) + 1)
    return collected + LTV_HORIZON_MONTHS * (collected // months)


def mask_name(name: str, sole_trader: bool) -> str:
    """A 法人's name is shown as registered; a 個人事業者's (personal data) masked to its first character."""
    from renkei.domain.normalise import mask_personal

    return mask_personal(name) if sole_trader else name


def expected_payment_month(close: date, terms: PaymentTerms | None) -> str:
    """Month the cash of a deal closing on ``close`` is due under ``terms`` (default 月末締め翌月末払い)."""
    from renkei.domain.dates import due_date

    try:
        return month_key(due_date(close, terms))
    except ValueError:  # terms no invoice can honour: default terms
        return month_key(due_date(close, None))


def _open_deal(d: DealFact) -> bool:
    return not d.closed and not d.won


def month_figures(deals: Iterable[DealFact], invoices: Iterable[InvoiceFact]) -> tuple[MonthFigures, ...]:
    """Per month: open pipeline (weighted / unweighted) by close month, invoiced by issue month,
    collected by payment month; every month with a figure, ascending."""
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for d in deals:
        if _open_deal(d) and d.close_date is not None:
            row = acc[month_key(d.close_date)]
            row[0] += weighted_amount(d.amount, d.probability)
            row[1] += d.amount or 0
    for inv in invoices:
        if inv.cancelled:
            continue
        acc[month_key(inv.issue_date)][2] += inv.total
        for p in inv.payments:
            if p.day is not None:
                acc[month_key(p.day)][3] += p.amount
    return tuple(MonthFigures(m, *acc[m]) for m in sorted(acc))


def pipeline_stages(deals: Iterable[DealFact]) -> tuple[PipelineStage, ...]:
    """Every deal (open, won, lost) by stage and close month."""
    acc: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for d in deals:
        row = acc[(f"{d.pipeline}/{d.stage_label or d.stage}", month_key(d.close_date) if d.close_date else "")]
        row[0] += 1
        row[1] += weighted_amount(d.amount, d.probability)
        row[2] += d.amount or 0
    return tuple(PipelineStage(s, m, *acc[(s, m)]) for s, m in sorted(acc))


def aging(invoices: Iterable[InvoiceFact], as_of: date) -> tuple[AgingBucket, ...]:
    counts = {k: [0, 0] for k in AGING_LABELS}
    for inv in invoices:
        if inv.cancelled or inv.outstanding <= 0:
            continue
        row = counts[aging_bucket(as_of, inv.due_date)]
        row[0] += 1
        row[1] += inv.outstanding
    return tuple(AgingBucket(k, *counts[k]) for k in AGING_LABELS)


def customer_profits(customers: Iterable[CustomerFact], invoices: Iterable[InvoiceFact],
                     costs: Iterable[CostFact], as_of: date) -> tuple[CustomerProfit, ...]:
    """One row per customer with an invoice or a cost (sorted by gross margin, largest first, then key).
    Invoices and costs of a partner no customer fact names get a row of their own (``erp:<id>``)."""
    by_erp = {c.erp_id: c for c in customers if c.erp_id}
    acc: dict[str, dict[str, Any]] = {}

    def row(partner: str | None) -> dict[str, Any]:
        c = by_erp.get(partner) if partner else None
        key = c.key if c else customer_key(None, partner or "-")
        if key not in acc:
            acc[key] = dict(name=mask_name(c.name, c.sole_trader) if c else "", sales=0, cost=0, collected=0,
                            open=0, first=None)
        return acc[key]

    for inv in invoices:
        if inv.cancelled:
            continue
        r = row(inv.partner_erp_id)
        r["sales"] += inv.subtotal
        r["collected"] += inv.collected
        r["open"] += max(inv.outstanding, 0)
        m = month_key(inv.issue_date)
        r["first"] = m if r["first"] is None or m < r["first"] else r["first"]
    for c in costs:
        row(c.partner_erp_id)["cost"] += c.amount
    out = [CustomerProfit(customer_key=k, name_masked=r["name"], sales=r["sales"], cost=r["cost"],
                          gross_margin=r["sales"] - r["cost"],
                          margin_rate=margin_rate(r["sales"], r["sales"] - r["cost"]),
                          collected_to_date=r["collected"],
                          ltv_projection=ltv_projection(r["collected"], r["first"], as_of),
                          open_receivable=r["open"])
           for k, r in acc.items()]
    out.sort(key=lambda p: (-p.gross_margin, p.customer_key))
    return tuple(out)


def cash_forecast(deals: Iterable[DealFact], invoices: Iterable[InvoiceFact], customers: Iterable[CustomerFact],
                  as_of: date, months: int = FORECAST_MONTHS) -> tuple[CashForecastMonth, ...]:
    start = _month_index(month_key(as_of))
    due = [0] * months
    pipe = [0] * months
    terms = {c.crm_id: c.payment_terms for c in customers if c.crm_id}

    def slot(m: str) -> int | None:
        i = max(_month_index(m), start) - start
        return i if i < months else None

    for inv in invoices:
        if inv.cancelled or inv.outstanding <= 0:
            continue
        i = slot(month_key(inv.due_date)) if inv.due_date else 0
        if i is not None:
            due[i] += inv.outstanding
    for d in deals:
        if not _open_deal(d) or d.close_date is None:
            continue
        i = slot(expected_payment_month(d.close_date, terms.get(d.company_crm_id)))
        if i is not None:
            pipe[i] += weighted_amount(d.amount, d.probability)
    return tuple(CashForecastMonth(_month_from_index(start + i), due[i], pipe[i]) for i in range(months))


def drift_items(deals: Iterable[DealFact], invoices: Iterable[InvoiceFact],
                customers: Iterable[CustomerFact]) -> tuple[DriftItem, ...]:
    """Records that differ between the systems:

    * ``company_field``: one item per linked customer and differing field (``detail`` = field and owner);
    * ``deal_amount``: a deal whose order invoice's 税抜 subtotal differs from the deal amount (subscription
      period and proration invoices are parts of the deal by design: :func:`is_order_invoice`);
    * ``payment_status``: an invoice fully paid in the ERP (outstanding 0, a payment recorded) whose deal
      is not ``paid`` in the CRM, or a deal shown ``paid`` whose invoice is still open;
    * ``invoice_no_deal``: an invoice (not cancelled) whose deal id is missing or not a CRM deal;
    * ``won_no_invoice``: a won deal no invoice points to.
    """
    deals = list(deals)
    by_id = {d.crm_id: d for d in deals}
    out: list[DriftItem] = []
    for c in customers:
        if c.crm_id and c.erp_id:
            for path, owner in c.field_diffs:
                out.append(DriftItem(DRIFT_COMPANY_FIELD, c.crm_id, c.erp_id, f"{path} (owner: {owner})"))
    invoiced: set[str] = set()
    for inv in invoices:
        if inv.cancelled:
            continue
        d = by_id.get(inv.deal_crm_id) if inv.deal_crm_id else None
        if d is None:
            out.append(DriftItem(DRIFT_INVOICE_NO_DEAL, inv.deal_crm_id, inv.erp_id,
                                 f"invoice {inv.number or inv.erp_id}"))
            continue
        invoiced.add(d.crm_id)
        if d.amount is not None and d.amount != inv.subtotal and is_order_invoice(inv.reference):
            out.append(DriftItem(DRIFT_DEAL_AMOUNT, d.crm_id, inv.erp_id,
                                 f"deal {d.amount} ≠ invoice subtotal {inv.subtotal}"))
        paid_erp = inv.outstanding <= 0 and bool(inv.payments)
        paid_crm = (d.payment_status or "") == CRM_PAID
        if paid_erp != paid_crm:
            out.append(DriftItem(DRIFT_PAYMENT_STATUS, d.crm_id, inv.erp_id,
                                 f"ERP {'paid' if paid_erp else 'open'} / CRM {d.payment_status or '-'}"))
    for d in deals:
        if d.won and d.crm_id not in invoiced:
            out.append(DriftItem(DRIFT_WON_NO_INVOICE, d.crm_id, None, f"deal amount {d.amount or 0}"))
    return tuple(out)


def drift_counts(items: Iterable[DriftItem]) -> tuple[DriftCount, ...]:
    n: dict[str, int] = {k: 0 for k in DRIFT_KINDS}
    for it in items:
        n[it.kind] = n.get(it.kind, 0) + 1
    return tuple(DriftCount(k, v) for k, v in n.items())


def build_snapshot(*, deals: Sequence[DealFact], invoices: Sequence[InvoiceFact], costs: Sequence[CostFact],
                   customers: Sequence[CustomerFact], as_of: date, taken_at: datetime) -> Snapshot:
    """The whole snapshot from the facts (see the module rules)."""
    items = drift_items(deals, invoices, customers)
    return Snapshot(
        taken_at=taken_at, as_of=as_of,
        months=month_figures(deals, invoices),
        stages=pipeline_stages(deals),
        aging=aging(invoices, as_of),
        customers=customer_profits(customers, invoices, costs, as_of),
        cash_forecast=cash_forecast(deals, invoices, customers, as_of),
        drift_counts=drift_counts(items),
        drift_items=items,
    )


# --------------------------------------------------------------------------------------------------
# JSON (the state store keeps a snapshot as one JSON document; Decimal as a string)


def snapshot_to_json(s: Snapshot) -> dict[str, Any]:
    def rows(items: Iterable[Any]) -> list[dict[str, Any]]:
        out = []
        for it in items:
            d = dict(it.__dict__)
            for k, v in d.items():
                if isinstance(v, Decimal):
                    d[k] = str(v)
            out.append(d)
        return out

    return dict(taken_at=s.taken_at.isoformat(), as_of=s.as_of.isoformat(), months=rows(s.months),
                stages=rows(s.stages), aging=rows(s.aging), customers=rows(s.customers),
                cash_forecast=rows(s.cash_forecast), drift_counts=rows(s.drift_counts),
                drift_items=rows(s.drift_items))


def snapshot_from_json(data: Mapping[str, Any]) -> Snapshot:
    return Snapshot(
        taken_at=datetime.fromisoformat(data["taken_at"]),
        as_of=date.fromisoformat(data["as_of"]),
        months=tuple(MonthFigures(**r) for r in data.get("months", ())),
        stages=tuple(PipelineStage(**r) for r in data.get("stages", ())),
        aging=tuple(AgingBucket(**r) for r in data.get("aging", ())),
        customers=tuple(CustomerProfit(**{**r, "margin_rate": Decimal(r["margin_rate"])})
                        for r in data.get("customers", ())),
        cash_forecast=tuple(CashForecastMonth(**r) for r in data.get("cash_forecast", ())),
        drift_counts=tuple(DriftCount(**r) for r in data.get("drift_counts", ())),
        drift_items=tuple(DriftItem(**r) for r in data.get("drift_items", ())),
    )


__all__ = [
    "REPORT_RECORD_UNREADABLE", "UnreadableRecord", "FactPage", "whole_yen", "check_fact", "read_facts",
    "AGING_LABELS", "AGING_LABELS_JA", "CRM_PAID", "DRIFT_COMPANY_FIELD", "DRIFT_DEAL_AMOUNT", "DRIFT_INVOICE_NO_DEAL",
    "DRIFT_KINDS", "DRIFT_PAYMENT_STATUS", "DRIFT_WON_NO_INVOICE", "DRIFT_LABELS_JA", "FORECAST_MONTHS",
    "LTV_HORIZON_MONTHS", "MARGIN_RATE_PLACES", "WEIGHT_ROUNDING", "AgingBucket", "CashForecastMonth", "CostFact",
    "CustomerFact", "CustomerProfit", "DealFact", "DriftCount", "DriftItem", "InvoiceFact", "MonthFigures",
    "PaymentFact", "PipelineStage", "RateTotalFact", "Snapshot", "aging", "aging_bucket", "build_snapshot",
    "cash_forecast", "customer_key", "customer_profits", "deal_id_from_reference", "drift_counts", "drift_items",
    "expected_payment_month", "ltv_projection", "margin_rate", "mask_name", "month_figures", "month_key",
    "pipeline_stages", "snapshot_from_json", "snapshot_to_json", "weighted_amount",
]
