"""The companies & products part of the CRM contract (``CRMCompanies``), against every registered CRM's
sandbox, through the contract only: reads map to canonical records, writes name canonical fields, batch
writes answer per input, upserts by a canonical key are idempotent, watermarks resume."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

from renkei.connectors.base import (ChangeBatch, CompanyEcho, CompanyRecord, CompanyUpdate, CRMProduct, WriteResult,
                                    product_drift, product_values)
from renkei.domain.model import Address, Company, Product, TaxCategory


def _tag() -> str:
    return uuid.uuid4().hex[:6].upper()


def test_companies_upsert_read_update_search_and_resume(crm_empty):
    crm, tag = crm_empty, _tag()
    a = Company(name=f"株式会社適合{tag}", erp_id=f"P{tag}1", partner_code=f"CF-{tag}-A",
                registration_number="T9234567890123", phone="03-1234-5678",
                address=Address(postal_code="100-0001", prefecture="東京都", city="千代田区"))
    b = Company(name=f"合同会社適合{tag}", erp_id=f"P{tag}2")
    bad = Company(name="キー無し商店")  # no erp_id: a per-input failure, never an exception
    res = crm.upsert_companies([a, bad, b], key="erp_id")
    assert all(isinstance(r, WriteResult) for r in res) and [r.index for r in res] == [0, 1, 2]
    assert [r.ok for r in res] == [True, False, True] and res[1].error
    assert res[0].created is True and res[0].id and isinstance(res[0].value, Company)
    again = crm.upsert_companies([a], key="erp_id")  # the retry finds the same record
    assert again[0].ok and again[0].id == res[0].id and again[0].created is False
    a_id, b_id = str(res[0].id), str(res[2].id)

    got = {r.source_id: r for r in crm.get_companies([a_id, b_id, "999999999"])}
    assert set(got) == {a_id, b_id} and all(isinstance(r, CompanyRecord) and r.ok for r in got.values())
    ra = got[a_id].value
    assert (ra.crm_id, ra.erp_id, ra.name, ra.partner_code, ra.phone) == (a_id, a.erp_id, a.name, a.partner_code,
                                                                           a.phone)
    assert ra.address and ra.address.postal_code == "100-0001" and ra.registration_number == "T9234567890123"

    watermark = crm.company_watermark_now()
    time.sleep(0.01)
    # update names canonical fields; a None clears; fields not named stay as they are
    upd = crm.update_companies([CompanyUpdate(a_id, ra.model_copy(update={"phone": "03-9999-0000", "domain": None,
                                                                          "name": "ignored"}),
                                              frozenset({"phone", "domain"})),
                                CompanyUpdate(b_id, got[b_id].value.model_copy(update={"billing_email": "k@example.jp"}),
                                              frozenset({"billing_email"}))])
    assert [u.index for u in upd] == [0, 1] and all(u.ok for u in upd)
    assert isinstance(upd[0].value, CompanyEcho)
    if upd[0].value.company is not None and "phone" in upd[0].value.fields:
        assert upd[0].value.company.phone == "03-9999-0000"
    now = {r.source_id: r.value for r in crm.get_companies([a_id, b_id])}
    assert now[a_id].phone == "03-9999-0000" and now[a_id].name == a.name and now[b_id].billing_email == "k@example.jp"

    batches = list(crm.iter_company_changes(str(watermark)))  # stored as text, resumed from text
    assert batches and all(isinstance(bt, ChangeBatch) for bt in batches) and batches[-1].exhausted
    changed = {r.source_id: r for bt in batches for r in bt.records}
    assert {a_id, b_id} <= set(changed) and changed[a_id].value.phone == "03-9999-0000"
    assert upd[0].value.version is None or changed[a_id].version == upd[0].value.version  # our own write's echo
    everything = {r.source_id for page in crm.iter_all_companies() for r in page}
    assert {a_id, b_id} <= everything

    partner = Company(name=f"{tag}株式会社適合", erp_id="1", partner_code=a.partner_code)
    assert a_id in {r.source_id for r in crm.find_company_candidates(partner)}
    by_number = Company(name="全く別の名前", erp_id="2", registration_number="T9234567890123")
    assert a_id in {r.source_id for r in crm.find_company_candidates(by_number)}
    assert all(isinstance(p, list) and all(isinstance(i, str) for i in p) for p in crm.iter_archived_company_ids())
    if not crm.capabilities.merges:
        assert all(not r.merged_ids for r in changed.values())


def test_products_upsert_changes_adopt_and_archive(crm_empty):
    crm, tag = crm_empty, _tag()
    item = Product(code=f"SKU-{tag}", name="保守サービス", unit_price=12000, tax_category=TaxCategory.STANDARD_10,
                   erp_id="501", cost_price=8000, stock=Decimal("12.5"))  # cost / stock: where an ERP holds them
    other = Product(code=f"SKU-{tag}-2", name="導入支援", erp_id="502")
    res = crm.upsert_products([item, other])
    assert [r.index for r in res] == [0, 1] and all(r.ok and r.created for r in res)
    again = crm.upsert_products([item])
    assert again[0].ok and again[0].created is False and again[0].id == res[0].id
    seen = {p.code: p for bt in crm.iter_product_changes(None) for p in bt.records}
    assert isinstance(seen[item.code], CRMProduct) and seen[item.code].keyed
    assert seen[item.code].crm_id == str(res[0].id) and product_drift(seen[item.code], item) == {}
    assert product_values(item)["unit_price"] == "12000" and product_values(other).keys() == {"name", "code", "erp_id",
                                                                                             "tax_category"}
    assert seen[item.code].values.get("cost_price") == "8000" and seen[item.code].values.get("stock") == "12.5"
    changed = item.model_copy(update={"name": "保守サービス（年間）"})
    assert product_drift(seen[item.code], changed) == {"name": "保守サービス"}
    upd = crm.update_products({str(res[1].id): other.model_copy(update={"name": "導入支援（改）"})})
    assert all(r.ok for r in upd)
    seen = {p.code: p for bt in crm.iter_product_changes(None) for p in bt.records}
    assert seen[other.code].values["name"] == "導入支援（改）"
    crm.archive_products([str(res[1].id)])
    seen = {p.code: p for bt in crm.iter_product_changes(None) for p in bt.records}
    assert other.code not in seen or seen[other.code].archived


def test_upsert_by_partner_code(crm_empty):
    key = "partner_code"
    c = Company(name=f"株式会社コード{_tag()}", partner_code=f"PC-{_tag()}")
    first, second = crm_empty.upsert_companies([c], key=key), crm_empty.upsert_companies([c], key=key)
    assert first[0].ok and second[0].ok and first[0].id == second[0].id and second[0].created is False
