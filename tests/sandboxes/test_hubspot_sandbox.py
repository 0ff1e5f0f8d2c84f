"""HubSpot sandbox over real HTTP: records, paging, batches, search, merge, associations, properties,
pipelines, owners and auth. (Rate limits and faults: ``test_hubspot_sandbox_limits.py``; search at
scale: ``test_hubspot_sandbox_scale.py``.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from renkei.sandboxes import demo_data as demo
from renkei.sandboxes.common import Clock, ServerThread
from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app

TOKEN = "hs-sandbox-test-token"
T0 = 1_780_000_000_000  # 2026-05-28T20:26:40Z


class Sandbox:
    """A running sandbox plus an authenticated httpx client."""

    def __init__(self, **config: Any) -> None:
        cfg = dict(token=TOKEN, rate_limit_per_10s=0, search_per_second=0, daily_limit=0)
        cfg.update(config)
        self.config = HubSpotSandboxConfig(**cfg)
        self.app = create_app(self.config)
        self.store = self.app.state.store
        self.clock: Clock = self.app.state.clock
        self.server = ServerThread(self.app).start()
        self.http = httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)

    def close(self) -> None:
        self.http.close()
        self.server.stop()

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.http.post(path, json=body, **kw)

    def patch(self, path: str, body: Any) -> httpx.Response:
        return self.http.patch(path, json=body)

    def put(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.put(path, json=body)

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(path)

    def search(self, obj: str, body: dict[str, Any]) -> httpx.Response:
        return self.post(f"/crm/v3/objects/{obj}/search", body)


@pytest.fixture(scope="module")
def demo_sb() -> Iterator[Sandbox]:
    """Demo-seeded sandbox shared by read-mostly tests (tests that write use their own records)."""
    sb = Sandbox(seed="demo")
    yield sb
    sb.close()


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """Empty account with a frozen clock at T0."""
    s = Sandbox(seed="none", clock=Clock(frozen_ms=T0))
    yield s
    s.close()


def assert_error(resp: httpx.Response, status: int, category: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status"] == "error"
    assert body["category"] == category
    assert body["message"]
    assert len(body["correlationId"]) == 36
    return body


# ------------------------------------------------------------------------------------------ auth


def test_missing_or_wrong_token_is_401_in_hubspot_shape(demo_sb: Sandbox) -> None:
    url = demo_sb.server.url + "/crm/v3/objects/companies"
    assert_error(httpx.get(url), 401, "INVALID_AUTHENTICATION")
    assert_error(httpx.get(url, headers={"Authorization": "Bearer nope"}), 401, "INVALID_AUTHENTICATION")
    assert_error(httpx.get(url, headers={"Authorization": f"Basic {TOKEN}"}), 401, "INVALID_AUTHENTICATION")
    assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    # the admin endpoints are not behind auth
    assert httpx.get(demo_sb.server.url + "/_sandbox/health").json()["counts"]["companies"] == 40


# ------------------------------------------------------------------------------------------ records


def test_list_paging_cursor_limits_and_last_page(demo_sb: Sandbox) -> None:
    first = demo_sb.get("/crm/v3/objects/companies").json()
    assert len(first["results"]) == 10  # default limit
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        params = {"limit": 7, **({"after": after} if after else {})}
        body = demo_sb.get("/crm/v3/objects/companies", params=params).json()
        pages += 1
        seen += [r["id"] for r in body["results"]]
        if "paging" not in body:
            break
        after = body["paging"]["next"]["after"]
        assert "after=" in body["paging"]["next"]["link"]
    assert pages == 6 and len(seen) == 40 == len(set(seen))
    assert seen == sorted(seen, key=int)
    # limit is capped at 100
    big = demo_sb.get("/crm/v3/objects/contacts", params={"limit": 500}).json()
    assert len(big["results"]) == 80 and "paging" not in big
    capped = demo_sb.get("/crm/v3/objects/line_items", params={"limit": 500}).json()
    assert len(capped["results"]) == 63


def test_type_id_aliases_and_dated_prefix(demo_sb: Sandbox) -> None:
    by_name = demo_sb.get("/crm/v3/objects/deals", params={"limit": 3}).json()
    by_id = demo_sb.get("/crm/v3/objects/0-3", params={"limit": 3}).json()
    dated = demo_sb.get("/crm/objects/2026-03/deals", params={"limit": 3}).json()
    assert [r["id"] for r in by_name["results"]] == [r["id"] for r in by_id["results"]] == [r["id"] for r in dated["results"]]
    for alias, name in (("0-1", "contacts"), ("0-2", "companies"), ("0-7", "products"), ("0-8", "line_items")):
        a = demo_sb.get(f"/crm/v3/objects/{alias}", params={"limit": 1}).json()["results"][0]["id"]
        b = demo_sb.get(f"/crm/v3/objects/{name}", params={"limit": 1}).json()["results"][0]["id"]
        assert a == b
    assert_error(demo_sb.get("/crm/v3/objects/widgets"), 400, "VALIDATION_ERROR")


def test_default_properties_strings_and_envelope(demo_sb: Sandbox) -> None:
    deal = demo_sb.get("/crm/v3/objects/deals", params={"limit": 1}).json()["results"][0]
    assert set(deal) >= {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert set(deal["properties"]) == {"dealname", "amount", "closedate", "pipeline", "dealstage", "createdate",
                                       "hs_lastmodifieddate", "hs_object_id"}
    assert all(isinstance(v, str) for v in deal["properties"].values())
    assert deal["properties"]["amount"] == str(demo.DEALS[0].amount)
    assert deal["properties"]["hs_object_id"] == deal["id"]
    assert deal["properties"]["closedate"] == "2026-10-03T00:00:00.000Z"
    contact = demo_sb.get("/crm/v3/objects/contacts", params={"limit": 1}).json()["results"][0]
    assert "lastmodifieddate" in contact["properties"] and "hs_lastmodifieddate" not in contact["properties"]
    # ``properties`` replaces the defaults (the three system properties are always there)
    one = demo_sb.get(f"/crm/v3/objects/companies/{deal['id']}")
    assert one.status_code == 404
    company = demo_sb.get("/crm/v3/objects/companies", params={"limit": 1, "properties": "renkei_corporate_number,phone"}).json()["results"][0]
    assert set(company["properties"]) == {"renkei_corporate_number", "phone", "createdate", "hs_lastmodifieddate", "hs_object_id"}
    assert company["properties"]["renkei_corporate_number"] == demo.COMPANIES[0].corporate_number


def test_create_update_timestamps_and_validation(sb: Sandbox) -> None:
    r = sb.post("/crm/v3/objects/companies", {"properties": {"name": "株式会社テスト", "numberofemployees": 25}})
    assert r.status_code == 201, r.text
    rec = r.json()
    assert rec["properties"]["numberofemployees"] == "25"
    created = rec["properties"]["createdate"]
    assert created == rec["properties"]["hs_lastmodifieddate"] == rec["createdAt"] == "2026-05-28T20:26:40.000Z"
    sb.clock.advance(1_234)
    upd = sb.patch(f"/crm/v3/objects/companies/{rec['id']}", {"properties": {"city": "千代田区", "numberofemployees": ""}}).json()
    assert upd["properties"]["hs_lastmodifieddate"] == "2026-05-28T20:26:41.234Z" == upd["updatedAt"]
    assert upd["properties"]["createdate"] == created
    got = sb.get(f"/crm/v3/objects/companies/{rec['id']}", params={"properties": "city,numberofemployees"}).json()
    assert got["properties"]["city"] == "千代田区" and got["properties"]["numberofemployees"] is None  # "" clears

    contact = sb.post("/crm/v3/objects/contacts", {"properties": {"email": "Taro@Example.JP", "lastname": "山田"}}).json()
    assert contact["properties"]["lastmodifieddate"] == "2026-05-28T20:26:41.234Z"
    assert contact["properties"]["email"] == "taro@example.jp"
    assert_error(sb.post("/crm/v3/objects/contacts", {"properties": {"email": "taro@example.jp"}}), 409, "CONFLICT")

    bad = assert_error(sb.post("/crm/v3/objects/companies", {"properties": {"name": "x", "no_such_prop": "1"}}),
                       400, "VALIDATION_ERROR")
    assert "PROPERTY_DOESNT_EXIST" in bad["message"]
    bad = assert_error(sb.post("/crm/v3/objects/companies", {"properties": {"numberofemployees": "many"}}), 400, "VALIDATION_ERROR")
    assert "INVALID_FLOAT" in bad["message"]
    bad = assert_error(sb.patch(f"/crm/v3/objects/companies/{rec['id']}", {"properties": {"hs_lastmodifieddate": "1"}}),
                       400, "VALIDATION_ERROR")
    assert "READ_ONLY_VALUE" in bad["message"]
    bad = assert_error(sb.post("/crm/v3/objects/deals", {"properties": {"dealname": "x", "dealstage": "160014504"}}),
                       400, "VALIDATION_ERROR")
    assert "INVALID_OPTION" in bad["message"]  # custom-pipeline stage in the default pipeline
    assert_error(sb.patch("/crm/v3/objects/companies/999999", {"properties": {"name": "x"}}), 404, "OBJECT_NOT_FOUND")
    assert_error(sb.http.post("/crm/v3/objects/companies", content=b"{nope", headers={"content-type": "application/json"}),
                 400, "VALIDATION_ERROR")


def test_deal_and_line_item_calculations(sb: Sandbox) -> None:
    deal = sb.post("/crm/v3/objects/deals", {"properties": {
        "dealname": "受注", "pipeline": "87654321", "dealstage": "160014504", "amount": "100000"}}).json()
    assert deal["properties"]["dealstage"] == "160014504"
    won = sb.get(f"/crm/v3/objects/deals/{deal['id']}", params={"properties": "hs_is_closed_won,hs_deal_stage_probability"}).json()
    assert won["properties"]["hs_is_closed_won"] == "true" and won["properties"]["hs_deal_stage_probability"] == "1.0"
    product = sb.post("/crm/v3/objects/products", {"properties": {"name": "珈琲豆", "price": "4320", "hs_sku": "FD-1"}}).json()
    li = sb.post("/crm/v3/objects/line_items", {
        "properties": {"hs_product_id": product["id"], "quantity": "3", "discount": "20", "hs_discount_percentage": "10"},
        "associations": [{"to": {"id": deal["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 20}]}],
    }).json()
    props = li["properties"]
    assert props["name"] == "珈琲豆" and props["price"] == "4320" and props["hs_sku"] == "FD-1"  # copied from the product
    # 3 × (4320 − 20) = 12900, −10% = 11610
    assert props["amount"] == "11610.00" and props["hs_total_discount"] == "1350"
    assert_error(sb.post("/crm/v3/objects/line_items", {"properties": {"price": "-1"}}), 400, "VALIDATION_ERROR")
    # the inline association exists both ways
    assoc = sb.get(f"/crm/v4/objects/deals/{deal['id']}/associations/line_items").json()
    assert assoc["results"][0]["toObjectId"] == int(li["id"])
    # archiving the deal archives its line items (a line item belongs to its parent)
    assert sb.delete(f"/crm/v3/objects/deals/{deal['id']}").status_code == 204
    assert sb.get(f"/crm/v3/objects/line_items/{li['id']}").status_code == 404


def test_archive_is_soft_and_hidden(sb: Sandbox) -> None:
    ids = [sb.post("/crm/v3/objects/companies", {"properties": {"name": f"社{i}"}}).json()["id"] for i in range(3)]
    sb.clock.advance(5)
    assert sb.delete(f"/crm/v3/objects/companies/{ids[1]}").status_code == 204
    assert sb.delete(f"/crm/v3/objects/companies/{ids[1]}").status_code == 204  # idempotent
    assert_error(sb.get(f"/crm/v3/objects/companies/{ids[1]}"), 404, "OBJECT_NOT_FOUND")
    archived = sb.get(f"/crm/v3/objects/companies/{ids[1]}", params={"archived": "true"}).json()
    assert archived["archived"] is True and archived["archivedAt"] == "2026-05-28T20:26:40.005Z"
    listed = [r["id"] for r in sb.get("/crm/v3/objects/companies").json()["results"]]
    assert listed == [ids[0], ids[2]]
    assert [r["id"] for r in sb.get("/crm/v3/objects/companies", params={"archived": "true"}).json()["results"]] == [ids[1]]
    found = sb.search("companies", {}).json()
    assert found["total"] == 2 and ids[1] not in [r["id"] for r in found["results"]]


# ------------------------------------------------------------------------------------------ batch


def test_batch_cap_is_400(sb: Sandbox) -> None:
    inputs = [{"properties": {"name": f"c{i}"}} for i in range(101)]
    body = assert_error(sb.post("/crm/v3/objects/companies/batch/create", {"inputs": inputs}), 400, "VALIDATION_ERROR")
    assert "100" in body["message"]
    assert sb.get("/crm/v3/objects/companies").json()["results"] == []  # nothing written
    for action in ("read", "update", "upsert", "archive"):
        assert sb.post(f"/crm/v3/objects/companies/batch/{action}", {"inputs": [{"id": str(i)} for i in range(101)]}).status_code == 400
    assert sb.post("/crm/v3/objects/companies/batch/create", {"inputs": inputs[:100]}).status_code == 201


def test_batch_create_partial_failure_207_with_trace_ids(sb: Sandbox) -> None:
    r = sb.post("/crm/v3/objects/companies/batch/create", {"inputs": [
        {"properties": {"name": "良い会社"}, "objectWriteTraceId": "t-0"},
        {"properties": {"name": "悪い会社", "numberofemployees": "lots"}, "objectWriteTraceId": "t-1"},
        {"properties": {"name": "もう一社"}, "objectWriteTraceId": "t-2"},
        {"properties": {"bogus": "x"}, "objectWriteTraceId": "t-3"},
    ]})
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["status"] == "COMPLETE" and body["numErrors"] == 2
    assert {"startedAt", "completedAt"} <= set(body)
    assert sorted(x["properties"]["name"] for x in body["results"]) == ["もう一社", "良い会社"]
    traces = sorted(e["context"]["objectWriteTraceId"][0] for e in body["errors"])
    assert traces == ["t-1", "t-3"]
    for e in body["errors"]:
        assert e["status"] == "error" and e["category"] == "VALIDATION_ERROR" and e["message"]
        assert {"errors", "links", "context"} <= set(e)
    # all writes of one batch share the batch timestamp
    assert {x["properties"]["hs_lastmodifieddate"] for x in body["results"]} == {"2026-05-28T20:26:40.000Z"}


def test_batch_read_update_upsert_archive(sb: Sandbox) -> None:
    sb.post("/crm/v3/properties/companies", {"name": "renkei_partner_code", "label": "取引先コード", "type": "string",
                                            "fieldType": "text", "groupName": "companyinformation", "hasUniqueValue": True})
    created = sb.post("/crm/v3/objects/companies/batch/create", {"inputs": [
        {"properties": {"name": "A社", "renkei_partner_code": "TK0001"}},
        {"properties": {"name": "B社", "renkei_partner_code": "TK0002"}}]}).json()["results"]
    ids = [c["id"] for c in created]

    read = sb.post("/crm/v3/objects/companies/batch/read", {"inputs": [{"id": ids[0]}, {"id": "424242"}], "properties": ["name"]})
    assert read.status_code == 207
    rb = read.json()
    assert [x["properties"]["name"] for x in rb["results"]] == ["A社"]
    assert rb["errors"][0]["category"] == "OBJECT_NOT_FOUND" and rb["errors"][0]["context"]["ids"] == ["424242"]
    by_code = sb.post("/crm/v3/objects/companies/batch/read", {"idProperty": "renkei_partner_code",
                                                              "inputs": [{"id": "TK0002"}], "properties": ["name"]})
    assert by_code.status_code == 200 and by_code.json()["results"][0]["id"] == ids[1]

    sb.clock.advance(10)
    upd = sb.post("/crm/v3/objects/companies/batch/update", {"inputs": [
        {"id": ids[0], "properties": {"city": "大阪市"}},
        {"id": "TK0002", "idProperty": "renkei_partner_code", "properties": {"city": "京都市"}},
        {"id": "999", "properties": {"city": "x"}, "objectWriteTraceId": "missing"}]})
    assert upd.status_code == 207
    ub = upd.json()
    assert sorted(x["properties"]["city"] for x in ub["results"]) == ["京都市", "大阪市"]
    assert ub["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert ub["errors"][0]["context"]["objectWriteTraceId"] == ["missing"]

    ups = sb.post("/crm/v3/objects/companies/batch/upsert", {"inputs": [
        {"id": "TK0001", "idProperty": "renkei_partner_code", "properties": {"name": "A社（更新）"}},
        {"id": "TK0003", "idProperty": "renkei_partner_code", "properties": {"name": "C社"}}]})
    assert ups.status_code == 200, ups.text
    results = {x["properties"]["renkei_partner_code"]: x for x in ups.json()["results"]}
    assert results["TK0001"]["new"] is False and results["TK0001"]["id"] == ids[0]
    assert results["TK0003"]["new"] is True and results["TK0003"]["properties"]["name"] == "C社"
    # upsert needs a unique idProperty
    assert_error(sb.post("/crm/v3/objects/companies/batch/upsert", {"inputs": [
        {"id": "x", "idProperty": "name", "properties": {}}]}), 400, "VALIDATION_ERROR")

    assert sb.post("/crm/v3/objects/companies/batch/archive", {"inputs": [{"id": ids[0]}, {"id": "999"}]}).status_code == 204
    assert sb.get(f"/crm/v3/objects/companies/{ids[0]}").status_code == 404


# ------------------------------------------------------------------------------------------ search


def _ids(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()["results"]]


def _f(prop: str, op: str, value: Any = None, **kw: Any) -> dict[str, Any]:
    f = {"propertyName": prop, "operator": op, **kw}
    if value is not None:
        f["value"] = value
    return f


def test_search_operators(sb: Sandbox) -> None:
    rows = [("山田商事", "100", "yamada.example"), ("佐藤製作所", "250", "sato.example"),
            ("Acme Trading Co", "400", None), ("Blue Sky Inc", None, "bluesky.example")]
    ids = []
    for name, emp, domain in rows:
        props = {"name": name, **({"numberofemployees": emp} if emp else {}), **({"domain": domain} if domain else {})}
        ids.append(sb.post("/crm/v3/objects/companies", {"properties": props}).json()["id"])
        sb.clock.advance(1000)

    def q(*filters: dict[str, Any], groups: list[list[dict[str, Any]]] | None = None, **extra: Any) -> list[str]:
        fg = [{"filters": list(g)} for g in groups] if groups else [{"filters": list(filters)}]
        return _ids(sb.search("companies", {"filterGroups": fg, "limit": 100, **extra}))

    assert q(_f("numberofemployees", "EQ", "250")) == [ids[1]]
    assert q(_f("numberofemployees", "NEQ", "250")) == [ids[0], ids[2], ids[3]]  # missing value counts as "not equal"
    assert q(_f("numberofemployees", "LT", "250")) == [ids[0]]
    assert q(_f("numberofemployees", "LTE", "250")) == [ids[0], ids[1]]
    assert q(_f("numberofemployees", "GT", "250")) == [ids[2]]
    assert q(_f("numberofemployees", "GTE", "100")) == ids[:3]
    assert q(_f("numberofemployees", "BETWEEN", "150", highValue="400")) == [ids[1], ids[2]]
    assert q(_f("numberofemployees", "IN", values=["100", "400"])) == [ids[0], ids[2]]
    assert q(_f("numberofemployees", "NOT_IN", values=["100", "400"])) == [ids[1], ids[3]]
    assert q(_f("numberofemployees", "HAS_PROPERTY")) == ids[:3]
    assert q(_f("numberofemployees", "NOT_HAS_PROPERTY")) == [ids[3]]
    assert q(_f("name", "CONTAINS_TOKEN", "trading")) == [ids[2]]
    assert q(_f("name", "NOT_CONTAINS_TOKEN", "trading")) == [ids[0], ids[1], ids[3]]
    assert q(_f("domain", "CONTAINS_TOKEN", "*.example")) == [ids[0], ids[1], ids[3]]
    assert q(_f("name", "EQ", "acme trading co")) == [ids[2]]  # string EQ is case-insensitive
    assert q(_f("name", "IN", values=["blue sky inc"])) == [ids[3]]
    assert q(_f("name", "IN", values=["Blue Sky Inc"])) == []  # IN on strings wants lower-case values
    # AND inside a group, OR across groups
    assert q(_f("numberofemployees", "GTE", "100"), _f("domain", "HAS_PROPERTY")) == [ids[0], ids[1]]
    assert q(groups=[[_f("name", "EQ", "山田商事")], [_f("name", "EQ", "blue sky inc")]]) == [ids[0], ids[3]]
    # dates: epoch-ms strings; createdate of ids[1] is T0 + 1000
    assert q(_f("createdate", "GTE", str(T0 + 1000)), _f("createdate", "LT", str(T0 + 3000))) == [ids[1], ids[2]]
    assert q(_f("hs_object_id", "GT", ids[2])) == [ids[3]]
    # sort, query, properties
    desc = q(_f("numberofemployees", "HAS_PROPERTY"), sorts=[{"propertyName": "numberofemployees", "direction": "DESCENDING"}])
    assert desc == [ids[2], ids[1], ids[0]]
    assert _ids(sb.search("companies", {"query": "sky"})) == [ids[3]]
    res = sb.search("companies", {"properties": ["domain"], "limit": 1}).json()
    assert set(res["results"][0]["properties"]) == {"domain", "createdate", "hs_lastmodifieddate", "hs_object_id"}
    assert res["total"] == 4 and res["paging"]["next"]["after"] == "1"


def test_search_defaults_paging_and_validation(demo_sb: Sandbox) -> None:
    first = demo_sb.search("companies", {}).json()
    assert first["total"] == 40 and len(first["results"]) == 10 and first["paging"]["next"]["after"] == "10"
    assert set(first["results"][0]["properties"]) == {"name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"}
    created = [r["properties"]["createdate"] for r in first["results"]]
    assert created == sorted(created)  # default order: creation date ascending
    collected: list[str] = []
    after: str | None = None
    while True:
        body = demo_sb.search("companies", {"limit": 15, **({"after": after} if after else {})}).json()
        collected += [r["id"] for r in body["results"]]
        if "paging" not in body:
            break
        after = body["paging"]["next"]["after"]
    assert len(collected) == 40 == len(set(collected))

    f = _f("name", "HAS_PROPERTY")
    for body in (
        {"filterGroups": [{"filters": [f]}] * 6},  # > 5 groups
        {"filterGroups": [{"filters": [f] * 7}]},  # > 6 filters in a group
        {"filterGroups": [{"filters": [f] * 5}] * 4},  # 20 > 18 filters in total
        {"limit": 201},
        {"sorts": [{"propertyName": "name", "direction": "ASCENDING"}, {"propertyName": "domain", "direction": "ASCENDING"}]},
        {"query": "x" * 3001},
        {"filterGroups": [{"filters": [_f("nonexistent", "EQ", "1")]}]},
        {"filterGroups": [{"filters": [_f("name", "LIKE", "1")]}]},
    ):
        assert_error(demo_sb.search("companies", body), 400, "VALIDATION_ERROR")
    ok = {"filterGroups": [{"filters": [f] * 6}] * 3}  # exactly 18: allowed
    assert demo_sb.search("companies", ok).status_code == 200
    assert len(demo_sb.search("companies", {"limit": 200}).json()["results"]) == 40


def test_search_demo_deals_by_stage_and_association(demo_sb: Sandbox) -> None:
    won = demo_sb.search("deals", {"filterGroups": [{"filters": [_f("hs_is_closed_won", "EQ", "true")]}], "limit": 100}).json()
    assert won["total"] == sum(1 for d in demo.DEALS if d.won)
    lower = demo_sb.search("deals", {"filterGroups": [{"filters": [_f("dealstage", "EQ", "ClosedWon")]}]}).json()
    assert lower["total"] == 0  # enumeration filters are case-sensitive
    yamada = demo_sb.search("companies", {"filterGroups": [{"filters": [_f("name", "EQ", "株式会社山田商事")]}]}).json()
    company_id = yamada["results"][0]["id"]
    deals = demo_sb.search("deals", {"filterGroups": [{"filters": [_f("associations.company", "EQ", company_id)]}],
                                     "properties": ["dealname"]}).json()
    assert [d["properties"]["dealname"] for d in deals["results"]] == ["山田商事 導入一式"]


def test_search_index_lag() -> None:
    sb = Sandbox(seed="none", clock=Clock(frozen_ms=T0), index_lag_ms=2_000)
    try:
        rec = sb.post("/crm/v3/objects/companies", {"properties": {"name": "新規"}}).json()
        assert sb.get(f"/crm/v3/objects/companies/{rec['id']}").status_code == 200  # reads are immediate
        assert sb.search("companies", {}).json()["total"] == 0
        sb.clock.advance(2_000)
        assert _ids(sb.search("companies", {})) == [rec["id"]]
        sb.patch(f"/crm/v3/objects/companies/{rec['id']}", {"properties": {"name": "改名"}})
        by_new = {"filterGroups": [{"filters": [_f("name", "EQ", "改名")]}]}
        assert sb.search("companies", by_new).json()["total"] == 0  # the index still has the old name
        assert sb.search("companies", {"properties": ["name"]}).json()["results"][0]["properties"]["name"] == "新規"
        sb.clock.advance(2_000)
        assert sb.search("companies", by_new).json()["total"] == 1
    finally:
        sb.close()


# ------------------------------------------------------------------------------------------ merge


def test_company_merge_new_id_combines_properties_and_associations(sb: Sandbox) -> None:
    a = sb.post("/crm/v3/objects/companies", {"properties": {"name": "株式会社山田商事", "phone": "03-1111-2222"}}).json()
    b = sb.post("/crm/v3/objects/companies", {"properties": {"name": "㈱山田商事", "city": "千代田区", "phone": "03-9999-9999"}}).json()
    deal = sb.post("/crm/v3/objects/deals", {"properties": {"dealname": "D", "dealstage": "appointmentscheduled"}}).json()
    assert sb.put(f"/crm/v4/objects/deals/{deal['id']}/associations/default/companies/{b['id']}").status_code == 200
    sb.clock.advance(500)
    r = sb.post("/crm/v3/objects/companies/merge", {"primaryObjectId": a["id"], "objectIdToMerge": b["id"]})
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["id"] not in (a["id"], b["id"])  # a new id by default
    p = merged["properties"]
    assert p["name"] == "株式会社山田商事" and p["phone"] == "03-1111-2222"  # primary wins
    assert p["city"] == "千代田区"  # filled from the merged record
    assert sorted(p["hs_merged_object_ids"].split(";")) == sorted([a["id"], b["id"]])
    assert p["hs_lastmodifieddate"] == "2026-05-28T20:26:40.500Z" and p["createdate"] == a["properties"]["createdate"]
    for old in (a["id"], b["id"]):
        assert sb.get(f"/crm/v3/objects/companies/{old}").status_code == 404
    assoc = sb.get(f"/crm/v4/objects/companies/{merged['id']}/associations/deals").json()["results"]
    assert [x["toObjectId"] for x in assoc] == [int(deal["id"])]
    back = sb.get(f"/crm/v4/objects/deals/{deal['id']}/associations/companies").json()["results"]
    assert [x["toObjectId"] for x in back] == [int(merged["id"])]
    assert sb.search("companies", {}).json()["total"] == 1
    assert any(e["subscriptionType"] == "company.merge" for e in sb.get("/_sandbox/events").json()["results"])
    assert_error(sb.post("/crm/v3/objects/companies/merge", {"primaryObjectId": merged["id"], "objectIdToMerge": merged["id"]}),
                 400, "VALIDATION_ERROR")


def test_merge_can_preserve_primary_id() -> None:
    sb = Sandbox(seed="none", preserve_merge_id=True)
    try:
        a = sb.post("/crm/v3/objects/companies", {"properties": {"name": "A"}}).json()["id"]
        b = sb.post("/crm/v3/objects/companies", {"properties": {"name": "B"}}).json()["id"]
        merged = sb.post("/crm/v3/objects/companies/merge", {"primaryObjectId": a, "objectIdToMerge": b}).json()
        assert merged["id"] == a
        assert sb.get(f"/crm/v3/objects/companies/{a}").status_code == 200
        assert sb.get(f"/crm/v3/objects/companies/{b}").status_code == 404
    finally:
        sb.close()


# ------------------------------------------------------------------------------------------ associations


def test_associations_v4_default_labeled_list_delete(sb: Sandbox) -> None:
    deal = sb.post("/crm/v3/objects/deals", {"properties": {"dealname": "D"}}).json()["id"]
    c1 = sb.post("/crm/v3/objects/companies", {"properties": {"name": "C1"}}).json()["id"]
    c2 = sb.post("/crm/v3/objects/companies", {"properties": {"name": "C2"}}).json()["id"]
    r = sb.put(f"/crm/v4/objects/deals/{deal}/associations/default/companies/{c1}").json()
    assert r["status"] == "COMPLETE"
    assert sorted(x["associationSpec"]["associationTypeId"] for x in r["results"]) == [341, 342]
    labeled = sb.put(f"/crm/v4/objects/deals/{deal}/associations/companies/{c2}",
                     [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}])
    assert labeled.status_code == 201
    assert labeled.json() == {"fromObjectTypeId": "0-3", "fromObjectId": int(deal), "toObjectTypeId": "0-2",
                              "toObjectId": int(c2), "labels": ["Primary"]}
    listed = sb.get(f"/crm/v4/objects/deals/{deal}/associations/companies").json()["results"]
    types = {x["toObjectId"]: sorted(t["typeId"] for t in x["associationTypes"]) for x in listed}
    assert types == {int(c1): [341], int(c2): [5, 341]}
    # reverse direction carries the inverse ids
    rev = sb.get(f"/crm/v4/objects/companies/{c2}/associations/deals").json()["results"][0]
    assert sorted(t["typeId"] for t in rev["associationTypes"]) == [6, 342]
    # a new primary replaces the old one
    sb.put(f"/crm/v4/objects/deals/{deal}/associations/companies/{c1}", [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}])
    listed = sb.get(f"/crm/v4/objects/deals/{deal}/associations/companies").json()["results"]
    assert {x["toObjectId"]: sorted(t["typeId"] for t in x["associationTypes"]) for x in listed} == {int(c1): [5, 341], int(c2): [341]}
    # inline associations on a v3 read
    inline = sb.get(f"/crm/v3/objects/deals/{deal}", params={"associations": "companies"}).json()["associations"]["companies"]["results"]
    assert {(x["id"], x["type"]) for x in inline} == {(c1, "deal_to_company"), (c1, "deal_to_company_unlabeled"), (c2, "deal_to_company_unlabeled")}
    # invalid type id / unsupported category
    assert_error(sb.put(f"/crm/v4/objects/deals/{deal}/associations/companies/{c1}",
                        [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]), 400, "VALIDATION_ERROR")
    assert sb.delete(f"/crm/v4/objects/deals/{deal}/associations/companies/{c1}").status_code == 204
    assert [x["toObjectId"] for x in sb.get(f"/crm/v4/objects/deals/{deal}/associations/companies").json()["results"]] == [int(c2)]
    assert sb.get(f"/crm/v4/objects/companies/{c1}/associations/deals").json()["results"] == []
    labels = sb.get("/crm/v4/associations/deals/companies/labels").json()["results"]
    assert {(x["typeId"], x["label"]) for x in labels} == {(341, None), (5, "Primary")}


def test_associations_v4_paging_and_batch_caps(sb: Sandbox) -> None:
    company = sb.post("/crm/v3/objects/companies", {"properties": {"name": "大口"}}).json()["id"]
    contacts = sb.store.bulk_create("contacts", [{"lastname": f"社員{i}"} for i in range(650)])
    sb.store.bulk_associate("companies", "contacts", [(company, c) for c in contacts])
    page1 = sb.get(f"/crm/v4/objects/companies/{company}/associations/contacts").json()
    assert len(page1["results"]) == 500 and "after" in page1["paging"]["next"]
    page2 = sb.get(f"/crm/v4/objects/companies/{company}/associations/contacts",
                   params={"after": page1["paging"]["next"]["after"]}).json()
    assert len(page2["results"]) == 150 and "paging" not in page2
    got = [x["toObjectId"] for x in page1["results"] + page2["results"]]
    assert got == [int(c) for c in contacts]

    read = sb.post("/crm/v4/associations/contacts/companies/batch/read",
                   {"inputs": [{"id": contacts[0]}, {"id": contacts[1]}, {"id": "777777"}]})
    assert read.status_code == 207
    rb = read.json()
    assert [x["from"]["id"] for x in rb["results"]] == contacts[:2]
    assert rb["results"][0]["to"][0]["toObjectId"] == int(company)
    assert rb["errors"][0]["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert_error(sb.post("/crm/v4/associations/contacts/companies/batch/read",
                         {"inputs": [{"id": c} for c in contacts[:1]] * 1001}), 400, "VALIDATION_ERROR")

    deals = sb.store.bulk_create("deals", [{"dealname": f"D{i}"} for i in range(3)])
    spec = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]
    created = sb.post("/crm/v4/associations/deals/contacts/batch/create",
                      {"inputs": [{"from": {"id": d}, "to": {"id": contacts[i]}, "types": spec} for i, d in enumerate(deals)]})
    assert created.status_code == 201 and len(created.json()["results"]) == 3
    too_many = {"inputs": [{"from": {"id": deals[0]}, "to": {"id": contacts[0]}, "types": spec}] * 2001}
    assert_error(sb.post("/crm/v4/associations/deals/contacts/batch/create", too_many), 400, "VALIDATION_ERROR")
    dflt = sb.post("/crm/v4/associations/deals/companies/batch/associate/default",
                   {"inputs": [{"from": {"id": deals[0]}, "to": {"id": company}}]})
    assert dflt.status_code == 200 and len(dflt.json()["results"]) == 2
    assert sb.post("/crm/v4/associations/deals/contacts/batch/archive",
                   {"inputs": [{"from": {"id": deals[0]}, "to": [{"id": contacts[0]}]}]}).status_code == 204
    assert sb.get(f"/crm/v4/objects/deals/{deals[0]}/associations/contacts").json()["results"] == []


def test_line_item_has_one_parent(sb: Sandbox) -> None:
    d1, d2 = sb.store.bulk_create("deals", [{"dealname": "1"}, {"dealname": "2"}])
    li = sb.post("/crm/v3/objects/line_items", {"properties": {"name": "x", "price": "1", "quantity": "1"}}).json()["id"]
    assert sb.put(f"/crm/v4/objects/line_items/{li}/associations/default/deals/{d1}").status_code == 200
    assert_error(sb.put(f"/crm/v4/objects/line_items/{li}/associations/default/deals/{d2}"), 400, "VALIDATION_ERROR")


# ------------------------------------------------------------------------------------------ properties


def test_properties_api_and_id_property(sb: Sandbox) -> None:
    names = {p["name"] for p in sb.get("/crm/v3/properties/companies").json()["results"]}
    assert {"name", "domain", "hs_object_id", "createdate", "hs_lastmodifieddate"} <= names
    one = sb.get("/crm/v3/properties/deals/dealstage").json()
    assert one["type"] == "enumeration" and one["hubspotDefined"] is True
    assert_error(sb.get("/crm/v3/properties/deals/nope"), 404, "OBJECT_NOT_FOUND")

    group = sb.post("/crm/v3/properties/companies/groups", {"name": "accounting_sync", "label": "Accounting sync"})
    assert group.status_code == 201
    assert_error(sb.post("/crm/v3/properties/companies/groups", {"name": "accounting_sync", "label": "x"}), 409, "OBJECT_ALREADY_EXISTS")
    body = {"name": "freee_partner_id", "label": "freee 取引先ID", "type": "string", "fieldType": "text",
            "groupName": "accounting_sync", "hasUniqueValue": True}
    created = sb.post("/crm/v3/properties/companies", body)
    assert created.status_code == 201
    assert created.json()["hasUniqueValue"] is True and created.json()["hubspotDefined"] is False
    assert_error(sb.post("/crm/v3/properties/companies", body), 409, "OBJECT_ALREADY_EXISTS")
    missing = assert_error(sb.post("/crm/v3/properties/companies", {"name": "x_y"}), 400, "VALIDATION_ERROR")
    assert "label" in missing["message"] and "groupName" in missing["message"]
    assert_error(sb.post("/crm/v3/properties/companies", {**body, "name": "z", "type": "money"}), 400, "VALIDATION_ERROR")
    assert_error(sb.post("/crm/v3/properties/companies", {**body, "name": "z", "groupName": "nogroup"}), 400, "VALIDATION_ERROR")

    rec = sb.post("/crm/v3/objects/companies", {"properties": {"name": "X社", "freee_partner_id": "P-77"}}).json()
    by_unique = sb.get("/crm/v3/objects/companies/P-77", params={"idProperty": "freee_partner_id"})
    assert by_unique.status_code == 200 and by_unique.json()["id"] == rec["id"]
    upd = sb.patch("/crm/v3/objects/companies/P-77?idProperty=freee_partner_id", {"properties": {"city": "札幌市"}})
    assert upd.status_code == 200 and upd.json()["properties"]["city"] == "札幌市"
    assert_error(sb.get("/crm/v3/objects/companies/X社", params={"idProperty": "name"}), 400, "VALIDATION_ERROR")
    assert_error(sb.get("/crm/v3/objects/companies/P-00", params={"idProperty": "freee_partner_id"}), 404, "OBJECT_NOT_FOUND")
    dup = sb.post("/crm/v3/objects/companies", {"properties": {"name": "Y社", "freee_partner_id": "P-77"}})
    assert_error(dup, 409, "CONFLICT")

    enum = {"name": "renkei_invoice_status", "label": "請求状態", "type": "enumeration", "fieldType": "select",
            "groupName": "dealinformation", "options": [{"label": "作成済", "value": "created"}, {"label": "入金済", "value": "paid"}]}
    assert sb.post("/crm/v3/properties/deals", enum).status_code == 201
    deal = sb.post("/crm/v3/objects/deals", {"properties": {"dealname": "d", "renkei_invoice_status": "created"}})
    assert deal.status_code == 201
    bad = sb.patch(f"/crm/v3/objects/deals/{deal.json()['id']}", {"properties": {"renkei_invoice_status": "void"}})
    assert "INVALID_OPTION" in assert_error(bad, 400, "VALIDATION_ERROR")["message"]
    batch = sb.post("/crm/v3/properties/companies/batch/read", {"inputs": [{"name": "freee_partner_id"}, {"name": "nope"}]})
    assert batch.status_code == 207 and batch.json()["results"][0]["name"] == "freee_partner_id"


# ------------------------------------------------------------------------------------------ pipelines, owners


def test_pipelines_and_owners(demo_sb: Sandbox) -> None:
    pipelines = demo_sb.get("/crm/v3/pipelines/deals").json()["results"]
    assert [p["id"] for p in pipelines] == ["default", "87654321"]
    default = {s["id"]: s["metadata"]["probability"] for s in pipelines[0]["stages"]}
    assert default == {"appointmentscheduled": "0.2", "qualifiedtobuy": "0.4", "presentationscheduled": "0.6",
                       "decisionmakerboughtin": "0.8", "contractsent": "0.9", "closedwon": "1.0", "closedlost": "0.0"}
    custom = demo_sb.get("/crm/v3/pipelines/deals/87654321/stages").json()["results"]
    won = [s["id"] for s in custom if float(s["metadata"]["probability"]) == 1.0]
    assert won == ["160014504"] and all(s["id"].isdigit() for s in custom)
    assert all(isinstance(v, str) for s in custom for v in s["metadata"].values())
    assert demo_sb.get("/crm/v3/pipelines/deals/default").json()["label"] == "Sales Pipeline"
    assert demo_sb.get("/crm/v3/pipelines/0-3/default/stages/closedwon").json()["metadata"]["isClosed"] == "true"
    assert_error(demo_sb.get("/crm/v3/pipelines/deals/nope"), 404, "OBJECT_NOT_FOUND")

    owners = demo_sb.get("/crm/v3/owners").json()["results"]
    assert [o["email"] for o in owners] == [o.email for o in demo.OWNERS]
    one = demo_sb.get("/crm/v3/owners/", params={"email": demo.OWNERS[1].email}).json()["results"]
    assert len(one) == 1 and one[0]["lastName"] == "桜井"
    assert demo_sb.get(f"/crm/v3/owners/{one[0]['id']}").json()["firstName"] == "由美"
    company = demo_sb.get("/crm/v3/objects/companies", params={"limit": 1, "properties": "hubspot_owner_id"}).json()
    assert company["results"][0]["properties"]["hubspot_owner_id"] == owners[0]["id"]


def test_demo_seed_shape(demo_sb: Sandbox) -> None:
    store = demo_sb.store
    ids = store.demo_ids
    d15 = ids["deals"]["D15"]
    items = demo_sb.get(f"/crm/v4/objects/deals/{d15}/associations/line_items").json()["results"]
    assert len(items) == 2
    amendment = demo_sb.get(f"/crm/v3/objects/line_items/{ids['line_items']['D15-2']}",
                            params={"properties": "renkei_effective_date,recurringbillingfrequency,hs_term_in_months,quantity"}).json()
    assert amendment["properties"] == {**amendment["properties"], "renkei_effective_date": "2026-11-16",
                                       "recurringbillingfrequency": "monthly", "hs_term_in_months": "10", "quantity": "5"}
    primary = demo_sb.get(f"/crm/v4/objects/deals/{ids['deals']['D01']}/associations/companies").json()["results"]
    assert primary[0]["toObjectId"] == int(ids["companies"]["C01"])
    assert {t["typeId"] for t in primary[0]["associationTypes"]} == {5, 341}
    sole = demo_sb.get(f"/crm/v3/objects/companies/{ids['companies']['C39']}",
                       params={"properties": "renkei_entity_kind,renkei_invoice_registration_number"}).json()
    assert sole["properties"]["renkei_entity_kind"] == "sole_trader"


# ------------------------------------------------------------------------------------------ webhooks


def test_webhook_signature_test_vector() -> None:
    from renkei.sandboxes.hubspot.webhooks import signature_v3

    body = ('[{"eventId":1,"subscriptionType":"deal.propertyChange","objectId":123,"propertyName":"dealstage",'
            '"propertyValue":"closedwon"}]')
    sig = signature_v3("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", "POST", "https://example.com/webhooks/hubspot?x=1",
                       body, 1700000000000)
    assert sig == "jVl66nZxGFsp+8mjQ0uXAdA+nWYNvUzn7kQjIrBmCkM="
    encoded = signature_v3("s", "POST", "https://example.com/hook%3Fa%2Cb?x=%40", "[]", 1)
    assert encoded == signature_v3("s", "POST", "https://example.com/hook?a,b?x=@", "[]", 1)


def test_webhook_delivery_signed_and_redelivered() -> None:
    from hubspot.utils.signature import Signature

    received: list[tuple[dict[str, str], bytes]] = []
    receiver = FastAPI()

    @receiver.post("/hooks/hubspot")
    async def hook(request: Request) -> dict[str, bool]:
        received.append((dict(request.headers), await request.body()))
        return {"ok": True}

    sb = Sandbox(seed="none")
    try:
        with ServerThread(receiver) as rx:
            target = rx.url + "/hooks/hubspot"
            company = sb.post("/crm/v3/objects/companies", {"properties": {"name": "通知"}}).json()["id"]
            sb.patch(f"/crm/v3/objects/companies/{company}", {"properties": {"city": "仙台市"}})
            admin = httpx.post(sb.server.url + "/_sandbox/webhooks/deliver", json={
                "targetUrl": target, "clientSecret": "app-secret", "subscriptionTypes": ["company.creation", "company.propertyChange"]})
            assert admin.json()["delivered"] == 2 and admin.json()["receiverStatus"] == 200
            httpx.post(sb.server.url + "/_sandbox/webhooks/deliver", json={
                "targetUrl": target, "clientSecret": "app-secret", "attemptNumber": 1,
                "subscriptionTypes": ["company.creation", "company.propertyChange"]})
        assert len(received) == 2
        (h1, b1), (h2, b2) = received
        for headers, body in received:
            assert Signature.is_valid(signature=headers["x-hubspot-signature-v3"], client_secret="app-secret",
                                      request_body=body.decode(), http_uri=target, http_method="POST",
                                      signature_version="v3", timestamp=int(headers["x-hubspot-request-timestamp"]))
        first, again = json.loads(b1), json.loads(b2)
        assert [e["subscriptionType"] for e in first] == ["company.creation", "company.propertyChange"]
        assert first[0]["objectId"] == int(company) and first[0]["changeFlag"] == "NEW"
        assert first[1]["propertyName"] == "city" and first[1]["propertyValue"] == "仙台市"
        assert [e["eventId"] for e in again] == [e["eventId"] for e in first]
        assert {e["attemptNumber"] for e in first} == {0} and {e["attemptNumber"] for e in again} == {1}
    finally:
        sb.close()
