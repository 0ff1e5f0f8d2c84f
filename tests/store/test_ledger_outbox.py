"""The ledger keeps what is sent and which committed facts the CRM does not show yet (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import sqlalchemy

from renkei.store.repo import Store


def test_what_is_sent_belongs_to_the_claim(store: Store):
    claim = store.claim("invoice:deal:1", "run-a", lease_seconds=0)
    assert claim.state == "won" and claim.sent is None
    store.stash("invoice:deal:1", "run-a", {"sent": {"issue_date": "2026-11-30", "total": 1100}})
    time.sleep(0.01)  # run-a dies; its lease is over
    again = store.claim("invoice:deal:1", "run-b")
    assert again.state == "recovered" and again.sent == {"issue_date": "2026-11-30", "total": 1100}
    store.commit("invoice:deal:1", "run-b", "INV-1", {"number": "R-1"})
    entry = store.ledger_entry("invoice:deal:1")
    assert entry.result == {"sent": {"issue_date": "2026-11-30", "total": 1100}, "number": "R-1"}
    assert entry.writeback is None  # not asked to write back


def test_outbox_lists_committed_facts_not_yet_written_oldest_first(store: Store):
    for key in ("invoice:deal:2", "approval-pending:deal:3:abc", "invoice:deal:1", "journal:x", "invoice:deal:9"):
        store.claim(key, "run")
    store.commit("invoice:deal:2", "run", "INV-2", writeback=True)
    store.commit("approval-pending:deal:3:abc", "run", None, writeback=True)
    store.commit("invoice:deal:1", "run", "INV-1", writeback=True)
    store.commit("journal:x", "run", "J-1")  # no write-back
    # invoice:deal:9 is claimed but never committed: not a fact yet
    prefixes = ["invoice:deal:", "approval-pending:deal:"]
    assert [e.key for e in store.outbox(prefixes)] == ["invoice:deal:2", "approval-pending:deal:3:abc", "invoice:deal:1"]
    assert [e.key for e in store.outbox(["invoice:deal:"], limit=1)] == ["invoice:deal:2"]
    assert [e.key for e in store.outbox(prefixes, keys=["invoice:deal:1", "invoice:deal:9"])] == ["invoice:deal:1"]
    store.mark_written(["invoice:deal:2", "invoice:deal:1"])
    assert [e.key for e in store.outbox(prefixes)] == ["approval-pending:deal:3:abc"]
    assert store.ledger_entry("invoice:deal:1").writeback == "done"
    store.mark_written(["journal:x"])  # nothing pending there: stays without write-back
    assert store.ledger_entry("journal:x").writeback is None


def test_the_outbox_query_uses_its_index(store: Store):
    inspector = sqlalchemy.inspect(store.engine)
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("idempotency_ledger")}
    assert indexes["ix_ledger_writeback"] == ["writeback", "key"]
