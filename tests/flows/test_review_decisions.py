"""Review items decided through `renkei reviews resolve` change the next customer-sync run, exactly once;
dismissals stick while the record is unchanged; decisions that do not fit the item are refused."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from renkei.cli import app
from renkei.flows.customer_sync import customer_sync
from tests.flows.builders import freee_partner, hs_company
from tests.flows.conftest import write_policy
from tests.flows.test_customer_sync import SUZUKI, YAMADA, company, partner, partners, reviews

KEIRI = "keiri@example.co.jp"


def cli(*args: str, code: int = 0) -> str:
    r = CliRunner().invoke(app, list(args), env={"COLUMNS": "160"})
    assert r.exit_code == code, (r.output, r.exception)
    return r.output


def resolve(item_id: int, *args: str, code: int = 0) -> str:
    return cli("reviews", "resolve", str(item_id), "--by", KEIRI, *args, code=code)


def test_each_review_kind_resolved_through_the_cli_changes_the_next_run_once(world, monkeypatch):
    write_policy(world.tmp, "[ownership.fields]\nphone = { owner = \"both\" }\n", monkeypatch)
    from renkei.tasks.runtime import get_runtime

    world.rt = store_rt = get_runtime()
    store = store_rt.store
    # a doubtful match, a record that will conflict, two invalid records
    a = freee_partner(world, "株式会社田中商店", code="P-TANAKA1")
    b = freee_partner(world, "田中商店株式会社", code="P-TANAKA2")
    c = hs_company(world, "田中商店", zip="100-0001")
    p = freee_partner(world, "鈴木電機株式会社", registration=f"T{SUZUKI}", code="P-SUZUKI")
    s = hs_company(world, "鈴木電機株式会社", renkei_corporate_number=SUZUKI, phone="03-1000-0000")
    bad_reg = hs_company(world, "不正番号株式会社", renkei_invoice_registration_number="T1234567890123")
    bad_zip = hs_company(world, "不正郵便株式会社", zip="12-345")
    freee_partner(world, "株式会社山本商店", code="P-YAMAMOTO1")
    freee_partner(world, "山本商店株式会社", code="P-YAMAMOTO2")
    y = hs_company(world, "山本商店", zip="100-0001")
    customer_sync()
    world.hs().companies.update(s, {"phone": "03-2000-0000"})
    world.fr().update_partner(p, {"name": "鈴木電機株式会社", "phone": "03-3000-0000"})
    customer_sync()

    items = {r.reason_code if r.reason_code not in ("INVALID_CRM_COMPANY", "AMBIGUOUS_NAME") else r.entity_key: r
             for r in reviews(world)}
    match, conflict, other_match = items[f"crm:{c}"], items["BOTH_CHANGED"], items[f"crm:{y}"]
    listed = json.loads(cli("reviews", "list", "--json"))
    assert {r["kind"] for r in listed} == {"match", "conflict", "invalid"}
    assert all(r["created_at"].endswith("+09:00") for r in listed)
    shown = json.loads(cli("reviews", "show", str(match.id), "--json"))
    assert {ch["choice"] for ch in shown["choices"]} == {f"link:{a}", f"link:{b}", "create", "ignore"}
    assert "田中商店" in cli("reviews", "list")

    # refused: not a candidate, a choice of another kind, no reason to dismiss, a value of the wrong type
    assert "not among the item's candidates" in resolve(match.id, "--choice", "link:999999", code=2)
    assert "does not fit a match item" in resolve(match.id, "--choice", "erp", code=2)
    assert "reason is required" in resolve(items[bad_zip].id, "--choice", "dismiss", code=2)
    assert "invalid value" in resolve(conflict.id, "--choice", "value", "--value", "not a phone ✗", code=2)
    assert [e.action for e in store.review_history(match.id)] == ["review_decision_refused"] * 2

    resolve(match.id, "--choice", "link", "--value", a, "--reason", "same 法人, checked by phone")
    resolve(other_match.id, "--choice", "create", "--reason", "a different 山本商店")
    resolve(conflict.id, "--choice", "value", "--value", "03-4000-0000", "--reason", "confirmed with the customer")
    world.hs().companies.update(bad_reg, {"renkei_invoice_registration_number": f"T{YAMADA}"})  # fixed at source
    resolve(items[bad_reg].id, "--choice", "retry")
    resolve(items[bad_zip].id, "--choice", "dismiss", "--reason", "test record, never invoiced")
    assert "not open" in resolve(match.id, "--choice", "create", code=2)  # decided once

    # killed between the new partner and the decision's applied mark: the next run finds it, creates nothing
    mark, killed = store.mark_applied, []

    def kill_once(ids, **kw):
        if (kw.get("details") or {}).get("choice") == "create" and not killed:
            killed.append(ids)
            raise RuntimeError("killed after the create")
        return mark(ids, **kw)

    store.mark_applied = kill_once
    with pytest.raises(RuntimeError, match="killed"):
        customer_sync()
    assert killed and store.erp_id_for("company", y) and store.get_review(other_match.id).applied_at is None
    customer_sync()
    assert store.erp_id_for("company", c) == a  # the pick links the partner (its first sync after the kill) …
    assert company(world, c)["renkei_freee_partner_id"] == a
    assert company(world, s)["phone"] == "03-4000-0000" and partner(world, p)["phone"] == "03-4000-0000"
    assert store.erp_id_for("company", bad_reg)  # … the retried record synced …
    made = store.erp_id_for("company", y)  # … "create new" made a partner of its own, once …
    assert made and partner(world, made)["code"] != "P-YAMAMOTO1" and partner(world, made)["name"] == "山本商店"
    assert [q["name"] for q in partners(world)].count("山本商店") == 1
    for it in (match, conflict, items[bad_reg], other_match):
        assert store.get_review(it.id).applied_at is not None
    assert not store.pending_decisions("customer-sync")
    n_partners = len(partners(world))
    # the dismissed one stays dismissed; the other candidate now asks a person: ignored, it stays ignored
    # (the 山本商店 partners too: their only candidate is linked now)
    left = {r.entity_key: r for r in reviews(world)}
    assert {r.reason_code for r in left.values()} == {"TARGET_ALREADY_MAPPED"} and f"erp:{b}" in left, left
    for other in left.values():
        resolve(other.id, "--choice", "ignore", "--reason", "a different company, no HubSpot record wanted")

    # the next runs change nothing: each decision took effect once
    world.hs().companies.update(s, {"phone": "03-5000-0000"})  # a later edit is a plain change now
    customer_sync(full=True)
    customer_sync()
    assert partner(world, p)["phone"] == "03-5000-0000" and len(partners(world)) == n_partners
    assert not reviews(world)
    applied = [e for e in store.audit_events("review_item") if e.action.startswith("review_decision_appl")]
    assert sorted(int(e.entity_key) for e in applied) == sorted([match.id, conflict.id, items[bad_reg].id,
                                                                 other_match.id])

    # the dismissed record reopens only when it changes
    world.hs().companies.update(bad_zip, {"zip": "98-765"})
    customer_sync()
    (again,) = reviews(world, "INVALID_CRM_COMPANY")
    assert again.entity_key == bad_zip and again.id != items[bad_zip].id
    shown = json.loads(cli("reviews", "show", str(items[bad_zip].id), "--json"))
    assert shown["status"] == "dismissed" and shown["history"][-1]["actor"] == KEIRI


RUNNER_WAITS_FOR = "review-decisions/review-decisions"


def test_the_prefect_form_refuses_invalid_input_and_records_through_the_same_model(world, runner):
    from prefect import resume_flow_run

    from tests.flows.approvals import paused_runs, wait_final, wait_for, wait_state_name

    a = freee_partner(world, "株式会社田中商店", code="P-TANAKA1")
    freee_partner(world, "田中商店株式会社", code="P-TANAKA2")
    c = hs_company(world, "田中商店", zip="100-0001")
    customer_sync()
    (match,) = reviews(world)
    opened = json.loads(cli("reviews", "open-form", str(match.id), "--json"))
    run_id = opened["run_id"]
    assert opened["url"].endswith(f"/runs/flow-run/{run_id}")
    wait_for(lambda: [r for r in paused_runs("renkei-review") if str(r.id) == run_id])

    # the server refuses input outside the form's schema: a choice not offered, an address that is no e-mail
    with pytest.raises(RuntimeError, match="Cannot resume"):
        resume_flow_run(run_id, run_input={"choice": "link:999999", "decided_by": KEIRI, "reason": "", "value": ""})
    with pytest.raises(RuntimeError, match="Cannot resume"):
        resume_flow_run(run_id, run_input={"choice": f"link:{a}", "decided_by": "nobody", "reason": "", "value": ""})
    # the decision rules: ignoring needs a reason — asked again, nothing recorded
    resume_flow_run(run_id, run_input={"choice": "ignore", "decided_by": KEIRI, "reason": "", "value": ""})
    wait_state_name(run_id, {"Suspended", "Paused"}, timeout=60)
    wait_for(lambda: [r for r in paused_runs("renkei-review") if str(r.id) == run_id])
    assert world.rt.store.get_review(match.id).status == "open"

    resume_flow_run(run_id, run_input={"choice": f"link:{a}", "decided_by": KEIRI, "reason": "同じ会社", "value": ""})
    final = wait_final(run_id)
    assert final.state.is_completed(), final.state.message
    item = world.rt.store.get_review(match.id)
    assert item.status == "resolved" and item.decision_data["via"] == "prefect-ui" and item.decided_by == KEIRI
    customer_sync()
    assert world.rt.store.erp_id_for("company", c) == a


def test_retry_decided_in_one_batch_form_is_carried_out_by_every_flow_that_parks_records(world, runner):
    """Three invalid records parked by three flows (a deal by order-to-invoice, a subscription amendment by
    subscription-proration, a bank line by payment-writeback), decided "fixed at source → retry" together in
    one suspended review-decisions run. Each owning flow reads its record again on its next run, once: the
    two fixed records pass, the unfixed bank line is open again with its reason."""
    from prefect import resume_flow_run

    from renkei.flows.order_to_invoice import order_to_invoice
    from renkei.flows.payment_writeback import payment_writeback
    from renkei.flows.subscription_proration import subscription_proration
    from tests.flows.approvals import paused_runs, wait_final, wait_for
    from tests.flows.builders import hs_deal
    from tests.flows.test_payment_writeback import customer, deposit
    from tests.flows.test_subscription_proration import STD, add_advance_account, amend, subscription

    add_advance_account(world)
    # a quantity with more decimals than an invoice line holds: the deal does not map (INVALID_DEAL)
    bad_deal = hs_deal(world, "保留 不正", customer(world, "株式会社山田商事", "ヤマダショウジ", "7010705000725"),
                       [{"name": "作業", "quantity": "1.00001", "price": 1000}], amount=1000)
    sub = subscription(world, "北斗通信", STD, 3)  # runs order-to-invoice: the bad deal is parked too
    subscription_proration(as_of="2026-11-10")
    amend(world, sub, quantity=5)  # no effective date: AMENDMENT_WITHOUT_EFFECTIVE_DATE
    subscription_proration(as_of="2026-11-20")
    bad_line = deposit(world, 12_345, "ﾆｼﾑﾗ ｹﾝｲﾁ")
    world.freee.app.state.store.wallet_txns[int(bad_line)].date = ""  # INVALID_BANK_LINE
    payment_writeback()
    store = world.rt.store
    items = {r.entity_key: r for r in store.list_reviews("open")}
    parked = [items[bad_deal], items[sub], items[bad_line]]
    assert [i.reason_code for i in parked] == ["INVALID_DEAL", "AMENDMENT_WITHOUT_EFFECTIVE_DATE", "INVALID_BANK_LINE"]

    # one form for the three (the choices they share), decided once
    opened = json.loads(cli("reviews", "open-form", *(str(i.id) for i in parked), "--json"))
    run_id = opened["run_id"]
    wait_for(lambda: [r for r in paused_runs("renkei-review") if str(r.id) == run_id])
    resume_flow_run(run_id, run_input={"choice": "retry", "decided_by": KEIRI, "reason": "修正しました", "value": ""})
    assert wait_final(run_id).state.is_completed()
    decided = [store.get_review(i.id) for i in parked]
    assert all(d.status == "resolved" and d.decision == "retry" and d.applied_at is None for d in decided)

    # the deal and the subscription are fixed at source (their line items only); the bank line is not
    (line,) = world.hs().read_associations("deals", "line_items", [bad_deal])[bad_deal]
    world.hs().line_items.update(str(line["toObjectId"]), {"quantity": "1"})
    amend(world, sub, quantity=5, renkei_effective_date="2026-11-16")
    order_to_invoice()
    subscription_proration(as_of="2026-11-20")
    payment_writeback()

    def outcomes(item_id: int) -> list[str]:
        return [e.action for e in store.review_history(item_id) if e.action.startswith("review_decision_")
                and e.action != "review_decision_refused"]

    assert store.ledger_entry(f"invoice:deal:{bad_deal}").status == "committed"
    assert outcomes(parked[0].id) == ["review_decision_passed"] and outcomes(parked[1].id) == ["review_decision_passed"]
    assert outcomes(parked[2].id) == ["review_decision_failed"]
    now = {r.entity_key: r for r in store.list_reviews("open")}
    assert bad_deal not in now and sub not in now
    again = now[bad_line]  # open again, with the reason still there
    assert again.reason_code == "INVALID_BANK_LINE" and again.id != parked[2].id and "date missing" in again.message

    # carried out once: nothing waits for a next run any more (a dismissal of the new item sticks while the
    # line is unchanged: test_payment_writeback_isolation, and the customer-sync test above)
    assert store.pending_decisions() == []
    assert all(store.get_review(i.id).applied_at is not None for i in parked)
