"""State store on SQLite and PostgreSQL (the PostgreSQL cases skip when no server answers)."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
import sqlalchemy

from renkei.store.repo import IdConflict, Store
from tests.spawned import SPAWN, run_spawned


def test_migration_upgrades_an_empty_database_to_head(db_url):
    from alembic.script import ScriptDirectory

    from renkei.store.db import alembic_config, make_engine, migrate

    migrate(db_url)
    engine = make_engine(db_url)
    tables = set(sqlalchemy.inspect(engine).get_table_names())
    assert {"id_map", "sync_cursor", "base_snapshot", "idempotency_ledger", "review_item", "audit_event",
            "alembic_version"} <= tables
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select version_num from alembic_version").scalar() == head
    migrate(db_url)  # idempotent
    engine.dispose()


def test_a_uri_form_sqlite_url_never_creates_a_folder(tmp_path, monkeypatch):
    """``sqlite:///file:PATH?mode=ro&uri=true`` (a read-only store) is opened by SQLite's URI parser: no folder
    is made for it — taken for a path, it left ``file:/tmp/…`` folders in the working directory."""
    from renkei.store.db import make_engine, migrate, sqlite_file

    db = tmp_path / "store" / "renkei.db"
    migrate(f"sqlite:///{db}")  # a plain path: its folder is created
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    ro = f"sqlite:///file:{db}?mode=ro&uri=true"
    assert sqlite_file(ro) is None and sqlite_file(f"sqlite:///{db}?timeout=5") == db
    for open_ in (lambda: make_engine(ro).dispose(), lambda: Store.open(ro, run_migrations=False, cached=False)):
        open_()
    with pytest.raises(sqlalchemy.exc.OperationalError):  # read-only indeed: nothing can be written
        migrate(f"sqlite:///file:{tmp_path / 'elsewhere' / 'x.db'}?mode=ro&uri=true")
    assert list(work.iterdir()) == [] and not (tmp_path / "elsewhere").exists()


def test_migrations_match_the_models(db_url):
    """Autogenerate against a migrated database finds nothing to do: no model change without a migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import renkei.store.models  # noqa: F401
    from renkei.store.db import make_engine, migrate

    migrate(db_url)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_id_map_is_unique_both_ways(store: Store):
    store.link("company", "101", "P-1")
    assert store.link("company", "101", "P-1").erp_id == "P-1"  # same pair again: idempotent
    with pytest.raises(IdConflict):
        store.link("company", "101", "P-2")
    with pytest.raises(IdConflict):
        store.link("company", "102", "P-1")
    store.link("product", "101", "P-1")  # another entity type is another space
    assert store.erp_id_for("company", "101") == "P-1"
    assert store.crm_id_for("company", "P-1") == "101"
    store.relink_crm("company", "101", "999")  # a HubSpot merge gave a new id
    assert store.erp_id_for("company", "999") == "P-1" and store.erp_id_for("company", "101") is None


def test_cursors_and_snapshots(store: Store):
    assert store.get_cursor("customer-sync:hubspot") is None
    store.set_cursor("customer-sync:hubspot", "1732500000000", flow_run_id="run-1")
    store.set_cursor("customer-sync:hubspot", "1732500000999")
    assert store.get_cursor("customer-sync:hubspot") == "1732500000999"
    store.put_snapshot("company", "1", {"name": "山田商事", "phone": "0312345678"}, crm_hash="a" * 64)
    snap = store.get_snapshot("company", "1")
    assert snap.fields == {"name": "山田商事", "phone": "0312345678"} and snap.crm_hash == "a" * 64
    store.put_snapshot("company", "1", {"name": "山田商事株式会社"})
    assert store.get_snapshots("company", ["1", "2"])["1"].fields["name"] == "山田商事株式会社"


def test_ledger_claim_commit_and_recovery(store: Store):
    first = store.claim("invoice:deal:1", "worker-a")
    assert first.state == "won" and first.proceed
    assert store.claim("invoice:deal:1", "worker-b").state == "held"
    store.commit("invoice:deal:1", "worker-a", "INV-1", {"total": 11000})
    again = store.claim("invoice:deal:1", "worker-b")
    assert again.state == "committed" and again.external_id == "INV-1" and again.result == {"total": 11000}
    store.commit("invoice:deal:1", "worker-a", "INV-1")  # committing the same outcome again is harmless
    with pytest.raises(IdConflict):
        store.commit("invoice:deal:1", "worker-a", "INV-2")

    # a crash after the external call: the lease expires and the next claimer must look the reference up
    store.claim("invoice:deal:2", "worker-a", lease_seconds=-1)
    recovered = store.claim("invoice:deal:2", "worker-b")
    assert recovered.state == "recovered" and recovered.must_check_external and recovered.attempts == 2

    # a failure known to have had no external effect: released, claimable again without a lookup
    store.claim("invoice:deal:3", "worker-a")
    store.release("invoice:deal:3", "worker-a")
    assert store.claim("invoice:deal:3", "worker-b").state == "won"


def test_review_items_dedupe_and_decide(store: Store):
    a = store.add_review(flow="customer-sync", reason_code="AMBIGUOUS_MATCH", entity="company", entity_key="7",
                         message="2 candidates", payload={"candidates": ["P-1", "P-2"], "email": "taro@example.com"})
    b = store.add_review(flow="customer-sync", reason_code="AMBIGUOUS_MATCH", entity="company", entity_key="7",
                         message="3 candidates", payload={"candidates": ["P-1", "P-2", "P-3"]})
    assert a.id == b.id  # still open: updated, not duplicated
    assert a.payload["email"] == "t***@example.com"
    store.decide_review(a.id, decision="approve", decided_by="keiri@example.co.jp", comment="P-1 が正しい")
    assert store.list_reviews("open") == []
    done = store.list_reviews("approved")[0]
    assert done.decided_by == "keiri@example.co.jp" and done.decided_at is not None
    c = store.add_review(flow="customer-sync", reason_code="AMBIGUOUS_MATCH", entity="company", entity_key="7")
    assert c.id != a.id  # a new occurrence after a decision is a new item


def test_audit_log_masks_personal_data(store: Store):
    before = datetime.now(timezone.utc)
    store.audit(actor="customer-sync", action="update", system="erp", entity="company", entity_key="7",
                flow_run_id="run-1",
                changes={"name": {"old": "山田商事", "new": "山田商事株式会社"}, "billing_email": "keiri@yamada.co.jp",
                         "phone": {"old": "0312345678", "new": "0398765432"}})
    (event,) = store.audit_events("company", "7", since=before.replace(tzinfo=None) if False else None)
    assert event.changes["name"] == {"old": "山田商事", "new": "山田商事株式会社"}  # company names are not personal
    assert event.changes["billing_email"] == "k***@yamada.co.jp"
    assert event.changes["phone"] == {"old": "0***", "new": "0***"}
    assert event.actor == "customer-sync" and event.flow_run_id == "run-1"


def _claim_in_process(url: str, key: str, owner: str, barrier, out) -> None:
    s = Store.open(url, run_migrations=False, cached=False)
    barrier.wait()
    out.put((owner, s.claim(key, owner).state))


def test_concurrent_writers_get_exactly_one_winner(db_url):
    """Eight processes claim one idempotency key at the same instant: exactly one wins."""
    Store.open(db_url, cached=False)
    n = 8
    barrier, out = SPAWN.Barrier(n), SPAWN.Queue()
    results = run_spawned(_claim_in_process, [(db_url, "invoice:deal:42", f"w{i}", barrier, out) for i in range(n)], out)
    states = [state for _, state in results]
    assert sorted(states) == ["held"] * (n - 1) + ["won"]


def test_concurrent_threads_get_exactly_one_winner(store: Store):
    results: list[str] = []
    barrier = threading.Barrier(16)

    def go(i: int) -> None:
        barrier.wait()
        results.append(store.claim("payment:deposit:9", f"t{i}").state)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("won") == 1 and results.count("held") == 15


def test_personal_values_at_rest_are_keyed_hashes(tmp_path, monkeypatch):
    """What a 3-way merge base keeps of personal data: a keyed hash per value — equal values (under the
    merge's equality) hash equal, nothing can be read back, another key gives other hashes."""
    from renkei.domain.ownership import is_protected, reveal_protected
    from renkei.store.repo import personal_key, protect_personal

    monkeypatch.setenv("RENKEI_HOME", str(tmp_path / "h1"))
    key = personal_key()
    assert len(key) == 64 and (tmp_path / "h1" / "secrets" / "data-key").stat().st_mode & 0o777 == 0o600
    assert personal_key() == key  # generated once, then kept
    base = {"crm": {"name": "山田商事", "phone": "03-1234-5678", "billing_email": "Keiri@Yamada.co.jp",
                    "address.street": "千代田1-1", "address.city": "千代田区"}}
    kept = protect_personal(base)
    text = str(kept)
    assert "1234" not in text and "keiri" not in text.lower() and "千代田1-1" not in text
    assert kept["crm"]["name"] == "山田商事" and kept["crm"]["address.city"] == "千代田区"  # not personal
    assert all(is_protected(kept["crm"][k]) for k in ("phone", "billing_email", "address.street"))
    assert protect_personal(kept) == kept  # idempotent
    # the merge's equality survives: the same number written another way is "unchanged"
    assert protect_personal({"phone": "0312345678"})["phone"] == kept["crm"]["phone"]
    assert reveal_protected("phone", kept["crm"]["phone"], ["03 1234 5678"], key) == "03 1234 5678"
    assert is_protected(reveal_protected("phone", kept["crm"]["phone"], ["03-9999-0000"], key))
    monkeypatch.setenv("RENKEI_DATA_KEY", "another key")
    assert protect_personal({"phone": "0312345678"})["phone"] != kept["crm"]["phone"]


def test_review_messages_never_hold_raw_contact_data(store: Store):
    item = store.add_review(flow="customer-sync", reason_code="ERP_WRITE_FAILED", entity="company", entity_key="8",
                            message="freee refused: email hanako.sato@example.co.jp / phone 090-1234-5678 invalid")
    assert "hanako.sato" not in item.message and "090-1234-5678" not in item.message
    assert "h***@example.co.jp" in item.message and "***-5678" in item.message
