"""CRMDeals: changed deals narrowed by stage and modification time, deals by id, subscriptions, canonical
write-back keys — written against the contract only, for every registered CRM."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from renkei.connectors.base import DEAL_WRITEBACK_KEYS, SubscriptionDeal


def test_crm_deals(crm):
    """One test per module: the demo sandbox is served once per module."""
    crm.prepare()
    won = crm.won_stage_ids()
    assert won and all(isinstance(s, str) for s in won)

    batches = list(crm.iter_deal_changes(None, stages=won))
    assert batches and batches[-1].exhausted
    records = [r for b in batches for r in b.records]
    deals = [r.value for r in records if r.ok]
    assert deals and all(d.stage in won for d in deals)
    assert all(d.line_items for d in deals if d.company_crm_id)  # deals come with their lines
    before_2000 = datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert [r for b in crm.iter_deal_changes(None, stages=won, until=before_2000) for r in b.records] == []

    ids = [d.crm_id for d in deals[:3]]
    got = crm.get_deals(ids)
    assert {g.value.crm_id for g in got if g.ok} == set(ids)
    assert {g.value.crm_id for g in crm.get_deals(ids, with_line_items=False) if g.ok} == set(ids)

    subs = [crm.subscription_deal(r) for r in records]
    real = [s for s in subs if s is not None]
    assert real, "the demo account has subscription deals"
    for s in real:
        assert isinstance(s, SubscriptionDeal) and s.stage in won
        assert s.deal is not None and any(li.recurring_frequency for li in s.deal.line_items)
        assert s.ended_line_ids <= {str(li.crm_id) for li in s.deal.line_items}
    plain = [r.value.crm_id for r, s in zip(records, subs) if s is None and r.ok]
    wanted = [real[0].deal_id] + plain[:1]
    by_id = crm.get_subscription_deals(wanted)
    assert by_id[0] is not None and by_id[0].deal_id == real[0].deal_id and by_id[0].deal == real[0].deal
    if plain:
        assert by_id[1] is None

    # reporting: every deal of every stage, probability from the stage, won ⊆ closed
    facts = [f for page in crm.iter_deal_facts() for f in page]
    assert {d.crm_id for d in deals} <= {f.crm_id for f in facts if f.won}
    assert all(isinstance(f.probability, Decimal) and 0 <= f.probability <= 1 for f in facts)
    assert all(f.closed for f in facts if f.won) and any(not f.closed for f in facts)
    assert all(f.probability == 1 for f in facts if f.won)

    target = deals[0].crm_id
    values = {"renkei_invoice_status": "created", "renkei_invoice_number": "CONF-0001",
              "renkei_payment_status": "partial", "renkei_paid_amount": "1000",
              "renkei_outstanding_amount": "2300", "renkei_paid_at": "2026-11-30"}
    assert set(values) <= set(DEAL_WRITEBACK_KEYS)
    results = crm.update_deal_properties({target: values})
    assert len(results) == 1 and results[0].ok and results[0].index == 0
