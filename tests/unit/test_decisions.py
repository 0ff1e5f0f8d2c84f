"""domain.decisions: the choices each review kind offers and the decisions it refuses (pure rules)."""

from __future__ import annotations

import pytest

from renkei.domain.decisions import MATCH_REASONS, DecisionRefused, decide, kind_of, options
from renkei.tasks.customer_sync import MATCH_REASONS as SYNC_MATCH_REASONS

MATCH = dict(flow="customer-sync", reason_code="AMBIGUOUS_NAME", entity="company", entity_key="crm:7",
             payload={"source_side": "crm", "source_id": "7", "candidates": [{"id": "10"}, {"id": "11"}]}, status="open")
CONFLICT = dict(flow="customer-sync", reason_code="BOTH_CHANGED", entity="company", entity_key="7/10:zip:x",
                payload={"field": "address.postal_code", "crm": "100-0001", "erp": "100-0002", "crm_id": "7",
                         "erp_id": "10"}, status="open")
INVALID = dict(flow="customer-sync", reason_code="INVALID_CRM_COMPANY", entity="company", entity_key="7", payload={},
               status="open")
BY = "keiri@example.co.jp"


def test_kinds_choices_and_refusals():
    assert set(SYNC_MATCH_REASONS) <= MATCH_REASONS
    assert [kind_of(d["flow"], d["reason_code"], d["entity"], d["payload"]) for d in (MATCH, CONFLICT, INVALID)] == \
        ["match", "conflict", "invalid"]
    assert kind_of("payment-writeback", "DEPOSIT_NEEDS_APPROVAL", "deposit", {}) == "approval"
    assert kind_of("order-to-invoice", "NO_COMPANY", "deal", {}) == "other"
    assert [o.choice for o in options(**{k: v for k, v in MATCH.items() if k not in ("entity_key", "status")})] == \
        ["link:10", "link:11", "create", "ignore"]

    d = decide(**MATCH, choice="link:11", by=BY)
    assert d.effect["link"] == {"crm_id": "7", "erp_id": "11"} and d.needs_apply and d.status == "resolved"
    assert decide(**MATCH, choice="link", value="10", by=BY).target == "10"
    d = decide(**CONFLICT, choice="value", value="1000001", by=BY, reason="checked")
    assert d.value == "100-0001" and d.effect["write_to"] == "both"  # normalised by the canonical model
    assert decide(**CONFLICT, choice="crm", by=BY).effect["write_to"] == "erp"
    d = decide(**INVALID, choice="dismiss", by=BY, reason="test data")
    assert d.status == "dismissed" and not d.needs_apply
    assert decide(**INVALID, choice="retry", by=BY).needs_apply

    refused = [
        (MATCH, dict(choice="link:12"), "not among the item's candidates"),
        (MATCH, dict(choice="link"), "say which candidate"),
        (MATCH, dict(choice="ignore"), "reason is required"),
        (MATCH, dict(choice="crm"), "does not fit a match item"),
        (CONFLICT, dict(choice="value", value="12-34"), "invalid value"),
        (CONFLICT, dict(choice="value", value=""), "enter a value"),
        (INVALID, dict(choice="dismiss"), "reason is required"),
        ({**INVALID, "status": "dismissed"}, dict(choice="retry"), "not open"),
        ({**INVALID, "reason_code": "DEPOSIT_NEEDS_APPROVAL", "entity": "deposit"}, dict(choice="dismiss"),
         "renkei approvals"),
    ]
    for item, kw, message in refused:
        with pytest.raises(DecisionRefused, match=message):
            decide(**item, by=BY, **kw)
    with pytest.raises(DecisionRefused, match="e-mail"):
        decide(**MATCH, choice="create", by="keiri")
