"""Payment notices (``POST /inbound/payment``) in payment-writeback, against both sandboxes: a notice is kept,
closed against the reconciled bank line that is its money, never pays anything in freee itself, and one no line
matched in time becomes one PAYMENT_NOTICE_UNMATCHED review item (an individual payer masked)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from renkei.domain.dates import today_tokyo
from renkei.flows.order_to_invoice import order_to_invoice
from renkei.flows.payment_writeback import payment_writeback
from renkei.store.payment_notices import NoticeStore
from renkei.tasks.payment_notices import notice_rules, settle_notices
from renkei.tasks.reporting import RunReport
from renkei.webhooks.app import Receiver
from renkei.webhooks.emit import ListEmitter
from renkei.webhooks.ledger import Ledger
from renkei.webhooks.signature import inbound_signature
from tests.flows.builders import hs_deal
from tests.flows.test_payment_writeback import customer, deposit, freee_deal, invoice_of

SECRET = "inbound-shared-secret"


def _notify(receiver: Receiver, key: str, **body) -> dict:
    raw = json.dumps({"id": key, **body}).encode()
    ts = str(int(time.time()))
    status, out = receiver.inbound("payment", raw, {"x-renkei-signature": inbound_signature(SECRET, ts, raw),
                                                    "x-renkei-timestamp": ts})
    assert status == 200, out
    return out


def _two_invoiced_customers(world) -> tuple[dict, dict]:
    """佐藤物産 (¥55,000) and 鈴木電機 (¥33,000), each with one invoice in freee."""
    sato = customer(world, "佐藤物産株式会社", "サトウブッサン", "4011001098993")
    suzuki = customer(world, "株式会社鈴木電機", "スズキデンキ", "7120001168421")
    hs_deal(world, "佐藤物産 導入", sato, [{"name": "導入支援", "quantity": 1, "price": 50_000}])
    hs_deal(world, "鈴木電機 部品", suzuki, [{"name": "部品", "quantity": 3, "price": 10_000}])
    order_to_invoice()
    inv_s, inv_z = invoice_of(world, 55_000), invoice_of(world, 33_000)
    return inv_s, inv_z


def test_notices_closed_by_reconciled_lines_and_unmatched_ones_go_to_finance(world):
    inv_s, inv_z = _two_invoiced_customers(world)
    today = today_tokyo()
    receiver = Receiver(ledger=Ledger(world.rt.store.engine), emitter=ListEmitter(), inbound_secret=SECRET)

    # 佐藤物産 tells that 55,000 was sent today for its invoice; the bank line comes in
    _notify(receiver, "n-sato", amount=55_000, date=today.isoformat(), payer_name="ｻﾄｳﾌﾞﾂｻﾝ(ｶ",
            invoice_number=inv_s["invoice_number"])
    assert _notify(receiver, "n-sato", amount=55_000, date=today.isoformat())["replayed"] == 1  # redelivered
    # a person says they paid 鈴木電機's 33,000 ten days ago: no such line ever came
    late = today - timedelta(days=10)
    _notify(receiver, "n-person", amount=33_000, date=late.isoformat(), payer_name="ｽｽﾞｷ ﾀﾛｳ")
    # a notice of today with no line yet: waits, no item
    _notify(receiver, "n-waiting", amount=77_000, date=today.isoformat())
    dep_s = deposit(world, 55_000, "ｻﾄｳﾌﾞﾂｻﾝ(ｶ")

    summary = payment_writeback()

    assert summary["deposits"]["auto_matched"] == 1
    assert summary["notices"] == {"received": 3, "matched": 1, "unmatched": 1}
    notices = NoticeStore(world.rt.store.engine)
    sato_notice = notices.notice("n-sato")
    assert (sato_notice.status, sato_notice.deposit_id) == ("matched", dep_s)
    assert sato_notice.evidence == "amount,day+0,payer,invoice"
    assert notices.notice("n-waiting").status == "open"
    person = notices.notice("n-person")
    assert person.status == "unmatched" and person.payer_display == "ｽ***"
    assert "ｽｽﾞｷ" not in (person.payer_key or "") and person.payer_key.startswith("hmac-sha256:")
    (item,) = [r for r in world.rt.store.list_reviews("open", flow="payment-writeback")]
    assert (item.reason_code, item.entity, item.entity_key) == ("PAYMENT_NOTICE_UNMATCHED", "payment_notice", "n-person")
    shown = item.message + json.dumps(item.payload, ensure_ascii=False)
    assert "ｽｽﾞｷ" not in shown and "ﾀﾛｳ" not in shown and "ｽ***" in shown and "¥33,000" in item.message
    # a notice never pays anything: 鈴木電機's invoice is as unpaid as before
    assert freee_deal(world, inv_z)["due_amount"] == 33_000 and not freee_deal(world, inv_z).get("payments")

    # rerun: nothing new — the same item, no second one, no notice taken twice
    again = payment_writeback()
    assert "notices" not in again
    assert len(world.rt.store.list_reviews("open", flow="payment-writeback")) == 1

    # the person's money does arrive after all (reconciled by an approval, say): the notice closes, the item too
    notices.record_settled("late-line", 33_000, late + timedelta(days=1), None, ["X-1"])
    report = RunReport("payment-writeback", "manual")
    settle_notices(world.rt, report, today, notice_rules(world.rt.settings))
    assert notices.notice("n-person").status == "matched" and notices.notice("n-person").deposit_id == "late-line"
    assert world.rt.store.list_reviews("open", flow="payment-writeback") == []
    assert world.rt.store.get_review(item.id).status == "resolved"
    (event,) = [e for e in world.rt.store.audit_events("payment_notice", "n-sato")]
    assert event.action == "close_payment_notice" and event.changes["how"] == "reconciled_by_renkei"


def test_a_deposit_matched_by_hand_in_the_erp_closes_its_notice(world):
    """A person matched 鈴木電機's deposit in freee itself (not Renkei): the invoice the ERP now reports paid is
    the money — the notice closes, the audit event says how; an open notice of another amount stays open, and
    Renkei's own reconciliation is not counted a second time."""
    inv_s, inv_z = _two_invoiced_customers(world)
    receiver = Receiver(ledger=Ledger(world.rt.store.engine), emitter=ListEmitter(), inbound_secret=SECRET)
    day = today_tokyo() - timedelta(days=10)
    _notify(receiver, "n-suzuki", amount=33_000, date=day.isoformat(), invoice_number=inv_z["invoice_number"])
    _notify(receiver, "n-other", amount=55_000, date=today_tokyo().isoformat())
    deposit(world, 55_000, "ｻﾄｳﾌﾞﾂｻﾝ(ｶ")  # Renkei reconciles this one
    erp = world.rt.erp  # finance matches 鈴木電機's line by hand in freee: the invoice is paid there
    bank = next(a for a in erp.money_accounts() if a.kind == "bank")
    erp.add_receivable_payment(str(inv_z["deal_id"]), day=day + timedelta(days=1), amount=33_000, account=bank)

    summary = payment_writeback()

    assert summary["deposits"]["auto_matched"] == 1
    assert summary["notices"] == {"received": 2, "paid_in_erp": 1, "matched": 2}
    notices = NoticeStore(world.rt.store.engine)
    closed = notices.notice("n-suzuki")
    assert closed.status == "matched" and closed.deposit_id == f"invoice:{inv_z['id']}:33000"
    assert closed.evidence == "amount,day+1,invoice"
    (event,) = world.rt.store.audit_events("payment_notice", "n-suzuki")
    assert event.changes["how"] == "paid_in_erp" and event.changes["invoice"] == str(inv_z["id"])
    # 佐藤物産's money reconciled by Renkei closed the other notice; its invoice is not settled twice
    assert notices.notice("n-other").status == "matched" and not notices.notice("n-other").deposit_id.startswith("invoice:")
    assert world.rt.store.audit_events("payment_notice", "n-other")[0].changes["how"] == "reconciled_by_renkei"
    assert notices.free_settled([55_000], day, today_tokyo()) == []
    assert "paid_in_erp" not in payment_writeback().get("notices", {})  # read again: nothing new
    assert freee_deal(world, inv_s)["due_amount"] == 0
