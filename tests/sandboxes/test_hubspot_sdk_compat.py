"""The official SDK (``hubspot-api-client``) works against the HubSpot sandbox for every endpoint family
the sandbox serves: objects (basic, batch, search, merge), associations v4, properties, pipelines,
owners — and HubSpot's errors surface as ``ApiException`` with the right status and body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

hubspot = pytest.importorskip("hubspot", reason="hubspot-api-client is not installed")

from hubspot import HubSpot  # noqa: E402
from hubspot.crm import companies as hc  # noqa: E402
from hubspot.crm import deals as hd  # noqa: E402
from hubspot.crm import objects as ho  # noqa: E402
from hubspot.crm.associations import v4 as av4  # noqa: E402
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate  # noqa: E402

from renkei.sandboxes import demo_data as demo  # noqa: E402
from renkei.sandboxes.common import ServerThread  # noqa: E402
from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app  # noqa: E402

TOKEN = "hs-sdk-test-token"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[HubSpot, Any]]:
    app = create_app(HubSpotSandboxConfig(token=TOKEN, seed="demo", rate_limit_per_10s=0, search_per_second=0))
    with ServerThread(app) as server:
        yield HubSpot(access_token=TOKEN, host=server.url), server


@pytest.fixture
def hs(sandbox: tuple[HubSpot, Any]) -> HubSpot:
    return sandbox[0]


def body_of(exc: Exception) -> dict[str, Any]:
    return json.loads(exc.body)  # type: ignore[attr-defined]


def test_basic_api_get_page_get_by_id_create_update_archive(hs: HubSpot) -> None:
    page = hs.crm.companies.basic_api.get_page(limit=5, properties=["name", "renkei_corporate_number"])
    assert len(page.results) == 5 and page.paging.next.after
    assert page.results[0].properties["name"] == demo.COMPANIES[0].name
    assert page.results[0].properties["renkei_corporate_number"] == demo.COMPANIES[0].corporate_number
    nxt = hs.crm.companies.basic_api.get_page(limit=5, after=page.paging.next.after)
    assert nxt.results[0].properties["name"] == demo.COMPANIES[5].name

    created = hs.crm.companies.basic_api.create(hc.SimplePublicObjectInputForCreate(
        properties={"name": "SDK株式会社", "domain": "sdk.example"}))
    assert created.id and created.properties["hs_object_id"] == created.id
    assert created.created_at.year >= 2026
    got = hs.crm.companies.basic_api.get_by_id(created.id, properties=["name", "domain"])
    assert got.properties["domain"] == "sdk.example"
    updated = hs.crm.companies.basic_api.update(created.id, hc.SimplePublicObjectInput(properties={"city": "横浜市"}))
    assert updated.properties["city"] == "横浜市" and updated.updated_at >= got.updated_at
    hs.crm.companies.basic_api.archive(created.id)
    with pytest.raises(hc.ApiException) as err:
        hs.crm.companies.basic_api.get_by_id(created.id)
    assert err.value.status == 404 and body_of(err.value)["category"] == "OBJECT_NOT_FOUND"
    archived = hs.crm.companies.basic_api.get_by_id(created.id, archived=True)
    assert archived.archived is True and archived.archived_at is not None


def test_basic_api_associations_and_id_property(hs: HubSpot) -> None:
    deals = hs.crm.deals.basic_api.get_page(limit=1, associations=["companies", "line_items"])
    deal = deals.results[0]
    assert {a.type for a in deal.associations["companies"].results} == {"deal_to_company", "deal_to_company_unlabeled"}
    assert len(deal.associations["line_items"].results) == len(demo.DEALS[0].line_items)
    corp = demo.COMPANIES[1].corporate_number
    by_unique = hs.crm.companies.basic_api.get_by_id(corp, id_property="renkei_corporate_number", properties=["name"])
    assert by_unique.properties["name"] == demo.COMPANIES[1].name
    with pytest.raises(hc.ApiException) as err:
        hs.crm.companies.basic_api.get_by_id("x", id_property="name")
    assert err.value.status == 400


def test_generic_objects_api_with_type_ids(hs: HubSpot) -> None:
    items = hs.crm.objects.basic_api.get_page("0-8", limit=3, properties=["name", "quantity", "price", "amount", "hs_product_id"])
    first = items.results[0].properties
    assert len(items.results) == 3 and first["amount"].endswith(".00")
    product = hs.crm.objects.basic_api.get_by_id("0-7", first["hs_product_id"], properties=["name", "price"])
    assert product.properties["name"] == first["name"] and product.properties["price"] == first["price"]
    li = hs.crm.line_items.basic_api.create(ho.SimplePublicObjectInputForCreate(
        properties={"name": "追加作業", "quantity": "2", "price": "15000"}))
    assert li.properties["amount"] == "30000.00"


def test_batch_api(hs: HubSpot) -> None:
    batch = hs.crm.companies.batch_api.create(hc.BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        hc.SimplePublicObjectBatchInputForCreate(properties={"name": f"バッチ{i}"}, object_write_trace_id=f"b{i}")
        for i in range(3)]))
    assert batch.status == "COMPLETE" and len(batch.results) == 3
    ids = [r.id for r in batch.results]

    partial = hs.crm.companies.batch_api.create(hc.BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        hc.SimplePublicObjectBatchInputForCreate(properties={"name": "OK"}, object_write_trace_id="ok"),
        hc.SimplePublicObjectBatchInputForCreate(properties={"bogus_prop": "x"}, object_write_trace_id="bad")]))
    assert partial.num_errors == 1 and len(partial.results) == 1
    assert partial.errors[0].context["objectWriteTraceId"] == ["bad"]

    read = hs.crm.companies.batch_api.read(hc.BatchReadInputSimplePublicObjectId(
        inputs=[hc.SimplePublicObjectId(id=i) for i in ids], properties=["name"], properties_with_history=[]))
    assert sorted(r.properties["name"] for r in read.results) == ["バッチ0", "バッチ1", "バッチ2"]

    upd = hs.crm.companies.batch_api.update(hc.BatchInputSimplePublicObjectBatchInput(inputs=[
        hc.SimplePublicObjectBatchInput(id=ids[0], properties={"city": "福岡市"})]))
    assert upd.results[0].properties["city"] == "福岡市"

    corp = demo.COMPANIES[2].corporate_number
    ups = hs.crm.companies.batch_api.upsert(hc.BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        hc.SimplePublicObjectBatchInputUpsert(id=corp, id_property="renkei_corporate_number", properties={"city": "静岡市"}),
        hc.SimplePublicObjectBatchInputUpsert(id="9990001000001", id_property="renkei_corporate_number",
                                              properties={"name": "新規 upsert 社"})]))
    new_flags = {r.properties["renkei_corporate_number"]: r.new for r in ups.results}
    assert new_flags == {corp: False, "9990001000001": True}

    hs.crm.companies.batch_api.archive(hc.BatchInputSimplePublicObjectId(inputs=[hc.SimplePublicObjectId(id=ids[2])]))
    with pytest.raises(hc.ApiException):
        hs.crm.companies.basic_api.get_by_id(ids[2])

    too_many = hc.BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        hc.SimplePublicObjectBatchInputForCreate(properties={"name": str(i)}) for i in range(101)])
    with pytest.raises(hc.ApiException) as err:
        hs.crm.companies.batch_api.create(too_many)
    assert err.value.status == 400 and body_of(err.value)["category"] == "VALIDATION_ERROR"


def test_search_api(hs: HubSpot) -> None:
    req = hd.PublicObjectSearchRequest(
        filter_groups=[hd.FilterGroup(filters=[hd.Filter(property_name="hs_is_closed_won", operator="EQ", value="true")])],
        sorts=[{"propertyName": "amount", "direction": "DESCENDING"}],
        properties=["dealname", "amount"], limit=5)
    res = hs.crm.deals.search_api.do_search(req)
    won = sorted((d for d in demo.DEALS if d.won), key=lambda d: d.amount, reverse=True)
    assert res.total == len(won)
    assert [r.properties["dealname"] for r in res.results] == [d.name for d in won[:5]]
    assert res.paging.next.after == "5"
    between = hs.crm.companies.search_api.do_search(hc.PublicObjectSearchRequest(filter_groups=[hc.FilterGroup(filters=[
        hc.Filter(property_name="hs_object_id", operator="IN",
                  values=[r.id for r in hs.crm.companies.basic_api.get_page(limit=2).results])])]))
    assert between.total == 2
    with pytest.raises(hc.ApiException) as err:
        hs.crm.companies.search_api.do_search(hc.PublicObjectSearchRequest(limit=500))
    assert err.value.status == 400


def test_merge(hs: HubSpot) -> None:
    a = hs.crm.companies.basic_api.create(hc.SimplePublicObjectInputForCreate(properties={"name": "統合先"})).id
    b = hs.crm.companies.basic_api.create(hc.SimplePublicObjectInputForCreate(properties={"name": "統合元", "city": "那覇市"})).id
    merged = hs.crm.companies.basic_api.merge(hc.PublicMergeInput(primary_object_id=a, object_id_to_merge=b))
    assert merged.id not in (a, b)
    assert merged.properties["name"] == "統合先" and merged.properties["city"] == "那覇市"
    with pytest.raises(hc.ApiException) as err:
        hs.crm.companies.basic_api.get_by_id(a)
    assert err.value.status == 404


def test_associations_v4(hs: HubSpot) -> None:
    deal = hs.crm.deals.basic_api.create(hd.SimplePublicObjectInputForCreate(properties={"dealname": "関連付け"})).id
    company = hs.crm.companies.basic_api.get_page(limit=1).results[0].id
    dflt = hs.crm.associations.v4.basic_api.create_default("deals", deal, "companies", company)
    assert dflt.status == "COMPLETE"
    assert sorted(r.association_spec.association_type_id for r in dflt.results) == [341, 342]
    labeled = hs.crm.associations.v4.basic_api.create("deals", deal, "companies", company, [
        av4.AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=5)])
    assert labeled.labels == ["Primary"] and labeled.from_object_type_id == "0-3"
    page = hs.crm.associations.v4.basic_api.get_page("deals", deal, "companies")
    assert page.results[0].to_object_id == company
    assert sorted(t.type_id for t in page.results[0].association_types) == [5, 341]

    contacts = [c.id for c in hs.crm.contacts.basic_api.get_page(limit=2).results]
    created = hs.crm.associations.v4.batch_api.create("deals", "contacts", av4.BatchInputPublicAssociationMultiPost(inputs=[
        av4.PublicAssociationMultiPost(_from=av4.PublicObjectId(id=deal), to=av4.PublicObjectId(id=c),
                                       types=[av4.AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=3)])
        for c in contacts]))
    assert len(created.results) == 2
    read = hs.crm.associations.v4.batch_api.get_page("deals", "contacts", av4.BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[av4.PublicFetchAssociationsBatchRequest(id=deal)]))
    assert sorted(t.to_object_id for t in read.results[0].to) == sorted(contacts)
    hs.crm.associations.v4.basic_api.archive("deals", deal, "contacts", contacts[0])
    left = hs.crm.associations.v4.basic_api.get_page("deals", deal, "contacts")
    assert [r.to_object_id for r in left.results] == [contacts[1]]
    hs.crm.associations.v4.batch_api.archive("deals", "contacts", av4.BatchInputPublicAssociationMultiArchive(inputs=[
        av4.PublicAssociationMultiArchive(_from=av4.PublicObjectId(id=deal), to=[av4.PublicObjectId(id=contacts[1])])]))
    assert hs.crm.associations.v4.basic_api.get_page("deals", deal, "contacts").results == []


def test_properties_api(hs: HubSpot) -> None:
    all_props = hs.crm.properties.core_api.get_all("companies")
    assert "renkei_corporate_number" in {p.name for p in all_props.results}
    group = hs.crm.properties.groups_api.create("deals", PropertyGroupCreate(name="renkei_sync", label="Renkei sync"))
    assert group.name == "renkei_sync"
    created = hs.crm.properties.core_api.create("deals", PropertyCreate(
        name="renkei_invoice_number", label="請求書番号", type="string", field_type="text", group_name="renkei_sync",
        has_unique_value=True))
    assert created.has_unique_value is True and created.group_name == "renkei_sync"
    with pytest.raises(hubspot.crm.properties.ApiException) as err:
        hs.crm.properties.core_api.create("deals", PropertyCreate(
            name="renkei_invoice_number", label="x", type="string", field_type="text", group_name="renkei_sync"))
    assert err.value.status == 409
    got = hs.crm.properties.core_api.get_by_name("deals", "dealstage")
    assert got.type == "enumeration" and got.modification_metadata.read_only_value is False


def test_pipelines_and_owners(hs: HubSpot) -> None:
    pipelines = hs.crm.pipelines.pipelines_api.get_all("deals").results
    probabilities = {p.id: {s.id: s.metadata["probability"] for s in p.stages} for p in pipelines}
    assert probabilities["default"]["closedwon"] == "1.0"
    assert [sid for sid, prob in probabilities["87654321"].items() if float(prob) == 1.0] == ["160014504"]
    one = hs.crm.pipelines.pipelines_api.get_by_id("deals", "87654321")
    assert one.label == "サブスクリプション契約"
    stages = hs.crm.pipelines.pipeline_stages_api.get_all("deals", "default").results
    assert [s.id for s in stages][-2:] == ["closedwon", "closedlost"]
    owners = hs.crm.owners.owners_api.get_page().results
    assert [o.email for o in owners] == [o.email for o in demo.OWNERS]
    assert hs.crm.owners.owners_api.get_by_id(owners[0].id).last_name == "青山"


def test_auth_and_rate_limit_errors_reach_the_sdk(sandbox: tuple[HubSpot, Any]) -> None:
    _, server = sandbox
    wrong = HubSpot(access_token="wrong", host=server.url)
    with pytest.raises(hc.ApiException) as err:
        wrong.crm.companies.basic_api.get_page()
    assert err.value.status == 401 and body_of(err.value)["category"] == "INVALID_AUTHENTICATION"

    limited_app = create_app(HubSpotSandboxConfig(token=TOKEN, seed="none", rate_limit_per_10s=1))
    with ServerThread(limited_app) as limited:
        client = HubSpot(access_token=TOKEN, host=limited.url)
        client.crm.companies.basic_api.get_page()
        with pytest.raises(hc.ApiException) as err:
            client.crm.companies.basic_api.get_page()
        assert err.value.status == 429
        assert body_of(err.value)["policyName"] == "TEN_SECONDLY_ROLLING"
        assert err.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
