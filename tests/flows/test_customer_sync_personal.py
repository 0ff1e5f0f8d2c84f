"""Personal data at rest and in what people see (issue #11, class 9) and implausible company text
(class 8) in customer-sync and order-to-invoice."""

from __future__ import annotations

import json

from sqlalchemy import text

from renkei.flows.customer_sync import customer_sync
from renkei.flows.order_to_invoice import order_to_invoice
from tests.flows.builders import freee_invoices, freee_partner, hs_company, hs_deal
from tests.flows.conftest import write_policy

SATO = "4011001098993"
SUZUKI = "7120001168421"

PHONE_1, PHONE_2, PHONE_3 = "03-4321-8765", "03-4321-0001", "03-4321-0002"
EMAIL = "hanako.keiri@sato-bussan.co.jp"
CONTACT = "佐藤 花子"


def _raw(world, sql: str) -> str:
    with world.rt.store.engine.connect() as conn:
        return json.dumps([list(r) for r in conn.execute(text(sql))], ensure_ascii=False, default=str)


def _no_personal(blob: str, *values: str) -> None:
    digits = blob.replace("-", "")
    for v in values:
        assert v not in blob and v.replace("-", "") not in digits, f"{v!r} is stored as it is"


def test_snapshots_and_review_items_keep_no_raw_personal_data_and_the_merge_still_works(world, monkeypatch):
    write_policy(world.tmp, '[ownership.fields]\nphone = { owner = "both" }\n', monkeypatch)
    from renkei.tasks.runtime import get_runtime

    world.rt = get_runtime()
    p = freee_partner(world, "佐藤物産株式会社", registration=f"T{SATO}", email=EMAIL, code="P-SATO",
                      billing_contact_name=CONTACT)
    c = hs_company(world, "佐藤物産株式会社", renkei_corporate_number=SATO, phone=PHONE_1)
    customer_sync()
    assert world.fr().get_partner(p)["phone"] == PHONE_1  # both-owned, freee empty: filled
    props = world.hs().companies.get(c, properties=["renkei_billing_email", "renkei_billing_contact"])["properties"]
    assert props["renkei_billing_email"] == EMAIL and props["renkei_billing_contact"] == CONTACT

    # one side changes a personal field: the other side is written. Its record stands in from the
    # snapshot as keyed hashes; only the changed field is sent (freee keeps what is not sent), so the
    # partner is not read first (one request per change) and its other personal values stay as they are
    reads = []
    erp_type = type(world.rt.erp)
    get_partner = erp_type.get_partner
    erp_type.get_partner = lambda self, erp_id: reads.append(erp_id) or get_partner(self, erp_id)
    world.hs().companies.update(c, {"phone": PHONE_2})
    world.freee.app.state.store.partners[int(p)].update_date = "2026-01-05"  # not in today's freee read
    try:
        customer_sync()
    finally:
        erp_type.get_partner = get_partner
    got = world.fr().get_partner(p)
    assert (got["phone"], got["email"], got["contact_name"]) == (PHONE_2, EMAIL, CONTACT) and reads == []
    # unchanged since the (hashed) base on both sides: nothing to do
    summary = customer_sync()
    assert summary.get("erp", {}).get("updated", 0) == 0 and summary.get("crm", {}).get("updated", 0) == 0

    # both change it differently: a conflict for a person, shown masked
    world.hs().companies.update(c, {"phone": PHONE_3})
    world.fr().update_partner(p, {"name": "佐藤物産株式会社", "phone": PHONE_1})
    customer_sync()
    (item,) = [r for r in world.rt.store.list_reviews("open", flow="customer-sync") if r.reason_code == "BOTH_CHANGED"]
    assert "***" in item.message
    # … and decided: the decision (recorded as keyed hashes) is applied with the real value
    world.rt.store.decide_review(item.id, decision="crm", decided_by="keiri@example.co.jp", status="resolved")
    customer_sync()
    assert world.fr().get_partner(p)["phone"] == PHONE_3

    snapshots = _raw(world, "select fields from base_snapshot")
    assert "hmac-sha256:" in snapshots
    _no_personal(snapshots, PHONE_1, PHONE_2, PHONE_3, EMAIL, CONTACT)
    _no_personal(_raw(world, "select message, payload from review_item"), PHONE_1, PHONE_2, PHONE_3, EMAIL, CONTACT)
    _no_personal(_raw(world, "select changes from audit_event"), PHONE_1, PHONE_2, PHONE_3, EMAIL, CONTACT)


def test_implausible_company_text_is_not_copied_into_freee(world):
    markup = hs_company(world, "<b>株式会社マークアップ</b>", phone="03-1111-0000")
    bad_mail = hs_company(world, "株式会社メール不正", renkei_corporate_number=SUZUKI,
                          renkei_billing_email="not-an-email@@")
    customer_sync()

    codes = {q["code"]: q for q in world.fr().list_partners(limit=100)}
    assert f"HS-{markup}" not in codes  # a name with markup holds the whole record
    created = codes[f"HS-{bad_mail}"]  # the rest of the company is copied, the bad e-mail is not
    assert created["name"] == "株式会社メール不正" and not created.get("email")

    def open_items():
        return sorted((r.reason_code, r.entity_key) for r in world.rt.store.list_reviews("open", flow="customer-sync")
                      if r.reason_code in ("EMAIL_INVALID", "MARKUP_IN_TEXT"))

    assert open_items() == sorted([("MARKUP_IN_TEXT", markup), ("EMAIL_INVALID", bad_mail)])
    items = world.rt.store.list_reviews("open", flow="customer-sync")
    assert not any("<b>" in r.message or "not-an-email" in r.message for r in items)
    customer_sync(full=True)  # still exactly one item each, still nothing copied
    assert open_items() == sorted([("MARKUP_IN_TEXT", markup), ("EMAIL_INVALID", bad_mail)])
    assert f"HS-{markup}" not in {q["code"] for q in world.fr().list_partners(limit=100)}

    world.hs().companies.update(markup, {"name": "株式会社マークアップ"})  # fixed in HubSpot
    world.hs().companies.update(bad_mail, {"renkei_billing_email": "keiri@mail-fuse.example.co.jp"})
    customer_sync()
    assert f"HS-{markup}" in {q["code"] for q in world.fr().list_partners(limit=100)}
    assert open_items() == []  # both pass now: their items closed themselves


def test_order_to_invoice_never_copies_implausible_company_text(world):
    markup = hs_company(world, "株式会社[リンク](http://evil.example)", renkei_billing_email="ap@link.example.co.jp")
    bad_mail = hs_company(world, "株式会社メール不正二", renkei_billing_email="not-an-email@@")
    d1 = hs_deal(world, "マークアップ案件", markup, [{"name": "作業", "quantity": 1, "price": 1000}])
    d2 = hs_deal(world, "メール不正案件", bad_mail, [{"name": "作業", "quantity": 1, "price": 2000}])
    state = order_to_invoice(return_state=True)
    assert state.is_completed()

    partners = world.fr().list_partners(limit=100)
    assert all("](" not in q["name"] for q in partners)
    assert all(q.get("email") != "not-an-email@@" for q in partners)
    assert freee_invoices(world) == []  # neither deal has a usable recipient
    items = world.rt.store.list_reviews("open", flow="order-to-invoice")
    company_items = sorted((r.reason_code, r.entity_key) for r in items if r.entity == "company")
    assert company_items == sorted([("MARKUP_IN_TEXT", markup), ("EMAIL_INVALID", bad_mail)])
    assert {r.entity_key for r in items if r.entity == "deal"} >= {d1, d2}  # each deal waits with a reason

    world.hs().companies.update(markup, {"name": "株式会社リンク"})  # fixed in HubSpot
    order_to_invoice()
    items = world.rt.store.list_reviews("open", flow="order-to-invoice")
    assert [(r.reason_code, r.entity_key) for r in items if r.entity == "company"] == [("EMAIL_INVALID", bad_mail)]
    assert any(q["name"] == "株式会社リンク" for q in world.fr().list_partners(limit=100))


def test_plain_snapshots_of_an_earlier_version_keep_working(world):
    """A base stored before personal values were hashed: compared as it is (a value equal to it is
    unchanged), and replaced by the hashed form on the next store."""
    from renkei.domain.hashing import content_hash
    from renkei.tasks.customer_sync import policy_table, merge_paths

    p = freee_partner(world, "田中工業株式会社", registration=f"T{SUZUKI}", email=EMAIL, code="P-TANAKA")
    c = hs_company(world, "田中工業株式会社", renkei_corporate_number=SUZUKI, phone=PHONE_1)
    customer_sync()
    store = world.rt.store
    snap = store.get_snapshot("company", p)
    plain = {"phone": PHONE_1, "billing_email": EMAIL}

    def unhash(rec: dict) -> dict:
        return {k: (plain.get(k, v) if isinstance(v, str) and v.startswith("hmac-sha256:") else v)
                for k, v in rec.items()}

    fields = {"crm": unhash(snap.fields["crm"]), "erp": unhash(snap.fields["erp"]),
              "seen": {s: unhash(r) for s, r in snap.fields["seen"].items()}}
    paths = merge_paths(policy_table(world.rt))
    store.put_snapshot("company", p, fields, crm_hash=content_hash(fields["seen"]["crm"], paths),
                       erp_hash=content_hash(fields["seen"]["erp"], paths))  # as the earlier version stored it
    assert PHONE_1 in json.dumps(store.get_snapshot("company", p).fields, ensure_ascii=False)

    world.hs().companies.update(c, {"phone": PHONE_2})
    summary = customer_sync()
    assert world.fr().get_partner(p)["phone"] == PHONE_2  # the change was seen against the plain base
    assert summary["erp"]["updated"] == 1 and summary.get("renkei", {}).get("conflicts", 0) == 0
    _no_personal(json.dumps(store.get_snapshot("company", p).fields, ensure_ascii=False), PHONE_1, PHONE_2, EMAIL)
