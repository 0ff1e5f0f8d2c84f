"""The webhook ledger as a queue: concurrent takers get disjoint deals, oldest first; a run's own deals are
taken by it alone; only emitted rows of the event, emitted recently, are taken."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from renkei.store.repo import Store
from renkei.webhooks.ledger import DEAL_CHANGED, TABLE, Ledger, Row


def test_concurrent_takers_get_disjoint_deals_oldest_first(db_url):
    ledger = Ledger(Store.open(db_url, cached=False).engine)
    rows, _ = ledger.record([Row(source="hubspot", event_key=f"e{i}", event=DEAL_CHANGED, object_id=str(100 + i))
                             for i in range(12)])
    ledger.mark_emitted([r.id for r in rows], "b")
    other, _ = ledger.record([Row(source="hubspot", event_key="c1", event="renkei.crm.company.changed", object_id="7"),
                              Row(source="hubspot", event_key="p1", event=DEAL_CHANGED, object_id="999")])
    ledger.mark_emitted([other[0].id], "b")  # a company event (another queue) and a pending deal: never taken
    old, _ = ledger.record([Row(source="hubspot", event_key="old", event=DEAL_CHANGED, object_id="555")])
    ledger.mark_emitted([old[0].id], "b")
    with ledger.engine.begin() as conn:  # emitted an hour ago: its run has long come
        conn.execute(update(TABLE).where(TABLE.c.id == old[0].id)
                     .values(emitted_at=datetime.now(timezone.utc) - timedelta(hours=1)))

    assert ledger.take(DEAL_CHANGED, object_ids=["105", "106"]) == ["105", "106"]  # a run's own
    got: list[list[str]] = []
    lock = threading.Lock()

    def taker() -> None:
        while more := ledger.take(DEAL_CHANGED, limit=3):
            with lock:
                got.append(more)

    threads = [threading.Thread(target=taker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [d for part in got for d in part]
    assert sorted(taken) == [str(100 + i) for i in range(12) if i not in (5, 6)]  # each once, none lost
    assert all(part == sorted(part) for part in got)  # oldest first within a take
    assert ledger.take(DEAL_CHANGED, object_ids=["105"]) == []  # taken already
    assert ledger.counts() == {"taken": 12, "emitted": 2, "pending": 1}
