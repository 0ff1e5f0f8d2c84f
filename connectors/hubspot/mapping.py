"""HubSpot records ⇄ canonical model (one function pair per object, all in this file).

On the wire every property value is a string (``"6000.00"``, ``"true"``, ``"1700000000000"``,
``"2026-04-01T00:00:00Z"``). Inbound functions turn them into int yen / Decimal / dates (Asia/Tokyo for
datetimes such as ``closedate``; HubSpot *date* properties are midnight UTC and keep their calendar
date) and return a :class:`~connectors.base.MapResult` — an invalid record never raises, it carries the
validation message so the caller can file a review item. Outbound functions return ``{property: str}``.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Callable, Iterable, Mapping, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from renkei.connectors.base import MapResult
from renkei.domain.model import Address, Company, Contact, Deal, EntityKind, LineItem, PaymentTerms, Product, TaxCategory

TOKYO = ZoneInfo("Asia/Tokyo")
M = TypeVar("M")

# Properties to request per object (passing ``properties`` replaces HubSpot's defaults).
COMPANY_PROPERTIES = [
    "name", "domain", "phone", "hubspot_owner_id", "address", "address2", "city", "state", "zip", "country",
    "renkei_name_kana", "renkei_entity_kind", "renkei_corporate_number", "renkei_invoice_registration_number",
    "renkei_partner_code", "renkei_freee_partner_id", "renkei_billing_contact", "renkei_billing_email",
    "renkei_payment_terms", "renkei_credit_hold", "hs_lastmodifieddate", "hs_object_id",
]
CONTACT_PROPERTIES = ["firstname", "lastname", "email", "phone", "associatedcompanyid", "lastmodifieddate", "hs_object_id"]
PRODUCT_PROPERTIES = ["name", "hs_sku", "price", "renkei_tax_category", "renkei_product_code", "renkei_freee_item_id",
                      "hs_cost_of_goods_sold", "renkei_stock",
                      "hs_lastmodifieddate", "hs_object_id"]
LINE_ITEM_PROPERTIES = [
    "name", "hs_sku", "hs_product_id", "quantity", "price", "amount", "discount", "hs_discount_percentage",
    "renkei_tax_category", "hs_tax_rate_group_id", "recurringbillingfrequency", "hs_recurring_billing_start_date",
    "hs_term_in_months", "renkei_effective_date", "hs_lastmodifieddate", "hs_object_id",
]
DEAL_PROPERTIES = [
    "dealname", "amount", "deal_currency_code", "pipeline", "dealstage", "closedate", "hubspot_owner_id",
    "renkei_invoice_id", "renkei_invoice_number", "renkei_invoice_status", "renkei_payment_status",
    "hs_lastmodifieddate", "hs_object_id",
]
PROPERTIES = {"companies": COMPANY_PROPERTIES, "contacts": CONTACT_PROPERTIES, "products": PRODUCT_PROPERTIES,
              "line_items": LINE_ITEM_PROPERTIES, "deals": DEAL_PROPERTIES}


# ---------------------------------------------------------------------------------------------------
# wire value helpers


def _props(record: Mapping[str, Any]) -> Mapping[str, Any]:
    return record.get("properties") or {}


def text(v: Any) -> str | None:
    """Empty string → None (HubSpot sends "" for a cleared value)."""
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def as_bool(v: Any, default: bool = False) -> bool:
    s = text(v)
    if s is None:
        return default
    if s.lower() in ("true", "1", "yes", "on"):
        return True
    if s.lower() in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {s[:20]!r}")


def as_decimal(v: Any) -> Decimal | None:
    s = text(v)
    if s is None:
        return None
    try:
        return Decimal(s.replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"not a number: {s[:20]!r}") from None


def as_int(v: Any) -> int | None:
    d = as_decimal(v)
    if d is None:
        return None
    if d != d.to_integral_value():
        raise ValueError(f"not a whole number: {d}")
    return int(d)


def as_datetime(v: Any) -> datetime | None:
    """Epoch-ms string or ISO-8601 → aware UTC datetime."""
    s = text(v)
    if s is None:
        return None
    if s.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(s) / 1000, tz=timezone.utc)
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def as_business_date(v: Any) -> date | None:
    """A HubSpot *datetime* (e.g. ``closedate``) as an Asia/Tokyo business date."""
    s = text(v)
    if s is None:
        return None
    if len(s) == 10 and s[4] == "-":
        return date.fromisoformat(s)
    return as_datetime(s).astimezone(TOKYO).date()


def as_calendar_date(v: Any) -> date | None:
    """A HubSpot *date* property (midnight UTC on the wire) as its calendar date."""
    s = text(v)
    if s is None:
        return None
    if len(s) == 10 and s[4] == "-":
        return date.fromisoformat(s)
    return as_datetime(s).astimezone(timezone.utc).date()


def date_to_wire(d: date | None) -> str:
    """Calendar date → ``YYYY-MM-DD`` (accepted by HubSpot date properties)."""
    return "" if d is None else d.isoformat()


def datetime_to_wire(d: date | datetime | None) -> str:
    """A business date → epoch ms of midnight Asia/Tokyo (for datetime properties such as ``closedate``)."""
    if d is None:
        return ""
    if not isinstance(d, datetime):
        d = datetime(d.year, d.month, d.day, tzinfo=TOKYO)
    return str(int(d.timestamp() * 1000))


def _wire(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        raise TypeError("float on the wire: money is int yen")
    if isinstance(v, Decimal):
        return format(v.normalize(), "f") if v == v.to_integral_value() else format(v, "f")
    if isinstance(v, Enum):  # before str: TaxCategory is a str Enum, str() would give "TaxCategory.X"
        return str(v.value)
    return str(v)


def _errors(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ())) or "record"
        parts.append(f"{loc}: {e.get('msg')}")
    return "; ".join(parts)


def _map(record: Mapping[str, Any], build: Callable[[Mapping[str, Any]], M]) -> MapResult[M]:
    rid = str(record.get("id")) if record.get("id") is not None else None
    try:
        return MapResult(source_id=rid, value=build(record), raw=record)
    except ValidationError as exc:
        return MapResult(source_id=rid, error=_errors(exc), raw=record)
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        return MapResult(source_id=rid, error=f"{type(exc).__name__}: {exc}", raw=record)


def _select(props: dict[str, str], only: Iterable[str] | None, clear_missing: bool) -> dict[str, str]:
    if only is not None:
        wanted = set(only)
        props = {k: v for k, v in props.items() if k in wanted}
    if not clear_missing:
        props = {k: v for k, v in props.items() if v != ""}
    return props


# ---------------------------------------------------------------------------------------------------
# company ⇄ HubSpot company


def parse_payment_terms(v: Any) -> PaymentTerms | None:
    """``"0/1/0"`` (closing_day/pay_month_offset/pay_day) or a JSON object."""
    s = text(v)
    if s is None:
        return None
    if s.startswith("{"):
        return PaymentTerms.model_validate(json.loads(s))
    parts = s.split("/")
    if len(parts) != 3:
        raise ValueError(f"payment terms must be closing/offset/pay_day: {s[:30]!r}")
    c, o, p = (int(x) for x in parts)
    return PaymentTerms(closing_day=c, pay_month_offset=o, pay_day=p)


def payment_terms_to_wire(t: PaymentTerms | None) -> str:
    return "" if t is None else f"{t.closing_day}/{t.pay_month_offset}/{t.pay_day}"


def company_from_hubspot(record: Mapping[str, Any]) -> MapResult[Company]:
    def build(r: Mapping[str, Any]) -> Company:
        p = _props(r)
        addr_fields = {"street": text(p.get("address")), "building": text(p.get("address2")),
                       "city": text(p.get("city")), "prefecture": text(p.get("state")),
                       "postal_code": text(p.get("zip"))}
        address = Address(**addr_fields) if any(addr_fields.values()) else None
        return Company(
            crm_id=str(r["id"]), erp_id=text(p.get("renkei_freee_partner_id")), name=text(p.get("name")) or "",
            name_kana=text(p.get("renkei_name_kana")),
            entity_kind=EntityKind(text(p.get("renkei_entity_kind")) or EntityKind.CORPORATION.value),
            corporate_number=text(p.get("renkei_corporate_number")),
            registration_number=text(p.get("renkei_invoice_registration_number")),
            partner_code=text(p.get("renkei_partner_code")), domain=text(p.get("domain")), phone=text(p.get("phone")),
            sales_owner=text(p.get("hubspot_owner_id")), address=address,
            billing_contact_name=text(p.get("renkei_billing_contact")),
            billing_email=text(p.get("renkei_billing_email")),
            payment_terms=parse_payment_terms(p.get("renkei_payment_terms")),
            credit_hold=as_bool(p.get("renkei_credit_hold")), archived=bool(r.get("archived", False)),
            updated_at=as_datetime(p.get("hs_lastmodifieddate") or r.get("updatedAt")),
        )

    return _map(record, build)


def company_to_hubspot(company: Company, *, only: Iterable[str] | None = None,
                       clear_missing: bool = False) -> dict[str, str]:
    """Canonical company → HubSpot properties. ``only`` limits to these HubSpot property names (e.g. the
    fields the ERP owns); ``clear_missing`` sends "" for None (clears the value in HubSpot)."""
    a = company.address
    props = {
        "name": _wire(company.name), "domain": _wire(company.domain), "phone": _wire(company.phone),
        "hubspot_owner_id": _wire(company.sales_owner),
        "address": _wire(a.street if a else None), "address2": _wire(a.building if a else None),
        "city": _wire(a.city if a else None), "state": _wire(a.prefecture if a else None),
        "zip": _wire(a.postal_code if a else None),
        "renkei_name_kana": _wire(company.name_kana), "renkei_entity_kind": _wire(company.entity_kind),
        "renkei_corporate_number": _wire(company.corporate_number),
        "renkei_invoice_registration_number": _wire(company.registration_number),
        "renkei_partner_code": _wire(company.partner_code), "renkei_freee_partner_id": _wire(company.erp_id),
        "renkei_billing_contact": _wire(company.billing_contact_name),
        "renkei_billing_email": _wire(company.billing_email),
        "renkei_payment_terms": payment_terms_to_wire(company.payment_terms),
        "renkei_credit_hold": _wire(company.credit_hold),
    }
    return _select(props, only, clear_missing)


# ---------------------------------------------------------------------------------------------------
# contact


def contact_from_hubspot(record: Mapping[str, Any]) -> MapResult[Contact]:
    def build(r: Mapping[str, Any]) -> Contact:
        p = _props(r)
        company = text(p.get("associatedcompanyid")) or _first_association(r, "companies")
        return Contact(crm_id=str(r["id"]), company_crm_id=company, last_name=text(p.get("lastname")) or "",
                       first_name=text(p.get("firstname")), email=text(p.get("email")), phone=text(p.get("phone")))

    return _map(record, build)


def contact_to_hubspot(contact: Contact, *, only: Iterable[str] | None = None, clear_missing: bool = False) -> dict[str, str]:
    props = {"lastname": _wire(contact.last_name), "firstname": _wire(contact.first_name),
             "email": _wire(contact.email), "phone": _wire(contact.phone)}
    return _select(props, only, clear_missing)


# ---------------------------------------------------------------------------------------------------
# product (品目)


def product_from_hubspot(record: Mapping[str, Any]) -> MapResult[Product]:
    def build(r: Mapping[str, Any]) -> Product:
        p = _props(r)
        tax = text(p.get("renkei_tax_category"))
        return Product(code=text(p.get("hs_sku")) or text(p.get("renkei_product_code")) or "",
                       name=text(p.get("name")) or "", unit_price=text(p.get("price")),
                       tax_category=TaxCategory(tax) if tax else TaxCategory.STANDARD_10, crm_id=str(r["id"]),
                       erp_id=text(p.get("renkei_freee_item_id")), active=not bool(r.get("archived", False)),
                       cost_price=as_int(p.get("hs_cost_of_goods_sold")), stock=as_decimal(p.get("renkei_stock")))

    return _map(record, build)


def product_to_hubspot(product: Product, *, only: Iterable[str] | None = None, clear_missing: bool = False) -> dict[str, str]:
    props = {"name": _wire(product.name), "hs_sku": _wire(product.code), "renkei_product_code": _wire(product.code),
             "price": _wire(product.unit_price), "renkei_tax_category": _wire(product.tax_category),
             "renkei_freee_item_id": _wire(product.erp_id), "hs_cost_of_goods_sold": _wire(product.cost_price),
             "renkei_stock": _wire(product.stock)}
    return _select(props, only, clear_missing)


# ---------------------------------------------------------------------------------------------------
# line item


def line_item_from_hubspot(record: Mapping[str, Any]) -> MapResult[LineItem]:
    def build(r: Mapping[str, Any]) -> LineItem:
        p = _props(r)
        tax = text(p.get("renkei_tax_category"))
        return LineItem(
            crm_id=str(r["id"]), product_code=text(p.get("hs_sku")), name=text(p.get("name")) or "",
            quantity=text(p.get("quantity")) or "", unit_price=text(p.get("price")) or "",
            discount=text(p.get("discount")) or 0,
            discount_percent=text(p.get("hs_discount_percentage")) or Decimal(0),
            tax_category=TaxCategory(tax) if tax else None,
            recurring_frequency=text(p.get("recurringbillingfrequency")),
            recurring_start=as_calendar_date(p.get("hs_recurring_billing_start_date")),
            term_months=as_int(p.get("hs_term_in_months")),
            effective_date=as_calendar_date(p.get("renkei_effective_date")),
        )

    return _map(record, build)


def line_item_to_hubspot(line: LineItem, *, only: Iterable[str] | None = None, clear_missing: bool = False) -> dict[str, str]:
    props = {
        "name": _wire(line.name), "hs_sku": _wire(line.product_code), "quantity": _wire(line.quantity),
        "price": _wire(line.unit_price), "discount": _wire(line.discount or None),
        "hs_discount_percentage": _wire(line.discount_percent or None),
        "renkei_tax_category": _wire(line.tax_category),
        "recurringbillingfrequency": _wire(line.recurring_frequency),
        "hs_recurring_billing_start_date": date_to_wire(line.recurring_start),
        "hs_term_in_months": _wire(line.term_months), "renkei_effective_date": date_to_wire(line.effective_date),
    }
    return _select(props, only, clear_missing)


# ---------------------------------------------------------------------------------------------------
# deal (商談)


def _first_association(record: Mapping[str, Any], to_type: str) -> str | None:
    """Inline ``associations`` (``?associations=companies``) or the ``companies`` list added by
    :meth:`HubSpotClient.read_deals_with_associations` (primary first)."""
    listed = record.get(to_type)
    if isinstance(listed, list) and listed and not isinstance(listed[0], Mapping):
        return str(listed[0])
    assoc = (record.get("associations") or {}).get(to_type) or {}
    results = assoc.get("results") if isinstance(assoc, Mapping) else None
    if results:
        primary = [x for x in results if "primary" in str(x.get("type", "")).lower()]
        return str((primary or results)[0].get("id"))
    return None


def deal_from_hubspot(record: Mapping[str, Any], line_items: Iterable[Mapping[str, Any]] | None = None) -> MapResult[Deal]:
    """Deal with its line items (``line_items`` or ``record["line_items"]``, as HubSpot records). A line
    that does not map makes the whole deal a review item (an invoice must not silently miss a line)."""
    def build(r: Mapping[str, Any]) -> Deal:
        p = _props(r)
        raw_lines = list(line_items if line_items is not None else r.get("line_items") or [])
        lines, errs = [], []
        for li in raw_lines:
            res = line_item_from_hubspot(li)
            if res.ok:
                lines.append(res.value)
            else:
                errs.append(f"line_item {res.source_id}: {res.error}")
        if errs:
            raise ValueError("; ".join(errs))
        return Deal(
            crm_id=str(r["id"]), name=text(p.get("dealname")) or "", amount=text(p.get("amount")),
            currency=text(p.get("deal_currency_code")) or "JPY", pipeline=text(p.get("pipeline")) or "default",
            stage=text(p.get("dealstage")) or "", close_date=as_business_date(p.get("closedate")),
            company_crm_id=_first_association(r, "companies"), owner=text(p.get("hubspot_owner_id")),
            line_items=lines, updated_at=as_datetime(p.get("hs_lastmodifieddate") or r.get("updatedAt")),
        )

    return _map(record, build)


def deal_to_hubspot(deal: Deal, *, only: Iterable[str] | None = None, clear_missing: bool = False) -> dict[str, str]:
    props = {"dealname": _wire(deal.name), "amount": _wire(deal.amount), "deal_currency_code": _wire(deal.currency),
             "pipeline": _wire(deal.pipeline), "dealstage": _wire(deal.stage),
             "closedate": datetime_to_wire(deal.close_date), "hubspot_owner_id": _wire(deal.owner)}
    return _select(props, only, clear_missing)


__all__ = [
    "COMPANY_PROPERTIES", "CONTACT_PROPERTIES", "DEAL_PROPERTIES", "LINE_ITEM_PROPERTIES", "PRODUCT_PROPERTIES",
    "PROPERTIES", "as_bool", "as_business_date", "as_calendar_date", "as_datetime", "as_decimal", "company_from_hubspot",
    "company_to_hubspot", "contact_from_hubspot", "contact_to_hubspot", "date_to_wire", "datetime_to_wire",
    "deal_from_hubspot", "deal_to_hubspot", "line_item_from_hubspot", "line_item_to_hubspot", "parse_payment_terms",
    "product_from_hubspot", "product_to_hubspot",
]
