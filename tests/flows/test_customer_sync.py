"""customer-sync against both sandboxes over HTTP, on the session's Prefect server."""

from __future__ import annotations

from contextlib import contextmanager

from renkei.flows.customer_sync import customer_sync
from tests.flows.builders import freee_partner, hs_company
from tests.flows.conftest import write_policy

YAMADA = "7010705000725"  # valid 法人番号 (check digit)
SATO = "4011001098993"
SUZUKI = "7120001168421"


def partners(world) -> list[dict]:
    return world.fr().list_partners(limit=3000)


def partner(world, erp_id: str) -> dict:
    return world.fr().get_partner(erp_id)


def company(world, crm_id: str) -> dict:
    return world.hs().companies.get(crm_id, properties=["name", "phone", "zip", "city", "state", "address",
                                                         "renkei_partner_code", "renkei_billing_email",
                                                         "renkei_invoice_registration_number", "renkei_payment_terms",
                                                         "renkei_freee_partner_id", "renkei_entity_kind",
                                                         "hs_lastmodifieddate", "renkei_name_kana"])["properties"]


def reviews(world, reason: str | None = None) -> list:
    return [r for r in world.rt.store.list_reviews("open", flow="customer-sync")
            if reason is None or r.reason_code == reason]


@contextmanager
def count_writes(world):
    """Counts the write calls both connectors make (HubSpot batch writes, freee partner writes)."""
    calls: list[tuple[str, int]] = []
    hs, fr = world.hs(), world.fr()
    orig = {"hs": hs.companies._batch_write, "up": fr.update_partner, "ups": fr.upsert_partner_by_code,
            "cr": fr.create_partner}

    def hs_write(action, items):
        calls.append((f"hubspot:{action}", len(items)))
        return orig["hs"](action, items)

    def wrap(name, fn):
        def inner(*a, **kw):
            calls.append((name, 1))
            return fn(*a, **kw)
        return inner

    hs.companies._batch_write = hs_write
    fr.update_partner = wrap("freee:update", orig["up"])
    fr.upsert_partner_by_code = wrap("freee:upsert", orig["ups"])
    fr.create_partner = wrap("freee:create", orig["cr"])
    try:
        yield calls
    finally:
        del hs.companies._batch_write
        del fr.update_partner, fr.upsert_partner_by_code, fr.create_partner


def test_first_full_sync_links_creates_and_writes_each_owner_fields(world):
    # already in both systems: matched by corporate number (HubSpot) ⇄ T-number (freee)
    yamada_p = freee_partner(world, "㈱山田商事", registration=f"T{YAMADA}", email="keiri@yamada.co.jp",
                             code="P-YAMADA")
    # freee keeps 市区町村・番地 in one line without a space; HubSpot has the city on its own (and the street
    # with the city in it, as an earlier sync left it): after the sync both hold city 渋谷区 + street 道玄坂1-2-3
    world.fr().update_partner(yamada_p, {"name": "㈱山田商事", "address_attributes": {
        "zipcode": "100-0001", "prefecture_code": 12, "street_name1": "渋谷区道玄坂1-2-3"}})
    yamada_c = hs_company(world, "株式会社山田商事", renkei_corporate_number=YAMADA, phone="03-1111-2222",
                          city="渋谷区", address="渋谷区道玄坂1-2-3")
    # only in HubSpot → created in freee by deterministic code
    new_c = hs_company(world, "株式会社新規商会", phone="06-1234-5678", zip="530-0001", state="大阪府", city="大阪市北区",
                       address="梅田1-1")
    # only in freee → created in HubSpot
    only_p = freee_partner(world, "freeeだけ株式会社", email="ap@only.co.jp", code="P-ONLY")
    world.fr().update_partner(only_p, {"name": "freeeだけ株式会社", "address_attributes": {
        "zipcode": "231-0023", "prefecture_code": 13, "street_name1": "横浜市中区山下町1"}})

    summary = customer_sync()

    store = world.rt.store
    assert store.erp_id_for("company", yamada_c) == yamada_p
    new_p = store.erp_id_for("company", new_c)
    assert new_p and partner(world, new_p)["code"] == f"HS-{new_c}"
    assert partner(world, new_p)["address_attributes"]["zipcode"] == "530-0001"
    only_c = store.crm_id_for("company", only_p)
    assert only_c and company(world, only_c)["name"] == "freeeだけ株式会社"
    # ERP-owned fields written back to HubSpot, CRM-owned to freee
    props = company(world, yamada_c)
    assert props["renkei_partner_code"] == "P-YAMADA"
    assert props["renkei_billing_email"] == "keiri@yamada.co.jp"
    assert props["renkei_invoice_registration_number"] == f"T{YAMADA}"
    assert props["renkei_payment_terms"] == "0/1/0"
    assert props["renkei_freee_partner_id"] == yamada_p
    assert props["zip"] == "100-0001" and props["state"] == "東京都"
    assert (props["city"], props["address"]) == ("渋谷区", "道玄坂1-2-3")  # the city once, not twice
    only = company(world, only_c)
    assert (only["state"], only["city"], only["address"]) == ("神奈川県", "横浜市中区", "山下町1")
    for c_id, p_id in ((yamada_c, yamada_p), (only_c, only_p)):  # both systems read as one canonical address
        assert world.rt.crm.get_companies([c_id])[0].value.address == world.rt.erp.get_partner(p_id).value.address
    assert partner(world, yamada_p)["address_attributes"]["street_name1"] == "渋谷区道玄坂1-2-3"
    assert partner(world, yamada_p)["name"] == "株式会社山田商事"  # the CRM owns the name
    assert partner(world, yamada_p)["phone"] == "03-1111-2222"
    assert len(partners(world)) == 3
    assert summary["erp"]["created"] == 1 and summary["crm"]["created"] == 1
    assert not reviews(world)

    # a rerun with nothing changed writes nothing
    before = company(world, yamada_c)["hs_lastmodifieddate"]
    with count_writes(world) as calls:
        again = customer_sync()
    assert calls == []
    assert company(world, yamada_c)["hs_lastmodifieddate"] == before
    assert "updated" not in again.get("crm", {}) and "updated" not in again.get("erp", {})


def test_incremental_edits_on_each_side_and_ownership_overwrite(world):
    p = freee_partner(world, "佐藤物産株式会社", registration=f"T{SATO}", email="a@sato.co.jp", code="P-SATO")
    c = hs_company(world, "佐藤物産株式会社", renkei_corporate_number=SATO, phone="03-0000-0001")
    customer_sync()

    # CRM edits its own field (phone) → freee; freee edits its own field (email) → HubSpot
    world.hs().companies.update(c, {"phone": "03-9999-0001"})
    world.fr().update_partner(p, {"name": "佐藤物産株式会社", "email": "new@sato.co.jp"})
    with count_writes(world) as calls:
        summary = customer_sync()
    assert partner(world, p)["phone"] == "03-9999-0001"
    assert company(world, c)["renkei_billing_email"] == "new@sato.co.jp"
    assert ("freee:update", 1) in calls and ("hubspot:update", 1) in calls
    assert summary["erp"]["updated"] == 1 and summary["crm"]["updated"] == 1

    # ownership: HubSpot edits an ERP-owned field → reported and overwritten with freee's value
    world.hs().companies.update(c, {"renkei_billing_email": "sales-typo@sato.co.jp"})
    # freee edits a CRM-owned field → overwritten with HubSpot's value
    world.fr().update_partner(p, {"name": "佐藤物産株式会社", "phone": "03-5555-5555"})
    summary = customer_sync()
    assert company(world, c)["renkei_billing_email"] == "new@sato.co.jp"
    assert partner(world, p)["phone"] == "03-9999-0001"
    assert summary["crm"]["foreign_change"] == 1 and summary["erp"]["foreign_change"] == 1
    events = [e for e in world.rt.store.audit_events("company") if e.action == "foreign_change"]
    assert {e.changes["field"] for e in events} == {"billing_email", "phone"}

    with count_writes(world) as calls:
        customer_sync()
    assert calls == []


def test_true_conflict_becomes_review_and_stays_resolved(world, monkeypatch):
    write_policy(world.tmp, "[ownership.fields]\nphone = { owner = \"both\" }\n", monkeypatch)
    from renkei.tasks.runtime import get_runtime

    world.rt = get_runtime()
    p = freee_partner(world, "鈴木電機株式会社", registration=f"T{SUZUKI}", code="P-SUZUKI")
    c = hs_company(world, "鈴木電機株式会社", renkei_corporate_number=SUZUKI, phone="03-1000-0000")
    customer_sync()
    assert partner(world, p)["phone"] == "03-1000-0000"  # both-owned, freee empty: filled

    world.hs().companies.update(c, {"phone": "03-2000-0000"})
    world.fr().update_partner(p, {"name": "鈴木電機株式会社", "phone": "03-3000-0000"})
    customer_sync()
    (item,) = reviews(world, "BOTH_CHANGED")
    assert item.payload["field"] == "phone" and item.entity_key.startswith(f"{c}/{p}:phone:")
    assert company(world, c)["phone"] == "03-2000-0000" and partner(world, p)["phone"] == "03-3000-0000"
    customer_sync()  # still one item, nothing written
    assert len(reviews(world, "BOTH_CHANGED")) == 1

    world.rt.store.decide_review(item.id, decision="erp", decided_by="keiri@example.co.jp", status="resolved")
    customer_sync()
    assert company(world, c)["phone"] == "03-3000-0000"
    assert not reviews(world, "BOTH_CHANGED")
    world.hs().companies.update(c, {"name": "鈴木電機株式会社"})  # touched again: the conflict does not come back
    customer_sync()
    assert not reviews(world, "BOTH_CHANGED")
