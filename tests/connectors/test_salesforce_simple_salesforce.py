"""The real simple-salesforce library against the Salesforce sandbox over HTTPS (simple-salesforce rewrites
every instance URL to https): OAuth token endpoint, query / query_all across query locators, CRUD and upsert
by external ID, describe, limits, and Salesforce's errors surfacing as the library's exception classes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

pytest.importorskip("simple_salesforce")
from simple_salesforce import Salesforce  # noqa: E402
from simple_salesforce.exceptions import (  # noqa: E402
    SalesforceExpiredSession, SalesforceMalformedRequest, SalesforceRefusedRequest, SalesforceResourceNotFound,
)

from renkei.sandboxes.salesforce import SalesforceSandboxConfig, create_app  # noqa: E402
from renkei.sandboxes.salesforce.tls import TLSServerThread  # noqa: E402

N_EXTRA = 2150  # > one 2,000-record batch


@pytest.fixture(scope="module")
def org():
    config = SalesforceSandboxConfig(seed="demo")
    app = create_app(config)
    store = app.state.store
    for i in range(N_EXTRA):
        store.create("Account", {"Name": f"一括取引先 {i:04d}", "BillingState": "東京都"})
    with TLSServerThread(app) as server:
        session = requests.Session()
        session.trust_env = False
        session.verify = server.ca_file
        server.app, server.config, server.session = app, config, session
        yield server
        session.close()


def login(org, **form) -> dict:
    body = {"grant_type": "client_credentials", "client_id": org.config.client_id,
            "client_secret": org.config.client_secret, **form}
    return org.session.post(f"{org.url}/services/oauth2/token", data=body).json()


@pytest.fixture(scope="module")
def sf(org) -> Salesforce:
    token = login(org)
    assert token["instance_url"] == org.url and token["token_type"] == "Bearer" and "expires_in" not in token
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], version="60.0",
                      session=org.session)


def test_token_endpoint_grants_and_refusals(org):
    bad = org.session.post(f"{org.url}/services/oauth2/token",
                           data={"grant_type": "client_credentials", "client_id": org.config.client_id,
                                 "client_secret": "wrong"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
    basic = org.session.post(f"{org.url}/services/oauth2/token", data={"grant_type": "client_credentials"},
                             auth=(org.config.client_id, org.config.client_secret))
    assert basic.status_code == 200 and basic.json()["access_token"].startswith("00D")
    jwt = org.session.post(f"{org.url}/services/oauth2/token",
                           data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "a.b.c"})
    assert jwt.status_code == 400 and jwt.json()["error"] == "invalid_grant"
    assert org.session.get(f"{org.url}/services/data/").json()[-1]["version"] == "66.0"


def test_query_and_query_all_follow_query_locators(org, sf):
    first = sf.query("SELECT Id, Name FROM Account ORDER BY Name")
    assert first["done"] is False and len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v60.0/query/01g")
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert rest["done"] is True and len(first["records"]) + len(rest["records"]) == first["totalSize"]
    everything = sf.query_all("SELECT Id, Name, Owner.Name FROM Account")
    assert everything["totalSize"] == len(everything["records"]) == N_EXTRA + 40  # the merged duplicate is not there
    assert len({r["Id"] for r in everything["records"]}) == everything["totalSize"]
    deleted = sf.query_all("SELECT Id, MasterRecordId FROM Account WHERE IsDeleted = true", include_deleted=True)
    assert deleted["totalSize"] == 1 and deleted["records"][0]["MasterRecordId"]
    won = sf.query_all("SELECT Name, Amount, Account.Name, (SELECT Quantity, UnitPrice, TotalPrice, PricebookEntry.Product2.ProductCode "
                       "FROM OpportunityLineItems) FROM Opportunity WHERE IsWon = true AND CloseDate >= 2026-10-01 "
                       "AND (StageName = 'Closed Won' OR Amount > 0) ORDER BY CloseDate DESC, Name LIMIT 5")
    assert won["totalSize"] == 5
    for opp in won["records"]:
        lines = opp["OpportunityLineItems"]["records"]
        assert Decimal(str(opp["Amount"])) == sum(Decimal(str(li["TotalPrice"])) for li in lines)
        assert opp["Account"]["Name"] and lines[0]["PricebookEntry"]["Product2"]["ProductCode"]
    assert sf.query("SELECT COUNT() FROM Account WHERE Name LIKE '一括取引先 00%'")["totalSize"] == 100
    # the rest of the SOQL subset: NOT IN, NOT, null, LIKE escapes, TODAY, NULLS LAST, OFFSET
    q = sf.query("SELECT Name, Phone FROM Account WHERE BillingState NOT IN ('東京都', '大阪府') AND NOT "
                 "(Phone = null) AND CreatedDate <= TODAY ORDER BY Phone DESC NULLS LAST, Name LIMIT 3 OFFSET 1")
    assert q["totalSize"] == 3 and all(r["Phone"] for r in q["records"])
    assert sf.query(r"SELECT COUNT() FROM Account WHERE Name LIKE '100\%%'")["totalSize"] == 0
    stages = sf.query("SELECT ApiName, IsWon FROM OpportunityStage WHERE IsClosed = true ORDER BY SortOrder")
    assert [r["ApiName"] for r in stages["records"]] == ["Closed Won", "Closed Lost"]
    # query locators are server-side cursors that expire
    org.app.state.clock.advance(org.config.cursor_ttl_s * 1000 + 1000)
    with pytest.raises(SalesforceMalformedRequest) as expired:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert expired.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_crud_upsert_describe_limits_and_errors(org, sf):
    created = sf.Account.create({"Name": "株式会社シンプル", "Renkei_Partner_Code__c": "SS-1"})
    assert created["success"] and created["id"].startswith("001") and len(created["id"]) == 18
    rid = created["id"]
    assert sf.Account.update(rid, {"Phone": "03-0000-0001"}) == 204
    rec = sf.Account.get(rid)
    assert rec["Phone"] == "03-0000-0001" and rec["SystemModstamp"].endswith(".000+0000")
    assert sf.Account.get_by_custom_id("Renkei_Partner_Code__c", "ss-1")["Id"] == rid  # case-insensitive match
    assert sf.Account.upsert("Renkei_Partner_Code__c/SS-1", {"Name": "株式会社シンプル（更新）"}) == 200
    assert sf.Account.upsert("Renkei_Partner_Code__c/SS-2", {"Name": "合同会社シンプル"}) == 201
    raw = sf.Account.upsert("Renkei_Partner_Code__c/SS-2", {"Name": "合同会社シンプル"}, raw_response=True)
    assert raw.json()["created"] is False

    fields = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert fields["Renkei_Invoice_Number__c"]["custom"] and not fields["IsWon"]["updateable"]
    assert {f["name"] for f in sf.Account.describe()["fields"] if f["externalId"]} >= {"Renkei_Partner_Code__c",
                                                                                          "Renkei_ERP_Partner_Id__c"}
    assert sf.limits()["DailyApiRequests"]["Max"] == 15000

    with pytest.raises(SalesforceMalformedRequest) as dup:
        sf.Account.create({"Name": "重複", "Renkei_Partner_Code__c": "ss-2"})
    assert dup.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    with pytest.raises(SalesforceMalformedRequest) as ro:
        sf.Opportunity.create({"Name": "x", "StageName": "Closed Won", "CloseDate": "2026-12-01", "IsWon": True})
    assert ro.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with pytest.raises(SalesforceMalformedRequest) as req:
        sf.Opportunity.create({"Name": "x", "StageName": "Closed Won"})
    assert req.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING" and req.value.content[0]["fields"] == ["CloseDate"]
    with pytest.raises(SalesforceMalformedRequest) as bad_q:
        sf.query("SELECT Id FROM Account WHERE SystemModstamp > '2026-01-01T00:00:00Z'")
    assert bad_q.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Id FORM Account")

    assert sf.Account.delete(rid) == 204
    with pytest.raises(SalesforceResourceNotFound) as gone:
        sf.Account.get(rid)
    assert gone.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    now = datetime.fromtimestamp(org.app.state.clock.now_ms() / 1000, timezone.utc)  # the org's clock
    window = (now - timedelta(minutes=5), now + timedelta(minutes=1))
    assert rid in [d["id"] for d in sf.Account.deleted(*window)["deletedRecords"]]
    assert rid not in sf.Account.updated(*window)["ids"]
    assert sf.api_usage["api-usage"].total == 15000

    org.app.state.daily.set_used(15000)
    with pytest.raises(SalesforceRefusedRequest) as cap:
        sf.query("SELECT Id FROM User")
    assert cap.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    org.app.state.daily.set_used(0)
    org.session.post(f"{org.url}/_sandbox/sessions/expire")
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM User")


def test_opportunity_rules_through_the_library(org):
    sf = Salesforce(instance_url=org.url, session_id=login(org)["access_token"], version="60.0", session=org.session)
    acct = sf.Account.create({"Name": "株式会社ルール"})["id"]
    opp = sf.Opportunity.create({"Name": "ルール確認", "AccountId": acct, "StageName": "Prospecting",
                                 "CloseDate": "2026-12-24", "Amount": 5})["id"]
    o = sf.Opportunity.get(opp)
    assert (o["IsClosed"], o["IsWon"], o["Probability"], o["Amount"]) == (False, False, 10.0, 5.0)
    entry = sf.query("SELECT Id, UnitPrice FROM PricebookEntry WHERE ProductCode = 'RK-TRN'")["records"][0]
    sf.OpportunityLineItem.create({"OpportunityId": opp, "PricebookEntryId": entry["Id"], "Quantity": 3,
                                   "UnitPrice": 100000, "Discount": 10})
    sf.Opportunity.update(opp, {"StageName": "Closed Won", "Amount": 1})  # Amount is the roll-up now: ignored
    o = sf.Opportunity.get(opp)
    assert (o["IsWon"], o["IsClosed"], o["Amount"], o["HasOpportunityLineItem"]) == (True, True, 270000.0, True)
    assert o["Pricebook2Id"] and o["ForecastCategoryName"] == "Closed"
    with pytest.raises(SalesforceMalformedRequest) as stage:
        sf.Opportunity.update(opp, {"StageName": "Won-ish"})
    assert stage.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    with pytest.raises(SalesforceMalformedRequest) as zero:
        sf.OpportunityLineItem.create({"OpportunityId": opp, "PricebookEntryId": entry["Id"], "Quantity": 0,
                                       "UnitPrice": 1})
    assert zero.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
