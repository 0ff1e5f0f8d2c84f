"""customer-sync keeps the freee partners of a run out of memory (tasks.customer_sync.PartnerRecords over
store.spill.RecordSpill): they answer as the plain dict of results they replace."""

from __future__ import annotations

from renkei.connectors.base import MapResult
from renkei.store.spill import RecordSpill
from renkei.tasks.customer_sync import _RELEASED, _RELEASED_RECORD, _STUB, PartnerRecords


def rec(i: int) -> dict:
    return {"erp_id": str(i), "name": f"取引先{i}株式会社", "phone": f"03000{i:05d}", "archived": False}


def test_partner_records_answer_as_the_dict_they_replace():
    results = [MapResult(str(i), rec(i)) for i in (3, 1, 2)] + [MapResult("9", None, "name: required")]
    pr = PartnerRecords(results)
    assert len(pr) == 4 and list(pr) == ["3", "1", "2", "9"]  # read order
    assert "1" in pr and "7" not in pr and pr.get("7") is None
    got = pr.get("1")
    assert got.ok and got.value == rec(1) and got.source_id == "1"
    key, first = next(pr.items())
    assert first.value["erp_id"] is key  # read back: the id object is the one kept in memory (index, id maps)
    bad = pr.get("9")
    assert not bad.ok and bad.error == "name: required"
    assert [k for k, _v in pr.items(chunk=2)] == ["3", "1", "2", "9"]
    assert {k: v.value for k, v in pr.get_many(["2", "3", "7"]).items()} == {"2": rec(2), "3": rec(3)}

    # a handled partner is let go of: the results say "released", the index's record is the stub
    assert pr.let_go("1") and not pr.let_go("9")  # an invalid record stays as it was read
    assert pr.get("1") is _RELEASED and pr.get_many(["1"]) == {"1": _RELEASED}
    assert pr.record("1") is _RELEASED_RECORD and _STUB in pr.record("1")
    assert pr.stored("1") == rec(1)  # a review candidate still shows its name

    # records added for the index only are no members; a popped member is still found by the index
    pr.add_extra("50", rec(50))
    assert "50" not in pr and len(pr) == 4 and pr.record("50") == rec(50) and pr.get("50") is None
    assert pr.pop("3").value == rec(3)
    assert "3" not in pr and len(pr) == 3 and pr.record("3") == rec(3) and pr.pop("3") is None
    pr.pop("1")
    assert pr.record("1") is _RELEASED_RECORD
    pr.close()


def test_record_spill_round_trip_and_order():
    with RecordSpill() as sp:
        sp.put_many((str(i), {"n": i, "text": "取引先" * 3}) for i in range(1200))
        sp.put("5", {"n": -5})
        assert len(sp) == 1200 and "5" in sp and "x" not in sp
        assert sp.get("5") == {"n": -5} and sp.get("x", 0) == 0
        assert len(sp.get_many([str(i) for i in range(0, 1200, 2)] + ["x"])) == 600
        assert [k for k, _v in sp.items(chunk=100)][:3] == ["0", "1", "2"]
        sp.delete("0")
        assert "0" not in sp


def test_link_status_stores_only_what_is_not_an_active_link():
    from renkei.tasks.customer_sync import LinkStatus, _stamp

    links: dict[str, str] = {"c1": "e1"}
    st = LinkStatus(links)
    st["c1"] = "active"
    st["c2"] = "merged"
    assert dict.__len__(st) == 1  # the active link is the key of `links`, not stored again
    assert st.get("c1") == st["c1"] == "active" and st.get("c2") == "merged" and st.get("c3") is None
    assert set(st) == {"c1", "c2"} and len(st) == 2 and "c1" in st.keys() and "c3" not in st
    view = st.keys()
    links["c4"] = "e4"
    st["c4"] = "active"
    assert "c4" in view  # live: a link added later counts
    st.pin("c1")
    links.pop("c1")  # unlinked without a new status (its company archived): it keeps "active"
    assert st["c1"] == "active" and "c1" in view
    st["c1"] = "erp_deleted"
    assert st["c1"] == "erp_deleted" and dict(st.items()) == {"c1": "erp_deleted", "c2": "merged", "c4": "active"}
    assert _stamp("1764000000123") == 1764000000123 and _stamp("0123") == "0123" and _stamp("2026-12-05T") == "2026-12-05T"
