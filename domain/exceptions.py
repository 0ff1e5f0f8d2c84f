"""Invoice exception rules: when a built invoice must go to finance for approval instead of out.

Each rule yields an :class:`ExceptionReason` with a SCREAMING_SNAKE :class:`ReasonCode` and a short
Japanese and English message. Rules are configured with :class:`ExceptionRules` (passed in — no config
loading here); any rule can be switched off through ``ExceptionRules.disabled``. ``evaluate`` is pure and
returns reasons in :class:`ReasonCode` order, so the same inputs always give the same review item.

Rounding rules used
-------------------
* Line amounts for ``DISCOUNT_OVER_LIMIT`` and ``AMOUNT_MISMATCH`` (when no invoice is given) use
  ``ExceptionRules.line_rounding`` (default ``HALF_UP``, the same rule as :mod:`domain.invoice`).
* Discount percentages are compared exactly (Decimal), never rounded. Amount thresholds compare
  integer yen.

Hostile input never raises
--------------------------
A line that cannot be priced (per-unit discount above the unit price, more than 100 % off) is reported
as ``NEGATIVE_LINE_AMOUNT`` (:func:`domain.invoice.line_problem`) and left out of every amount rule, so
``evaluate`` returns reasons for any deal the canonical model accepts.

Plausibility (``ExceptionRules.plausibility`` + ``ExceptionRules.today``)
------------------------------------------------------------------------
With :class:`domain.plausibility.PlausibilityRules` and today's Tokyo date passed in (never read here):

* close date 1900-01-01 or 2100-12-31 with today 2026-12-05 → ``DATE_OUT_OF_RANGE``
* invoice total ¥0 (or negative: the credit path has its own approval) → ``ZERO_OR_NEGATIVE_TOTAL``
* ``<b>特価</b>`` or ``[x](http://…)`` in the deal name, a line item name or the customer name →
  ``MARKUP_IN_TEXT``
* the customer's billing e-mail ``not-an-email@@`` → ``EMAIL_INVALID``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from renkei.domain.invoice import amount_discrepancy, line_amounts, line_problem
from renkei.domain.model import Company, Deal, EntityKind, Invoice, LineItem, TaxCategory
from renkei.domain.money import Rounding, format_yen
from renkei.domain.plausibility import PlausibilityRules, amount_problem, date_problem, email_problem, markup_problem
from renkei.domain.tax import exact_tax, invoice_total

__all__ = ["ReasonCode", "ExceptionReason", "ExceptionRules", "evaluate", "validate_invoice"]


class ReasonCode(str, Enum):
    """Why an invoice needs a human (order = evaluation and display order)."""

    NEGATIVE_LINE_AMOUNT = "NEGATIVE_LINE_AMOUNT"
    VALIDATION_FAILED = "VALIDATION_FAILED"
    NON_JPY_CURRENCY = "NON_JPY_CURRENCY"
    NO_LINE_ITEMS = "NO_LINE_ITEMS"
    DATE_OUT_OF_RANGE = "DATE_OUT_OF_RANGE"
    ZERO_OR_NEGATIVE_TOTAL = "ZERO_OR_NEGATIVE_TOTAL"
    MARKUP_IN_TEXT = "MARKUP_IN_TEXT"
    EMAIL_INVALID = "EMAIL_INVALID"
    MISSING_BILLING_INFO = "MISSING_BILLING_INFO"
    MISSING_REGISTRATION_NUMBER = "MISSING_REGISTRATION_NUMBER"
    CREDIT_HOLD = "CREDIT_HOLD"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    DISCOUNT_OVER_LIMIT = "DISCOUNT_OVER_LIMIT"
    AMOUNT_OVER_THRESHOLD = "AMOUNT_OVER_THRESHOLD"


@dataclass(frozen=True)
class ExceptionReason:
    code: ReasonCode
    message_ja: str
    message_en: str
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def message(self) -> str:
        """``"<日本語> / <English>"`` for review items and approval forms."""
        return f"{self.message_ja} / {self.message_en}"


@dataclass(frozen=True)
class ExceptionRules:
    """Thresholds and switches; ``None`` disables a threshold rule.

    * ``amount_threshold`` — invoice total (税込) strictly above this needs approval.
    * ``max_discount_percent`` — a line whose effective discount exceeds this percent needs approval.
    * ``amount_mismatch_tolerance`` — |deal amount − Σ line amounts| above this is a mismatch.
    * ``require_issuer_registration`` — the invoice must carry our 登録番号 (a 適格請求書 needs it).
    * ``require_customer_registration`` — the customer must have a 登録番号 (e.g. a contract requires
      it); ``customer_registration_corporations_only`` limits that to 法人.
    * ``required_billing_fields`` — Company fields that must be set (e.g. ``billing_email``,
      ``address``); ``require_partner_mapping`` — the company must be mapped to an ERP partner.
    * ``currencies`` — accepted deal currencies.
    * ``plausibility`` / ``today`` — the plausibility rules (date window, ¥0 / negative totals, markup);
      the date window applies only when ``today`` (Asia/Tokyo, from the caller) is given.
    """

    amount_threshold: int | None = 1_000_000
    max_discount_percent: Decimal | None = Decimal(20)
    amount_mismatch_tolerance: int = 0
    require_issuer_registration: bool = True
    require_customer_registration: bool = False
    customer_registration_corporations_only: bool = True
    required_billing_fields: tuple[str, ...] = ("billing_email",)
    require_partner_mapping: bool = False
    currencies: tuple[str, ...] = ("JPY",)
    line_rounding: Rounding = Rounding.HALF_UP
    disabled: frozenset[ReasonCode] = frozenset()
    plausibility: PlausibilityRules | None = None
    today: date | None = None


_FIELD_JA = {
    "billing_email": "請求書送付先メール",
    "billing_contact_name": "請求先担当者",
    "address": "住所",
    "payment_terms": "支払条件",
    "name_kana": "フリガナ",
    "erp_id": "freee取引先",
}


def validate_invoice(invoice: Invoice) -> list[str]:
    """Internal consistency of a built invoice; empty when consistent (messages in English).

    Checks: per-rate subtotals equal the sums of their lines, each per-rate tax is within one yen of
    the exact tax of its subtotal (any rounding rule), total = per-rate totals, total ≥ 0, due date not
    before the issue date.
    """
    problems: list[str] = []
    if not invoice.lines:
        return problems  # reported as NO_LINE_ITEMS
    sums: dict[TaxCategory, int] = {}
    for line in invoice.lines:
        sums[line.tax_category] = sums.get(line.tax_category, 0) + line.amount
    got = {t.tax_category: t for t in invoice.rate_totals}
    for cat, subtotal in sums.items():
        if cat not in got or got[cat].subtotal != subtotal:
            problems.append(f"rate total for {cat.value} does not equal the sum of its lines")
    if set(got) - set(sums):
        problems.append("rate total for a category without lines")
    for t in invoice.rate_totals:
        if abs(Decimal(t.tax) - exact_tax(t.subtotal, t.tax_category, invoice.tax_entry_method)) >= 1:
            problems.append(f"tax for {t.tax_category.value} is not the rounded rate tax of its subtotal")
    if invoice_total(invoice.rate_totals, invoice.tax_entry_method) != invoice.total:
        problems.append("total does not equal the per-rate totals")
    if invoice.total < 0:
        problems.append("total is negative (issue a credit note instead)")
    if invoice.due_date is not None and invoice.due_date < invoice.issue_date:
        problems.append("due date is before the issue date")
    return problems


def _missing(company: Company, name: str) -> bool:
    value = getattr(company, name, None)
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def evaluate(
    deal: Deal,
    lines: Sequence[LineItem] | None,
    company: Company | None,
    invoice: Invoice | None,
    rules: ExceptionRules,
    *,
    validation_errors: Sequence[str] = (),
) -> list[ExceptionReason]:
    """All exception reasons for this deal/invoice, in :class:`ReasonCode` order (empty = clean).

    ``lines`` defaults to ``deal.line_items``; ``invoice`` is ``None`` when it could not be built (then
    ``VALIDATION_FAILED``, with ``validation_errors`` as details).
    """
    all_items = list(deal.line_items if lines is None else lines)
    found: list[ExceptionReason] = []

    def add(code: ReasonCode, ja: str, en: str, **details: Any) -> None:
        if code not in rules.disabled:
            found.append(ExceptionReason(code, ja, en, details))

    # NEGATIVE_LINE_AMOUNT: unpriceable lines are reported and left out of every amount rule below
    bad = [(item, why) for item in all_items if (why := line_problem(item)) is not None]
    items = [item for item in all_items if line_problem(item) is None]
    if bad:
        add(ReasonCode.NEGATIVE_LINE_AMOUNT,
            "値引が単価を超える明細があります: " + "、".join(f"{i.name}（{w}）" for i, w in bad),
            "Line items with a negative amount: " + ", ".join(f"{i.name} ({w})" for i, w in bad),
            lines=[i.name for i, _ in bad])

    # VALIDATION_FAILED
    problems = list(validation_errors)
    if invoice is None:
        if not bad:
            problems = problems or ["invoice could not be built"]
    else:
        problems += validate_invoice(invoice)
    if problems:
        add(ReasonCode.VALIDATION_FAILED, "請求書の検証に失敗しました: " + "; ".join(problems),
            "Invoice validation failed: " + "; ".join(problems), problems=problems)

    # NON_JPY_CURRENCY
    if deal.currency not in rules.currencies:
        add(ReasonCode.NON_JPY_CURRENCY, f"通貨が{deal.currency}です（円建てのみ自動発行）",
            f"Deal currency is {deal.currency}; only {', '.join(rules.currencies)} is invoiced automatically",
            currency=deal.currency)

    # NO_LINE_ITEMS
    if not all_items:
        add(ReasonCode.NO_LINE_ITEMS, "商談に明細がありません", "The deal has no line items")

    plaus = rules.plausibility
    if plaus is not None:
        # DATE_OUT_OF_RANGE
        why = date_problem(deal.close_date, rules.today, plaus) if rules.today is not None else None
        if why:
            add(ReasonCode.DATE_OUT_OF_RANGE, f"受注日が妥当な範囲外です: {why}",
                f"Close date out of the plausible range: {why}", field="close_date")
        # ZERO_OR_NEGATIVE_TOTAL (only for a built invoice: an empty deal is NO_LINE_ITEMS)
        why = amount_problem(invoice.total, plaus) if invoice is not None and invoice.lines else None
        if why:
            add(ReasonCode.ZERO_OR_NEGATIVE_TOTAL, f"請求金額が不正です: {why}", f"Implausible invoice total: {why}",
                total=invoice.total)
        # MARKUP_IN_TEXT
        if plaus.check_markup:
            texts = [("deal name", deal.name)] + [("line item", i.name) for i in all_items]
            if company is not None:
                texts.append(("customer name", company.name))
            marked = [(what, m) for what, text in texts if (m := markup_problem(text))]
            if marked:
                desc = ", ".join(f"{what}: {m}" for what, m in marked)
                add(ReasonCode.MARKUP_IN_TEXT, f"文字列に書式記号（HTML/Markdown等）が含まれています（{desc}）",
                    f"Markup in text ({desc})", fields=[w for w, _ in marked])
        # EMAIL_INVALID: the invoice would be sent to an address that cannot receive it
        why = email_problem(company.billing_email) if plaus.check_email and company is not None else None
        if why:
            add(ReasonCode.EMAIL_INVALID, "請求書送付先メールアドレスが不正です", f"Billing e-mail: {why}",
                field="billing_email")

    # MISSING_BILLING_INFO
    if company is None:
        add(ReasonCode.MISSING_BILLING_INFO, "請求先の会社が関連付けられていません",
            "No customer company is associated with the deal", missing=["company"])
    else:
        missing = [f for f in rules.required_billing_fields if _missing(company, f)]
        if rules.require_partner_mapping and not company.erp_id:
            missing.append("erp_id")
        if missing:
            ja = "、".join(_FIELD_JA.get(f, f) for f in missing)
            add(ReasonCode.MISSING_BILLING_INFO, f"請求先情報が不足しています（{ja}）",
                f"Billing information missing: {', '.join(missing)}", missing=missing)

    # MISSING_REGISTRATION_NUMBER
    if rules.require_issuer_registration and invoice is not None and not invoice.issuer_registration_number:
        add(ReasonCode.MISSING_REGISTRATION_NUMBER, "発行者の登録番号が請求書にありません（適格請求書の記載事項）",
            "The invoice lacks our registration number (required on a qualified invoice)", party="issuer")
    if rules.require_customer_registration and company is not None and not company.registration_number:
        applies = (not rules.customer_registration_corporations_only
                   or company.entity_kind is EntityKind.CORPORATION)
        if applies:
            add(ReasonCode.MISSING_REGISTRATION_NUMBER, f"請求先（{company.name}）の登録番号が未登録です",
                f"Customer {company.name} has no registration number", party="customer")

    # CREDIT_HOLD
    if company is not None and company.credit_hold:
        add(ReasonCode.CREDIT_HOLD, f"{company.name} は与信停止中です", f"{company.name} is on credit hold")

    # AMOUNT_MISMATCH (with unpriceable lines the line sum is unknown: NEGATIVE_LINE_AMOUNT says so)
    if not bad and (items or invoice is not None):
        diff = amount_discrepancy(deal, invoice if invoice is not None else items, rules.line_rounding)
        if diff is not None and abs(diff) > rules.amount_mismatch_tolerance:
            add(ReasonCode.AMOUNT_MISMATCH,
                f"商談金額 {format_yen(deal.amount or 0)} と明細合計の差額 {format_yen(diff)}"
                f"（許容 {format_yen(rules.amount_mismatch_tolerance)}）",
                f"Deal amount {format_yen(deal.amount or 0)} differs from the sum of lines by {format_yen(diff)}"
                f" (tolerance {format_yen(rules.amount_mismatch_tolerance)})",
                difference=diff, deal_amount=deal.amount)

    # DISCOUNT_OVER_LIMIT
    if rules.max_discount_percent is not None:
        limit = Decimal(rules.max_discount_percent)
        over = []
        for item in items:
            pct = line_amounts(item, rules.line_rounding).discount_percent
            if pct > limit:
                over.append((item.name, pct))
        if over:
            names = "、".join(f"{n}（{p.quantize(Decimal('0.01')).normalize():f}%）" for n, p in over)
            names_en = ", ".join(f"{n} ({p.quantize(Decimal('0.01')).normalize():f}%)" for n, p in over)
            add(ReasonCode.DISCOUNT_OVER_LIMIT, f"値引率が上限 {limit.normalize():f}% を超えています: {names}",
                f"Discount above the {limit.normalize():f}% limit: {names_en}",
                lines=[n for n, _ in over], limit_percent=str(limit))

    # AMOUNT_OVER_THRESHOLD
    if rules.amount_threshold is not None:
        if invoice is not None:
            amount = invoice.total
        elif deal.amount is not None:
            amount = deal.amount
        else:
            amount = sum(line_amounts(i, rules.line_rounding).net for i in items)
        if amount > rules.amount_threshold:
            basis_ja = "請求金額（税込）" if invoice is not None else "商談金額（税抜）"
            add(ReasonCode.AMOUNT_OVER_THRESHOLD,
                f"{basis_ja} {format_yen(amount)} が承認基準 {format_yen(rules.amount_threshold)} を超えています",
                f"Amount {format_yen(amount)} is above the approval threshold {format_yen(rules.amount_threshold)}",
                amount=amount, threshold=rules.amount_threshold)

    order = list(ReasonCode)
    return sorted(found, key=lambda r: order.index(r.code))
