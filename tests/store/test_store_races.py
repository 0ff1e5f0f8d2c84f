"""Concurrent writers of one cursor, one ID-map pair and one snapshot resolve instead of crashing
(``INSERT … ON CONFLICT``): eight processes hit the same row at the same instant, on SQLite and on
PostgreSQL."""

from __future__ import annotations


from renkei.store.repo import IdConflict, Store
from tests.spawned import SPAWN, run_spawned

N = 8


def _race(url: str, what: str, i: int, barrier, out) -> None:
    try:
        s = Store.open(url, run_migrations=False, cached=False)
        barrier.wait()
        if what == "cursor":
            s.set_cursor("order-to-invoice:hubspot-deals", f"v{i}", flow_run_id=f"run-{i}")
            out.put((i, "ok"))
        elif what == "link":  # every writer records the same pair
            out.put((i, s.link("company", "101", "P-1").erp_id))
        elif what == "conflict":  # every writer pairs the company with its own partner: one wins
            out.put((i, s.link_or_adopt("company", "202", f"P-{i}")))
        elif what == "review":
            item = s.add_review(flow="order-to-invoice", reason_code="COMPANY_NOT_LINKED", entity="deal",
                                entity_key="77", message=f"seen by worker {i}")
            out.put((i, item.id))
        elif what == "snapshot":
            s.put_snapshot("company", "P-9", {"name": f"会社{i}", "phone": f"03-1234-56{i:02d}"},
                           crm_hash=f"{i:064d}")
            out.put((i, "ok"))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        import traceback

        out.put((i, f"error: {type(exc).__name__}: {exc} {traceback.format_exc()[-1500:]}"))


def _run(url: str, what: str) -> list:
    Store.open(url, cached=False)
    barrier, out = SPAWN.Barrier(N), SPAWN.Queue()
    return sorted(run_spawned(_race, [(url, what, i, barrier, out) for i in range(N)], out, timeout=120))


def test_concurrent_set_cursor_never_collides(db_url, tmp_path, monkeypatch):
    results = _run(db_url, "cursor")
    assert [r for _, r in results] == ["ok"] * N
    store = Store.open(db_url, run_migrations=False, cached=False)
    assert store.get_cursor("order-to-invoice:hubspot-deals") in {f"v{i}" for i in range(N)}


def test_concurrent_identical_links_all_succeed(db_url):
    results = _run(db_url, "link")
    assert [r for _, r in results] == ["P-1"] * N
    store = Store.open(db_url, run_migrations=False, cached=False)
    assert [(r.crm_id, r.erp_id) for r in store.id_map("company")] == [("101", "P-1")]


def test_concurrent_conflicting_links_adopt_the_winner(db_url):
    """Eight writers pair one company with eight different partners: exactly one pair is stored and
    every writer ends up using it."""
    results = _run(db_url, "conflict")
    store = Store.open(db_url, run_migrations=False, cached=False)
    (row,) = store.id_map("company")
    assert row.crm_id == "202"
    assert [r for _, r in results] == [row.erp_id] * N
    try:
        store.link("company", "202", "P-other")
        raise AssertionError("a conflicting link must not pass")
    except IdConflict:
        pass


def test_concurrent_put_snapshot_keeps_one_row(db_url):
    results = _run(db_url, "snapshot")
    assert [r for _, r in results] == ["ok"] * N
    store = Store.open(db_url, run_migrations=False, cached=False)
    snap = store.get_snapshot("company", "P-9")
    i = int(snap.crm_hash)
    assert snap.fields["name"] == f"会社{i}"  # one writer's whole row, not a mix
    assert snap.fields["phone"] == f"03-1234-56{i:02d}"
    assert len(store.get_snapshots("company", ["P-9"])) == 1


def test_concurrent_identical_review_items_make_one_open_item(db_url):
    results = _run(db_url, "review")
    assert not [r for _, r in results if isinstance(r, str)], results
    store = Store.open(db_url, run_migrations=False, cached=False)
    (item,) = store.list_reviews("open")
    assert {r for _, r in results} == {item.id}
