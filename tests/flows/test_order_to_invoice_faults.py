"""order-to-invoice under crashes, the clock and hostile input (issue #11, invoice side), against both
sandboxes over HTTP on the session's Prefect server."""

from __future__ import annotations

import time
from datetime import date


from renkei.flows.order_to_invoice import FLOW, order_to_invoice
from tests.flows.builders import freee_invoices, freee_partner, hs_company, hs_deal

PROPS = ["renkei_invoice_id", "renkei_invoice_number", "renkei_invoice_status", "renkei_invoiced_at"]


def _props(world, deal_id: str) -> dict:
    return world.hs().deals.get(deal_id, properties=PROPS)["properties"]


def _open(world) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in world.rt.store.list_reviews("open", flow=FLOW):
        out.setdefault(r.entity_key, []).append(r.reason_code)
    return out


def _set_tokyo_date(monkeypatch, day: date) -> None:
    """Move the business date ("today" in Asia/Tokyo) the flow's steps read."""
    import renkei.tasks.order_to_invoice_steps as oti
    import renkei.tasks.invoicing as inv

    monkeypatch.setattr(oti, "today_tokyo", lambda: day)
    monkeypatch.setattr(inv, "today_tokyo", lambda now=None: day)


def _customer(world, name="株式会社深夜商事", number="4011001098993"):
    freee_partner(world, name, registration=f"T{number}")
    return hs_company(world, name, renkei_corporate_number=number)


# ---- class 1: recovery across JST midnight -------------------------------------------------------------

def test_recovery_on_the_next_tokyo_day_finds_the_first_invoice(world, monkeypatch):
    company = _customer(world)
    deal = hs_deal(world, "深夜商事 11月分", company, [{"name": "保守", "quantity": 1, "price": 80_000}])
    _set_tokyo_date(monkeypatch, date(2026, 11, 30))  # 23:59 JST on the last day of the month
    monkeypatch.setenv("RENKEI_TEST_CRASH_AFTER_INVOICE", deal)
    assert order_to_invoice(lease_seconds=1, return_state=True).is_failed()
    (first,) = freee_invoices(world)
    assert first["billing_date"] == "2026-11-30"
    claim = world.rt.store.ledger_entry(f"invoice:deal:{deal}")
    assert claim.status == "claimed" and claim.result["sent"]["issue_date"] == "2026-11-30"  # the draft is in the claim

    monkeypatch.delenv("RENKEI_TEST_CRASH_AFTER_INVOICE")
    _set_tokyo_date(monkeypatch, date(2026, 12, 1))  # recovery after midnight: a re-draft would bill 12-01
    time.sleep(1.2)  # the crashed worker's lease expires
    order_to_invoice(lease_seconds=1)

    (inv,) = freee_invoices(world)  # exactly one invoice
    assert inv["id"] == first["id"]
    entry = world.rt.store.ledger_entry(f"invoice:deal:{deal}")
    assert entry.status == "committed" and entry.external_id == str(inv["id"]) and entry.attempts == 2
    assert entry.result["issue_date"] == "2026-11-30"
    assert _props(world, deal)["renkei_invoice_id"] == str(inv["id"])


def test_an_interrupted_invoice_is_finished_even_if_the_deal_changed_since(world, monkeypatch):
    """The deal was edited (now it needs approval) between the crash and the recovery: the invoice freee
    already has is committed and shown; no approval is asked for a deal that is already invoiced."""
    company = _customer(world, "株式会社途中変更", "7120001168421")
    deal = hs_deal(world, "途中変更", company, [{"name": "保守", "quantity": 1, "price": 50_000}])
    monkeypatch.setenv("RENKEI_TEST_CRASH_AFTER_INVOICE", deal)
    assert order_to_invoice(lease_seconds=1, return_state=True).is_failed()
    monkeypatch.delenv("RENKEI_TEST_CRASH_AFTER_INVOICE")
    world.hs().deals.update(deal, {"amount": "99999"})  # now AMOUNT_MISMATCH
    time.sleep(1.2)
    assert order_to_invoice(lease_seconds=1, start_approvals=False, return_state=True).is_completed()
    (inv,) = freee_invoices(world)
    entry = world.rt.store.ledger_entry(f"invoice:deal:{deal}")
    assert entry.status == "committed" and entry.external_id == str(inv["id"])
    assert _props(world, deal)["renkei_invoice_status"] == "created"
    assert deal not in _open(world)


def test_reference_lookup_does_not_depend_on_the_billing_date(world):
    """The recovery lookup (``around``) finds an invoice billed on another day: partner-wide, all pages."""
    from renkei.tasks.invoicing import draft_invoice, customer_for

    company = _customer(world, "株式会社日付違い", "7010705000725")
    deal_id = hs_deal(world, "日付違い", company, [{"name": "作業", "quantity": 1, "price": 1000}])
    from renkei.tasks.customers import ensure_partners
    from renkei.tasks.reporting import RunReport

    partner = ensure_partners(world.rt, [company], RunReport("t"))[company]
    (deal,) = [r.value for r in world.rt.crm.get_deals([deal_id])]
    draft = draft_invoice(world.rt, deal, customer_for(world.rt, partner, None), today=date(2026, 11, 30))
    made = world.rt.erp.create_invoice(draft.invoice.model_copy(update={"number": "T-0"}))  # 手動採番 company
    for i in range(3):  # other invoices of the same partner, so the match is not simply "the only one"
        other = draft.invoice.model_copy(update={"reference": f"renkei:deal:other{i}", "number": f"T-{i + 1}"})
        world.rt.erp.create_invoice(other)
    found = world.rt.erp.find_invoice_by_reference(draft.invoice.reference, partner_erp_id=partner,
                                                   around=date(2026, 12, 1))
    assert found is not None and found.erp_id == made.erp_id
    assert world.rt.erp.find_invoice_by_reference(draft.invoice.reference, partner_erp_id=partner,
                                                  issue_date=date(2026, 12, 1)) is None  # the old, dated lookup


# ---- class 2: parked deals are not silently closed -------------------------------------------------------

def test_parked_deals_stay_one_open_item_until_fixed_at_source(world):
    company = _customer(world, "株式会社保留商事", "7120001168421")
    no_company = hs_deal(world, "保留 会社なし", None, [{"name": "作業", "quantity": 1, "price": 1000}])
    # a quantity with more decimals than an invoice line holds: the deal does not map (INVALID_DEAL)
    invalid = hs_deal(world, "保留 不正", company, [{"name": "作業", "quantity": "1.00001", "price": 1000}],
                      amount=1000)
    # two freee partners of the same name and a HubSpot company without a corporate number: no safe link
    freee_partner(world, "株式会社同名商店")
    freee_partner(world, "㈱同名商店", email="other@example.co.jp")
    ambiguous = hs_company(world, "株式会社同名商店")
    not_linked = hs_deal(world, "保留 未連携", ambiguous, [{"name": "作業", "quantity": 1, "price": 1000}])

    for _ in range(3):
        state = order_to_invoice(start_approvals=False, return_state=True)
        assert state.is_completed()
        reviews = _open(world)
        assert reviews.get(no_company) == ["NO_COMPANY"]
        assert reviews.get(not_linked) == ["COMPANY_NOT_LINKED"]
        assert reviews.get(invalid) == ["INVALID_DEAL"]
        assert freee_invoices(world) == []

    # fixed at source: the company is associated, the person links the partner
    world.hs().associate_default("deals", no_company, "companies", company)
    (line,) = world.hs().read_associations("deals", "line_items", [invalid])[invalid]
    world.hs().line_items.update(str(line["toObjectId"]), {"quantity": "1"})
    partners = [p for p in world.fr().list_partners(limit=100) if "同名商店" in p["name"]]
    world.rt.store.link("company", ambiguous, str(partners[0]["id"]))
    order_to_invoice(start_approvals=False)
    reviews = _open(world)
    assert no_company not in reviews and not_linked not in reviews and invalid not in reviews
    assert len(freee_invoices(world)) == 3
    closed = {r.entity_key: r for r in world.rt.store.list_reviews("resolved", flow=FLOW)}
    assert all(closed[d].comment == "passed on retry" for d in (no_company, not_linked, invalid))


# ---- class 3: one hostile line never fails the page --------------------------------------------------------

def test_a_hostile_line_is_one_review_item_and_the_page_goes_on(world, monkeypatch):
    company = _customer(world, "株式会社敵対入力", "4011001098993")
    hostile = hs_deal(world, "敵対 値引超過", company,
                      [{"name": "部品", "quantity": 1, "price": 1000, "discount": 1500}], amount=0)
    clean = [hs_deal(world, f"敵対 通常 {i}", company, [{"name": "部品", "quantity": 1, "price": 1000 + i}])
             for i in range(3)]
    # and one deal whose processing raises something unexpected (a bug, a broken record)
    broken = hs_deal(world, "敵対 例外", company, [{"name": "部品", "quantity": 1, "price": 777}])
    import renkei.tasks.invoicing as inv
    import renkei.tasks.order_to_invoice_steps as oti

    real = inv.draft_invoice

    def flaky(rt, deal, customer, **kw):
        if deal.crm_id == broken:
            raise KeyError("boom: unexpected")
        return real(rt, deal, customer, **kw)

    monkeypatch.setattr(oti, "draft_invoice", flaky)
    state = order_to_invoice(start_approvals=False, return_state=True)
    assert state.is_completed()
    invoices = freee_invoices(world)
    assert len(invoices) == 3
    for d in clean:  # HubSpot was told about every invoice of the page
        assert _props(world, d)["renkei_invoice_status"] == "created"
    reviews = _open(world)
    assert reviews[hostile] == ["NEGATIVE_LINE_AMOUNT"]
    assert reviews[broken] == ["DEAL_PROCESSING_ERROR"]
    item = next(r for r in world.rt.store.list_reviews("open", flow=FLOW) if r.entity_key == broken)
    assert "KeyError" in item.message

    order_to_invoice(start_approvals=False)  # still broken: still exactly one item
    assert _open(world)[broken] == ["DEAL_PROCESSING_ERROR"]
    monkeypatch.setattr(oti, "draft_invoice", real)  # fixed: the retry invoices it and closes the item
    order_to_invoice(start_approvals=False)
    assert broken not in _open(world)
    assert len(freee_invoices(world)) == 4


# ---- class 4: CRM write-backs are an outbox ------------------------------------------------------------

def test_a_kill_between_the_ledger_commit_and_the_crm_write_loses_nothing(world, monkeypatch):
    company = _customer(world, "株式会社送信箱", "7010705000725")
    deals = [hs_deal(world, f"送信箱 {i}", company, [{"name": "作業", "quantity": 1, "price": 2000 + i}])
             for i in range(3)]
    monkeypatch.setenv("RENKEI_TEST_KILL_BEFORE_WRITEBACK", "1")
    assert order_to_invoice(return_state=True).is_failed()
    assert len(freee_invoices(world)) == 3
    for d in deals:
        assert world.rt.store.ledger_entry(f"invoice:deal:{d}").writeback == "pending"
        assert not _props(world, d).get("renkei_invoice_id")
    monkeypatch.delenv("RENKEI_TEST_KILL_BEFORE_WRITEBACK")

    writes: list[str] = []
    real = world.rt.crm.update_deal_properties

    def counting(updates):
        writes.extend(updates)
        return real(updates)

    monkeypatch.setattr(world.rt.crm, "update_deal_properties", counting)
    order_to_invoice()
    by_id = {str(i["id"]): i for i in freee_invoices(world)}
    for d in deals:
        props = _props(world, d)
        assert props["renkei_invoice_status"] == "created" and props["renkei_invoice_id"] in by_id
        assert world.rt.store.ledger_entry(f"invoice:deal:{d}").writeback == "done"
    order_to_invoice()  # nothing left to write
    assert sorted(writes) == sorted(deals)  # each deal written exactly once
    assert len(freee_invoices(world)) == 3


# ---- class 7: held work is reported ---------------------------------------------------------------------

def test_a_run_says_which_deals_another_live_run_holds(world):
    company = _customer(world, "株式会社保持中", "7120001168421")
    held = hs_deal(world, "保持中 A", company, [{"name": "作業", "quantity": 1, "price": 3000}])
    free = hs_deal(world, "保持中 B", company, [{"name": "作業", "quantity": 1, "price": 4000}])
    world.rt.store.claim(f"invoice:deal:{held}", "order-to-invoice:another-live-run", lease_seconds=3600)
    summary = order_to_invoice()
    assert summary["renkei"]["held_by_other_run"] == 1
    assert summary["erp"]["created"] == 1
    assert _props(world, free)["renkei_invoice_status"] == "created"


# ---- class 8: implausible deals go to review ----------------------------------------------------------

def test_implausible_deals_go_to_review_instead_of_freee(world, monkeypatch):
    _set_tokyo_date(monkeypatch, date(2026, 12, 5))
    company = _customer(world, "株式会社妥当性", "4011001098993")
    old = hs_deal(world, "妥当性 1900年", company, [{"name": "作業", "quantity": 1, "price": 1000}],
                  closedate="1900-01-01T00:00:00.000Z")
    future = hs_deal(world, "妥当性 2100年", company, [{"name": "作業", "quantity": 1, "price": 1000}],
                     closedate="2100-01-01T00:00:00.000Z")
    zero = hs_deal(world, "妥当性 無償", company, [{"name": "サンプル", "quantity": 1, "price": 0}], amount=0)
    markup = hs_deal(world, "<script>alert(1)</script> 特価", company,
                     [{"name": "作業", "quantity": 1, "price": 1000}])
    ok = hs_deal(world, "妥当性 通常", company, [{"name": "作業", "quantity": 1, "price": 1000}])
    assert order_to_invoice(start_approvals=False, return_state=True).is_completed()
    reviews = _open(world)
    assert reviews[old] == ["DATE_OUT_OF_RANGE"]
    assert reviews[future] == ["DATE_OUT_OF_RANGE"]
    assert reviews[zero] == ["ZERO_OR_NEGATIVE_TOTAL"]
    assert reviews[markup] == ["MARKUP_IN_TEXT"]
    assert ok not in reviews
    assert len(freee_invoices(world)) == 1
    for d in (old, future, zero, markup):
        assert _props(world, d)["renkei_invoice_status"] == "pending_approval"


# ---- class 5: the review item exists before the approval run ---------------------------------------------

def test_a_kill_right_after_starting_the_approval_run_keeps_its_review_item(world, runner, monkeypatch):
    from tests.flows.approvals import wait_paused

    company = _customer(world, "株式会社承認前", "7120001168421")
    big = hs_deal(world, "承認前 大型", company, [{"name": "設備", "quantity": 1, "price": 9_000_000}])
    from datetime import datetime, timezone

    started = datetime.now(timezone.utc)
    monkeypatch.setenv("RENKEI_TEST_CRASH_AFTER_APPROVAL_START", big)
    assert order_to_invoice(lease_seconds=1, return_state=True).is_failed()
    (item,) = [r for r in world.rt.store.list_reviews("open", flow=FLOW) if r.entity_key == big]
    assert item.reason_code == "AMOUNT_OVER_THRESHOLD"
    (run,) = [r for r in wait_paused(1) if r.parameters.get("deal_id") == big and r.created >= started]

    monkeypatch.delenv("RENKEI_TEST_CRASH_AFTER_APPROVAL_START")
    time.sleep(1.2)  # the dead run's approval claim expires; the rerun finds the run by its reference tag
    assert order_to_invoice(lease_seconds=1, return_state=True).is_completed()
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with get_client(sync_client=True) as client:  # any state: no second approval run was started
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["renkei-approval"])))
    assert [r.id for r in runs if r.parameters.get("deal_id") == big and r.created >= started] == [run.id]
    (item,) = [r for r in world.rt.store.list_reviews("open", flow=FLOW) if r.entity_key == big]
    assert item.payload["approval_run"] == str(run.id)
    assert _props(world, big)["renkei_invoice_status"] == "pending_approval"
    assert freee_invoices(world) == []
    with get_client(sync_client=True) as client:  # leave no paused run behind for the session's other tests
        client.delete_flow_run(run.id)
