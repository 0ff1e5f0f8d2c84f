"""The ``Renkei_*__c`` custom fields Renkei reads and writes in Salesforce, and how the shared
``renkei_*`` names (the HubSpot property names flows use) translate to Salesforce fields.

Salesforce's data API cannot create fields (reference §6): an admin installs them once (see
``connectors/salesforce/README.md``); :meth:`SalesforceCRM.prepare` checks through ``describe`` that they
exist and names the missing ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Mapping
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")


@dataclass(frozen=True)
class CustomField:
    object: str
    name: str
    type: str  # Text, Email, Url, Checkbox, Date, DateTime, Number, Currency, Picklist
    label: str
    length: int | None = None
    external_id: bool = False
    unique: bool = False
    values: tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.object}.{self.name}"


_TAX = ("standard_10", "reduced_8", "exempt", "non_taxable")

RENKEI_FIELDS: tuple[CustomField, ...] = (
    CustomField("Account", "Renkei_Name_Kana__c", "Text", "フリガナ", 255),
    CustomField("Account", "Renkei_Entity_Kind__c", "Picklist", "法人／個人事業者", values=("corporation", "sole_trader")),
    CustomField("Account", "Renkei_Corporate_Number__c", "Text", "法人番号", 13),
    CustomField("Account", "Renkei_Invoice_Registration_Number__c", "Text", "適格請求書発行事業者登録番号", 14),
    CustomField("Account", "Renkei_Partner_Code__c", "Text", "ERP 取引先コード", 64, external_id=True, unique=True),
    CustomField("Account", "Renkei_ERP_Partner_Id__c", "Text", "ERP 取引先ID", 64, external_id=True, unique=True),
    CustomField("Account", "Renkei_Billing_Contact__c", "Text", "請求先担当者", 255),
    CustomField("Account", "Renkei_Billing_Email__c", "Email", "請求書送付先メール"),
    CustomField("Account", "Renkei_Payment_Terms__c", "Text", "支払条件", 40),
    CustomField("Account", "Renkei_Credit_Hold__c", "Checkbox", "与信停止"),
    CustomField("Account", "Renkei_Sync_Status__c", "Text", "連携ステータス", 255),
    CustomField("Opportunity", "Renkei_Invoice_Id__c", "Text", "ERP 請求書ID", 64),
    CustomField("Opportunity", "Renkei_Invoice_Number__c", "Text", "請求書番号", 64),
    CustomField("Opportunity", "Renkei_Invoice_Status__c", "Text", "請求書ステータス", 40),
    CustomField("Opportunity", "Renkei_Invoice_Url__c", "Url", "請求書URL"),
    CustomField("Opportunity", "Renkei_Invoiced_At__c", "DateTime", "請求書作成日時"),
    CustomField("Opportunity", "Renkei_Invoice_Comment__c", "Text", "請求書コメント", 255),
    CustomField("Opportunity", "Renkei_Invoice_Total__c", "Currency", "請求金額（税込）"),
    CustomField("Opportunity", "Renkei_Payment_Status__c", "Text", "入金ステータス", 40),
    CustomField("Opportunity", "Renkei_Paid_Amount__c", "Currency", "入金額"),
    CustomField("Opportunity", "Renkei_Paid_At__c", "Date", "入金日"),
    CustomField("Opportunity", "Renkei_Outstanding_Amount__c", "Currency", "未入金額"),
    CustomField("Opportunity", "Renkei_Sync_Status__c", "Text", "連携ステータス", 255),
    CustomField("OpportunityLineItem", "Renkei_Tax_Category__c", "Picklist", "税区分", values=_TAX),
    CustomField("OpportunityLineItem", "Renkei_Effective_Date__c", "Date", "変更の適用日"),
    CustomField("OpportunityLineItem", "Renkei_Billing_Frequency__c", "Picklist", "課金周期",
                values=("monthly", "quarterly", "annually")),
    CustomField("OpportunityLineItem", "Renkei_Billing_Start_Date__c", "Date", "課金開始日"),
    CustomField("OpportunityLineItem", "Renkei_Term_Months__c", "Number", "契約期間（月）"),
    CustomField("OpportunityLineItem", "Renkei_Ended__c", "Checkbox", "終了（変更の適用日に終了）"),
    CustomField("Product2", "Renkei_Item_Code__c", "Text", "ERP 品目コード", 64, external_id=True, unique=True),
    CustomField("Product2", "Renkei_ERP_Item_Id__c", "Text", "ERP 品目ID", 64),
    CustomField("Product2", "Renkei_Tax_Category__c", "Picklist", "税区分", values=_TAX),
    CustomField("Product2", "Renkei_Cost_Price__c", "Currency", "原価"),
    CustomField("Product2", "Renkei_Stock__c", "Number", "在庫数"),
)
OBJECTS = ("Account", "Opportunity", "OpportunityLineItem", "Product2")

# shared (HubSpot-vocabulary) names → Salesforce fields, where the generic renkei_x_y → Renkei_X_Y__c rule
# does not give the field
ALIASES: dict[str, dict[str, str]] = {
    "Account": {
        "name": "Name", "phone": "Phone", "domain": "Website", "hubspot_owner_id": "OwnerId", "owner": "OwnerId",
        "address": "BillingStreet", "city": "BillingCity", "state": "BillingState", "zip": "BillingPostalCode",
        "country": "BillingCountry", "renkei_freee_partner_id": "Renkei_ERP_Partner_Id__c",
        "renkei_erp_partner_id": "Renkei_ERP_Partner_Id__c",
    },
    "Opportunity": {
        "dealname": "Name", "dealstage": "StageName", "closedate": "CloseDate", "amount": "Amount",
        "hubspot_owner_id": "OwnerId", "renkei_freee_invoice_id": "Renkei_Invoice_Id__c",
    },
    "Product2": {
        "name": "Name", "hs_sku": "ProductCode", "renkei_product_code": "Renkei_Item_Code__c",
        "renkei_freee_item_id": "Renkei_ERP_Item_Id__c", "renkei_erp_item_id": "Renkei_ERP_Item_Id__c",
    },
}


def field_name(sobject: str, key: str) -> str:
    """``renkei_invoice_number`` → ``Renkei_Invoice_Number__c``; HubSpot standard names through
    :data:`ALIASES`; anything else is taken as a Salesforce field name."""
    alias = ALIASES.get(sobject, {}).get(key)
    if alias:
        return alias
    if key.startswith("renkei_"):
        return "Renkei_" + "_".join(p.capitalize() for p in key[len("renkei_"):].split("_")) + "__c"
    return key


def _date(v: Any) -> date | None:
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).astimezone(TOKYO).date()
    if isinstance(v, date):
        return v
    s = str(v).strip()
    if s.isdigit():  # epoch ms (HubSpot date properties: midnight UTC)
        return datetime.fromtimestamp(int(s) / 1000, tz=timezone.utc).date()
    return date.fromisoformat(s[:10])


def _datetime(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    if isinstance(v, date):
        return datetime.combine(v, time(0), TOKYO)
    s = str(v).strip()
    if s.isdigit():
        return datetime.fromtimestamp(int(s) / 1000, tz=timezone.utc)
    if len(s) == 10:
        return datetime.combine(date.fromisoformat(s), time(0), TOKYO)
    s = s.replace("Z", "+00:00")
    if len(s) >= 5 and s[-5] in "+-" and s[-3] != ":":
        s = s[:-2] + ":" + s[-2:]
    dt = datetime.fromisoformat(s)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def convert(describe: Mapping[str, Any], value: Any) -> Any:
    """A value for a field of this describe ``type`` (``""`` and None clear it); raises ValueError/TypeError."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, float):
        raise TypeError("float value: use int yen, Decimal or str")
    t = describe.get("type")
    if t == "boolean":
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in ("true", "false"):
            return s == "true"
        raise ValueError(f"not a boolean: {str(value)[:20]!r}")
    if t in ("currency", "double", "percent", "int"):
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        try:
            d = Decimal(str(value).strip().replace(",", ""))
        except InvalidOperation:
            raise ValueError(f"not a number: {str(value)[:20]!r}") from None
        return int(d) if t == "int" else d
    if t == "date":
        return _date(value)
    if t == "datetime":
        return _datetime(value)
    if t == "reference" or t == "id":
        return str(value)
    return str(value)  # lengths, picklists and e-mail shapes are Salesforce's to judge (per-record errors)


__all__ = ["ALIASES", "CustomField", "OBJECTS", "RENKEI_FIELDS", "convert", "field_name"]
