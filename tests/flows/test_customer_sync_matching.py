"""customer-sync: matching without an ID map, merges and deletes, invalid records."""

from __future__ import annotations

from renkei.flows.customer_sync import customer_sync
from tests.flows.builders import freee_partner, hs_company
from tests.flows.test_customer_sync import company, partner, partners, reviews


def hs_count(world) -> int:
    return sum(len(p) for p in world.hs().companies.scan_pages(properties=["name"]))


def test_legal_form_and_width_variants_link_without_duplicates(world):
    abc = freee_partner(world, "株式会社ＡＢＣ商事", code="P-ABC")  # full-width, postal 100-0001 (builder)
    yamada = freee_partner(world, "㈱山田商事", code="P-YAMADA", phone="0312345678")
    kogyo = freee_partner(world, "ﾔﾏﾀﾞ工業株式会社", code="P-KOGYO", phone="0612340000")  # half-width kana
    c_abc = hs_company(world, "(株)ABC商事", zip="1000001")
    c_yamada = hs_company(world, "株式会社山田商事", phone="03-1234-5678")
    c_kogyo = hs_company(world, "ヤマダ工業（株）", phone="06-1234-0000")

    customer_sync()

    store = world.rt.store
    assert store.erp_id_for("company", c_abc) == abc
    assert store.erp_id_for("company", c_yamada) == yamada
    assert store.erp_id_for("company", c_kogyo) == kogyo
    assert len(partners(world)) == 3 and hs_count(world) == 3
    assert not reviews(world)
    customer_sync()
    assert len(partners(world)) == 3 and hs_count(world) == 3


def test_ambiguous_match_goes_to_review_and_creates_nothing(world):
    a = freee_partner(world, "株式会社田中商店", code="P-TANAKA1")
    b = freee_partner(world, "田中商店株式会社", code="P-TANAKA2")  # same normalised name, same postal code
    c = hs_company(world, "田中商店", zip="100-0001")

    customer_sync()
    (item,) = reviews(world)
    assert item.reason_code == "AMBIGUOUS_NAME" and item.entity_key == f"crm:{c}"
    assert {x["id"] for x in item.payload["candidates"]} == {a, b}
    assert world.rt.store.erp_id_for("company", c) is None
    assert len(partners(world)) == 2 and hs_count(world) == 1  # never a guess, never a duplicate

    world.hs().companies.update(c, {"phone": "03-0000-1111"})
    customer_sync()
    assert len(reviews(world)) == 1 and len(partners(world)) == 2 and hs_count(world) == 1


def test_hubspot_merge_moves_the_link_to_the_survivor_and_keeps_partners(world):
    pa = freee_partner(world, "合併元A株式会社", code="P-A", phone="0311110000")
    pb = freee_partner(world, "合併元B株式会社", code="P-B", phone="0322220000")
    ca = hs_company(world, "合併元A株式会社", phone="03-1111-0000")
    cb = hs_company(world, "合併元B株式会社", phone="03-2222-0000")
    customer_sync()
    assert world.rt.store.erp_id_for("company", ca) == pa

    survivor = str(world.hs().companies.merge(ca, cb)["id"])
    assert survivor not in (ca, cb)
    customer_sync()

    store = world.rt.store
    assert store.erp_id_for("company", survivor) == pa  # the primary's partner follows the survivor
    rows = {r.crm_id: r for r in store.id_map("company")}
    assert rows[cb].status == "merged" and rows[cb].erp_id == pb
    assert [r.reason_code for r in reviews(world)] == ["CRM_MERGED"]
    assert {p["id"] for p in partners(world)} == {int(pa), int(pb)}  # nothing deleted in accounting
    customer_sync()
    assert len(reviews(world)) == 1


def test_archived_company_and_deactivated_partner_are_reported(world):
    p1 = freee_partner(world, "アーカイブ株式会社", code="P-ARC", phone="0333330000")
    p2 = freee_partner(world, "休眠株式会社", code="P-SLEEP", phone="0344440000")
    c1 = hs_company(world, "アーカイブ株式会社", phone="03-3333-0000")
    c2 = hs_company(world, "休眠株式会社", phone="03-4444-0000")
    customer_sync()
    world.hs().companies.archive(c1)
    world.fr().update_partner(p2, {"name": "休眠株式会社", "available": False})
    customer_sync()
    got = {r.reason_code: r for r in reviews(world)}
    assert set(got) == {"CRM_ARCHIVED", "PARTNER_DEACTIVATED"}
    assert got["CRM_ARCHIVED"].payload["erp_id"] == p1
    assert partner(world, p1)["available"] is True  # default policy: review, no deletion in accounting
    customer_sync()
    assert len(reviews(world)) == 2

    # a partner that disappears from freee is noticed by the full freee read (first run of each day)
    p3 = freee_partner(world, "消滅株式会社", code="P-GONE", phone="0355550000")
    c3 = hs_company(world, "消滅株式会社", phone="03-5555-0000")
    customer_sync()
    assert world.rt.store.erp_id_for("company", c3) == p3
    world.freee.app.state.store.partners.pop(int(p3))
    customer_sync(full=True)
    assert {r.reason_code for r in reviews(world)} == {"CRM_ARCHIVED", "PARTNER_DEACTIVATED", "PARTNER_DELETED"}
    assert hs_count(world) == 2  # the HubSpot company stays


def test_invalid_records_become_review_items_and_the_rest_goes_on(world):
    bad_reg = hs_company(world, "不正番号株式会社", renkei_invoice_registration_number="T1234567890123")
    bad_zip = hs_company(world, "不正郵便株式会社", zip="12-345")
    good = hs_company(world, "正常株式会社", phone="03-7777-0000")
    customer_sync()
    got = {r.entity_key: r for r in reviews(world)}
    assert got[bad_reg].reason_code == "INVALID_CRM_COMPANY" and "check digit" in got[bad_reg].message
    assert got[bad_zip].reason_code == "INVALID_CRM_COMPANY" and "postal" in got[bad_zip].message
    erp = world.rt.store.erp_id_for("company", good)
    assert erp and partner(world, erp)["name"] == "正常株式会社"
    assert len(partners(world)) == 1
    # fixed in HubSpot → synced on the next run
    world.hs().companies.update(bad_zip, {"zip": "123-4567"})
    customer_sync()
    assert world.rt.store.erp_id_for("company", bad_zip) is not None
    assert company(world, bad_zip)["renkei_partner_code"] == f"HS-{bad_zip}"
    assert [r.entity_key for r in reviews(world)] == [bad_reg]  # the fixed one's item is closed
