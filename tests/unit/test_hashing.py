"""Content hash of a canonical record's synced fields (domain/hashing.py)."""

from __future__ import annotations

import random
import re
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from renkei.domain.hashing import HASH_VERSION, canonical_fields, canonical_json, content_hash
from renkei.domain.model import Address, Company
from renkei.domain.ownership import apply_updates, default_policy, plan_merge, same

REC = {
    "crm_id": "c1",
    "name": "株式会社山田商事",
    "phone": "03-1234-5678",
    "address": {"postal_code": "100-0001", "city": "千代田区"},
    "archived": False,
    "billing_email": "keiri@yamada.co.jp",
}


def test_is_sha256_hex():
    assert re.fullmatch(r"[0-9a-f]{64}", content_hash(REC))


def test_stable_known_value():
    # pins the canonical form: changing it silently would make every record look changed
    assert canonical_json({"name": "山田商事"}) == f'{{"f":{{"name":"山田商事"}},"v":{HASH_VERSION}}}'


def test_key_order_does_not_matter():
    items = list(REC.items())
    random.Random(1).shuffle(items)
    shuffled = dict(items)
    shuffled["address"] = {"city": "千代田区", "postal_code": "100-0001"}
    assert content_hash(shuffled) == content_hash(REC)


def test_irrelevant_fields_do_not_matter():
    noisy = dict(REC, crm_id="other", erp_id="9", updated_at="2026-11-25T09:00:00Z",
                 warnings=["x"], payer_aliases=["ﾔﾏﾀﾞ"], hs_lastmodifieddate="whatever")
    assert content_hash(noisy) == content_hash(REC)


def test_formatting_does_not_matter():
    reformatted = dict(REC, phone="+81 3 1234 5678", address={"postal_code": "〒1000001", "city": "千代田区 "},
                       billing_email="KEIRI@yamada.co.jp")
    assert content_hash(reformatted) == content_hash(REC)


def test_empty_values_do_not_matter():
    assert content_hash(dict(REC, name_kana=None, partner_code="", address=dict(REC["address"], building=None))) \
        == content_hash(REC)


def test_a_synced_change_changes_the_hash():
    for change in ({"phone": "03-1234-5679"}, {"archived": True}, {"name": "山田商事"},
                   {"address": {"postal_code": "100-0002", "city": "千代田区"}}):
        assert content_hash(dict(REC, **change)) != content_hash(REC), change


def test_nested_flat_and_model_inputs_agree():
    flat = {"name": REC["name"], "phone": REC["phone"], "address.postal_code": "100-0001",
            "address.city": "千代田区", "archived": False, "billing_email": REC["billing_email"]}
    model = Company(crm_id="c1", name=REC["name"], phone=REC["phone"], billing_email=REC["billing_email"],
                    address=Address(postal_code="1000001", city="千代田区"))
    defaults = {"entity_kind": "corporation", "credit_hold": False}  # the model's defaults count
    assert content_hash(dict(flat, **defaults)) == content_hash(dict(REC, **defaults)) == content_hash(model)
    assert content_hash(flat) == content_hash(REC)


def test_paths_choose_what_counts():
    assert content_hash(REC, ["name"]) == content_hash({"name": REC["name"], "phone": "x"}, ["name"])
    assert content_hash(REC, default_policy()) == content_hash(REC)
    assert canonical_fields(REC, ["name", "phone"]) == {"name": "株式会社山田商事", "phone": "0312345678"}


def test_datetimes_are_compared_in_utc():
    from datetime import timedelta

    jst = timezone(timedelta(hours=9))
    a = {"when": datetime(2026, 11, 25, 18, 0, tzinfo=jst)}
    b = {"when": datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)}
    assert content_hash(a, ["when"]) == content_hash(b, ["when"])


def test_rerun_with_nothing_changed_writes_nothing():
    """Hash equal ⇒ skipping is safe; and the merge agrees (no writes) when it is not skipped."""
    crm = dict(REC)
    erp = dict(REC, crm_id=None, erp_id="9", phone="0312345678")
    plan = plan_merge(None, crm, erp)
    crm2, erp2 = apply_updates(crm, plan.updates_to_crm), apply_updates(erp, plan.updates_to_erp)
    assert content_hash(crm2) == content_hash(erp2)
    assert plan_merge(plan.new_base, crm2, erp2).is_noop


values = st.sampled_from(["03-1234-5678", "0312345678", "+81 3 1234 5678", "06-1111-2222", None, ""])


@given(a=values, b=values)
def test_property_hash_equal_iff_merge_equal(a, b):
    assert (content_hash({"phone": a}) == content_hash({"phone": b})) == same("phone", a, b)
