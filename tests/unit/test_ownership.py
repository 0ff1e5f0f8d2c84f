"""Field ownership and 3-way merge (domain/ownership.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renkei.domain.model import Company
from renkei.domain.ownership import (
    ChangeAction,
    Direction,
    FieldPolicy,
    MergePlan,
    OnForeignChange,
    Owner,
    PolicyTable,
    Resolution,
    apply_updates,
    comparable,
    default_policy,
    get_path,
    MISSING,
    plan_merge,
    same,
)

POLICY = default_policy()


def base_of(crm: dict, erp: dict | None = None) -> dict:
    """A base snapshot equal to the given records (what a successful sync would have stored)."""
    erp = crm if erp is None else erp
    paths = POLICY.synced_paths
    return {"crm": {p: get_path(crm, p) for p in paths if get_path(crm, p) is not MISSING},
            "erp": {p: get_path(erp, p) for p in paths if get_path(erp, p) is not MISSING}}


# --------------------------------------------------------------------------------------- policy


def test_default_policy_follows_model_metadata_and_issue_defaults():
    for path in ("name", "name_kana", "phone"):
        assert POLICY[path].owner is Owner.CRM and POLICY[path].direction is Direction.TO_ERP, path
    for path in ("registration_number", "partner_code", "billing_contact_name", "billing_email",
                 "address.postal_code", "address.city", "payment_terms.closing_day"):
        assert POLICY[path].owner is Owner.ERP and POLICY[path].direction is Direction.TO_CRM, path
    assert POLICY["archived"].owner is Owner.BOTH and POLICY["archived"].direction is Direction.TWO_WAY
    # CRM-only fields (freee has no such field) are owned by the CRM but never written to freee
    assert POLICY["domain"].owner is Owner.CRM and POLICY["domain"].direction is Direction.NONE
    assert POLICY["sales_owner"].direction is Direction.NONE
    assert POLICY["corporate_number"].owner is Owner.CRM and POLICY["corporate_number"].direction is Direction.NONE
    # bookkeeping and renkei-owned fields are not in the table
    for path in ("crm_id", "erp_id", "updated_at", "warnings", "payer_aliases"):
        assert path not in POLICY
    assert all(fp.on_foreign_change is OnForeignChange.OVERWRITE for fp in POLICY.values())


def test_policy_from_config_dict():
    table = PolicyTable.from_dict({
        "default_on_foreign_change": "report_only",
        "fields": {
            "phone": {"owner": "both"},
            "address": {"on_foreign_change": "review"},
            "billing_email": "crm",
            "domain": {"direction": "none"},
        },
    })
    assert table["phone"] == FieldPolicy(Owner.BOTH, OnForeignChange.REPORT_ONLY, Direction.TWO_WAY)
    assert table["address.postal_code"].on_foreign_change is OnForeignChange.REVIEW
    assert table["address.street"].on_foreign_change is OnForeignChange.REVIEW
    assert table["billing_email"].owner is Owner.CRM and table["billing_email"].direction is Direction.TO_ERP
    assert table["name"].on_foreign_change is OnForeignChange.REPORT_ONLY
    # bare mapping form, and to_dict round-trips through the loader
    assert PolicyTable.from_dict({"phone": "both"})["phone"].owner is Owner.BOTH
    assert PolicyTable.from_dict({"fields": table.to_dict()}).to_dict() == table.to_dict()


@pytest.mark.parametrize("config", [
    {"fields": {"phnoe": "crm"}},  # typo must not silently keep the default
    {"fields": {"phone": {"owner": "crm", "direction": "to_crm"}}},  # contradicts the owner
    {"fields": {"phone": {"owner": "somebody"}}},
    {"fields": {"phone": {"ownr": "crm"}}},
    {"field": {}},
])
def test_policy_config_errors_are_loud(config):
    with pytest.raises(ValueError):
        PolicyTable.from_dict(config)


# --------------------------------------------------------------------------------------- values


@pytest.mark.parametrize("path,a,b", [
    ("phone", "03-1234-5678", "+81 3 1234 5678"),
    ("phone", "０３（１２３４）５６７８", "0312345678"),
    ("address.postal_code", "〒1000001", "100-0001"),
    ("domain", "https://www.Example.co.jp/about", "example.co.jp"),
    ("name", "ＡＢＣ　商事", "ABC 商事"),
    ("name", "  山田商事 ", "山田商事"),
    ("name", "", None),
    ("name_kana", "やまだしょうじ", "ヤマダショウジ"),
    ("name_kana", "ﾔﾏﾀﾞｼｮｳｼﾞ", "ヤマダショウジ"),
    ("billing_email", "Keiri@Example.CO.JP", "keiri@example.co.jp"),
    ("registration_number", "T1234567890123", "1234567890123"),
    ("corporate_number", "1234-5678-90123", "1234567890123"),
    ("address", {"city": None}, None),
])
def test_formatting_differences_are_not_changes(path, a, b):
    assert same(path, a, b)


@pytest.mark.parametrize("path,a,b", [
    ("name", "株式会社山田商事", "山田商事"),  # the legal name on an invoice is real content
    ("name", "山田商事", "山田商店"),
    ("phone", "03-1234-5678", "03-1234-5679"),
    ("archived", False, True),
    ("archived", False, None),
])
def test_real_differences_are_changes(path, a, b):
    assert not same(path, a, b)


# --------------------------------------------------------------------------------------- owned fields


CRM = {"crm_id": "c1", "name": "株式会社山田商事", "phone": "03-1234-5678", "archived": False,
       "address": {"postal_code": "100-0001", "city": "千代田区"}, "partner_code": "P001"}


def test_nothing_changed_writes_nothing():
    plan = plan_merge(base_of(CRM), CRM, dict(CRM, erp_id="9"))
    assert plan.is_noop and not plan.has_writes


def test_owner_change_propagates():
    crm = dict(CRM, phone="03-9999-0000")
    plan = plan_merge(base_of(CRM), crm, CRM)
    assert plan.updates_to_erp == {"phone": "03-9999-0000"}
    assert plan.updates_to_crm == {} and plan.foreign_changes == [] and plan.conflicts == []
    assert plan.new_base["erp"]["phone"] == "03-9999-0000"


def test_erp_owned_change_propagates_to_crm():
    erp = dict(CRM, address={"postal_code": "530-0001", "city": "大阪市北区"}, partner_code="P002")
    plan = plan_merge(base_of(CRM), CRM, erp)
    assert plan.updates_to_crm == {"address.postal_code": "530-0001", "address.city": "大阪市北区",
                                   "partner_code": "P002"}
    assert plan.updates_to_erp == {}


def test_reformatting_on_the_other_side_is_not_a_change():
    erp = dict(CRM, phone="0312345678", address={"postal_code": "1000001", "city": "千代田区"})
    assert plan_merge(base_of(CRM), CRM, erp).is_noop


def test_foreign_change_overwritten_and_reported():
    erp = dict(CRM, name="山田商事（旧）")
    plan = plan_merge(base_of(CRM), CRM, erp)
    assert plan.updates_to_erp == {"name": "株式会社山田商事"}
    (fc,) = plan.foreign_changes
    assert (fc.field, fc.owner, fc.side, fc.action, fc.reason) == (
        "name", "crm", "erp", ChangeAction.OVERWRITTEN, "FOREIGN_CHANGE")
    assert fc.base == "株式会社山田商事" and fc.erp == "山田商事（旧）"


def test_foreign_change_sent_to_review_is_not_written_and_base_held():
    policy = POLICY.with_overrides({"name": {"on_foreign_change": "review"}})
    erp = dict(CRM, name="山田商事（旧）")
    base = base_of(CRM)
    plan = plan_merge(base, CRM, erp, policy)
    assert not plan.has_writes
    (item,) = plan.review_items
    assert (item.field, item.reason, item.crm, item.erp, item.owner) == (
        "name", "FOREIGN_CHANGE_REVIEW", "株式会社山田商事", "山田商事（旧）", Owner.CRM)
    assert plan.new_base["erp"]["name"] == base["erp"]["name"]  # not advanced: stays open
    # the same item (same key) comes back until decided, never a second different one
    again = plan_merge(plan.new_base, CRM, erp, policy)
    assert [c.key for c in again.conflicts] == [item.key]


def test_foreign_change_report_only_is_reported_once():
    policy = POLICY.with_overrides({"phone": {"on_foreign_change": "report_only"}})
    erp = dict(CRM, phone="03-0000-1111")
    plan = plan_merge(base_of(CRM), CRM, erp, policy)
    assert not plan.has_writes
    assert [(f.field, f.action) for f in plan.foreign_changes] == [("phone", ChangeAction.REPORTED)]
    again = plan_merge(plan.new_base, CRM, erp, policy)
    assert again.is_noop  # acknowledged, not re-reported every run
    # ... and the owner's next change still propagates over it
    crm2 = dict(CRM, phone="03-2222-3333")
    later = plan_merge(plan.new_base, crm2, erp, policy)
    assert later.updates_to_erp == {"phone": "03-2222-3333"}


def test_owner_and_foreign_both_changed_owner_wins_and_it_is_reported():
    crm = dict(CRM, phone="03-1111-1111")
    erp = dict(CRM, phone="03-2222-2222")
    plan = plan_merge(base_of(CRM), crm, erp)
    assert plan.updates_to_erp == {"phone": "03-1111-1111"}
    (fc,) = plan.foreign_changes
    assert fc.owner_changed and fc.action is ChangeAction.OVERWRITTEN


def test_owned_field_changed_to_same_value_on_both_sides():
    crm = dict(CRM, phone="03-1111-1111")
    erp = dict(CRM, phone="0311111111")
    assert plan_merge(base_of(CRM), crm, erp).is_noop


def test_crm_only_field_is_never_written_to_erp():
    crm = dict(CRM, domain="yamada.co.jp", sales_owner="42")
    erp = dict(CRM)
    assert plan_merge(base_of(CRM), crm, erp).is_noop


def test_a_field_the_record_does_not_carry_is_left_alone():
    erp = {k: v for k, v in CRM.items() if k != "phone"}  # this ERP payload has no phone key
    plan = plan_merge(base_of(CRM), dict(CRM, phone="03-5555-5555"), erp)
    assert "phone" not in plan.updates_to_erp and plan.is_noop


# --------------------------------------------------------------------------------------- first sync


def test_first_sync_owner_wins_and_fills_empty_side():
    crm = {"name": "株式会社山田商事", "phone": "03-1234-5678", "address": None, "archived": False}
    erp = {"name": "山田商事", "phone": None, "address": {"postal_code": "1000001", "city": "千代田区"},
           "archived": False}
    plan = plan_merge(None, crm, erp)
    assert plan.updates_to_erp == {"name": "株式会社山田商事", "phone": "03-1234-5678"}
    assert plan.updates_to_crm == {"address.postal_code": "1000001", "address.city": "千代田区"}
    # overwriting a non-empty value is never silent
    assert [(f.field, f.reason, f.action) for f in plan.foreign_changes] == [
        ("name", "FIRST_SYNC_DIFFERENT", ChangeAction.OVERWRITTEN)]
    assert plan.conflicts == []


def test_first_sync_owner_empty_keeps_other_value():
    crm = {"name": "山田商事", "phone": None}
    erp = {"name": "山田商事", "phone": "03-1234-5678"}
    plan = plan_merge(None, crm, erp)
    assert not plan.has_writes  # never blank out data on the first link
    assert [(f.field, f.action, f.reason) for f in plan.foreign_changes] == [
        ("phone", ChangeAction.KEPT, "FIRST_SYNC_OWNER_EMPTY")]
    assert plan_merge(plan.new_base, crm, erp).is_noop
    # once the owner sets it, it propagates
    assert plan_merge(plan.new_base, dict(crm, phone="03-9999-9999"), erp).updates_to_erp == {
        "phone": "03-9999-9999"}


def test_first_sync_both_owned_differing_is_a_conflict():
    plan = plan_merge(None, {"archived": False}, {"archived": True})
    (c,) = plan.conflicts
    assert (c.field, c.reason, c.base, c.crm, c.erp) == ("archived", "FIRST_SYNC_DIFFERENT", None, False, True)
    assert not plan.has_writes


def test_first_sync_both_owned_one_side_empty_fills():
    policy = POLICY.with_overrides({"phone": "both"})
    plan = plan_merge(None, {"phone": None}, {"phone": "03-1234-5678"}, policy)
    assert plan.updates_to_crm == {"phone": "03-1234-5678"} and not plan.conflicts


# --------------------------------------------------------------------------------------- both-owned 3-way

BOTH_PHONE = POLICY.with_overrides({"phone": "both"})


def test_both_owned_one_side_changed_propagates_either_way():
    base = base_of(CRM)
    p1 = plan_merge(base, dict(CRM, phone="03-1111-1111"), CRM, BOTH_PHONE)
    assert p1.updates_to_erp == {"phone": "03-1111-1111"} and not p1.updates_to_crm
    p2 = plan_merge(base, CRM, dict(CRM, phone="03-2222-2222"), BOTH_PHONE)
    assert p2.updates_to_crm == {"phone": "03-2222-2222"} and not p2.updates_to_erp
    assert not p1.foreign_changes and not p2.foreign_changes


def test_both_owned_both_changed_differently_is_a_conflict_never_silent_loss():
    base = base_of(CRM)
    plan = plan_merge(base, dict(CRM, phone="03-1111-1111"), dict(CRM, phone="03-2222-2222"), BOTH_PHONE)
    assert not plan.has_writes
    (c,) = plan.conflicts
    assert (c.field, c.reason, c.base, c.crm, c.erp) == (
        "phone", "BOTH_CHANGED", "03-1234-5678", "03-1111-1111", "03-2222-2222")
    assert plan.new_base["crm"]["phone"] == "03-1234-5678" and "phone" in plan.held


def test_both_owned_both_changed_to_same_value_is_not_a_conflict():
    plan = plan_merge(base_of(CRM), dict(CRM, phone="03-1111-1111"), dict(CRM, phone="(03)1111-1111"),
                      BOTH_PHONE)
    assert plan.is_noop
    assert plan.new_base["crm"]["phone"] == "03-1111-1111"


def test_both_owned_deletion_on_one_side_propagates():
    plan = plan_merge(base_of(CRM), dict(CRM, phone=None), CRM, BOTH_PHONE)
    assert plan.updates_to_erp == {"phone": None}


# --------------------------------------------------------------------------------------- resolutions


def test_resolved_conflict_does_not_reappear_and_stamps_a_new_base():
    base = base_of(CRM)
    crm, erp = dict(CRM, phone="03-1111-1111"), dict(CRM, phone="03-2222-2222")
    (c,) = plan_merge(base, crm, erp, BOTH_PHONE).conflicts
    decision = c.resolve("03-2222-2222")
    plan = plan_merge(base, crm, erp, BOTH_PHONE, resolutions={"phone": decision})
    assert plan.conflicts == [] and plan.applied_resolutions == [decision]
    assert plan.updates_to_crm == {"phone": "03-2222-2222"} and plan.updates_to_erp == {}
    assert plan.new_base["crm"]["phone"] == plan.new_base["erp"]["phone"] == "03-2222-2222"
    # after the write, the next run is quiet even without passing the resolution again
    crm2 = apply_updates(crm, plan.updates_to_crm)
    assert plan_merge(plan.new_base, crm2, erp, BOTH_PHONE).is_noop


def test_resolution_from_plain_dict_and_formatting_tolerant():
    base = base_of(CRM)
    crm, erp = dict(CRM, phone="03-1111-1111"), dict(CRM, phone="03-2222-2222")
    res = {"phone": {"crm": "0311111111", "erp": "+81 3 2222 2222", "chosen": "03-1111-1111"}}
    plan = plan_merge(base, crm, erp, BOTH_PHONE, resolutions=res)
    assert plan.updates_to_erp == {"phone": "03-1111-1111"} and not plan.conflicts


def test_resolution_for_other_values_does_not_apply():
    base = base_of(CRM)
    crm, erp = dict(CRM, phone="03-1111-1111"), dict(CRM, phone="03-3333-3333")
    stale = Resolution("phone", "03-1111-1111", "03-2222-2222", "03-2222-2222")
    plan = plan_merge(base, crm, erp, BOTH_PHONE, resolutions=[stale])
    assert [c.reason for c in plan.conflicts] == ["BOTH_CHANGED"] and not plan.has_writes


def test_resolution_of_a_foreign_change_review_can_keep_the_foreign_value():
    policy = POLICY.with_overrides({"name": {"on_foreign_change": "review"}})
    erp = dict(CRM, name="株式会社山田商事ホールディングス")
    (item,) = plan_merge(base_of(CRM), CRM, erp, policy).conflicts
    plan = plan_merge(base_of(CRM), CRM, erp, policy, resolutions=[item.resolve(erp["name"])])
    assert plan.updates_to_crm == {"name": erp["name"]} and not plan.conflicts


def test_first_sync_conflict_resolution():
    (c,) = plan_merge(None, {"archived": False}, {"archived": True}).conflicts
    plan = plan_merge(None, {"archived": False}, {"archived": True}, resolutions=[c.resolve(True)])
    assert plan.updates_to_crm == {"archived": True}
    assert plan_merge(plan.new_base, {"archived": True}, {"archived": True}).is_noop


# --------------------------------------------------------------------------------------- helpers


def test_apply_updates_nested_and_collapse_cleared_objects():
    rec = {"name": "x", "address": None, "payment_terms": {"closing_day": 0, "pay_month_offset": 1, "pay_day": 0}}
    out = apply_updates(rec, {"address.postal_code": "100-0001",
                              "payment_terms.closing_day": None, "payment_terms.pay_month_offset": None,
                              "payment_terms.pay_day": None})
    assert out["address"] == {"postal_code": "100-0001"}
    assert out["payment_terms"] is None
    assert rec["address"] is None  # input untouched
    Company.model_validate({**out, "name": "山田商事"})


def test_pydantic_models_are_accepted():
    crm = Company(crm_id="1", name="株式会社山田商事", phone="03-1234-5678")
    erp = Company(erp_id="9", name="株式会社山田商事", phone="0312345678",
                  address={"postal_code": "1000001"}, registration_number="T3040001080571")
    plan = plan_merge(None, crm, erp)
    assert plan.updates_to_crm == {"address.postal_code": "100-0001", "registration_number": "T3040001080571"}
    assert not plan.updates_to_erp and not plan.conflicts


def test_base_from_reread_absorbs_server_side_reformatting():
    crm = dict(CRM, phone="03-9999-0000")
    plan = plan_merge(base_of(CRM), crm, CRM)
    erp_after = dict(CRM, phone="０３９９９９００００")  # the ERP stored it its own way
    base = plan.base_from(crm, erp_after)
    assert base["erp"]["phone"] == "０３９９９９００００"
    assert plan_merge(base, crm, erp_after).is_noop


def test_a_write_the_other_system_drops_is_reported_once_not_repeated_forever():
    """E.g. a connector that does not map corporate_number: the planned base would re-plan the
    same write every run (echo loop); the re-read base settles it and the drop is reported."""
    policy = POLICY.with_overrides({"fields": {"corporate_number": {"direction": "to_erp"}}})
    crm = dict(CRM, corporate_number="6010001000001")
    erp = dict(CRM, corporate_number=None)
    plan = plan_merge(None, crm, erp, policy)
    assert plan.updates_to_erp == {"corporate_number": "6010001000001"}
    erp_after = dict(erp)  # the ERP ignored the field
    assert plan.unpersisted(crm, erp_after) == [("erp", "corporate_number", "6010001000001", None)]
    looping = plan_merge(plan.new_base, crm, erp_after, policy)
    assert looping.updates_to_erp == {"corporate_number": "6010001000001"}  # what base_from avoids
    assert plan_merge(plan.base_from(crm, erp_after), crm, erp_after, policy).is_noop


def test_flat_single_base_is_accepted():
    flat = {p: v for p, v in base_of(CRM)["crm"].items()}
    assert plan_merge(flat, CRM, CRM).is_noop


# --------------------------------------------------------------------------------------- properties

FIELDS: dict[str, list[Any]] = {
    "name": ["株式会社山田商事", "山田商事", "ＡＢＣ商事", "ABC商事", None, ""],
    "phone": ["03-1234-5678", "0312345678", "+81 3 1234 5678", "06-1111-2222", None],
    "archived": [False, True],
    "billing_email": ["a@example.co.jp", "A@Example.co.jp", "b@example.co.jp", None],
    "address.postal_code": ["100-0001", "1000001", "530-0001", None],
}
PATHS = list(FIELDS)


def _record(values: dict[str, Any]) -> dict[str, Any]:
    return apply_updates({}, values)


records = st.fixed_dictionaries({p: st.sampled_from(v) for p, v in FIELDS.items()}).map(_record)
policies = st.fixed_dictionaries({
    p: st.fixed_dictionaries({
        "owner": st.sampled_from(["crm", "erp", "both"]),
        "on_foreign_change": st.sampled_from(["overwrite", "review", "report_only"]),
    }) for p in PATHS
}).map(lambda cfg: PolicyTable({p: FieldPolicy(Owner(c["owner"]), OnForeignChange(c["on_foreign_change"]))
                                for p, c in cfg.items()}))


def _base(b: dict | None) -> dict | None:
    return None if b is None else {"crm": {p: get_path(b, p) for p in PATHS},
                                   "erp": {p: get_path(b, p) for p in PATHS}}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(rec=records, policy=policies)
def test_property_all_equal_means_no_writes_no_conflicts(rec, policy):
    plan = plan_merge(_base(rec), rec, rec, policy)
    assert plan.is_noop


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.none() | records, crm=records, erp=records, policy=policies,
       resolve=st.booleans())
def test_property_apply_then_replan_converges(base, crm, erp, policy, resolve):
    plan = plan_merge(_base(base), crm, erp, policy)
    if resolve:  # decide every open item for the CRM value: everything must then settle
        decisions = [c.resolve(c.crm) for c in plan.conflicts]
        plan = plan_merge(_base(base), crm, erp, policy, resolutions=decisions)
        assert plan.conflicts == []
    crm2 = apply_updates(crm, plan.updates_to_crm)
    erp2 = apply_updates(erp, plan.updates_to_erp)
    again = plan_merge(plan.new_base, crm2, erp2, policy)
    assert not again.has_writes
    assert [c.key for c in again.conflicts] == [c.key for c in plan.conflicts]
    assert all(f.action is ChangeAction.REVIEW for f in again.foreign_changes)
    # and a third run changes nothing more
    third = plan_merge(again.new_base, crm2, erp2, policy)
    assert not third.has_writes and [c.key for c in third.conflicts] == [c.key for c in plan.conflicts]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.none() | records, crm=records, erp=records, policy=policies)
def test_property_no_silent_loss(base, crm, erp, policy):
    """A write that replaces a value its side had changed (or that was there before any base) is
    always reported or comes from a recorded decision; both-owned edits on both sides never vanish."""
    b = _base(base)
    plan = plan_merge(b, crm, erp, policy)
    reported = {f.field for f in plan.foreign_changes} | {c.field for c in plan.conflicts}
    for side, rec, updates in (("crm", crm, plan.updates_to_crm), ("erp", erp, plan.updates_to_erp)):
        for path in updates:
            cur = comparable(path, get_path(rec, path))
            if cur is None:
                continue  # filling an empty value loses nothing
            edited = b is None or cur != comparable(path, b[side][path])
            if edited:
                assert path in reported, (side, path)
    for path, fp in policy.items():  # a both-owned field edited on both sides never diverges quietly
        c, e = comparable(path, get_path(crm, path)), comparable(path, get_path(erp, path))
        if fp.owner is Owner.BOTH and b is not None and c != e \
                and c != comparable(path, b["crm"][path]) and e != comparable(path, b["erp"][path]):
            assert [x.reason for x in plan.conflicts if x.field == path] == ["BOTH_CHANGED"]


@settings(max_examples=200)
@given(base=records, crm=records, erp=records, policy=policies)
def test_property_owner_side_is_never_written_without_a_decision(base, crm, erp, policy):
    plan = plan_merge(_base(base), crm, erp, policy)
    for path, fp in policy.items():
        if fp.owner is Owner.CRM:
            assert path not in plan.updates_to_crm
        if fp.owner is Owner.ERP:
            assert path not in plan.updates_to_erp


def test_merge_plan_defaults():
    assert MergePlan().is_noop
