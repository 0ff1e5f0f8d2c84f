"""payment-writeback on an ERP without bank lines (``bank_lines`` False, ``payment_status`` True, as Money
Forward クラウド請求書): nothing is matched; the invoices' payment status as the ERP records it reaches the CRM
deal through the same write path. Run on freee with the bank-line path switched off."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from renkei.flows.order_to_invoice import order_to_invoice
from renkei.flows.payment_writeback import payment_writeback
from renkei.tasks.runtime import get_runtime
from tests.flows.builders import hs_deal
from tests.flows.test_payment_writeback import customer, deal_props, deposit, freee_deal, invoice_of


def test_without_bank_lines_the_erp_payment_status_reaches_the_crm(world, monkeypatch):
    world.rt = get_runtime()
    erp = world.rt.erp
    monkeypatch.setattr(erp, "capabilities", replace(erp.capabilities, bank_lines=False))
    yamada = customer(world, "株式会社山田商事", "ヤマダショウジ", "7010705000725")
    sato = customer(world, "佐藤物産株式会社", "サトウブッサン", "4011001098993")
    d_yamada = hs_deal(world, "山田商事 保守", yamada, [{"name": "保守", "quantity": 1, "price": 100_000}])
    d_sato = hs_deal(world, "佐藤物産 導入", sato, [{"name": "導入支援", "quantity": 1, "price": 50_000}])
    order_to_invoice()
    inv_y, inv_s = invoice_of(world, 110_000), invoice_of(world, 55_000)
    line = deposit(world, 110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ")  # a bank line: not Renkei's to match on this path

    first = payment_writeback()
    assert "deposits" not in first
    assert deal_props(world, d_yamada)["renkei_payment_status"] == "unpaid"
    assert deal_props(world, d_sato)["renkei_outstanding_amount"] == "55000"

    # finance records the payments in the ERP (the ERP knows what is paid)
    bank = next(a for a in erp.money_accounts() if a.kind == "bank")
    erp.add_receivable_payment(str(inv_y["deal_id"]), day=date(2026, 11, 20), amount=110_000, account=bank)
    erp.add_receivable_payment(str(inv_s["deal_id"]), day=date(2026, 11, 21), amount=20_000, account=bank)
    second = payment_writeback()
    assert second["crm"]["updated"] == 2
    assert deal_props(world, d_yamada).items() >= {"renkei_payment_status": "paid", "renkei_paid_amount": "110000",
                                                   "renkei_outstanding_amount": "0",
                                                   "renkei_paid_at": "2026-11-20"}.items()
    assert deal_props(world, d_sato).items() >= {"renkei_payment_status": "partial", "renkei_paid_amount": "20000",
                                                 "renkei_outstanding_amount": "35000",
                                                 "renkei_paid_at": "2026-11-21"}.items()
    # Renkei recorded nothing in the ERP and left the bank line alone
    assert len(freee_deal(world, inv_y)["payments"]) == 1 and len(freee_deal(world, inv_s)["payments"]) == 1
    assert world.fr()._get(f"/api/1/wallet_txns/{line}")["wallet_txn"]["status"] == 1

    # a rerun writes nothing (the watermark moved; open invoices are compared with what the CRM shows)
    third = payment_writeback()
    assert third.get("crm", {}).get("updated", 0) == 0
