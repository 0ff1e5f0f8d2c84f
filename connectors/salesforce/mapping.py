"""Salesforce records ⇄ canonical model: Account ⇄ :class:`Company`, Opportunity + OpportunityLineItems ⇄
:class:`Deal`, Product2 (+ standard PricebookEntry) ⇄ :class:`Product`.

Inbound functions return a :class:`~connectors.base.MapResult` — an invalid record never raises, it carries
the validation message so the caller can file a review item. Numbers arrive as ``Decimal`` (the client
parses JSON that way); yen amounts must be whole. ``CloseDate`` and the ``*_Date__c`` fields are calendar
dates (no time zone); datetimes are UTC on the wire.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Any, Callable, Iterable, Mapping, TypeVar

from pydantic import ValidationError

from renkei.connectors.base import MapResult
from renkei.domain.model import Address, Company, Deal, EntityKind, LineItem, PaymentTerms, Product, TaxCategory

from .client import parse_sf_datetime

M = TypeVar("M")
DEAL_AMOUNT_ROUNDING = ROUND_HALF_UP  # Opportunity.Amount → whole yen (it is compared, never invoiced)

ACCOUNT_FIELDS = [
    "Id", "Name", "Phone", "Website", "OwnerId", "BillingStreet", "BillingCity", "BillingState", "BillingPostalCode",
    "BillingCountry", "IsDeleted", "MasterRecordId", "LastModifiedDate", "SystemModstamp",
    "Renkei_Name_Kana__c", "Renkei_Entity_Kind__c", "Renkei_Corporate_Number__c",
    "Renkei_Invoice_Registration_Number__c", "Renkei_Partner_Code__c", "Renkei_ERP_Partner_Id__c",
    "Renkei_Billing_Contact__c", "Renkei_Billing_Email__c", "Renkei_Payment_Terms__c", "Renkei_Credit_Hold__c",
]
LINE_FIELDS = [
    "Id", "Quantity", "UnitPrice", "ListPrice", "TotalPrice", "Discount", "ProductCode", "Product2Id", "Product2.Name",
    "Product2.ProductCode", "Product2.Renkei_Tax_Category__c", "Description", "SortOrder", "ServiceDate",
    "Renkei_Tax_Category__c", "Renkei_Effective_Date__c", "Renkei_Billing_Frequency__c",
    "Renkei_Billing_Start_Date__c", "Renkei_Term_Months__c", "Renkei_Ended__c",
]
OPPORTUNITY_FIELDS = [
    "Id", "Name", "Amount", "StageName", "IsWon", "IsClosed", "CloseDate", "AccountId", "OwnerId",
    "LastModifiedDate", "SystemModstamp", "Renkei_Invoice_Id__c", "Renkei_Invoice_Number__c",
    "Renkei_Invoice_Status__c", "Renkei_Payment_Status__c",
]
PRODUCT_FIELDS = ["Id", "Name", "ProductCode", "IsActive", "Renkei_Item_Code__c", "Renkei_ERP_Item_Id__c",
                  "Renkei_Tax_Category__c", "LastModifiedDate", "SystemModstamp"]


def lines_subquery(fields: Iterable[str] = LINE_FIELDS) -> str:
    return f"(SELECT {', '.join(fields)} FROM OpportunityLineItems ORDER BY SortOrder, Id)"


# ---------------------------------------------------------------------------------------------------
# wire helpers


def text(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def yen(v: Any) -> int | None:
    """A currency value as whole yen (Decimal from the client; a fraction is an error, never rounded here)."""
    if v is None:
        return None
    d = Decimal(str(v))
    if d != d.to_integral_value():
        raise ValueError(f"not a whole yen amount: {d}")
    return int(d)


def decimal(v: Any) -> Decimal | None:
    if v is None:
        return None
    d = Decimal(str(v))
    return d.normalize() if d == d.to_integral_value() else d


def as_date(v: Any) -> date | None:
    s = text(v)
    return date.fromisoformat(s[:10]) if s else None


def as_datetime(v: Any) -> datetime | None:
    s = text(v)
    return parse_sf_datetime(s) if s else None


def domain_of(website: Any) -> str | None:
    s = text(website)
    if not s:
        return None
    for prefix in ("https://", "http://"):
        if s.lower().startswith(prefix):
            s = s[len(prefix):]
    s = s.split("/", 1)[0]
    return s[4:] if s.lower().startswith("www.") else s


def _wire(v: Any) -> Any:
    if isinstance(v, Enum):
        return v.value
    return v


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ())) or 'record'}: {e.get('msg')}" for e in exc.errors())


def _map(record: Mapping[str, Any], build: Callable[[Mapping[str, Any]], M]) -> MapResult[M]:
    rid = text(record.get("Id"))
    try:
        return MapResult(source_id=rid, value=build(record), raw=record)
    except ValidationError as exc:
        return MapResult(source_id=rid, error=_errors(exc), raw=record)
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
        return MapResult(source_id=rid, error=f"{type(exc).__name__}: {exc}", raw=record)


def _rel(record: Mapping[str, Any], path: str) -> Any:
    cur: Any = record
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


# ---------------------------------------------------------------------------------------------------
# Account ⇄ Company


def parse_payment_terms(v: Any) -> PaymentTerms | None:
    s = text(v)
    if s is None:
        return None
    parts = s.split("/")
    if len(parts) != 3:
        raise ValueError(f"payment terms must be closing/offset/pay_day: {s[:30]!r}")
    c, o, p = (int(x) for x in parts)
    return PaymentTerms(closing_day=c, pay_month_offset=o, pay_day=p)


def payment_terms_to_wire(t: PaymentTerms | None) -> str | None:
    return None if t is None else f"{t.closing_day}/{t.pay_month_offset}/{t.pay_day}"


def company_from_salesforce(record: Mapping[str, Any]) -> MapResult[Company]:
    """An Account; a deleted or merged-away one maps with ``archived=True`` (``raw["MasterRecordId"]`` names
    the survivor of a merge)."""
    def build(r: Mapping[str, Any]) -> Company:
        street_lines = (text(r.get("BillingStreet")) or "").split("\n", 1)
        addr = {"street": text(street_lines[0]), "building": text(street_lines[1]) if len(street_lines) > 1 else None,
                "city": text(r.get("BillingCity")), "prefecture": text(r.get("BillingState")),
                "postal_code": text(r.get("BillingPostalCode"))}
        kind = text(r.get("Renkei_Entity_Kind__c"))
        return Company(
            crm_id=str(r["Id"]), erp_id=text(r.get("Renkei_ERP_Partner_Id__c")), name=text(r.get("Name")) or "",
            name_kana=text(r.get("Renkei_Name_Kana__c")),
            entity_kind=EntityKind(kind) if kind else EntityKind.CORPORATION,
            corporate_number=text(r.get("Renkei_Corporate_Number__c")),
            registration_number=text(r.get("Renkei_Invoice_Registration_Number__c")),
            partner_code=text(r.get("Renkei_Partner_Code__c")), domain=domain_of(r.get("Website")),
            phone=text(r.get("Phone")), sales_owner=text(r.get("OwnerId")),
            address=Address(**addr) if any(addr.values()) else None,
            billing_contact_name=text(r.get("Renkei_Billing_Contact__c")),
            billing_email=text(r.get("Renkei_Billing_Email__c")),
            payment_terms=parse_payment_terms(r.get("Renkei_Payment_Terms__c")),
            credit_hold=bool(r.get("Renkei_Credit_Hold__c") or False),
            archived=bool(r.get("IsDeleted") or r.get("MasterRecordId")),
            updated_at=as_datetime(r.get("LastModifiedDate") or r.get("SystemModstamp")),
        )

    return _map(record, build)


def company_to_salesforce(company: Company, *, only: Iterable[str] | None = None,
                          clear_missing: bool = False) -> dict[str, Any]:
    """Canonical company → Account fields. ``only`` limits to these Salesforce field names;
    ``clear_missing`` sends null for None (clears the field)."""
    a = company.address
    street = None
    if a is not None and (a.street or a.building):
        street = "\n".join(x for x in (a.street, a.building) if x)
    fields: dict[str, Any] = {
        "Name": company.name, "Phone": company.phone, "Website": company.domain,
        "BillingStreet": street, "BillingCity": a.city if a else None, "BillingState": a.prefecture if a else None,
        "BillingPostalCode": a.postal_code if a else None,
        "Renkei_Name_Kana__c": company.name_kana, "Renkei_Entity_Kind__c": _wire(company.entity_kind),
        "Renkei_Corporate_Number__c": company.corporate_number,
        "Renkei_Invoice_Registration_Number__c": company.registration_number,
        "Renkei_Partner_Code__c": company.partner_code, "Renkei_ERP_Partner_Id__c": company.erp_id,
        "Renkei_Billing_Contact__c": company.billing_contact_name, "Renkei_Billing_Email__c": company.billing_email,
        "Renkei_Payment_Terms__c": payment_terms_to_wire(company.payment_terms),
        "Renkei_Credit_Hold__c": company.credit_hold,
    }
    if only is not None:
        wanted = {x.lower() for x in only}
        fields = {k: v for k, v in fields.items() if k.lower() in wanted}
    if not clear_missing:
        fields = {k: v for k, v in fields.items() if v is not None}
    return fields


# ---------------------------------------------------------------------------------------------------
# Opportunity (+ lines) → Deal


def line_item_from_salesforce(record: Mapping[str, Any]) -> MapResult[LineItem]:
    """An OpportunityLineItem. Salesforce refuses a zero quantity, so a line that ends a subscription item
    (HubSpot: quantity 0) is marked ``Renkei_Ended__c`` and maps to quantity 0 with its
    ``Renkei_Effective_Date__c`` (the canonical amendment that ends the item)."""
    def build(r: Mapping[str, Any]) -> LineItem:
        tax = text(r.get("Renkei_Tax_Category__c")) or text(_rel(r, "Product2.Renkei_Tax_Category__c"))
        term = decimal(r.get("Renkei_Term_Months__c"))
        return LineItem(
            crm_id=str(r["Id"]), product_code=text(_rel(r, "Product2.ProductCode")) or text(r.get("ProductCode")),
            name=text(_rel(r, "Product2.Name")) or text(r.get("Description")) or text(r.get("Name")) or "",
            quantity=Decimal(0) if r.get("Renkei_Ended__c") else decimal(r.get("Quantity")),
            unit_price=yen(r.get("UnitPrice")),
            discount_percent=decimal(r.get("Discount")) or Decimal(0),
            tax_category=TaxCategory(tax) if tax else None,
            recurring_frequency=text(r.get("Renkei_Billing_Frequency__c")),
            recurring_start=as_date(r.get("Renkei_Billing_Start_Date__c")),
            term_months=int(term) if term is not None else None,
            effective_date=as_date(r.get("Renkei_Effective_Date__c")),
        )

    return _map(record, build)


def deal_amount(r: Mapping[str, Any]) -> int | None:
    """The canonical deal amount: ``Amount`` without the ``TotalPrice`` of ended lines (Salesforce cannot hold
    the quantity 0 of an ended item, so its roll-up still counts them), in whole yen by
    :data:`DEAL_AMOUNT_ROUNDING` (a JPY org has no fractions; an org with two decimal places may)."""
    amount = r.get("Amount")
    if amount is None:
        return None
    total = Decimal(str(amount))
    sub = r.get("OpportunityLineItems") or {}
    for li in (sub.get("records") or []) if isinstance(sub, Mapping) else []:
        if li.get("Renkei_Ended__c") and li.get("TotalPrice") is not None:
            total -= Decimal(str(li["TotalPrice"]))
    return int(total.quantize(Decimal(1), DEAL_AMOUNT_ROUNDING))


def deal_from_salesforce(record: Mapping[str, Any]) -> MapResult[Deal]:
    """An Opportunity with its ``OpportunityLineItems`` subquery. A line that does not map makes the whole
    deal a review item (an invoice must not silently miss a line)."""
    def build(r: Mapping[str, Any]) -> Deal:
        sub = r.get("OpportunityLineItems") or {}
        lines, errs = [], []
        for li in (sub.get("records") or []) if isinstance(sub, Mapping) else []:
            res = line_item_from_salesforce(li)
            if res.ok:
                lines.append(res.value)
            else:
                errs.append(f"line_item {res.source_id}: {res.error}")
        if errs:
            raise ValueError("; ".join(errs))
        return Deal(
            crm_id=str(r["Id"]), name=text(r.get("Name")) or "", amount=deal_amount(r),
            currency=text(r.get("CurrencyIsoCode")) or "JPY", pipeline="default", stage=text(r.get("StageName")) or "",
            close_date=as_date(r.get("CloseDate")), company_crm_id=text(r.get("AccountId")),
            owner=text(r.get("OwnerId")), line_items=lines,
            updated_at=as_datetime(r.get("LastModifiedDate") or r.get("SystemModstamp")),
        )

    return _map(record, build)


# ---------------------------------------------------------------------------------------------------
# Product2 ⇄ Product


def product_from_salesforce(record: Mapping[str, Any], unit_price: Any = None) -> MapResult[Product]:
    def build(r: Mapping[str, Any]) -> Product:
        tax = text(r.get("Renkei_Tax_Category__c"))
        return Product(code=text(r.get("Renkei_Item_Code__c")) or text(r.get("ProductCode")) or "",
                       name=text(r.get("Name")) or "", unit_price=yen(unit_price),
                       tax_category=TaxCategory(tax) if tax else TaxCategory.STANDARD_10, crm_id=str(r["Id"]),
                       erp_id=text(r.get("Renkei_ERP_Item_Id__c")), active=bool(r.get("IsActive")))

    return _map(record, build)


def product_to_salesforce(product: Product) -> dict[str, Any]:
    """Product2 fields (the upsert key ``Renkei_Item_Code__c`` included); the price goes to the standard
    PricebookEntry, not the product."""
    return {"Name": product.name, "ProductCode": product.code, "Renkei_Item_Code__c": product.code,
            "IsActive": product.active, "Renkei_Tax_Category__c": _wire(product.tax_category),
            **({"Renkei_ERP_Item_Id__c": product.erp_id} if product.erp_id else {})}


__all__ = [
    "ACCOUNT_FIELDS", "LINE_FIELDS", "OPPORTUNITY_FIELDS", "PRODUCT_FIELDS", "company_from_salesforce",
    "company_to_salesforce", "deal_from_salesforce", "domain_of", "line_item_from_salesforce", "lines_subquery",
    "parse_payment_terms", "product_from_salesforce", "product_to_salesforce", "yen",
]
