"""Initial state of the Salesforce sandbox org.

* every org: the integration (run-as) user, the active standard price book, the default stage table;
* :func:`load_demo` — the shared demo dataset of :mod:`sandboxes.demo_data` in Salesforce's shape: the
  three sales reps as Users; 40 Accounts (billing address, 法人番号 / 登録番号 / kana in ``Renkei_*__c``);
  16 Product2 records with their standard PricebookEntry (``Renkei_Item_Code__c`` = ``ProductCode``);
  33 Opportunities in every stage with OpportunityLineItems (Amount rolled up from the lines); and one
  duplicate Account already merged into 株式会社山田商事 (``IsDeleted``, ``MasterRecordId``).

HubSpot's two pipelines map onto the one stage picklist (:data:`STAGE_MAP`). Salesforce refuses a zero
quantity: a HubSpot amendment that ends an item (quantity 0) is a line with quantity 1 marked
``Renkei_Ended__c`` (ended on its ``Renkei_Effective_Date__c``). A per-unit yen
discount becomes a lower sales price (``UnitPrice``); a percentage discount stays ``Discount``.
Records get increasing timestamps one second apart, ending one hour before "now".
"""

from __future__ import annotations

from decimal import Decimal

from renkei.sandboxes import demo_data as demo

from .store import SalesforceStore

STAGE_MAP = {
    "appointmentscheduled": "Prospecting", "qualifiedtobuy": "Qualification", "presentationscheduled": "Value Proposition",
    "decisionmakerboughtin": "Id. Decision Makers", "contractsent": "Negotiation/Review", "closedwon": "Closed Won",
    "closedlost": "Closed Lost", "160014501": "Qualification", "160014502": "Proposal/Price Quote",
    "160014503": "Negotiation/Review", "160014504": "Closed Won", "160014505": "Closed Lost",
}
INDUSTRY_MAP = {"WHOLESALE": "Retail", "MACHINERY": "Machinery", "FOOD_PRODUCTION": "Food & Beverage",
                "FOOD_BEVERAGES": "Food & Beverage", "COMPUTER_SOFTWARE": "Technology", "CONSTRUCTION": "Construction",
                "INFORMATION_TECHNOLOGY_AND_SERVICES": "Technology", "FINANCIAL_SERVICES": "Finance",
                "REAL_ESTATE": "Real Estate", "TRANSPORTATION_TRUCKING_RAILROAD": "Transportation",
                "MANAGEMENT_CONSULTING": "Consulting", "TELECOMMUNICATIONS": "Communications",
                "PHARMACEUTICALS": "Healthcare", "MEDICAL_DEVICES": "Healthcare", "RETAIL": "Retail"}
FAMILY = {"RK": "Software", "HW": "Hardware", "OF": "Hardware", "SV": "Service", "FD": "Food"}


def _only_known(store: SalesforceStore, obj: str, values: dict) -> dict:
    o = store.schema[obj]
    return {k: v for k, v in values.items() if o.field(k) is not None and v is not None}


def load_demo(store: SalesforceStore) -> dict[str, dict[str, str]]:
    """Load the demo dataset; returns ``{kind: {demo key: salesforce id}}`` (kinds: users, accounts, products,
    pricebook_entries, opportunities, line_items — line items keyed ``"D01-1"``)."""
    ids: dict[str, dict[str, str]] = {k: {} for k in ("users", "accounts", "products", "pricebook_entries",
                                                      "opportunities", "line_items")}
    n = 2 + len(demo.OWNERS) + len(demo.COMPANIES) + 2 * len(demo.PRODUCTS) + len(demo.DEALS) + sum(
        len(d.line_items) for d in demo.DEALS) + 2
    start = store.now() - 3_600_000 - n * 1_000
    tick = iter(range(start, start + (n + 10) * 1_000, 1_000))

    def put(obj: str, values: dict) -> str:
        return store.create(obj, _only_known(store, obj, values), now=next(tick))

    for o in demo.OWNERS:
        ids["users"][o.key] = store.add_user(o.email, o.last_name, o.first_name)
    for p in demo.PRODUCTS:
        pid = put("Product2", {"Name": p.name, "ProductCode": p.code, "Description": p.description or None,
                               "IsActive": True, "Family": FAMILY.get(p.code.split("-")[0], "None"),
                               "Renkei_Tax_Category__c": p.tax_category, "Renkei_Item_Code__c": p.code})
        ids["products"][p.code] = pid
        ids["pricebook_entries"][p.code] = put("PricebookEntry", {
            "Pricebook2Id": store.standard_pricebook, "Product2Id": pid, "UnitPrice": Decimal(p.unit_price),
            "IsActive": True})
    for c in demo.COMPANIES:
        ids["accounts"][c.key] = put("Account", {
            "Name": c.name, "Phone": c.phone, "Website": f"https://www.{c.domain}", "BillingPostalCode": c.postal_code,
            "BillingState": c.prefecture, "BillingCity": c.city, "BillingStreet": c.street, "BillingCountry": "日本",
            "Industry": INDUSTRY_MAP.get(c.industry, "Other"), "Type": "Customer - Direct",
            "OwnerId": ids["users"][c.owner], "Renkei_Name_Kana__c": c.kana, "Renkei_Entity_Kind__c": c.entity_kind,
            "Renkei_Corporate_Number__c": c.corporate_number,
            "Renkei_Invoice_Registration_Number__c": c.registration_number})
    for d in demo.DEALS:
        oid = put("Opportunity", {"Name": d.name, "AccountId": ids["accounts"][d.company], "StageName": STAGE_MAP[d.stage],
                                  "CloseDate": d.close_date, "OwnerId": ids["users"][d.owner],
                                  "Type": "New Customer", "Description": d.note or None})
        ids["opportunities"][d.key] = oid
        for i, li in enumerate(d.line_items, start=1):
            ids["line_items"][f"{d.key}-{i}"] = put("OpportunityLineItem", {
                "OpportunityId": oid, "PricebookEntryId": ids["pricebook_entries"][li.product_code],
                "Quantity": Decimal(li.quantity or 1), "Renkei_Ended__c": li.quantity == 0,
                "UnitPrice": Decimal(li.price - li.discount),
                "Discount": Decimal(li.discount_percentage) if li.discount_percentage else None, "SortOrder": i,
                "Renkei_Tax_Category__c": li.tax_category, "Renkei_Billing_Frequency__c": li.recurring,
                "Renkei_Billing_Start_Date__c": li.billing_start,
                "Renkei_Term_Months__c": Decimal(li.term_months) if li.term_months else None,
                "Renkei_Effective_Date__c": li.effective_date})
    # a duplicate of 株式会社山田商事 entered by another rep, merged into the original
    c01 = demo.company("C01")
    dup = put("Account", {"Name": "山田商事", "Phone": c01.phone, "BillingState": c01.prefecture,
                          "OwnerId": ids["users"]["O2"], "Type": "Prospect"})
    ids["accounts"]["C01-DUP"] = dup
    ids["opportunities"]["D01-DUP"] = put("Opportunity", {
        "Name": "山田商事 追加研修（重複登録）", "AccountId": dup, "StageName": "Prospecting", "CloseDate": "2027-01-20",
        "OwnerId": ids["users"]["O2"]})
    store.merge("Account", ids["accounts"]["C01"], [dup], now=next(tick))
    store.demo_ids = ids  # type: ignore[attr-defined]
    return ids
