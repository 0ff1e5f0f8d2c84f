"""customer-sync: when a freee partner standing in from its snapshot (personal values as keyed hashes) can be
written without reading it first, and what is sent then (worked examples)."""

from __future__ import annotations

from renkei.domain.ownership import MergePlan
from renkei.tasks.customer_sync import _erp_write_fields, _write_needs_erp

H = "hmac-sha256:" + "0" * 64  # a personal value known only as its keyed hash

ERP = {"name": "佐藤物産株式会社", "phone": H, "billing_email": H, "billing_contact_name": H,
       "address.prefecture": "東京都", "address.city": "千代田区", "address.street": H, "address.postal_code": "100-0001",
       "payment_terms.closing_day": 0}


def test_a_phone_change_is_written_alone_and_hashed_groups_are_left_out():
    plan = MergePlan(updates_to_erp={"phone": "03-4321-0001"})
    assert not _write_needs_erp(ERP, plan)  # no read first: the hashed phone is the value being replaced
    sent = _erp_write_fields(ERP, plan.updates_to_erp)
    # e-mail, contact and the whole address (its street is a hash) are not sent: freee keeps them
    assert sent == {"name": "佐藤物産株式会社", "phone": "03-4321-0001", "payment_terms.closing_day": 0}


def test_an_update_inside_a_group_with_a_hashed_sibling_needs_the_real_record():
    # address.city changes but address.street is only a hash: freee gets the address whole → read it first
    assert _write_needs_erp(ERP, MergePlan(updates_to_erp={"address.city": "港区"}))
    # a hashed street being replaced itself, with plain siblings, needs no read
    plain = {**ERP, "address.street": "千代田1-1"}
    assert not _write_needs_erp({**plain, "address.street": H}, MergePlan(updates_to_erp={"address.street": "芝1-1"}))
    # nothing to write, or nothing hashed: never a read
    assert not _write_needs_erp(ERP, MergePlan())
    assert not _write_needs_erp(plain | {"phone": "0312345678", "billing_email": "a@b.jp",
                                         "billing_contact_name": "佐藤"}, MergePlan(updates_to_erp={"name": "X"}))
    assert _erp_write_fields(plain, {"address.city": "港区"})["address.street"] == "千代田1-1"
