"""Store.record_decision / link_decided: a decision is stored and audited once; its link effect and the
applied mark are one transaction; re-applying after a crash finds the link and changes nothing."""

from __future__ import annotations

import pytest

from renkei.domain.decisions import DecisionRefused
from renkei.store.repo import IdConflict, Store

BY = "keiri@example.co.jp"


def test_decision_link_effect_and_mark_are_one_transaction(sqlite_url):
    store = Store.open(sqlite_url, cached=False)
    payload = {"source_side": "crm", "source_id": "7", "candidates": [{"id": "10"}, {"id": "11"}]}
    item = store.add_review(flow="customer-sync", reason_code="AMBIGUOUS_NAME", entity="company",
                            entity_key="crm:7", message="2 candidates", payload=payload)
    other = store.add_review(flow="customer-sync", reason_code="AMBIGUOUS_NAME", entity="company",
                             entity_key="crm:8", message="2 candidates", payload={**payload, "source_id": "8"})
    store.record_decision(item.id, choice="link:10", by=BY, reason="same company")
    with pytest.raises(DecisionRefused, match="not open"):
        store.record_decision(item.id, choice="create", by=BY)
    assert [i.id for i in store.pending_decisions("customer-sync")] == [item.id]

    assert store.link_decided("company", "7", "10", item.id, actor="customer-sync") == "linked"
    assert store.link_decided("company", "7", "10", item.id, actor="customer-sync") == "already"  # a re-run
    assert store.pending_decisions("customer-sync") == []
    # a second decision for a partner that is taken: refused, and neither the link nor the mark is written
    store.record_decision(other.id, choice="link:10", by=BY)
    with pytest.raises(IdConflict):
        store.link_decided("company", "8", "10", other.id, actor="customer-sync")
    assert store.erp_id_for("company", "8") is None
    assert store.get_review(other.id).applied_at is None
    assert [e.action for e in store.review_history(item.id)] == [
        "review_decided", "review_decision_refused", "review_decision_applied"]  # applied once, audited once

    # a dismissed item stays dismissed for the same record, a changed record opens a new one
    bad = store.add_review(flow="customer-sync", reason_code="INVALID_CRM_COMPANY", entity="company", entity_key="9",
                           message="zip", fingerprint="hubspot:1")
    store.record_decision(bad.id, choice="dismiss", by=BY, reason="test record")
    same = store.add_review(flow="customer-sync", reason_code="INVALID_CRM_COMPANY", entity="company",
                            entity_key="9", message="zip", fingerprint="hubspot:1")
    assert same.id == bad.id and same.status == "dismissed"
    changed = store.add_review(flow="customer-sync", reason_code="INVALID_CRM_COMPANY", entity="company",
                               entity_key="9", message="zip", fingerprint="hubspot:2")
    assert changed.id != bad.id and changed.status == "open"
