"""payment-writeback under hostile bank lines, implausible dates and a kill before HubSpot is told
(issue #11, classes 3, 4 and 8) — both sandboxes over HTTP, the session's Prefect server."""

from __future__ import annotations

from datetime import date

from renkei.domain.dates import today_tokyo
from renkei.flows.order_to_invoice import order_to_invoice
from renkei.flows.payment_writeback import CURSOR, payment_writeback
from tests.flows.builders import hs_deal
from tests.flows.test_payment_writeback import customer, deal_props, deposit, freee_deal, invoice_of

PRICES = [10_000, 20_000, 30_000, 40_000, 50_000]  # invoices of ¥11,000 … ¥55,000 (10% tax)


def two_customers_with_five_invoices_each(world) -> dict[int, tuple[str, str]]:
    """total → (HubSpot deal id, payer name as the bank prints it)."""
    yamada = customer(world, "株式会社山田商事", "ヤマダショウジ", "7010705000725")
    sato = customer(world, "佐藤物産株式会社", "サトウブッサン", "4011001098993")
    out = {}
    for company, payer, extra in ((yamada, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", 0), (sato, "ｻﾄｳﾌﾞﾂｻﾝ(ｶ", 1_000)):
        for price in PRICES:
            deal = hs_deal(world, f"{payer} {price}", company, [{"name": "保守", "quantity": 1, "price": price + extra}])
            out[(price + extra) * 11 // 10] = (deal, payer)
    order_to_invoice()
    return out


def open_reviews(world, reason: str | None = None) -> list:
    return [r for r in world.rt.store.list_reviews("open", flow="payment-writeback")
            if reason is None or r.reason_code == reason]


def test_hostile_bank_lines_never_stop_the_page(world):
    invoices = two_customers_with_five_invoices_each(world)
    totals = sorted(invoices)
    # ten legitimate deposits; five of them with descriptions a bank or a payer really produces
    variants = [lambda p: p[:3] + "\t" + p[3:],  # tab
                lambda p: p + "\n",  # newline
                lambda p: p[:3] + "\x07" + p[3:],  # control character
                lambda p: p + " 🙏",  # emoji
                lambda p: p + " " * 150 + "\u3000" * 150]  # 300+ characters (a padded fixed-width record)
    hostile_names = {totals[i]: v(invoices[totals[i]][1]) for i, v in enumerate(variants)}
    legit = {total: deposit(world, total, hostile_names.get(total, invoices[total][1])) for total in totals}
    # lines that cannot become a deposit at all: no date, an amount that is not whole yen
    store = world.freee.app.state.store
    no_date = deposit(world, 12_345, "ﾆｼﾑﾗ ｹﾝｲﾁ")
    store.wallet_txns[int(no_date)].date = ""
    fractional = deposit(world, 23_456, "ﾆｼﾑﾗ ｹﾝｲﾁ")
    store.wallet_txns[int(fractional)].due_amount = 23_456.5
    # implausible dates (class 8): far in the past (read first, its amount fits an open invoice) and far ahead
    sato_payer = invoices[totals[7]][1]
    ancient = deposit(world, totals[7], sato_payer, day=date(1900, 1, 1))
    future = deposit(world, 99_990, sato_payer, day=date(2100, 1, 1))

    state = payment_writeback(return_state=True)
    assert state.is_completed()
    summary = state.result()
    assert summary["deposits"]["auto_matched"] == 10  # every legitimate deposit
    for total in totals:
        deal = freee_deal(world, invoice_of(world, total))
        assert deal["status"] == "settled" and len(deal["payments"]) == 1, total
        assert world.rt.store.ledger_entry(f"payment:deposit:{legit[total]}").status == "committed"
    # the deposits dated 1900 / 2100 are not applied: one DATE_OUT_OF_RANGE item each
    assert {r.entity_key for r in open_reviews(world, "DATE_OUT_OF_RANGE")} == {ancient, future}
    assert world.rt.store.ledger_entry(f"payment:deposit:{ancient}") is None
    # the unreadable lines: exactly one INVALID_BANK_LINE item each, with the reason, without the raw values
    invalid = {r.entity_key: r for r in open_reviews(world, "INVALID_BANK_LINE")}
    assert set(invalid) == {no_date, fractional}
    assert "date missing" in invalid[no_date].message and "not whole yen" in invalid[fractional].message
    assert all("ﾆｼﾑﾗ" not in r.message + str(r.payload) for r in invalid.values())
    # the cursor moved past the page — but not to 2100
    assert world.rt.store.get_cursor(CURSOR) == today_tokyo().isoformat()
    assert deal_props(world, invoices[totals[0]][0])["renkei_payment_status"] == "paid"

    again = payment_writeback()
    assert "erp" not in again and again.get("crm", {}).get("updated", 0) == 0
    reasons = sorted((r.reason_code, r.entity_key) for r in open_reviews(world))
    assert reasons == sorted([("DATE_OUT_OF_RANGE", ancient), ("DATE_OUT_OF_RANGE", future),
                              ("INVALID_BANK_LINE", no_date), ("INVALID_BANK_LINE", fractional)])

    # finance corrects the 2100 line's date in freee: the next run decides it (no invoice of that
    # amount is open: it waits for a person as any other deposit would) and closes its date item
    store.wallet_txns[int(future)].date = today_tokyo().isoformat()
    payment_writeback(start_approvals=False)
    assert {r.entity_key for r in open_reviews(world, "DATE_OUT_OF_RANGE")} == {ancient}
    assert [r.reason_code for r in open_reviews(world) if r.entity_key == future][0].startswith("DEPOSIT_")

    # a person dismisses the unreadable line: it is left alone from then on
    item = invalid[no_date]
    world.rt.store.decide_review(item.id, decision="dismiss", decided_by="keiri@example.co.jp", status="dismissed")
    payment_writeback()
    assert {r.entity_key for r in open_reviews(world, "INVALID_BANK_LINE")} == {fractional}


def test_killed_after_the_ledger_commit_the_next_run_tells_hubspot(world, monkeypatch):
    invoices = two_customers_with_five_invoices_each(world)
    totals = sorted(invoices)
    deps = {total: deposit(world, total, invoices[total][1]) for total in totals[:4]}
    killed = deps[totals[1]]

    monkeypatch.setenv("RENKEI_TEST_CRASH_AFTER_COMMIT", killed)
    state = payment_writeback(return_state=True)
    assert state.is_failed()
    monkeypatch.delenv("RENKEI_TEST_CRASH_AFTER_COMMIT")
    # freee and the ledger committed; HubSpot was never told
    assert freee_deal(world, invoice_of(world, totals[1]))["status"] == "settled"
    entry = world.rt.store.ledger_entry(f"payment:deposit:{killed}")
    assert entry.status == "committed" and entry.writeback == "pending"
    assert deal_props(world, invoices[totals[1]][0]).get("renkei_payment_status") in (None, "", "unpaid")

    summary = payment_writeback()
    # freee shows the first two bank lines as matched (no longer read), yet their write-back is delivered
    # from the committed ledger entries: four applications, two of them from the killed run
    assert summary["deposits"] == {"auto_matched": 2} and summary["crm"]["outbox_delivered"] == 4
    for total in totals[:4]:
        assert deal_props(world, invoices[total][0])["renkei_payment_status"] == "paid", total
        entry = world.rt.store.ledger_entry(f"payment:deposit:{deps[total]}")
        assert entry.status == "committed" and entry.writeback == "done"
    assert deal_props(world, invoices[totals[5]][0])["renkei_payment_status"] == "unpaid"
    audit = [e for e in world.rt.store.audit_events("deal", invoices[totals[1]][0]) if e.action == "payment_status"]
    assert [e.changes["renkei_payment_status"] for e in audit][-1] == "paid"

    # nothing is written twice
    again = payment_writeback()
    assert again.get("crm", {}).get("updated", 0) == 0 and again.get("crm", {}).get("outbox_delivered", 0) == 0
    audit_again = [e for e in world.rt.store.audit_events("deal", invoices[totals[1]][0])
                   if e.action == "payment_status"]
    assert len(audit_again) == len(audit)


def test_an_unexpected_error_on_one_deposit_is_one_review_item_and_the_batch_goes_on(world):
    import time

    invoices = two_customers_with_five_invoices_each(world)
    totals = sorted(invoices)
    # freee lost its 支払手数料 account: the deposit short by a fee cannot be booked, the others can
    fees = world.freee.app.state.store.account_items[6001]
    fees.name = "支払手数料(旧)"
    short = deposit(world, totals[0] - 440, invoices[totals[0]][1])
    others = [deposit(world, total, invoices[total][1]) for total in totals[1:4]]

    state = payment_writeback(lease_seconds=1, return_state=True)
    assert state.is_completed()
    summary = state.result()
    assert summary["deposits"]["auto_matched"] == 3 and summary["deposits"]["failed"] == 1
    (item,) = open_reviews(world)
    assert (item.reason_code, item.entity_key) == ("DEPOSIT_FAILED", short) and "ValueError" in item.message
    assert all(world.rt.store.ledger_entry(f"payment:deposit:{d}").status == "committed" for d in others)

    fees.name = "支払手数料"  # fixed in freee: the next run finishes the stored plan and closes the item
    time.sleep(1.2)
    summary = payment_writeback(lease_seconds=1)
    assert summary["deposits"]["resumed"] == 1 and open_reviews(world) == []
    deal = freee_deal(world, invoice_of(world, totals[0]))
    assert deal["status"] == "settled" and sorted(p["amount"] for p in deal["payments"]) == [440, totals[0] - 440]
    assert deal_props(world, invoices[totals[0]][0])["renkei_payment_status"] == "paid"
