"""payment-writeback against both sandboxes over HTTP, on the session's Prefect server: won deal → invoice →
bank deposit (half-width kana payer, fee deducted) → payment on the freee deal + 支払手数料 → HubSpot status."""

from __future__ import annotations

import time

from renkei.domain.dates import today_tokyo
from renkei.flows.order_to_invoice import order_to_invoice
from renkei.flows.payment_writeback import payment_writeback
from tests.flows.builders import freee_invoices, freee_partner, hs_company, hs_deal
from tests.flows.conftest import write_policy
from renkei.tasks.runtime import get_runtime

BANK = 1  # sandbox みずほ銀行 普通預金
PROPS = ["renkei_payment_status", "renkei_paid_amount", "renkei_paid_at", "renkei_outstanding_amount"]


def customer(world, name: str, kana: str, corp: str) -> str:
    freee_partner(world, name, registration=f"T{corp}", name_kana=kana)
    return hs_company(world, name, renkei_corporate_number=corp, renkei_name_kana=kana)


def deposit(world, amount: int, payer: str, day=None) -> str:
    txn = world.fr().create_wallet_txn({"walletable_type": "bank_account", "walletable_id": BANK,
                                        "entry_side": "income", "amount": amount,
                                        "date": (day or today_tokyo()).isoformat(), "description": payer})
    return str(txn["id"])


def invoice_of(world, total: int) -> dict:
    (inv,) = [i for i in freee_invoices(world) if i["total_amount"] == total]
    return inv


def deal_props(world, deal_id: str) -> dict:
    return world.hs().deals.get(deal_id, properties=PROPS)["properties"]


def freee_deal(world, inv: dict) -> dict:
    return world.fr().get_deal(inv["deal_id"])


def test_deposit_short_by_a_fee_settles_the_invoice_and_the_deal_shows_it(world, monkeypatch):
    write_policy(world.tmp, "[reconciliation]\nauto_apply_partial = true\n", monkeypatch)
    world.rt = get_runtime()
    yamada = customer(world, "株式会社山田商事", "ヤマダショウジ", "7010705000725")
    sato = customer(world, "佐藤物産株式会社", "サトウブッサン", "4011001098993")
    suzuki = customer(world, "株式会社鈴木電機", "スズキデンキ", "7120001168421")
    d_yamada = hs_deal(world, "山田商事 保守", yamada, [{"name": "保守", "quantity": 1, "price": 100_000}])
    d_sato = hs_deal(world, "佐藤物産 導入", sato, [{"name": "導入支援", "quantity": 1, "price": 50_000}])
    d_suzuki = hs_deal(world, "鈴木電機 部品", suzuki, [{"name": "部品", "quantity": 3, "price": 10_000}])
    order_to_invoice()
    inv_y, inv_s, inv_z = invoice_of(world, 110_000), invoice_of(world, 55_000), invoice_of(world, 33_000)
    # 鈴木電機's invoice is past its due date (支払期日 in Asia/Tokyo) and unpaid
    world.freee.app.state.store.deals[inv_z["deal_id"]].due_date = "2026-10-30"

    dep_y = deposit(world, 109_560, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ")  # ¥440 transfer fee deducted by the payer
    dep_s = deposit(world, 20_000, "ｻﾄｳﾌﾞﾂｻﾝ(ｶ")  # partial payment (一部入金), auto-applied by this policy
    deposit(world, 12, "ﾘｿｸ")  # interest: nothing fits

    summary = payment_writeback()

    assert summary["deposits"]["auto_matched"] == 2 and summary["deposits"]["unmatched"] == 1
    deal_y = freee_deal(world, inv_y)
    assert deal_y["status"] == "settled" and deal_y["due_amount"] == 0
    pays = sorted(p["amount"] for p in deal_y["payments"])
    assert pays == [440, 109_560]  # the deposit + the fee settled through the clearing account
    (bank_pay,) = [p for p in deal_y["payments"] if p["amount"] == 109_560]
    assert bank_pay["from_walletable_type"] == "bank_account" and bank_pay["from_walletable_id"] == BANK
    journals = world.fr().list_manual_journals(limit=100)
    (fee_journal,) = journals
    assert fee_journal["ref_number"] == f"RKFEE-{dep_y}"
    debit = [d for d in fee_journal["details"] if d["entry_side"] == "debit"]
    assert [(d["account_item_id"], d["amount"]) for d in debit] == [(6001, 440)]  # 支払手数料
    txn = world.fr()._get(f"/api/1/wallet_txns/{dep_y}")["wallet_txn"]
    assert txn["status"] == 2 and txn["due_amount"] == 0  # the bank line is matched (消込済み)

    today = today_tokyo().isoformat()
    assert deal_props(world, d_yamada) == {**deal_props(world, d_yamada), "renkei_payment_status": "paid",
                                            "renkei_paid_amount": "110000", "renkei_outstanding_amount": "0",
                                            "renkei_paid_at": today}
    p_s = deal_props(world, d_sato)
    assert (p_s["renkei_payment_status"], p_s["renkei_paid_amount"], p_s["renkei_outstanding_amount"]) == \
        ("partial", "20000", "35000")
    p_z = deal_props(world, d_suzuki)
    assert (p_z["renkei_payment_status"], p_z["renkei_outstanding_amount"]) == ("overdue", "33000")
    assert freee_deal(world, inv_s)["due_amount"] == 35_000
    reviews = [r for r in world.rt.store.list_reviews("open", flow="payment-writeback")]
    assert [(r.entity, r.reason_code) for r in reviews] == [("deposit", "DEPOSIT_UNMATCHED")]
    assert "NO_CANDIDATE" in reviews[0].payload["reasons"]
    entry = world.rt.store.ledger_entry(f"payment:deposit:{dep_y}")
    assert entry.status == "committed" and entry.result["fee"] == 440
    actions = {e.action for e in world.rt.store.audit_events("deposit")}
    assert {"apply", "fee_journal"} <= actions

    # rerun: nothing new in freee, nothing written to HubSpot
    payments_before = {i["id"]: len(freee_deal(world, i).get("payments") or []) for i in (inv_y, inv_s, inv_z)}
    again = payment_writeback()
    assert "erp" not in again and again.get("crm", {}).get("updated", 0) == 0
    assert {i["id"]: len(freee_deal(world, i).get("payments") or []) for i in (inv_y, inv_s, inv_z)} == payments_before
    assert len(world.fr().list_manual_journals(limit=100)) == 1
    assert len(world.rt.store.list_reviews("open", flow="payment-writeback")) == 1  # the same item, not a second


def test_crash_after_the_payment_then_rerun_converges_without_a_second_payment(world, monkeypatch):
    yamada = customer(world, "株式会社山田商事", "ヤマダショウジ", "7010705000725")
    d_yamada = hs_deal(world, "山田商事 保守", yamada, [{"name": "保守", "quantity": 1, "price": 100_000}])
    order_to_invoice()
    inv = invoice_of(world, 110_000)
    dep = deposit(world, 109_560, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ")

    monkeypatch.setenv("RENKEI_TEST_CRASH_AFTER_PAYMENT", dep)
    state = payment_writeback(lease_seconds=1, return_state=True)
    assert state.is_failed()
    deal = freee_deal(world, inv)
    assert [p["amount"] for p in deal["payments"]] == [109_560] and deal["due_amount"] == 440  # half done
    assert world.rt.store.ledger_entry(f"payment:deposit:{dep}").status == "claimed"
    assert world.rt.store.get_cursor("payment-writeback:freee-deposits") is None
    monkeypatch.delenv("RENKEI_TEST_CRASH_AFTER_PAYMENT")

    time.sleep(1.2)  # the crashed worker's lease runs out
    summary = payment_writeback(lease_seconds=1)
    assert summary["deposits"]["resumed"] == 1
    deal = freee_deal(world, inv)
    assert sorted(p["amount"] for p in deal["payments"]) == [440, 109_560] and deal["status"] == "settled"
    assert len(world.fr().list_manual_journals(limit=100)) == 1
    entry = world.rt.store.ledger_entry(f"payment:deposit:{dep}")
    assert entry.status == "committed" and entry.attempts == 2
    assert deal_props(world, d_yamada)["renkei_payment_status"] == "paid"

    payment_writeback(lease_seconds=1)
    assert len(freee_deal(world, inv)["payments"]) == 2
    assert len(world.fr().list_manual_journals(limit=100)) == 1


def test_payment_props_and_policy_mapping():
    from datetime import date

    from renkei.policy import load_policy
    from renkei.tasks.payments import engine_policy, payment_props

    from renkei.connectors.freee.money_ops import deal_to_receivable

    today = date(2026, 11, 25)
    open_deal = {"id": 1, "amount": 55_000, "due_amount": 55_000, "status": "unsettled", "due_date": "2026-11-30"}
    late = {**open_deal, "id": 2, "due_date": "2026-11-24"}
    part = {**open_deal, "id": 3, "due_amount": 35_000, "payments": [{"id": 9, "date": "2026-11-20", "amount": 20_000}]}
    paid = {**open_deal, "id": 4, "due_amount": 0, "status": "settled",
            "payments": [{"id": 7, "date": "2026-11-21", "amount": 54_560}, {"id": 8, "date": "2026-11-21", "amount": 440}]}
    open_deal, late, part, paid = (deal_to_receivable(d) for d in (open_deal, late, part, paid))
    assert payment_props([open_deal], today)["renkei_payment_status"] == "unpaid"
    assert payment_props([late], today)["renkei_payment_status"] == "overdue"  # 支払期日 passed (Asia/Tokyo)
    assert payment_props([part], today) == {"renkei_payment_status": "partial", "renkei_paid_amount": "20000",
                                            "renkei_outstanding_amount": "35000", "renkei_paid_at": "2026-11-20"}
    assert payment_props([paid], today) == {"renkei_payment_status": "paid", "renkei_paid_amount": "55000",
                                            "renkei_outstanding_amount": "0", "renkei_paid_at": "2026-11-21"}
    assert payment_props([paid, late], today)["renkei_payment_status"] == "overdue"  # one HubSpot deal, 2 invoices

    class _Rt:
        policy = load_policy()

    p = engine_policy(_Rt())
    assert p.fee_max == 1100 and 440 in p.fee_whitelist and 605 in p.fee_whitelist
    assert p.max_invoices_per_payment == 5 and not p.auto_apply_partial and p.auto_apply_threshold == 0.9


def test_one_deposit_paying_two_invoices_less_a_fee(world):
    takahashi = customer(world, "株式会社高橋食品", "タカハシショクヒン", "1180301018771")
    d1 = hs_deal(world, "高橋食品 10月", takahashi, [{"name": "食品", "quantity": 1, "price": 20_000}])
    d2 = hs_deal(world, "高橋食品 11月", takahashi, [{"name": "食品", "quantity": 1, "price": 30_000}])
    order_to_invoice()
    i1, i2 = invoice_of(world, 22_000), invoice_of(world, 33_000)
    dep = deposit(world, 54_560, "ﾀｶﾊｼｼﾖｸﾋﾝ(ｶ")  # まとめ入金 less ¥440

    summary = payment_writeback()

    assert summary["deposits"]["auto_matched"] == 1
    assert [p["amount"] for p in freee_deal(world, i1)["payments"]] == [22_000]
    assert sorted(p["amount"] for p in freee_deal(world, i2)["payments"]) == [440, 32_560]  # fee on the larger
    assert all(freee_deal(world, i)["status"] == "settled" for i in (i1, i2))
    assert world.fr()._get(f"/api/1/wallet_txns/{dep}")["wallet_txn"]["status"] == 2
    assert {deal_props(world, d)["renkei_payment_status"] for d in (d1, d2)} == {"paid"}
    (journal,) = world.fr().list_manual_journals(limit=100)
    assert sum(d["amount"] for d in journal["details"] if d["entry_side"] == "debit") == 440
