"""Build a qualified invoice (適格請求書) from a won deal, and render it for the approval form.

Rounding rules used
-------------------
* **Line amount** (``InvoiceParams.line_rounding``, default ``HALF_UP`` 四捨五入): each line item is
  rounded **once** on its exact net value ``quantity × (unit_price − per-unit discount) ×
  (100 − discount %) / 100`` (Decimal quantities allowed). When there is a discount the invoice shows
  the gross line ``round(quantity × unit_price)`` (same rule) and a separate 値引 line carrying the
  difference, so every item's lines add up to the singly-rounded net amount and ``quantity ×
  unit_price`` stays readable. With ``discount_as_line=False`` the net amount is put on one line.
* **Tax** (``InvoiceParams.tax_rounding``, default ``FLOOR`` 切り捨て): once per tax rate per invoice,
  by :func:`domain.tax.rate_totals` (jp-invoicing-rules §4) — never per line.

Required items of a 適格請求書 (消費税法 57条の4): issuer name and registration number
(``InvoiceParams``), transaction date (``Invoice.transaction_date``), descriptions with reduced-rate
items marked (``※軽減税率対象`` appended), per-rate totals and per-rate tax (``Invoice.rate_totals``),
recipient name (``Invoice.recipient_name``).

The deterministic reference ``renkei:deal:<deal id>`` is the idempotency key looked up in the ERP before
creating; subscription invoices add their service period (:func:`subscription_invoice_reference`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from renkei.domain.dates import BusinessDayShift, due_date as compute_due_date
from renkei.domain.identifiers import check_registration_number
from renkei.domain.model import (
    Company,
    Deal,
    Invoice,
    InvoiceLine,
    LineItem,
    PaymentTerms,
    TaxCategory,
    TaxEntryMethod,
)
from renkei.domain.money import Rounding, format_yen, round_yen, to_decimal
from renkei.domain.tax import invoice_total, rate_totals

__all__ = [
    "REDUCED_RATE_MARK",
    "InvoiceParams",
    "LineAmounts",
    "line_amounts",
    "resolve_tax_category",
    "invoice_lines_for",
    "invoice_reference",
    "subscription_invoice_reference",
    "proration_invoice_reference",
    "build_invoice",
    "amount_discrepancy",
    "lines_subtotal",
    "line_problem",
    "render_invoice_markdown",
    "NumberFormat",
]

REDUCED_RATE_MARK = "※軽減税率対象"
_NAME_MAX = 255


@dataclass(frozen=True)
class InvoiceParams:
    """Everything :func:`build_invoice` needs besides the deal, its lines and the customer.

    ``payment_terms`` is the fallback when the company has none (default 月末締め翌月末払い).
    ``transaction_date`` defaults to the deal's close date, then the issue date.
    ``product_tax_categories`` maps 品目コード → category for lines without their own category.
    """

    issuer_name: str
    issuer_registration_number: str | None
    issue_date: date
    default_tax_category: TaxCategory = TaxCategory.STANDARD_10
    line_rounding: Rounding = Rounding.HALF_UP
    tax_rounding: Rounding = Rounding.FLOOR
    tax_entry_method: TaxEntryMethod = TaxEntryMethod.EXCLUSIVE
    payment_terms: PaymentTerms | None = None
    due_date_shift: BusinessDayShift = BusinessDayShift.NONE
    transaction_date: date | None = None
    product_tax_categories: Mapping[str, TaxCategory] = field(default_factory=dict)
    discount_as_line: bool = True
    reference: str | None = None  # override, e.g. subscription_invoice_reference(...)


# ---------------------------------------------------------------------------------------------------
# lines


@dataclass(frozen=True)
class LineAmounts:
    """One line item's amounts: ``gross = round(q × p)``, ``net = round(q × (p − d) × (1 − pct))``."""

    exact_gross: Decimal
    exact_net: Decimal
    gross: int
    net: int

    @property
    def discount(self) -> int:
        """Yen taken off by the discounts (≥ 0); ``gross − net``."""
        return self.gross - self.net

    @property
    def discount_percent(self) -> Decimal:
        """Effective discount as a percentage of the exact gross (0 when gross is 0)."""
        if self.exact_gross == 0:
            return Decimal(0)
        return (self.exact_gross - self.exact_net) * 100 / self.exact_gross


def line_amounts(item: LineItem, rounding: Rounding = Rounding.HALF_UP) -> LineAmounts:
    """Amounts of one line item with one named rounding each.

    1.5 × ¥333 = 499.5 → ¥500 (HALF_UP) / ¥499 (FLOOR).
    3 × ¥10,000 with 15% off: exact 25,500 → net ¥25,500, gross ¥30,000, 値引 ¥4,500.
    """
    q = to_decimal(item.quantity)
    p = Decimal(item.unit_price)
    d = Decimal(item.discount)
    if d > p:
        raise ValueError(f"line {item.name!r}: per-unit discount ¥{item.discount:,} exceeds the unit price")
    pct = to_decimal(item.discount_percent)
    exact_gross = q * p
    exact_net = q * (p - d) * (Decimal(100) - pct) / Decimal(100)
    return LineAmounts(
        exact_gross=exact_gross,
        exact_net=exact_net,
        gross=round_yen(exact_gross, rounding),
        net=round_yen(exact_net, rounding),
    )


def line_problem(item: LineItem) -> str | None:
    """Why a line item cannot be priced (its net would be negative), else ``None`` — the total check
    the exception rules run before any amount is computed, so a hostile line becomes a reason code
    instead of an exception. Worked examples: ¥1,000 with ¥1,500 off per unit → "per-unit discount
    ¥1,500 exceeds the unit price ¥1,000"; ¥1,000 with ¥1,000 off → None (a free line is priceable).
    """
    if item.discount > item.unit_price:
        return f"per-unit discount ¥{item.discount:,} exceeds the unit price ¥{item.unit_price:,}"
    if to_decimal(item.discount_percent) > 100:
        return f"discount {item.discount_percent}% is above 100%"
    return None


def resolve_tax_category(
    item: LineItem,
    default: TaxCategory = TaxCategory.STANDARD_10,
    product_tax_categories: Mapping[str, TaxCategory] | None = None,
) -> TaxCategory:
    """The line's own category, else its product's, else the configured default."""
    if item.tax_category is not None:
        return item.tax_category
    if item.product_code and product_tax_categories and item.product_code in product_tax_categories:
        return TaxCategory(product_tax_categories[item.product_code])
    return TaxCategory(default)


def _fit(text: str, suffix: str = "") -> str:
    """``text + suffix`` within the 255-character name limit (the suffix is never cut)."""
    room = _NAME_MAX - len(suffix)
    if len(text) > room:
        text = text[: room - 1] + "…"
    return text + suffix


def _describe(name: str, category: TaxCategory) -> str:
    return _fit(name, f" {REDUCED_RATE_MARK}" if category.reduced else "")


def _format_percent(pct: Decimal) -> str:
    return f"{pct.normalize():f}"


def invoice_lines_for(
    item: LineItem,
    *,
    rounding: Rounding = Rounding.HALF_UP,
    category: TaxCategory = TaxCategory.STANDARD_10,
    discount_as_line: bool = True,
) -> list[InvoiceLine]:
    """The invoice line(s) for one line item: the item, plus a 値引 line when discounted."""
    amounts = line_amounts(item, rounding)
    category = TaxCategory(category)
    if amounts.discount == 0 or not discount_as_line:
        # one line: the per-unit yen discount folds into the unit price, a percent discount is noted
        name = item.name
        if item.discount_percent:
            name = f"{item.name}（{_format_percent(to_decimal(item.discount_percent))}%値引後）"
        unit_price = item.unit_price - item.discount
        return [
            InvoiceLine(
                description=_describe(name, category),
                quantity=item.quantity,
                unit_price=unit_price,
                amount=amounts.net,
                tax_category=category,
                item_code=item.product_code,
            )
        ]
    parts = []
    if item.discount:
        parts.append(f"@{format_yen(item.discount)}")
    if item.discount_percent:
        parts.append(f"{_format_percent(to_decimal(item.discount_percent))}%")
    discount_name = f"値引（{item.name}、{'・'.join(parts)}）"
    return [
        InvoiceLine(
            description=_describe(item.name, category),
            quantity=item.quantity,
            unit_price=item.unit_price,
            amount=amounts.gross,
            tax_category=category,
            item_code=item.product_code,
        ),
        InvoiceLine(
            description=_describe(discount_name, category),
            quantity=Decimal(1),
            unit_price=-amounts.discount,
            amount=-amounts.discount,
            tax_category=category,
            item_code=item.product_code,
        ),
    ]


# ---------------------------------------------------------------------------------------------------
# references

_ID_RE = re.compile(r"[A-Za-z0-9_\-]+")


def _check_id(deal_id: str) -> str:
    deal_id = str(deal_id).strip()
    if not _ID_RE.fullmatch(deal_id):
        raise ValueError(f"deal id must be letters, digits, '-' or '_': {deal_id[:40]!r}")
    return deal_id


def invoice_reference(deal_id: str) -> str:
    """``renkei:deal:<deal id>`` — the idempotency reference of a deal's (one-off) invoice."""
    return f"renkei:deal:{_check_id(deal_id)}"


def subscription_invoice_reference(deal_id: str, period_start: date, period_end: date) -> str:
    """``renkei:deal:<id>:period:<start>..<end>`` (inclusive ISO dates) — one invoice per service period."""
    if period_end < period_start:
        raise ValueError("period ends before it starts")
    return f"{invoice_reference(deal_id)}:period:{period_start.isoformat()}..{period_end.isoformat()}"


def proration_invoice_reference(deal_id: str, version: int, effective: date) -> str:
    """``renkei:deal:<id>:proration:v<version>:<effective>`` — an immediately invoiced amendment."""
    if version < 1:
        raise ValueError("version starts at 1")
    return f"{invoice_reference(deal_id)}:proration:v{version}:{effective.isoformat()}"


# ---------------------------------------------------------------------------------------------------
# build


def build_invoice(
    deal: Deal,
    lines: Sequence[LineItem] | None,
    company: Company,
    params: InvoiceParams,
    *,
    extra_lines: Sequence[InvoiceLine] = (),
) -> Invoice:
    """The canonical :class:`Invoice` for ``deal`` (lines default to ``deal.line_items``).

    ``extra_lines`` (e.g. proration lines, already in yen with their category) are appended as they are.
    Tax is computed once per rate over all lines; ``total`` is 税込. Raises ``ValueError`` for an
    invalid issuer registration number, a non-JPY deal or bad payment terms — the exception rules
    (:mod:`domain.exceptions`) report the soft problems instead.
    """
    if deal.currency != "JPY":
        raise ValueError(f"deal {deal.crm_id} is in {deal.currency}; invoices are issued in JPY only")
    issuer_reg = None
    if params.issuer_registration_number:
        issuer_reg = check_registration_number(params.issuer_registration_number).value
    items = list(deal.line_items if lines is None else lines)
    inv_lines: list[InvoiceLine] = []
    for item in items:
        cat = resolve_tax_category(item, params.default_tax_category, params.product_tax_categories)
        inv_lines.extend(
            invoice_lines_for(item, rounding=params.line_rounding, category=cat, discount_as_line=params.discount_as_line)
        )
    inv_lines.extend(extra_lines)
    totals = rate_totals(inv_lines, params.tax_rounding, params.tax_entry_method)
    transaction = params.transaction_date or deal.close_date or params.issue_date
    terms = company.payment_terms or params.payment_terms or PaymentTerms()
    due = compute_due_date(transaction, terms, shift=params.due_date_shift)
    if due < params.issue_date:
        # billing late: the customer's terms already passed — fall back to the terms applied to the issue date
        due = compute_due_date(params.issue_date, terms, shift=params.due_date_shift)
    return Invoice(
        reference=params.reference or invoice_reference(deal.crm_id),
        deal_crm_id=deal.crm_id,
        partner_erp_id=company.erp_id,
        recipient_name=company.name,
        issuer_registration_number=issuer_reg,
        issue_date=params.issue_date,
        transaction_date=transaction,
        due_date=due,
        tax_entry_method=params.tax_entry_method,
        lines=inv_lines,
        rate_totals=totals,
        total=invoice_total(totals, params.tax_entry_method),
    )


def lines_subtotal(lines: Sequence[LineItem], rounding: Rounding = Rounding.HALF_UP) -> int:
    """Σ of the singly-rounded net line amounts (what the deal amount should equal)."""
    return sum(line_amounts(item, rounding).net for item in lines)


def amount_discrepancy(deal: Deal, invoice_or_lines: Invoice | Sequence[LineItem],
                       rounding: Rounding = Rounding.HALF_UP) -> int | None:
    """``deal.amount − Σ line amounts`` in yen (0 = consistent); ``None`` when the deal has no amount.

    With an :class:`Invoice` the sum is Σ ``InvoiceLine.amount`` (as entered: 税抜 for 外税); with line
    items it is :func:`lines_subtotal`. Deal ¥100,000 vs lines ¥99,000 → +1,000.
    """
    if deal.amount is None:
        return None
    if isinstance(invoice_or_lines, Invoice):
        subtotal = sum(line.amount for line in invoice_or_lines.lines)
    else:
        subtotal = lines_subtotal(invoice_or_lines, rounding)
    return deal.amount - subtotal


# ---------------------------------------------------------------------------------------------------
# render

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def _md(text: object) -> str:
    """Escape user text for a Markdown table cell (no links, HTML or column breaks from data)."""
    s = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", s)


def _jdate(d: date | None) -> str:
    return f"{d.year}年{d.month}月{d.day}日" if d else "—"


def _qty(q: Decimal) -> str:
    return f"{to_decimal(q).normalize():f}"


def render_invoice_markdown(
    invoice: Invoice,
    *,
    deal: Deal | None = None,
    company: Company | None = None,
    issuer_name: str | None = None,
    discrepancy: int | None = None,
    tax_rounding: Rounding | None = None,
) -> str:
    """Japanese Markdown summary (商談, 請求先, 明細, 税率ごとの合計) for the finance approval form.

    All user text is escaped; amounts are ``¥1,234`` (:func:`domain.money.format_yen`).
    """
    out: list[str] = [f"### 請求書（案） {_md(invoice.reference)}", ""]
    out += ["| 項目 | 内容 |", "|---|---|"]
    if deal is not None:
        out.append(f"| 商談 | {_md(deal.name)}（ID {_md(deal.crm_id)}） |")
        if deal.amount is not None:
            out.append(f"| 商談金額 | {format_yen(deal.amount)} |")
    recipient = company.name if company is not None else invoice.recipient_name
    out.append(f"| 請求先 | {_md(recipient)} 御中 |")
    if company is not None and company.registration_number:
        out.append(f"| 請求先 登録番号 | {_md(company.registration_number)} |")
    if issuer_name:
        out.append(f"| 発行者 | {_md(issuer_name)} |")
    out.append(f"| 発行者 登録番号 | {_md(invoice.issuer_registration_number or '（未設定）')} |")
    out.append(f"| 請求日 | {_jdate(invoice.issue_date)} |")
    out.append(f"| 取引日 | {_jdate(invoice.transaction_date)} |")
    out.append(f"| 支払期日 | {_jdate(invoice.due_date)} |")
    out.append(f"| 税計算 | {'外税' if invoice.tax_entry_method is TaxEntryMethod.EXCLUSIVE else '内税'}"
               + (f"・端数{tax_rounding.label_ja}（税率ごとに1回）" if tax_rounding else "（税率ごとに1回端数処理）")
               + " |")
    if discrepancy:
        out.append(f"| 商談金額との差額 | **{format_yen(discrepancy)}** |")
    out += ["", "| 品名 | 数量 | 単価 | 金額 | 税率 |", "|---|---:|---:|---:|---|"]
    for line in invoice.lines:
        out.append(
            f"| {_md(line.description)} | {_qty(line.quantity)} | {format_yen(line.unit_price)} "
            f"| {format_yen(line.amount)} | {line.tax_category.label_ja} |"
        )
    if not invoice.lines:
        out.append("| （明細なし） | | | | |")
    basis = "税抜" if invoice.tax_entry_method is TaxEntryMethod.EXCLUSIVE else "税込"
    out += ["", f"| 税率 | 対象金額（{basis}） | 消費税額 |", "|---|---:|---:|"]
    for t in invoice.rate_totals:
        out.append(f"| {t.tax_category.label_ja} | {format_yen(t.subtotal)} | {format_yen(t.tax)} |")
    out += ["", f"**ご請求金額（税込） {format_yen(invoice.total)}**"]
    if any(t.tax_category.reduced for t in invoice.rate_totals):
        out += ["", f"{REDUCED_RATE_MARK[0]}は軽減税率（8%）対象です。"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------------
# Invoice numbers of a company that numbers by hand (freee請求書 手動採番)

_TOKEN = re.compile(r"\{([^{}]*)\}")
_SEQ = re.compile(r"seq(?::0(\d{1,2})d)?")
NUMBER_RESETS = ("never", "yearly", "monthly")


@dataclass(frozen=True)
class NumberFormat:
    """An invoice-number pattern and when its sequence starts again at 1.

    Placeholders: ``{yyyy}`` ``{yy}`` ``{mm}`` (of the invoice's billing date, Asia/Tokyo business
    date) and exactly one ``{seq}`` / ``{seq:05d}`` (the sequence number, zero-padded to 5). ``reset``:
    ``never`` (one sequence for ever), ``yearly`` (per calendar year of the billing date; the pattern
    must show the year) or ``monthly`` (per month; the pattern must show year and month) — a pattern
    that could print the same number twice is refused.

    >>> f = NumberFormat("INV-{yyyy}{mm}-{seq:05d}", "monthly")
    >>> f.period(date(2026, 12, 5)), f.render(date(2026, 12, 5), 42)
    ('202612', 'INV-202612-00042')
    """

    pattern: str
    reset: str = "monthly"

    def __post_init__(self) -> None:
        if self.reset not in NUMBER_RESETS:
            raise ValueError(f"reset is one of {', '.join(NUMBER_RESETS)}, not {self.reset!r}")
        tokens = _TOKEN.findall(self.pattern)
        seqs = [t for t in tokens if _SEQ.fullmatch(t)]
        unknown = [t for t in tokens if t not in ("yyyy", "yy", "mm") and not _SEQ.fullmatch(t)]
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}} in invoice number format {self.pattern!r} "
                             "(known: {yyyy} {yy} {mm} {seq} {seq:05d})")
        if len(seqs) != 1:
            raise ValueError(f"invoice number format {self.pattern!r} needs exactly one {{seq}}")
        if _TOKEN.sub("", self.pattern).count("{") or _TOKEN.sub("", self.pattern).count("}"):
            raise ValueError(f"unbalanced braces in invoice number format {self.pattern!r}")
        has_year = "yyyy" in tokens or "yy" in tokens
        if self.reset in ("yearly", "monthly") and not has_year:
            raise ValueError(f"reset = {self.reset!r} needs {{yyyy}} or {{yy}} in the format (numbers would repeat)")
        if self.reset == "monthly" and "mm" not in tokens:
            raise ValueError("reset = 'monthly' needs {mm} in the format (numbers would repeat)")
        if len(self.render(date(2099, 12, 31), 10 ** 9 - 1)) > 255:
            raise ValueError("invoice numbers are at most 255 characters in freee")

    def period(self, day: date) -> str:
        """The sequence a number of billing date ``day`` is drawn from (``all`` / ``2026`` / ``202612``)."""
        if self.reset == "monthly":
            return f"{day.year:04d}{day.month:02d}"
        if self.reset == "yearly":
            return f"{day.year:04d}"
        return "all"

    def render(self, day: date, seq: int) -> str:
        if seq < 1:
            raise ValueError("sequence numbers start at 1")

        def sub(m: re.Match) -> str:
            t = m.group(1)
            if t == "yyyy":
                return f"{day.year:04d}"
            if t == "yy":
                return f"{day.year % 100:02d}"
            if t == "mm":
                return f"{day.month:02d}"
            width = _SEQ.fullmatch(t).group(1)  # type: ignore[union-attr]
            return f"{seq:0{int(width)}d}" if width else str(seq)

        return _TOKEN.sub(sub, self.pattern)
