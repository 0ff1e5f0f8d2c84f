"""Money Forward クラウド請求書 objects ⇄ the canonical model.

* partner (取引先) + its first department (部門: address, person, e-mail) ⇄ :class:`Company`;
* item (品目) ⇄ :class:`Product`;
* billing (請求書) ⇄ :class:`Invoice` with per-rate totals read from MF's per-category fields.

Reads return :class:`MapResult` (an invalid record becomes a review item, never an exception); writes raise
:class:`MoneyForwardMappingError` for a value MF cannot hold.

Words and limits (``moneyforward-invoice-api.md`` §3–§6): partner ``name`` ≤ 100, ``code`` ≤ 30; department
``address1``/``address2`` ≤ 80, ``person_name`` ≤ 35; billing ``memo`` ≤ 450, ``title`` ≤ 200,
``billing_number`` ≤ 30; line ``name`` ≤ 450. MF has one address line pair, so ``city`` + ``street`` go to
``address1`` (:func:`~domain.address.join_municipality`) and come back split at the municipality
(:func:`~domain.address.split_municipality`, as for freee's ``street_name1``). Money in responses is decimal strings (``"1000.0"``) and must be
whole yen here.

Tax categories: ``ten_percent`` ⇄ 10%, ``eight_percent_as_reduced_tax_rate`` ⇄ 8%（軽減）, ``non_taxable``
(非課税) ⇄ ``EXEMPT``, ``untaxable`` (不課税) ⇄ ``NON_TAXABLE``. ``tax_exemption`` (免税), ``eight_percent``
(経過措置) and ``five_percent`` have no canonical category: such a billing is a review item.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from renkei.connectors.base import MapResult
from renkei.domain.address import join_municipality, split_municipality
from renkei.domain.model import (
    Address,
    Company,
    EntityKind,
    Invoice,
    InvoiceLine,
    PaymentTerms,
    Product,
    RateTotal,
    TaxCategory,
    TaxEntryMethod,
)
from renkei.domain.money import Rounding, round_yen

__all__ = [
    "ARCHIVED_MARKER", "TAX_ROUNDING", "CATEGORY_TO_EXCISE", "EXCISE_TO_CATEGORY", "MoneyForwardMappingError", "PAYMENT_STATUS_CODES",
    "ROUNDING", "billing_reference", "billing_to_invoice", "company_to_department", "company_to_partner",
    "invoice_to_billing", "item_to_product", "parse_date", "parse_timestamp", "partner_to_company",
    "product_to_item", "yen",
]


class MoneyForwardMappingError(ValueError):
    """A canonical value that Money Forward cannot represent (nothing was sent)."""


EXCISE_TO_CATEGORY: dict[str, TaxCategory] = {
    "ten_percent": TaxCategory.STANDARD_10,
    "eight_percent_as_reduced_tax_rate": TaxCategory.REDUCED_8,
    "non_taxable": TaxCategory.EXEMPT,  # 非課税
    "untaxable": TaxCategory.NON_TAXABLE,  # 不課税
}
CATEGORY_TO_EXCISE: dict[TaxCategory, str] = {v: k for k, v in EXCISE_TO_CATEGORY.items()}
UNSUPPORTED_EXCISES = ("tax_exemption", "eight_percent", "five_percent")
ROUNDING: dict[str, Rounding] = {"round_down": Rounding.TRUNCATE, "round_up": Rounding.AWAY,
                                 "round_off": Rounding.HALF_UP}
"""MF's rounding names → Renkei's. MF rounds the magnitude (a credit mirrors a charge): 切り捨て toward
zero, 切り上げ away from zero, 四捨五入 half away from zero."""
TAX_ROUNDING: dict[str, Rounding] = {"round_down": Rounding.FLOOR, "round_up": Rounding.CEIL,
                                     "round_off": Rounding.HALF_UP}
"""MF's ``rounding_consumption_tax`` → the rule :mod:`domain.tax` applies (to the magnitude, as MF does)."""
PAYMENT_STATUS_CODES = {"未設定": "0", "未入金": "1", "入金済み": "2", "未払い": "3", "振込済み": "4"}
ARCHIVED_MARKER = "【利用停止】"
"""MF partners have no in-use flag: a deactivated partner's ``memo`` starts with this marker."""
_STATUS = {"0": "unset", "1": "unpaid", "2": "paid", "3": "unpaid", "4": "paid"}
_DUE_MONTHS = ("this_month", "next_month", "two_months_after", "three_months_after", "four_months_after",
               "five_months_after", "six_months_after")
_TEL = re.compile(r"\A(\+|＋)?[0-9０-９\-－ー−]+\s*\Z")
REFERENCE_PREFIX = "renkei:"


# ---------------------------------------------------------------------------------------------------
# scalars


def yen(value: Any, field: str = "amount") -> int:
    """``"1000.0"`` → 1000; a fraction of a yen is an error (never a float)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{field}: missing")
    if isinstance(value, float):
        raise ValueError(f"{field}: float money is not accepted")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{field}: {value!r} is not a number") from None
    if d != d.to_integral_value():
        raise ValueError(f"{field}: {value} is not whole yen")
    return int(d)


def parse_date(value: Any) -> date | None:
    """``2022/12/09`` (responses) or ``2022-12-09`` → date."""
    if value in (None, ""):
        return None
    return date.fromisoformat(str(value)[:10].replace("/", "-"))


def parse_timestamp(value: Any) -> datetime | None:
    """``2023-03-20 14:56:10 +0900`` (or ISO 8601) → aware datetime."""
    if value in (None, ""):
        return None
    s = str(value).strip()
    for fmt in ("%Y-%m-%d %H:%M:%S %z", "%Y/%m/%d %H:%M:%S %z"):
        try:
            return datetime.strptime(s, fmt)
        except ValueError:
            continue
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _cut(value: str | None, n: int) -> str | None:
    return value[:n] if value else None


def _put(out: dict, key: str, value: Any) -> None:
    if value not in (None, ""):
        out[key] = value


# ---------------------------------------------------------------------------------------------------
# partners


def partner_to_company(p: Mapping[str, Any]) -> MapResult[Company]:
    """Partner (``GET /partners``) → :class:`Company`; the address, person, e-mail and phone come from the
    first department (the one Renkei bills)."""
    pid = str(p.get("id")) if p.get("id") else None
    try:
        depts = list(p.get("departments") or [])
        d = depts[0] if depts else {}
        address = None
        if any(d.get(k) for k in ("zip", "prefecture", "address1", "address2")):
            pref, city, street = d.get("prefecture") or None, None, d.get("address1") or None
            if street:
                line = split_municipality(street)
                written = line.prefecture.strip() if line.prefecture else None
                if written is None or pref is None or written == pref:
                    pref, city, street = pref or written, line.city, line.rest or None
            address = Address(postal_code=d.get("zip") or None, prefecture=pref, city=city, street=street,
                              building=d.get("address2") or None)
        terms = None
        pds = p.get("payment_deadline_setting")
        if isinstance(pds, Mapping) and pds.get("due_month") in _DUE_MONTHS:
            due = int(pds.get("due_date") or -1)
            terms = PaymentTerms(closing_day=0, pay_month_offset=_DUE_MONTHS.index(pds["due_month"]),
                                 pay_day=0 if due == -1 or due > 28 else due)
        company = Company(
            erp_id=pid, erp_department_id=str(d["id"]) if d.get("id") else None,
            archived=str(p.get("memo") or "").startswith(ARCHIVED_MARKER),
            name=str(p.get("name") or "").strip(), name_kana=p.get("name_kana") or None,
            partner_code=p.get("code") or None, phone=d.get("tel") or None, address=address,
            billing_contact_name=d.get("person_name") or None, billing_email=d.get("email") or None,
            payment_terms=terms, updated_at=parse_timestamp(p.get("updated_at")))
        return MapResult(source_id=pid, value=company, raw=p)
    except (ValueError, TypeError) as exc:
        return MapResult(source_id=pid, error=f"Money Forward partner {pid}: {exc}", raw=p)


def company_to_department(company: Company, *, fallback: bool = True) -> dict[str, Any]:
    """The department (請求先) of a company: only the values the company has (``None`` leaves MF's as they
    are). A new department needs at least one field: with ``fallback`` an empty one gets 「ご担当者」."""
    out: dict[str, Any] = {}
    a = company.address
    if a is not None:
        if a.postal_code:
            _put(out, "zip", a.postal_code)
        _put(out, "prefecture", a.prefecture)
        _put(out, "address1", _cut(join_municipality(a.city, a.street) or None, 80))
        _put(out, "address2", _cut(a.building, 80))
    if company.phone and _TEL.match(company.phone) and 7 <= len(company.phone) <= 30:
        out["tel"] = company.phone
    _put(out, "person_name", _cut(company.billing_contact_name, 35))
    _put(out, "email", company.billing_email)
    if not out and fallback:
        out["person_name"] = "ご担当者"
    return out


def company_to_partner(company: Company, *, suffix: str = "御中", with_department: bool = True,
                       include_code: bool = True) -> dict[str, Any]:
    """:class:`Company` → ``POST /partners`` body (``with_department``) or ``PUT /partners/{id}`` body
    (``with_department=False, include_code=False``: the code is never changed). Raises ``ValueError``
    (:class:`MoneyForwardMappingError`) for what MF cannot hold."""
    try:
        kind = EntityKind(company.entity_kind)
    except ValueError:
        raise MoneyForwardMappingError(f"entity kind {company.entity_kind!r} is not 法人 or 個人事業者") from None
    if not company.name or not str(company.name).strip():
        raise MoneyForwardMappingError("partner name is empty")
    if len(company.name) > 100:
        raise MoneyForwardMappingError(f"partner name is {len(company.name)} characters; Money Forward allows 100")
    if company.partner_code and len(company.partner_code) > 30:
        raise MoneyForwardMappingError("partner code is longer than 30 characters")
    if company.name_kana and len(company.name_kana) > 350:
        raise MoneyForwardMappingError("partner kana is longer than 350 characters")
    if company.billing_email and len(company.billing_email) > 255:
        raise MoneyForwardMappingError("billing e-mail is longer than 255 characters")
    body: dict[str, Any] = {"name": company.name}
    if include_code:
        _put(body, "code", company.partner_code)
    _put(body, "name_kana", company.name_kana)
    body["name_suffix"] = "様" if kind is EntityKind.SOLE_TRADER and suffix == "御中" else suffix
    t = company.payment_terms
    if t is not None:
        if t.pay_month_offset > 6:
            raise MoneyForwardMappingError("payment terms: Money Forward allows at most six months after billing")
        body["payment_deadline_setting"] = {"due_month": _DUE_MONTHS[t.pay_month_offset],
                                            "due_date": -1 if t.pay_day == 0 else t.pay_day,
                                            "contingency_day": "move_to_later_day"}
    if with_department:
        body["departments"] = [company_to_department(company)]
    return body


# ---------------------------------------------------------------------------------------------------
# items


def item_to_product(it: Mapping[str, Any]) -> MapResult[Product]:
    iid = str(it.get("id")) if it.get("id") else None
    try:
        excise = it.get("excise")
        if excise not in EXCISE_TO_CATEGORY:
            raise ValueError(f"excise {excise!r} has no Renkei tax category")
        if not it.get("code"):
            raise ValueError("item has no code (品目コード); Renkei matches products by code")
        product = Product(code=str(it["code"]), name=str(it.get("name") or "").strip(),
                          unit_price=yen(it["price"], "price") if it.get("price") is not None else None,
                          tax_category=EXCISE_TO_CATEGORY[excise], erp_id=iid)
        return MapResult(source_id=iid, value=product, raw=it)
    except (ValueError, TypeError, KeyError) as exc:
        return MapResult(source_id=iid, error=f"Money Forward item {iid}: {exc}", raw=it)


def product_to_item(product: Product) -> dict[str, Any]:
    if len(product.code) > 30:
        raise MoneyForwardMappingError("item code is longer than 30 characters")
    body: dict[str, Any] = {"name": product.name[:450], "code": product.code, "quantity": 1,
                            "excise": CATEGORY_TO_EXCISE[product.tax_category]}
    if product.unit_price is not None:
        body["price"] = product.unit_price
    return body


# ---------------------------------------------------------------------------------------------------
# billings


def billing_reference(billing: Mapping[str, Any]) -> str | None:
    """Our idempotency reference: the first line of ``memo`` (社内メモ), else a ``renkei:`` tag."""
    memo = billing.get("memo")
    if memo:
        first = str(memo).splitlines()[0].strip()
        if first.startswith(REFERENCE_PREFIX):
            return first
    for tag in billing.get("tag_names") or []:
        if str(tag).startswith(REFERENCE_PREFIX):
            return str(tag)
    return None


def _quantity(q: Decimal) -> int | float:
    """JSON number for a quantity (not money): an int when whole, else the decimal's exact float form."""
    return int(q) if q == q.to_integral_value() else float(q)


def invoice_to_billing(invoice: Invoice, *, department_id: str, send_number: bool = True,
                       title: str | None = None) -> dict[str, Any]:
    """:class:`Invoice` → ``POST /invoice_template_billings`` body.

    The reference goes to the first line of ``memo`` and to ``tag_names`` (the list filter ``tags`` finds it
    whatever the billing date). A line whose amount is not ``quantity × unit_price`` (a discount) is sent
    as quantity 1 at its amount, so MF's line amount is Renkei's."""
    if len(invoice.reference) > 255 or "," in invoice.reference:
        raise MoneyForwardMappingError("reference must be ≤ 255 characters without a comma (it is a tag, and the "
                                       "tags filter splits on commas)")
    if invoice.number and len(invoice.number) > 30:
        raise MoneyForwardMappingError("billing_number is longer than 30 characters")
    items = []
    for line in invoice.lines:
        excise = CATEGORY_TO_EXCISE.get(line.tax_category)
        if excise is None:  # pragma: no cover - every canonical category has one
            raise MoneyForwardMappingError(f"no Money Forward excise for {line.tax_category}")
        item: dict[str, Any] = {"name": line.description[:450], "excise": excise}
        if Decimal(line.unit_price) * line.quantity == line.amount:
            item |= {"price": line.unit_price, "quantity": _quantity(line.quantity)}
        else:
            item |= {"price": line.amount, "quantity": 1,
                     "detail": f"{line.quantity} × {line.unit_price:,}円（値引後 {line.amount:,}円）"[:200]}
        items.append(item)
    period = ""
    if invoice.service_period_start and invoice.service_period_end:
        period = f"対象期間: {invoice.service_period_start:%Y/%m/%d}〜{invoice.service_period_end:%Y/%m/%d}"
    body: dict[str, Any] = {
        "department_id": department_id, "billing_date": invoice.issue_date.isoformat(),
        "title": (title or (f"{invoice.issue_date:%Y年%m月}分 ご請求" if not period else period))[:200],
        "memo": invoice.reference, "tag_names": [invoice.reference], "items": items,
    }
    if invoice.due_date:
        body["due_date"] = invoice.due_date.isoformat()
    if invoice.transaction_date:
        body["sales_date"] = invoice.transaction_date.isoformat()
    if send_number and invoice.number:
        body["billing_number"] = invoice.number
    if period:
        body["note"] = period
    return body


def billing_to_invoice(b: Mapping[str, Any]) -> MapResult[Invoice]:
    """Billing (``GET /billings/{id}``) → :class:`Invoice` with MF's per-rate totals (tax rounded once per
    rate by the office's ``config.rounding_consumption_tax``)."""
    bid = str(b.get("id")) if b.get("id") else None
    try:
        config = b.get("config") or {}
        rounding = ROUNDING.get(config.get("rounding") or "round_down", Rounding.TRUNCATE)
        method = TaxEntryMethod.INCLUSIVE if config.get("consumption_tax_display_type") == "internal" \
            else TaxEntryMethod.EXCLUSIVE
        for excise in UNSUPPORTED_EXCISES:
            if Decimal(str(b.get(f"subtotal_with_tax_of_{excise}_excise") or 0)) != 0:
                raise ValueError(f"lines taxed {excise!r}, which has no Renkei tax category")
        lines = []
        for n, it in enumerate(b.get("items") or []):
            excise = it.get("excise")
            if excise not in EXCISE_TO_CATEGORY:
                raise ValueError(f"line {n + 1}: excise {excise!r} has no Renkei tax category")
            qty = Decimal(str(it.get("quantity") or "0"))
            price = yen(it.get("price"), f"line {n + 1} price")
            if qty <= 0:
                raise ValueError(f"line {n + 1}: quantity {qty} is not positive")
            lines.append(InvoiceLine(description=str(it.get("name") or "").strip(), quantity=qty.normalize(),
                                     unit_price=price, amount=round_yen(Decimal(price) * qty, rounding),
                                     tax_category=EXCISE_TO_CATEGORY[excise], item_code=it.get("code") or None))
        totals = []
        for excise, cat in EXCISE_TO_CATEGORY.items():
            if not any(x.tax_category is cat for x in lines):
                continue
            key = "subtotal_with_tax_of" if method is TaxEntryMethod.INCLUSIVE else "subtotal_of"
            totals.append(RateTotal(tax_category=cat, subtotal=yen(b.get(f"{key}_{excise}_excise") or 0, key),
                                    tax=yen(b.get(f"excise_price_of_{excise}") or 0, "excise_price")))
        status_code = PAYMENT_STATUS_CODES.get(str(b.get("payment_status") or ""), str(b.get("payment_status") or ""))
        issue = parse_date(b.get("billing_date"))
        if issue is None:
            raise ValueError("billing_date is missing")
        partner_name = str(b.get("partner_name") or "").strip()
        for suffix in ("御中", "様"):
            if partner_name.endswith(" " + suffix):
                partner_name = partner_name[: -len(suffix) - 1].strip()
        invoice = Invoice(
            erp_id=bid, number=b.get("billing_number") or None,
            reference=billing_reference(b) or f"moneyforward:billing:{bid}",
            partner_erp_id=b.get("partner_id") or None, recipient_name=partner_name or "(no name)",
            issuer_name=b.get("office_name") or None, issuer_registration_number=b.get("registration_code") or None,
            issue_date=issue, transaction_date=parse_date(b.get("sales_date")), due_date=parse_date(b.get("due_date")),
            tax_entry_method=method, lines=lines, rate_totals=totals, total=yen(b.get("total_price"), "total_price"),
            status=_STATUS.get(status_code, status_code or None))
        return MapResult(source_id=bid, value=invoice, raw=b)
    except (ValueError, TypeError, InvalidOperation) as exc:
        return MapResult(source_id=bid, error=f"Money Forward billing {bid}: {exc}", raw=b)
