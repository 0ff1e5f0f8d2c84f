"""subscription-proration: an unexpected exception on one subscription is that subscription's review item;
the others of the batch go on and the run completes."""

from __future__ import annotations

from renkei.flows.order_to_invoice import order_to_invoice
from renkei.flows.subscription_proration import subscription_proration
from renkei.store.subscriptions import SubscriptionStore
from tests.flows.builders import hs_deal
from tests.flows.test_subscription_proration import STD, add_advance_account, subscription


def test_one_failing_subscription_does_not_fail_the_batch(world, monkeypatch):
    import renkei.tasks.subscription_steps as sp

    add_advance_account(world)
    broken = subscription(world, "分離テスト", STD, 2)
    company = world.hs().deals.get(broken, associations=["companies"])["associations"]["companies"]["results"][0]["id"]
    fine = hs_deal(world, "分離テスト 追加契約", str(company), [
        {**STD, "quantity": 1, "recurringbillingfrequency": "monthly", "hs_recurring_billing_start_date": "2026-11-01",
         "hs_term_in_months": 12, "renkei_tax_category": "standard_10"}])
    order_to_invoice()
    real = sp.advance

    def advance(ctx, sub):
        if sub.deal.crm_id == broken:
            raise LookupError("unexpected state")
        return real(ctx, sub)

    monkeypatch.setattr(sp, "advance", advance)
    state = subscription_proration(as_of="2026-11-15", return_state=True)
    assert state.is_completed()
    items = [r for r in world.rt.store.list_reviews("open", flow="subscription-proration") if r.entity_key == broken]
    assert [(r.reason_code, r.message) for r in items] == [("SUBSCRIPTION_FAILED", "LookupError: unexpected state")]
    subs = SubscriptionStore(world.rt.store)
    assert subs.versions(fine) and not subs.versions(broken)
