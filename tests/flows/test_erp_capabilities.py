"""Flows branch on the ERP's capabilities, never on its name: freee run with a capability switched off behaves
as an ERP without it (Money Forward クラウド請求書 has no journals and does not number invoices for Renkei)."""

from __future__ import annotations

from dataclasses import replace

from renkei.flows.order_to_invoice import order_to_invoice
from renkei.flows.subscription_proration import subscription_proration
from renkei.store.subscriptions import SubscriptionStore
from renkei.tasks.runtime import get_runtime
from tests.flows.builders import freee_invoices, freee_partner, hs_company, hs_deal
from tests.flows.conftest import write_policy
from tests.flows.test_subscription_proration import STD, add_advance_account, journals, subscription


def _without(world, monkeypatch, **flags) -> None:
    world.rt = get_runtime()
    monkeypatch.setattr(world.rt.erp, "capabilities", replace(world.rt.erp.capabilities, **flags))


def test_without_journals_the_revenue_allocation_is_kept_and_nothing_is_posted(world, monkeypatch):
    add_advance_account(world)
    _without(world, monkeypatch, journals=False)
    deal = subscription(world, "さくらネットワークス", STD, 10)
    summary = subscription_proration(as_of="2026-11-30")
    assert journals(world) == []  # nothing posted
    assert summary["erp"]["journal_not_posted"] == 2  # the deferral and November's recognition
    (billing,) = SubscriptionStore(world.rt.store).billings(deal)
    kept = world.rt.store.get_snapshot("revenue-allocation", f"{deal}:{billing.key}").fields["months"]
    assert [(m["month"], m["amount"]) for m in kept][:2] == [("請求時", 30_000), ("2026-11", 30_000)]
    assert {m["journal"] for m in kept} >= {"allocated (no journals in the ERP)"}


def test_an_erp_that_cannot_number_invoices_refuses_auto_numbering(world, monkeypatch):
    write_policy(world.tmp, '[invoice_numbering]\nmode = "auto"\n', monkeypatch)
    _without(world, monkeypatch, erp_numbering=False)
    freee_partner(world, "株式会社番号", registration="T4011001098993")
    company = hs_company(world, "株式会社番号", renkei_corporate_number="4011001098993")
    hs_deal(world, "番号 導入", company, [{"name": "導入支援", "quantity": 1, "price": 50_000}])
    summary = order_to_invoice()
    assert freee_invoices(world) == [] and summary["erp"]["held"] == 1  # no request was sent
    (item,) = [r for r in world.rt.store.list_reviews("open") if r.reason_code == "FREEE_NUMBERING_MISMATCH"]
    assert 'mode = "manual"' in item.message and "cannot number invoices itself" in item.message
