"""Salesforce objects the sandbox serves: fields, key prefixes, relationships and the ``Renkei_*__c``
custom fields (what ``describe`` returns and what SOQL and writes are checked against).

Field types follow the describe vocabulary (``id, string, textarea, phone, url, email, picklist, boolean,
currency, double, percent, int, date, datetime, reference``). The ``Renkei_*__c`` fields mirror the HubSpot
``renkei_*`` properties (``connectors/hubspot/properties.py``); ``connectors.salesforce.fields`` names the
same set for the connector.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def id18(id15: str) -> str:
    """The case-insensitive 18-character form of a 15-character Salesforce id (checksum suffix)."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX[bits]
    return id15 + suffix


def normalise_id(value: str) -> str | None:
    """A 15- or 18-character id in its 18-character form (the case of an 18-char input is repaired from
    its checksum); None when ``value`` is not shaped like an id."""
    if not isinstance(value, str) or len(value) not in (15, 18) or not value.isalnum():
        return None
    if len(value) == 15:
        return id18(value)
    # case-insensitive 18-char id: restore the case of the first 15 from the suffix
    base = value[:15]
    out = []
    for chunk in range(3):
        try:
            bits = _SUFFIX.index(value[15 + chunk].upper())
        except ValueError:
            return None
        for i, ch in enumerate(base[chunk * 5:chunk * 5 + 5]):
            out.append(ch.upper() if bits & (1 << i) else ch.lower() if ch.isalpha() else ch)
    fixed = "".join(out)
    return id18(fixed) if id18(fixed)[15:].upper() == value[15:].upper() else None


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: str = ""
    length: int = 0
    required: bool = False  # on create (nillable=False and no default)
    createable: bool = True
    updateable: bool = True
    ref: str | None = None  # referenceTo
    external_id: bool = False
    unique: bool = False
    case_sensitive: bool = False
    custom: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    precision: int = 0
    scale: int = 0
    description: str = ""

    @property
    def relationship_name(self) -> str | None:
        if self.type != "reference":
            return None
        if self.name.endswith("__c"):
            return self.name[:-3] + "__r"
        return self.name[:-2] if self.name.endswith("Id") else None

    def describe(self) -> dict:
        ro = not (self.createable or self.updateable)
        return {
            "name": self.name, "label": self.label or self.name, "type": self.type,
            "length": self.length if self.type in ("string", "textarea", "phone", "url", "email", "picklist") else 0,
            "custom": self.custom, "externalId": self.external_id, "unique": self.unique,
            "caseSensitive": self.case_sensitive, "idLookup": self.name == "Id" or self.external_id,
            "nillable": not self.required and self.type != "boolean" and self.name != "Id",
            "createable": self.createable, "updateable": self.updateable, "calculated": False,
            "defaultedOnCreate": self.type == "boolean" or (ro and self.name != "Id"),
            "filterable": self.type != "textarea" or self.length <= 255, "sortable": True,
            "referenceTo": [self.ref] if self.ref else [], "relationshipName": self.relationship_name,
            "picklistValues": [{"active": True, "defaultValue": False, "label": v, "value": v} for v in self.picklist],
            "restrictedPicklist": self.restricted,
            "precision": self.precision, "scale": self.scale, "soapType": _SOAP.get(self.type, "xsd:string"),
            "inlineHelpText": self.description or None,
        }


_SOAP = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "currency": "xsd:double",
         "double": "xsd:double", "percent": "xsd:double", "int": "xsd:int", "date": "xsd:date",
         "datetime": "xsd:dateTime"}


def S(name: str, length: int = 255, **kw) -> Field:
    return Field(name, kw.pop("type", "string"), length=length, **kw)


def RO(name: str, type_: str, **kw) -> Field:
    return Field(name, type_, createable=False, updateable=False, **kw)


def _audit() -> list[Field]:
    return [RO("CreatedDate", "datetime"), RO("CreatedById", "reference", ref="User"),
            RO("LastModifiedDate", "datetime"), RO("LastModifiedById", "reference", ref="User"),
            RO("SystemModstamp", "datetime")]


def _base() -> list[Field]:
    return [RO("Id", "id", length=18), RO("IsDeleted", "boolean")]


def C(name: str, type_: str = "string", label: str = "", length: int = 0, **kw) -> Field:
    """A custom (``__c``) field."""
    if type_ in ("string",) and not length:
        length = 255
    return Field(name, type_, label=label, length=length, custom=True, **kw)


TAX_CATEGORIES = ("standard_10", "reduced_8", "exempt", "non_taxable")

# The Renkei custom fields per object (what the connector's prepare() checks).
RENKEI_FIELDS: dict[str, tuple[Field, ...]] = {
    "Account": (
        C("Renkei_Name_Kana__c", label="フリガナ"),
        C("Renkei_Entity_Kind__c", "picklist", "法人／個人事業者", 40, picklist=("corporation", "sole_trader")),
        C("Renkei_Corporate_Number__c", label="法人番号", length=13),
        C("Renkei_Invoice_Registration_Number__c", label="適格請求書発行事業者登録番号", length=14),
        C("Renkei_Partner_Code__c", label="ERP 取引先コード", length=64, external_id=True, unique=True),
        C("Renkei_ERP_Partner_Id__c", label="ERP 取引先ID", length=64, external_id=True, unique=True),
        C("Renkei_Billing_Contact__c", label="請求先担当者"),
        C("Renkei_Billing_Email__c", "email", "請求書送付先メール", 80),
        C("Renkei_Payment_Terms__c", label="支払条件", length=40),
        C("Renkei_Credit_Hold__c", "boolean", "与信停止"),
        C("Renkei_Sync_Status__c", label="連携ステータス"),
    ),
    "Opportunity": (
        C("Renkei_Invoice_Id__c", label="ERP 請求書ID", length=64),
        C("Renkei_Invoice_Number__c", label="請求書番号", length=64),
        C("Renkei_Invoice_Status__c", label="請求書ステータス", length=40),
        C("Renkei_Invoice_Url__c", "url", "請求書URL", 255),
        C("Renkei_Invoiced_At__c", "datetime", "請求書作成日時"),
        C("Renkei_Invoice_Comment__c", label="請求書コメント"),
        C("Renkei_Invoice_Total__c", "currency", "請求金額（税込）", precision=18, scale=0),
        C("Renkei_Payment_Status__c", label="入金ステータス", length=40),
        C("Renkei_Paid_Amount__c", "currency", "入金額", precision=18, scale=0),
        C("Renkei_Paid_At__c", "date", "入金日"),
        C("Renkei_Outstanding_Amount__c", "currency", "未入金額", precision=18, scale=0),
        C("Renkei_Sync_Status__c", label="連携ステータス"),
    ),
    "OpportunityLineItem": (
        C("Renkei_Tax_Category__c", "picklist", "税区分", 40, picklist=TAX_CATEGORIES),
        C("Renkei_Effective_Date__c", "date", "変更の適用日"),
        C("Renkei_Billing_Frequency__c", "picklist", "課金周期", 40, picklist=("monthly", "quarterly", "annually")),
        C("Renkei_Billing_Start_Date__c", "date", "課金開始日"),
        C("Renkei_Term_Months__c", "double", "契約期間（月）", precision=4, scale=0),
        C("Renkei_Ended__c", "boolean", "終了（変更の適用日に終了）"),
    ),
    "Product2": (
        C("Renkei_Item_Code__c", label="ERP 品目コード", length=64, external_id=True, unique=True),
        C("Renkei_ERP_Item_Id__c", label="ERP 品目ID", length=64),
        C("Renkei_Tax_Category__c", "picklist", "税区分", 40, picklist=TAX_CATEGORIES),
        C("Renkei_Cost_Price__c", "currency", "原価", precision=18, scale=0),
        C("Renkei_Stock__c", "double", "在庫数", precision=18, scale=4),
    ),
}


@dataclass
class SObject:
    name: str
    prefix: str
    fields: list[Field]
    label: str = ""
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    children: dict[str, tuple[str, str]] = field(default_factory=dict)  # relationship → (child object, field)
    merge: bool = False

    def __post_init__(self) -> None:
        self._by_lower = {f.name.lower(): f for f in self.fields}

    def field(self, name: str) -> Field | None:
        return self._by_lower.get(name.lower())

    def add(self, fields: Iterable[Field]) -> None:
        for f in fields:
            if f.name.lower() not in self._by_lower:
                self.fields.append(f)
                self._by_lower[f.name.lower()] = f

    def remove(self, name: str) -> None:
        f = self._by_lower.pop(name.lower(), None)
        if f is not None:
            self.fields.remove(f)

    def relationship(self, name: str) -> Field | None:
        for f in self.fields:
            if f.relationship_name and f.relationship_name.lower() == name.lower():
                return f
        return None

    def describe(self, version: str) -> dict:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "name": self.name, "label": self.label or self.name, "labelPlural": (self.label or self.name) + "s",
            "keyPrefix": self.prefix, "custom": False, "createable": self.createable, "updateable": self.updateable,
            "deletable": self.deletable, "queryable": True, "retrieveable": True, "searchable": True,
            "mergeable": self.merge, "undeletable": self.deletable, "triggerable": True,
            "fields": [f.describe() for f in self.fields],
            "childRelationships": [{"childSObject": c, "field": f, "relationshipName": r, "cascadeDelete": c == "OpportunityLineItem"}
                                   for r, (c, f) in self.children.items()],
            "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
        }

    def basic(self, version: str) -> dict:
        d = self.describe(version)
        return {k: d[k] for k in ("name", "label", "labelPlural", "keyPrefix", "custom", "createable", "updateable",
                                  "deletable", "queryable", "retrieveable", "searchable", "mergeable", "urls")}


INDUSTRIES = ("Agriculture", "Apparel", "Banking", "Communications", "Construction", "Consulting", "Education",
              "Electronics", "Energy", "Engineering", "Finance", "Food & Beverage", "Healthcare", "Machinery",
              "Manufacturing", "Media", "Real Estate", "Retail", "Technology", "Transportation", "Other")


def build_schema(renkei_fields: bool = True, missing: Iterable[str] = (), multicurrency: bool = False) -> dict[str, SObject]:
    """Fresh object definitions. ``renkei_fields=False`` leaves out every ``Renkei_*__c`` field (an org where
    the package is not installed); ``missing`` leaves out single ones (``"Opportunity.Renkei_Invoice_Url__c"``)."""
    currency = [S("CurrencyIsoCode", 3, type="picklist", picklist=("JPY", "USD"))] if multicurrency else []
    objs = {
        "User": SObject("User", "005", [
            *_base()[:1], S("Username", 80), S("LastName", 80, required=True), S("FirstName", 40),
            RO("Name", "string", length=121), S("Email", 128, type="email"), S("Alias", 8),
            Field("IsActive", "boolean"), *_audit()], label="User", deletable=False),
        "Account": SObject("Account", "001", [
            *_base(), RO("MasterRecordId", "reference", ref="Account"), S("Name", required=True),
            S("Type", 255, type="picklist", picklist=("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other")),
            Field("ParentId", "reference", ref="Account"), S("BillingStreet", 255, type="textarea"),
            S("BillingCity", 40), S("BillingState", 80), S("BillingPostalCode", 20), S("BillingCountry", 80),
            S("Phone", 40, type="phone"), S("Fax", 40, type="phone"), S("Website", 255, type="url"),
            S("Industry", 255, type="picklist", picklist=INDUSTRIES), S("Description", 32000, type="textarea"),
            Field("NumberOfEmployees", "int"), Field("OwnerId", "reference", ref="User"), *currency, *_audit()],
            label="Account", children={"Opportunities": ("Opportunity", "AccountId"),
                                       "ChildAccounts": ("Account", "ParentId")}, merge=True),
        "Opportunity": SObject("Opportunity", "006", [
            *_base(), Field("AccountId", "reference", ref="Account"), S("Name", 120, required=True),
            S("Description", 32000, type="textarea"), S("StageName", 255, type="picklist", required=True, restricted=True),
            Field("Amount", "currency", precision=18, scale=2), Field("Probability", "percent", precision=3),
            Field("CloseDate", "date", required=True),
            S("Type", 255, type="picklist", picklist=("Existing Customer - Upgrade", "Existing Customer - Replacement",
                                                      "Existing Customer - Downgrade", "New Customer")),
            S("NextStep", 255), S("LeadSource", 255, type="picklist", picklist=("Web", "Phone Inquiry", "Partner Referral", "Other")),
            RO("IsClosed", "boolean"), RO("IsWon", "boolean"), RO("ForecastCategory", "picklist", length=40),
            RO("ForecastCategoryName", "picklist", length=40), RO("HasOpportunityLineItem", "boolean"),
            Field("Pricebook2Id", "reference", ref="Pricebook2"), Field("OwnerId", "reference", ref="User"),
            *currency, *_audit()],
            label="Opportunity", children={"OpportunityLineItems": ("OpportunityLineItem", "OpportunityId")}),
        "OpportunityLineItem": SObject("OpportunityLineItem", "00k", [
            *_base(), Field("OpportunityId", "reference", ref="Opportunity", required=True, updateable=False),
            Field("SortOrder", "int"), Field("PricebookEntryId", "reference", ref="PricebookEntry", updateable=False),
            Field("Product2Id", "reference", ref="Product2", updateable=False), RO("ProductCode", "string", length=255),
            RO("Name", "string", length=376), Field("Quantity", "double", required=True, precision=12, scale=2),
            Field("TotalPrice", "currency", precision=18, scale=2), Field("UnitPrice", "currency", precision=18, scale=2),
            RO("ListPrice", "currency", precision=18, scale=2), RO("Subtotal", "currency", precision=18, scale=2),
            Field("ServiceDate", "date"), S("Description", 255), Field("Discount", "percent", precision=5, scale=2),
            *currency, *_audit()], label="Opportunity Product"),
        "Product2": SObject("Product2", "01t", [
            *_base(), S("Name", required=True), S("ProductCode", 255), S("Description", 4000, type="textarea"),
            Field("IsActive", "boolean"), S("Family", 255, type="picklist", picklist=("None", "Software", "Service", "Hardware", "Food")),
            S("QuantityUnitOfMeasure", 255, type="picklist", picklist=("Each", "Hour", "Day", "Month", "Year")),
            *currency, *_audit()], label="Product",
            children={"PricebookEntries": ("PricebookEntry", "Product2Id")}),
        "Pricebook2": SObject("Pricebook2", "01s", [
            *_base(), S("Name", required=True), Field("IsActive", "boolean"), RO("IsStandard", "boolean"),
            S("Description", 255), *_audit()], label="Price Book",
            children={"PricebookEntries": ("PricebookEntry", "Pricebook2Id")}),
        "PricebookEntry": SObject("PricebookEntry", "01u", [
            *_base(), RO("Name", "string", length=255),
            Field("Pricebook2Id", "reference", ref="Pricebook2", required=True, updateable=False),
            Field("Product2Id", "reference", ref="Product2", required=True, updateable=False),
            Field("UnitPrice", "currency", required=True, precision=18, scale=2), Field("IsActive", "boolean"),
            Field("UseStandardPrice", "boolean"), RO("ProductCode", "string", length=255), *currency, *_audit()],
            label="Price Book Entry", deletable=False),
        "OpportunityStage": SObject("OpportunityStage", "01J", [
            RO("Id", "id", length=18), RO("MasterLabel", "string", length=255), RO("ApiName", "string", length=255),
            RO("IsActive", "boolean"), RO("SortOrder", "int"), RO("IsClosed", "boolean"), RO("IsWon", "boolean"),
            RO("ForecastCategory", "picklist", length=40), RO("ForecastCategoryName", "picklist", length=40),
            RO("DefaultProbability", "percent"), RO("Description", "string", length=255), *_audit()],
            label="Opportunity Stage", createable=False, updateable=False, deletable=False),
    }
    missing = {m.lower() for m in missing}
    if renkei_fields:
        for obj, fields in RENKEI_FIELDS.items():
            objs[obj].add(f for f in fields if f"{obj}.{f.name}".lower() not in missing)
    return objs


def clone_field(f: Field, **changes) -> Field:
    return replace(f, **changes)


KEY_PREFIXES = {"001": "Account", "006": "Opportunity", "00k": "OpportunityLineItem", "01t": "Product2",
                "01s": "Pricebook2", "01u": "PricebookEntry", "005": "User", "01J": "OpportunityStage"}
