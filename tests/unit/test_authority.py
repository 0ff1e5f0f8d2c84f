"""Who may decide approvals (domain.authority from the policy's [authority]) and the forms' own rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from renkei.domain.authority import check
from renkei.policy import AuthorityPolicy

POLICY = AuthorityPolicy.model_validate({
    "roles": {"finance": ["keiri@example.co.jp", "*@keiri.example.co.jp"], "cfo": ["cfo@example.co.jp"]},
    "tiers": {"invoice": [{"max_amount": 10_000_000, "roles": ["finance", "cfo"]},
                          {"max_amount": 50_000_000, "roles": ["cfo"]}],
              "payment": [{"roles": ["finance"]}]},
    "second_approval_above": {"invoice": 5_000_000},
    "owners": {"77": "eigyo@example.co.jp", "78": ["keiri@example.co.jp"]},
})


def test_allowlists_tiers_self_approval_and_second_approver():
    rules = POLICY.rules()
    ok = check(rules, kind="invoice", amount=1_000_000, approver="Keiri@Example.co.jp ", approve=True)
    assert ok.allowed and not ok.needs_second and ok.roles == ("finance",)
    assert check(rules, kind="invoice", amount=1_000_000, approver="a@keiri.example.co.jp", approve=True).allowed
    stranger = check(rules, kind="invoice", amount=1_000_000, approver="eigyo@example.co.jp", approve=True)
    assert (stranger.allowed, stranger.code) == (False, "NOT_IN_ALLOWLIST")
    assert check(rules, kind="invoice", amount=1_000_000, approver="eigyo@example.co.jp", approve=False).code \
        == "NOT_IN_ALLOWLIST"  # rejecting needs the allowlist too
    # tier 2: only the CFO; above every tier: nobody; credits count by their absolute amount
    assert check(rules, kind="invoice", amount=20_000_000, approver="keiri@example.co.jp", approve=True).code \
        == "NOT_IN_ALLOWLIST"
    assert check(rules, kind="invoice", amount=-20_000_000, approver="cfo@example.co.jp", approve=True).allowed
    assert check(rules, kind="invoice", amount=60_000_000, approver="cfo@example.co.jp", approve=True).code \
        == "OVER_ALL_TIERS"
    # the deal owner cannot approve their own deal (but may reject it)
    own = check(rules, kind="invoice", amount=1_000_000, approver="keiri@example.co.jp", approve=True, owner_ids=["78"])
    assert (own.allowed, own.code) == (False, "SELF_APPROVAL")
    assert check(rules, kind="invoice", amount=1_000_000, approver="keiri@example.co.jp", approve=False,
                 owner_ids=["78"]).allowed
    # above the threshold: two distinct approvers
    first = check(rules, kind="invoice", amount=6_000_000, approver="keiri@example.co.jp", approve=True)
    assert first.allowed and first.needs_second
    same = check(rules, kind="invoice", amount=6_000_000, approver="KEIRI@example.co.jp", approve=True,
                 earlier_approvers=["keiri@example.co.jp"])
    assert (same.allowed, same.code) == (False, "SAME_APPROVER")
    second = check(rules, kind="invoice", amount=6_000_000, approver="cfo@example.co.jp", approve=True,
                   earlier_approvers=["keiri@example.co.jp"])
    assert second.allowed and not second.needs_second
    # a kind without tiers is open; payment tiers apply to payments only
    assert check(rules, kind="proration", amount=9_999_999_999, approver="anyone@example.com", approve=True).allowed
    assert not check(rules, kind="payment", amount=100, approver="cfo@example.co.jp", approve=True).allowed
    with pytest.raises(ValueError):
        AuthorityPolicy.model_validate({"roles": {}, "tiers": {"invoice": [{"roles": ["ghost"]}]}})


def test_forms_refuse_a_bare_rejection_in_the_schema_the_server_checks():
    from prefect.utilities.schema_tools.validation import ValidationError as SchemaError, validate

    from renkei.tasks.payment_approval_steps import PaymentDecision
    from renkei.tasks.approval_form import ApprovalDecision

    schema = ApprovalDecision.with_initial_data(description="x").model_json_schema()
    assert schema["properties"]["approved"]["title"] == "承認 / Approve"  # Japanese labels, English beside
    assert schema["properties"]["comment"]["title"] == "コメント / Comment"
    for bad in ({"approved": False, "approver": "a@example.co.jp", "comment": ""},
                {"approved": False, "approver": "a@example.co.jp", "comment": "  "},
                {"approved": False, "approver": "a@example.co.jp"}):
        with pytest.raises(SchemaError):
            validate(bad, schema, raise_on_error=True)
        with pytest.raises(ValidationError):
            ApprovalDecision.model_validate(bad)
    validate({"approved": True, "approver": "a@example.co.jp", "comment": ""}, schema, raise_on_error=True)
    validate({"approved": False, "approver": "a@example.co.jp", "comment": "理由"}, schema, raise_on_error=True)
    pay = PaymentDecision.with_initial_data(description="x", choice="A").model_json_schema()
    with pytest.raises(SchemaError):
        validate({"choice": "", "unrelated": True, "approver": "a@example.co.jp", "comment": ""}, pay,
                 raise_on_error=True)
    validate({"choice": "A", "unrelated": False, "approver": "a@example.co.jp", "comment": ""}, pay, raise_on_error=True)
    # the comment is never labelled "(Optional)" in the UI (required key, empty allowed unless the rule says)
    assert "comment" in schema["required"] and "comment" in pay["required"]
    assert schema["properties"]["comment"]["default"] == ""


def test_a_rerequested_approval_is_a_prefect_event():
    from renkei.tasks.events import APPROVAL_REREQUESTED, business_events

    (ev,) = business_events("order-to-invoice", "run-1", [dict(
        actor="order-to-invoice", action="approval_rerequested", entity="deal", entity_key="42", system="renkei",
        changes={"expired_run": "old-run", "flow_run_id": "new-run", "approval_flow": "invoice-approval"})], [])
    assert ev["event"] == APPROVAL_REREQUESTED
    assert ev["resource"]["prefect.resource.id"] == "prefect.flow-run.new-run"
    assert ev["resource"]["renkei.expired-run.id"] == "old-run" and ev["resource"]["renkei.entity-key"] == "42"


def test_the_draft_fingerprint_changes_only_with_the_deal():
    """A rejection sticks until the deal's amount, lines or company change (the fingerprint keys it)."""
    from decimal import Decimal

    from renkei.domain.exceptions import ExceptionReason, ReasonCode
    from renkei.domain.model import Deal, LineItem
    from renkei.tasks.order_to_invoice_steps import draft_fingerprint
    from renkei.tasks.invoicing import Draft

    deal = Deal(crm_id="1", name="高橋食品", stage="closedwon", amount=100, company_crm_id="5",
                line_items=[LineItem(name="a", quantity=Decimal(1), unit_price=50),
                            LineItem(name="b", quantity=Decimal(1), unit_price=50)])
    fp = draft_fingerprint(Draft(deal, None, None))
    same = [deal.model_copy(update={"name": "高橋食品 (改)", "line_items": deal.line_items[::-1]})]
    assert all(draft_fingerprint(Draft(d, None, None)) == fp for d in same)
    assert draft_fingerprint(Draft(deal, None, None, reasons=[ExceptionReason(ReasonCode.DATE_OUT_OF_RANGE, "x", "x")])) == fp
    changed = [deal.model_copy(update={"amount": 101}), deal.model_copy(update={"company_crm_id": "6"}),
               deal.model_copy(update={"line_items": deal.line_items[:1]})]
    assert len({fp, *(draft_fingerprint(Draft(d, None, None)) for d in changed)}) == 4
