"""freee objects ⇄ canonical model — every field decision for freee in one place.

One function pair per object:

============================  =====================================  ==========================================
canonical                     freee → canonical                      canonical → freee (request body)
============================  =====================================  ==========================================
:class:`Company`              :func:`partner_to_company`             :func:`company_to_partner` (取引先)
:class:`Product`              :func:`item_to_product`                :func:`product_to_item` (品目)
:class:`Invoice`              :func:`iv_invoice_to_invoice`          :func:`invoice_to_iv_invoice` (freee請求書)
:class:`Payment`              :func:`deal_to_payments`               :func:`payment_to_deal_payment` (取引の決済)
:class:`BankDeposit`          :func:`wallet_txn_to_deposit`          :func:`deposit_to_wallet_txn` (口座明細)
============================  =====================================  ==========================================

*freee → canonical* never raises on bad data: it returns a :class:`~connectors.base.MapResult` whose
``error`` is the validation message for a review item (reason code :data:`REASON_INVALID`).
*canonical → freee* takes an already validated model and raises :class:`FreeeMappingError` (a
``ValueError``) only when the value cannot be expressed in freee (e.g. a 品目名 over 30 characters).

Decisions worth knowing
-----------------------
* **Invoice reference** (idempotency key ``renkei:deal:<id>``) is stored as the **first line of the
  invoice's ``memo``** (社内メモ: internal, never printed, ≤ 2000 chars, returned by both
  ``GET /iv/invoices`` and ``GET /iv/invoices/{id}``). ``invoice_number`` is not used because it must be
  omitted when the company uses 自動採番, and ``subject`` (件名) is printed on the customer's document.
  The list endpoint cannot filter on ``memo``, so the client narrows by ``partner_ids`` and billing-date
  range and matches the memo's first line exactly.
* **Rounding** of tax: :class:`~domain.money.Rounding` ``FLOOR`` → ``omit`` (切り捨て), ``CEIL`` →
  ``round_up`` (切り上げ), ``HALF_UP`` → ``round`` (四捨五入); other rules have no freee equivalent.
* **Tax rates**: 10 → ``STANDARD_10``; 8 + ``reduced_tax_rate`` → ``REDUCED_8``; 0 → ``NON_TAXABLE``
  (非課税 ``EXEMPT`` also goes out as 0 — freee請求書 has no separate code). The 8% transitional
  (経過措置, 8 without the reduced flag) rate has no canonical category → review item.
* **Money from freee** arrives as JSON numbers that the spec types as ``double``; the client parses
  them as :class:`~decimal.Decimal` (never float) and the canonical ``Yen`` type refuses any fraction.
* **Payment terms** use ``invoice_payment_term_attributes`` (請求書の入金期日, i.e. when the customer
  pays us); freee's 32 (and 31) = 月末 ↔ canonical 0.
* **Address**: ``street_name1`` is 市区町村・番地 in one line, written as freee shows it (``千代田区丸の内1-1-1``,
  :func:`~domain.address.join_municipality`: city + street, one space between them only when the city is not
  one the split knows) and read back with :func:`~domain.address.split_municipality` (``横浜市中区`` +
  ``山下町1``; a leading prefecture equal to ``prefecture_code`` is dropped; a line whose municipality is not
  found is all ``street``); ``street_name2`` = ``building``; prefecture names ⇄ freee ``prefecture_code``
  0 (北海道) … 46 (沖縄県), −1 = not set.
* freee **items** carry neither price nor tax category; a :class:`Product` read from freee gets the
  model defaults for those (the ERP-side price list is out of scope of the freee item API).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Mapping

from pydantic import ValidationError

from renkei.connectors.base import MapResult
from renkei.domain.model import (
    Address,
    BankDeposit,
    Company,
    EntityKind,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentTerms,
    Product,
    RateTotal,
    TaxCategory,
    TaxEntryMethod,
)
from renkei.domain.address import join_municipality, split_municipality
from renkei.domain.money import Rounding, round_yen, to_decimal

__all__ = [
    "REASON_INVALID", "FreeeMappingError", "JST", "PREFECTURES",
    "rounding_to_tax_fraction", "tax_fraction_to_rounding", "company_fraction_to_rounding",
    "partner_to_company", "company_to_partner",
    "item_to_product", "product_to_item",
    "iv_invoice_to_invoice", "invoice_to_iv_invoice", "invoice_reference",
    "deal_to_payments", "payment_to_deal_payment",
    "wallet_txn_to_deposit", "deposit_to_wallet_txn",
    "prefecture_code", "prefecture_name",
]

REASON_INVALID = "FREEE_RECORD_INVALID"
JST = timezone(timedelta(hours=9), "Asia/Tokyo")

class FreeeMappingError(ValueError):
    """A canonical value that freee cannot represent."""


# ---------------------------------------------------------------------------------------------------
# helpers


def _result(source_id: Any, raw: Mapping[str, Any] | None, build: Any) -> MapResult[Any]:
    """Run ``build()`` and turn any validation failure into a review-ready ``MapResult``."""
    sid = None if source_id is None else str(source_id)
    try:
        return MapResult(source_id=sid, value=build(), raw=raw)
    except ValidationError as exc:
        msgs = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ())) or "value"
            msgs.append(f"{loc}: {e.get('msg')}")
        return MapResult(source_id=sid, error=f"{REASON_INVALID}: " + "; ".join(msgs), raw=raw)
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        return MapResult(source_id=sid, error=f"{REASON_INVALID}: {type(exc).__name__}: {exc}", raw=raw)


def _blank(v: Any) -> Any:
    return None if v is None or (isinstance(v, str) and not v.strip()) else v


def _date(v: Any) -> date | None:
    if v in (None, ""):
        return None
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def _datetime(v: Any) -> datetime | None:
    """freee ``update_date`` is a JST date (``2019-12-17``) or date-time; naive values are JST."""
    if v in (None, ""):
        return None
    s = str(v)
    if len(s) <= 10:
        return datetime.combine(date.fromisoformat(s), time(0), tzinfo=JST)
    dt = datetime.fromisoformat(s.replace(" ", "T"))
    return dt if dt.tzinfo else dt.replace(tzinfo=JST)


def _json_number(q: Decimal) -> int | float:
    """A quantity (not money) as a JSON number: int when whole, else float (≤ 3 decimals, exact in JSON)."""
    if q == q.to_integral_value():
        return int(q)
    return float(q)


def _yen_str(amount: int) -> str:
    return str(int(amount))


# ---------------------------------------------------------------------------------------------------
# rounding and tax


_TO_FRACTION = {Rounding.FLOOR: "omit", Rounding.CEIL: "round_up", Rounding.HALF_UP: "round"}
_FROM_FRACTION = {v: k for k, v in _TO_FRACTION.items()}
_COMPANY_FRACTION = {0: Rounding.FLOOR, 1: Rounding.CEIL, 2: Rounding.HALF_UP}


def rounding_to_tax_fraction(rounding: Rounding | str) -> str:
    """``FLOOR`` → ``omit``, ``CEIL`` → ``round_up``, ``HALF_UP`` → ``round`` (freee ``tax_fraction``)."""
    try:
        return _TO_FRACTION[Rounding(rounding)]
    except KeyError:
        raise FreeeMappingError(f"freee has no tax_fraction for rounding {Rounding(rounding).value!r} "
                                "(use floor, ceil or half_up)") from None


def tax_fraction_to_rounding(value: str | None) -> Rounding:
    """freee請求書 ``tax_fraction`` → :class:`Rounding` (``None`` = freee's default, 切り捨て)."""
    if value in (None, ""):
        return Rounding.FLOOR
    try:
        return _FROM_FRACTION[str(value)]
    except KeyError:
        raise FreeeMappingError(f"unknown freee tax_fraction {value!r}") from None


def company_fraction_to_rounding(value: int | None) -> Rounding:
    """freee会計 company ``tax_fraction`` / ``amount_fraction`` (0 切り捨て, 1 切り上げ, 2 四捨五入)."""
    try:
        return _COMPANY_FRACTION[int(value if value is not None else 0)]
    except (KeyError, ValueError):
        raise FreeeMappingError(f"unknown freee company fraction {value!r}") from None


def _category_to_rate(cat: TaxCategory) -> tuple[int, bool]:
    return cat.rate_percent, cat.reduced


def _rate_to_category(rate: Any, reduced: Any) -> TaxCategory:
    r = int(to_decimal(rate)) if rate is not None else None
    if r == 10:
        return TaxCategory.STANDARD_10
    if r == 8 and reduced:
        return TaxCategory.REDUCED_8
    if r == 8:
        raise ValueError("8% without reduced_tax_rate is the transitional rate (経過措置), "
                         "which the canonical model does not carry")
    if r == 0:
        return TaxCategory.NON_TAXABLE
    raise ValueError(f"unsupported tax_rate {rate!r}")


# ---------------------------------------------------------------------------------------------------
# prefectures (JIS X 0401 order; freee prefecture_code = JIS code − 1)

PREFECTURES: tuple[tuple[str, str], ...] = (
    ("北海道", "hokkaido"), ("青森県", "aomori"), ("岩手県", "iwate"), ("宮城県", "miyagi"),
    ("秋田県", "akita"), ("山形県", "yamagata"), ("福島県", "fukushima"), ("茨城県", "ibaraki"),
    ("栃木県", "tochigi"), ("群馬県", "gunma"), ("埼玉県", "saitama"), ("千葉県", "chiba"),
    ("東京都", "tokyo"), ("神奈川県", "kanagawa"), ("新潟県", "niigata"), ("富山県", "toyama"),
    ("石川県", "ishikawa"), ("福井県", "fukui"), ("山梨県", "yamanashi"), ("長野県", "nagano"),
    ("岐阜県", "gifu"), ("静岡県", "shizuoka"), ("愛知県", "aichi"), ("三重県", "mie"),
    ("滋賀県", "shiga"), ("京都府", "kyoto"), ("大阪府", "osaka"), ("兵庫県", "hyogo"),
    ("奈良県", "nara"), ("和歌山県", "wakayama"), ("鳥取県", "tottori"), ("島根県", "shimane"),
    ("岡山県", "okayama"), ("広島県", "hiroshima"), ("山口県", "yamaguchi"), ("徳島県", "tokushima"),
    ("香川県", "kagawa"), ("愛媛県", "ehime"), ("高知県", "kochi"), ("福岡県", "fukuoka"),
    ("佐賀県", "saga"), ("長崎県", "nagasaki"), ("熊本県", "kumamoto"), ("大分県", "oita"),
    ("宮崎県", "miyazaki"), ("鹿児島県", "kagoshima"), ("沖縄県", "okinawa"),
)
_PREF_INDEX: dict[str, int] = {}
for _i, (_ja, _en) in enumerate(PREFECTURES):
    _PREF_INDEX[_ja] = _i
    _PREF_INDEX[_ja[:-1] if _ja[-1] in "都府県" else _ja] = _i
    _PREF_INDEX[_en] = _i


def prefecture_code(name: str | None) -> int:
    """``東京都`` / ``東京`` / ``Tokyo`` → 12; ``None`` → −1 (not set). Unknown names raise."""
    if not name:
        return -1
    key = name.strip()
    key = key.lower().removesuffix(" prefecture").removesuffix("-ken").removesuffix("-fu").strip()
    if key in _PREF_INDEX:
        return _PREF_INDEX[key]
    raise FreeeMappingError(f"unknown prefecture {name!r}")


def prefecture_name(code: Any) -> str | None:
    if code is None:
        return None
    c = int(code)
    if c == -1:
        return None
    if 0 <= c < len(PREFECTURES):
        return PREFECTURES[c][0]
    raise ValueError(f"prefecture_code {code!r} is outside −1..46")


# ---------------------------------------------------------------------------------------------------
# partner (取引先) ⇄ Company


_ORG = {1: EntityKind.CORPORATION, 2: EntityKind.SOLE_TRADER}
_ORG_REV = {v: k for k, v in _ORG.items()}


def _terms_from_freee(t: Mapping[str, Any] | None) -> PaymentTerms | None:
    if not t or all(t.get(k) is None for k in ("cutoff_day", "additional_months", "fixed_day")):
        return None

    def day(v: Any, what: str) -> int:
        if v is None:
            return 0
        v = int(v)
        if v >= 31:  # 32 = 月末 in freee; 31 is month end in practice
            return 0
        if v > 28:
            raise ValueError(f"{what} {v} cannot be expressed (canonical days are 1–28 or month end)")
        return v

    return PaymentTerms(closing_day=day(t.get("cutoff_day"), "cutoff_day"),
                        pay_month_offset=int(t.get("additional_months") or 0),
                        pay_day=day(t.get("fixed_day"), "fixed_day"))


def _terms_to_freee(t: PaymentTerms) -> dict[str, int]:
    if t.pay_month_offset > 6:
        raise FreeeMappingError("freee allows at most 6 additional months in payment terms")
    return {"cutoff_day": t.closing_day or 32, "additional_months": t.pay_month_offset,
            "fixed_day": t.pay_day or 32}


def _address_from_freee(a: Mapping[str, Any] | None) -> Address | None:
    if not a:
        return None
    zipcode = _blank(a.get("zipcode"))
    pref = prefecture_name(a.get("prefecture_code"))
    s1 = _blank(a.get("street_name1"))
    s2 = _blank(a.get("street_name2"))
    if not any((zipcode, pref, s1, s2)):
        return None
    city, street = None, s1
    if s1:
        line = split_municipality(s1)
        written = line.prefecture.strip() if line.prefecture else None
        if written is None or pref is None or written == pref:  # a prefecture written in the line is the same one
            pref = pref or written
            city, street = line.city, line.rest or None
    return Address(postal_code=zipcode, prefecture=pref, city=city, street=street, building=s2)


def _address_to_freee(a: Address) -> dict[str, Any]:
    s1 = join_municipality(a.city, a.street)
    out: dict[str, Any] = {"prefecture_code": prefecture_code(a.prefecture)}
    if a.postal_code:
        out["zipcode"] = a.postal_code
    if s1:
        out["street_name1"] = s1
    if a.building:
        out["street_name2"] = a.building
    return out


def partner_to_company(partner: Mapping[str, Any]) -> MapResult[Company]:
    """freee partner (``GET /api/1/partners[/{id}]`` item) → :class:`Company`."""

    def build() -> Company:
        org = partner.get("org_code")
        kind = _ORG.get(int(org)) if org is not None else EntityKind.CORPORATION
        if kind is None:
            raise ValueError(f"org_code {org!r} is not 1 (法人) or 2 (個人)")
        reg = _blank(partner.get("invoice_registration_number"))
        company = Company(
            erp_id=str(partner["id"]) if partner.get("id") is not None else None,
            name=partner.get("name") or "",
            name_kana=_blank(partner.get("name_kana")),
            entity_kind=kind,
            registration_number=reg,
            partner_code=_blank(partner.get("code")),
            phone=_blank(partner.get("phone")),
            address=_address_from_freee(partner.get("address_attributes")),
            billing_contact_name=_blank(partner.get("contact_name")),
            billing_email=_blank(partner.get("email")),
            payment_terms=_terms_from_freee(partner.get("invoice_payment_term_attributes")
                                            or partner.get("payment_term_attributes")),
            archived=partner.get("available") is False,
            updated_at=_datetime(partner.get("update_date")),
        )
        qualified = partner.get("qualified_invoice_issuer")
        if qualified and not reg:
            company.warnings.append("freee marks the partner a qualified invoice issuer but has no registration number")
        elif reg and qualified is False:
            company.warnings.append("registration number present but qualified_invoice_issuer is false in freee")
        return company

    return _result(partner.get("id"), partner, build)


def company_to_partner(company: Company, *, company_id: int | None = None, include_code: bool = True,
                       default_title: str | None = None) -> dict[str, Any]:
    """:class:`Company` → partner body (``POST /api/1/partners``, ``PUT /api/1/partners/{id}`` and the
    inner ``partner`` of ``upsert_by_code``). ``company_id`` is added when given; ``code`` only when
    ``include_code`` (send it only if the company enabled 取引先コード). Optional fields that are ``None``
    are left out rather than sent as null, so a partial canonical record never clears a value in freee
    (which fields a flow may overwrite is the ownership policy's decision, not the mapper's)."""
    body: dict[str, Any] = {"name": company.name, "org_code": _ORG_REV[company.entity_kind], "country_code": "JP"}
    if company.registration_number:  # absent → not sent, so an update never wipes freee's (ERP-owned) value
        body["qualified_invoice_issuer"] = True
        body["invoice_registration_number"] = company.registration_number
    if company_id is not None:
        body = {"company_id": company_id, **body}
    body["default_title"] = default_title or ("御中" if company.entity_kind is EntityKind.CORPORATION else "様")
    if include_code and company.partner_code:
        body["code"] = company.partner_code
    if company.name_kana:
        body["name_kana"] = company.name_kana
    if company.phone:
        body["phone"] = company.phone
    if company.billing_email:
        body["email"] = company.billing_email
    if company.billing_contact_name:
        body["contact_name"] = company.billing_contact_name
    if company.address:
        body["address_attributes"] = _address_to_freee(company.address)
    if company.payment_terms:
        body["invoice_payment_term_attributes"] = _terms_to_freee(company.payment_terms)
    return body


# ---------------------------------------------------------------------------------------------------
# item (品目) ⇄ Product


def item_to_product(item: Mapping[str, Any]) -> MapResult[Product]:
    def build() -> Product:
        code = _blank(item.get("code"))
        if not code:
            raise ValueError("the freee item has no code (品目コード), which is the product key")
        return Product(code=code, name=item.get("name") or "", erp_id=str(item["id"]) if item.get("id") else None,
                       active=item.get("available") is not False)

    return _result(item.get("id"), item, build)


def product_to_item(product: Product, *, company_id: int | None = None) -> dict[str, Any]:
    """:class:`Product` → ``itemParams`` (name ≤ 30, code ``^[0-9a-zA-Z_-]+$`` ≤ 20)."""
    import re

    if len(product.name) > 30:
        raise FreeeMappingError(f"freee item names are at most 30 characters ({len(product.name)} given)")
    if not re.fullmatch(r"[0-9a-zA-Z_-]{1,20}", product.code):
        raise FreeeMappingError("freee item codes are 1–20 characters of [0-9a-zA-Z_-]")
    body: dict[str, Any] = {"name": product.name, "code": product.code}
    if company_id is not None:
        body = {"company_id": company_id, **body}
    return body


# ---------------------------------------------------------------------------------------------------
# freee請求書 invoice ⇄ Invoice


def invoice_reference(memo: str | None) -> str | None:
    """Our idempotency reference: the first line of the invoice ``memo`` (社内メモ)."""
    if not memo:
        return None
    first = memo.splitlines()[0].strip()
    return first or None


_RATE_SUFFIX = {TaxCategory.STANDARD_10: "10", TaxCategory.REDUCED_8: "8_reduced", TaxCategory.NON_TAXABLE: "0"}


def iv_invoice_to_invoice(inv: Mapping[str, Any]) -> MapResult[Invoice]:
    """freee請求書 invoice (``GET /iv/invoices/{id}`` → ``invoice``) → :class:`Invoice`.

    ``reference`` is the memo's first line, or ``freee:invoice:<id>`` for invoices renkei did not make.
    Text lines (``type: text``) carry no amount and are skipped. Rate totals come from freee's own
    per-rate fields (``amount_excluding_tax_10`` …) so a comparison with our computation is meaningful.
    """

    def build() -> Invoice:
        method = TaxEntryMethod.INCLUSIVE if inv.get("tax_entry_method") == "in" else TaxEntryMethod.EXCLUSIVE
        line_rounding = tax_fraction_to_rounding(inv.get("line_amount_fraction"))
        lines: list[InvoiceLine] = []
        sales_dates: list[date] = []
        for i, ln in enumerate(inv.get("lines") or []):
            if ln.get("type") == "text":
                continue
            try:
                cat = _rate_to_category(ln.get("tax_rate"), ln.get("reduced_tax_rate"))
                qty = to_decimal(ln.get("quantity") if ln.get("quantity") is not None else 1)
                price = to_decimal(ln.get("unit_price") or 0)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise ValueError(f"lines.{i}: {exc}") from None
            if price != price.to_integral_value():
                raise ValueError(f"lines.{i}: unit price {price} has a fraction of a yen")
            amount = qty * price
            if (amount != amount.to_integral_value()
                    and method is TaxEntryMethod.EXCLUSIVE and ln.get("amount_excluding_tax") is not None):
                amount = to_decimal(ln["amount_excluding_tax"])
            if ln.get("sales_date"):
                sales_dates.append(_date(ln["sales_date"]))  # type: ignore[arg-type]
            lines.append(InvoiceLine(description=ln.get("description") or "", quantity=qty, unit_price=price,
                                     amount=round_yen(amount, line_rounding), tax_category=cat))
        totals: list[RateTotal] = []
        present = {ln.tax_category for ln in lines}
        for cat, suffix in _RATE_SUFFIX.items():
            incl, excl, tax = (inv.get(f"amount_including_tax_{suffix}"), inv.get(f"amount_excluding_tax_{suffix}"),
                               inv.get(f"amount_tax_{suffix}"))
            if cat not in present and not any(to_decimal(v) for v in (incl, excl, tax) if v is not None):
                continue
            sub = incl if method is TaxEntryMethod.INCLUSIVE else excl
            totals.append(RateTotal(tax_category=cat, subtotal=sub if sub is not None else 0,
                                    tax=tax if tax is not None else 0))
        template = inv.get("template") or {}
        status = "canceled" if inv.get("cancel_status") == "canceled" else _blank(inv.get("payment_status"))
        return Invoice(
            erp_id=str(inv["id"]) if inv.get("id") is not None else None,
            number=_blank(inv.get("invoice_number")),
            reference=invoice_reference(inv.get("memo")) or f"freee:invoice:{inv.get('id')}",
            partner_erp_id=str(inv["partner_id"]) if inv.get("partner_id") is not None else None,
            recipient_name=_blank(inv.get("partner_display_name")) or inv.get("partner_name") or "",
            issuer_registration_number=_blank(template.get("invoice_registration_number")),
            issue_date=_date(inv.get("billing_date")),
            transaction_date=min(sales_dates) if sales_dates else None,
            due_date=_date(inv.get("payment_date")),
            tax_entry_method=method,
            lines=lines,
            rate_totals=totals,
            total=inv.get("total_amount") if inv.get("total_amount") is not None else 0,
            status=status,
        )

    return _result(inv.get("id"), inv, build)


def invoice_to_iv_invoice(invoice: Invoice, *, company_id: int, tax_fraction: Rounding | str = Rounding.FLOOR,
                          partner_id: int | str | None = None, partner_code: str | None = None,
                          partner_title: str = "御中", template_id: int | None = None, subject: str | None = None,
                          send_invoice_number: bool = False, withholding_tax_entry_method: str = "out",
                          invoice_note: str | None = None) -> dict[str, Any]:
    """:class:`Invoice` → ``InvoiceRequest`` for ``POST /iv/invoices``.

    Exactly one of ``partner_id`` / ``partner_code`` (default: ``invoice.partner_erp_id``). The
    reference goes into ``memo``. ``invoice_number`` is sent only with ``send_invoice_number=True`` (for
    companies that do *not* use 自動採番). Every line gets ``sales_date`` = ``transaction_date`` (取引年月日).
    """
    if partner_id is None and partner_code is None:
        partner_id = invoice.partner_erp_id
    if (partner_id is None) == (partner_code is None):
        raise FreeeMappingError("give exactly one of partner_id and partner_code")
    if not invoice.lines:
        raise FreeeMappingError("an invoice needs at least one line")
    body: dict[str, Any] = {
        "company_id": company_id,
        "billing_date": invoice.issue_date.isoformat(),
        "tax_entry_method": "in" if invoice.tax_entry_method is TaxEntryMethod.INCLUSIVE else "out",
        "tax_fraction": rounding_to_tax_fraction(tax_fraction),
        "withholding_tax_entry_method": withholding_tax_entry_method,
        "partner_title": partner_title,
        "memo": invoice.reference,
        "partner_display_name": invoice.recipient_name,
    }
    if partner_id is not None:
        body["partner_id"] = int(partner_id)
    else:
        body["partner_code"] = partner_code
    if template_id is not None:
        body["template_id"] = template_id
    if subject:
        body["subject"] = subject
    if invoice_note:
        body["invoice_note"] = invoice_note
    if send_invoice_number and invoice.number:
        body["invoice_number"] = invoice.number
    if invoice.due_date:
        body["payment_date"] = invoice.due_date.isoformat()
    lines = []
    for ln in invoice.lines:
        rate, reduced = _category_to_rate(ln.tax_category)
        q = ln.quantity
        if q != q.quantize(Decimal("0.001")):
            raise FreeeMappingError("freee quantities have at most 3 decimal places")
        line: dict[str, Any] = {"type": "item", "description": ln.description, "quantity": _json_number(q),
                                "unit_price": _yen_str(ln.unit_price), "tax_rate": rate}
        if reduced:
            line["reduced_tax_rate"] = True
        if invoice.transaction_date:
            line["sales_date"] = invoice.transaction_date.isoformat()
        lines.append(line)
    body["lines"] = lines
    return body


# ---------------------------------------------------------------------------------------------------
# deal (取引) payments ⇄ Payment


def deal_to_payments(deal: Mapping[str, Any], *, invoice_erp_id: str | None = None) -> list[MapResult[Payment]]:
    """The ``payments[]`` of a freee deal → :class:`Payment` list (``invoice_erp_id`` defaults to the
    deal id; pass the freee請求書 invoice id when the caller knows it). An absent key means unpaid."""
    target = invoice_erp_id or (str(deal["id"]) if deal.get("id") is not None else None)
    out: list[MapResult[Payment]] = []
    for p in deal.get("payments") or []:
        out.append(_result(p.get("id"), p, lambda p=p: Payment(
            erp_id=str(p["id"]) if p.get("id") is not None else None, invoice_erp_id=target or "",
            amount=p.get("amount"), paid_on=_date(p.get("date")))))
    return out


def payment_to_deal_payment(payment: Payment, *, company_id: int, from_walletable_id: int | str,
                            from_walletable_type: str = "bank_account") -> dict[str, Any]:
    """:class:`Payment` → body of ``POST /api/1/deals/{id}/payments``. The fee (``payment.fee``) is not
    part of this body: freee's API has no "book the difference as 支払手数料" flag (see README)."""
    if payment.amount < 1:
        raise FreeeMappingError("a freee payment amount is at least ¥1")
    return {"company_id": company_id, "date": payment.paid_on.isoformat(),
            "from_walletable_type": from_walletable_type, "from_walletable_id": int(from_walletable_id),
            "amount": int(payment.amount)}


# ---------------------------------------------------------------------------------------------------
# wallet_txn (口座明細) ⇄ BankDeposit


def wallet_txn_to_deposit(txn: Mapping[str, Any]) -> MapResult[BankDeposit]:
    """An income ``wallet_txn`` → :class:`BankDeposit` (expense lines are rejected: not deposits)."""

    def build() -> BankDeposit:
        if txn.get("entry_side") not in (None, "income"):
            raise ValueError(f"wallet_txn {txn.get('id')} is an {txn.get('entry_side')} line, not a deposit")
        return BankDeposit(erp_id=str(txn["id"]), received_on=_date(txn.get("date")), amount=txn.get("amount"),
                           payer_name=txn.get("description") or "",
                           walletable_id=str(txn["walletable_id"]) if txn.get("walletable_id") is not None else None,
                           matched=int(txn.get("status") or 1) == 2)

    return _result(txn.get("id"), txn, build)


def deposit_to_wallet_txn(deposit: BankDeposit, *, company_id: int, walletable_id: int | str | None = None,
                          walletable_type: str = "bank_account") -> dict[str, Any]:
    """:class:`BankDeposit` → ``walletTxnParams`` for ``POST /api/1/wallet_txns`` (seeding a sandbox)."""
    wid = walletable_id if walletable_id is not None else deposit.walletable_id
    if wid is None:
        raise FreeeMappingError("a wallet_txn needs a walletable_id")
    return {"company_id": company_id, "entry_side": "income", "amount": int(deposit.amount),
            "date": deposit.received_on.isoformat(), "description": deposit.payer_name,
            "walletable_type": walletable_type, "walletable_id": int(wid)}
