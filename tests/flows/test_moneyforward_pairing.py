"""HubSpot + Money Forward クラウド請求書 end to end (flows through the contract only): a won deal becomes one
MF billing (once, even when run again), and the payment status set in MF (消込 in クラウド会計) reaches the
HubSpot deal through payment-writeback's no-bank-lines path, where a payment notice for the billing closes
against the payment MF reports."""

from __future__ import annotations

import pytest

from renkei.domain.model import Address, Company, PaymentTerms
from renkei.flows.order_to_invoice import order_to_invoice
from renkei.flows.payment_writeback import payment_writeback
from renkei.sandboxes.common import ServerThread
from renkei.sandboxes.moneyforward.spec import SPEC
from renkei.domain.dates import today_tokyo
from renkei.store.payment_notices import NoticeStore
from renkei.webhooks.app import Receiver
from renkei.webhooks.emit import ListEmitter
from renkei.webhooks.ledger import Ledger
from tests.flows.builders import hs_company, hs_deal
from tests.flows.conftest import World
from tests.flows.test_payment_writeback_notices import SECRET, _notify


@pytest.fixture
def mf_world(prefect_api, hubspot_sandbox, tmp_path, monkeypatch):
    from renkei.tasks.runtime import get_runtime, reset_runtime

    app = SPEC.app(seed="none")
    with ServerThread(app) as server:
        env = {"RENKEI_HUBSPOT_BASE_URL": hubspot_sandbox.url, "RENKEI_HUBSPOT_TOKEN": hubspot_sandbox.config.token,
               "RENKEI_DATABASE_URL": f"sqlite:///{tmp_path / 'renkei.db'}", "RENKEI_HOME": str(tmp_path / ".renkei"),
               **SPEC.env(server.url, app)}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        reset_runtime()
        rt = get_runtime()
        for object_type in ("companies", "deals", "line_items", "products"):
            rt.crm.client.properties.ensure(object_type)
        world = World(rt, hubspot_sandbox, None, env, tmp_path)
        world.mf = app
        yield world
        reset_runtime()


def test_won_deal_to_one_mf_billing_and_its_payment_status_back_to_hubspot(mf_world):
    world = mf_world
    assert world.rt.erp.capabilities.name == "moneyforward"
    company = hs_company(world, "株式会社山田商事", renkei_corporate_number="7010705000725",
                         renkei_name_kana="ヤマダショウジ")
    # the customer's MF partner, under the code Renkei gives the partners it owns (MF partners hold no 登録番号)
    world.rt.erp.create_partner(Company(
        name="株式会社山田商事", name_kana="ヤマダショウジ", partner_code=f"HS-{company}", billing_email="keiri@example.co.jp",
        payment_terms=PaymentTerms(closing_day=0, pay_month_offset=1, pay_day=0),
        address=Address(postal_code="100-0001", prefecture="東京都", city="千代田区", street="千代田1-1")))
    deal = hs_deal(world, "山田商事 保守", company, [{"name": "保守", "quantity": 1, "price": 100_000},
                                                  {"name": "お茶 ※", "quantity": 2, "price": 1_000,
                                                   "renkei_tax_category": "reduced_8"}])
    order_to_invoice()
    order_to_invoice()  # again: nothing new
    billings = list(world.mf.state.store.billings.values())
    assert len(billings) == 1
    (billing,) = billings
    rendered = world.mf.state.store.render(billing)
    assert billing["memo"] == f"renkei:deal:{deal}" and rendered["total_price"] == "112160.0"
    props = world.hs().deals.get(deal, properties=["renkei_invoice_id", "renkei_invoice_number",
                                                   "renkei_payment_status"])["properties"]
    assert props["renkei_invoice_id"] == billing["id"] and props["renkei_invoice_number"] == billing["billing_number"]

    # payment notices are kept on an ERP without bank lines too: the customer says it paid the billing
    receiver = Receiver(ledger=Ledger(world.rt.store.engine), emitter=ListEmitter(), inbound_secret=SECRET)
    today = today_tokyo().isoformat()
    _notify(receiver, "n-yamada", amount=112_160, date=today, invoice_number=billing["billing_number"])
    _notify(receiver, "n-other", amount=112_160, date=today, invoice_number="OTHER-1")  # another invoice's

    first = payment_writeback()
    assert first["notices"] == {"received": 2}  # kept; nothing paid yet
    assert world.hs().deals.get(deal, properties=["renkei_payment_status"])["properties"][
        "renkei_payment_status"] == "unpaid"
    world.mf.state.store.set_payment_status(billing["id"], {"payment_status": "2"})  # 消込 in クラウド会計
    second = payment_writeback()
    props = world.hs().deals.get(deal, properties=["renkei_payment_status", "renkei_paid_amount",
                                                   "renkei_outstanding_amount"])["properties"]
    assert props.items() >= {"renkei_payment_status": "paid", "renkei_paid_amount": "112160",
                             "renkei_outstanding_amount": "0"}.items()
    # the billing MF reports paid is the notice's money (amount, day, its number); the other stays open
    assert second["notices"] == {"paid_in_erp": 1, "matched": 1}
    notices = NoticeStore(world.rt.store.engine)
    closed = notices.notice("n-yamada")
    assert (closed.status, closed.deposit_id) == ("matched", f"invoice:{billing['id']}:112160")
    assert closed.evidence == "amount,day+0,invoice"
    (event,) = world.rt.store.audit_events("payment_notice", "n-yamada")
    assert event.changes["how"] == "paid_in_erp" and event.changes["invoice"] == billing["id"]
    assert notices.notice("n-other").status == "open"
    assert "notices" not in payment_writeback()  # read again: nothing new, nothing closed twice
