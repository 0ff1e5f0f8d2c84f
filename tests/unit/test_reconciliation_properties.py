"""Property: an applied (AUTO) allocation never uses more than the deposit and never more than an
invoice's outstanding amount — also across a batch, where outstanding amounts shrink as deposits apply."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.domain.model import BankDeposit
from renkei.domain.reconciliation import (
    FeeMode,
    MatchKind,
    OpenInvoice,
    PayerAliasTable,
    ReconciliationPolicy,
    Reconciler,
    reconcile_batch,
)

PARTNERS = [  # similar names on purpose
    ("P1", "株式会社山田商事", "ヤマダショウジ", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
    ("P2", "株式会社山田商店", "ヤマダショウテン", "ｶ)ﾔﾏﾀﾞｼﾖｳﾃﾝ"),
    ("P3", "合同会社さくら", "サクラ", "ﾄﾞ)ｻｸﾗ"),
    ("P4", "山田商事株式会社", "ヤマダショウジ", "ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ"),
]
NOISE = ["ﾘｿｸ", "ｽｽﾞｷ ﾀﾛｳ", "ｶ)ﾔﾏﾀﾞ", ""]
FEES = [0, 0, 110, 154, 440, 660, 880, 500]
BASE = date(2026, 4, 1)

amounts = st.one_of(st.sampled_from([11_000, 22_000, 33_000, 55_000, 110_000]), st.integers(1, 300_000))


@st.composite
def scenario(draw):
    n_inv = draw(st.integers(1, 10))
    invoices = []
    for i in range(n_inv):
        pid, name, kana, _ = draw(st.sampled_from(PARTNERS))
        total = draw(amounts)
        outstanding = draw(st.one_of(st.just(total), st.integers(1, total)))
        issued = BASE + timedelta(days=draw(st.integers(0, 60)))
        invoices.append(OpenInvoice(invoice_id=f"I{i}", partner_id=pid, partner_name=name, partner_kana=kana,
                                    total=total, outstanding=outstanding, issue_date=issued,
                                    due_date=issued + timedelta(days=30)))
    deposits = []
    for j in range(draw(st.integers(1, 8))):
        how = draw(st.sampled_from(["one", "subset", "random"]))
        if how == "one":
            amount = draw(st.sampled_from(invoices)).outstanding
        elif how == "subset":
            picks = draw(st.lists(st.sampled_from(invoices), min_size=1, max_size=4, unique_by=lambda x: x.invoice_id))
            amount = sum(p.outstanding for p in picks)
        else:
            amount = draw(amounts)
        amount = max(1, amount - draw(st.sampled_from(FEES)))
        payer = draw(st.one_of(st.sampled_from([p[3] for p in PARTNERS]), st.sampled_from(NOISE)))
        deposits.append(BankDeposit(erp_id=f"W{j}", received_on=BASE + timedelta(days=draw(st.integers(0, 120))),
                                    amount=amount, payer_name=payer))
    policy = ReconciliationPolicy(
        fee_mode=draw(st.sampled_from(list(FeeMode))),
        auto_apply_partial=draw(st.booleans()),
        auto_apply_overpayment=draw(st.booleans()),
        fifo_identical_amounts=draw(st.booleans()),
        max_invoices_per_payment=draw(st.integers(1, 5)),
        auto_apply_threshold=draw(st.sampled_from([0.5, 0.8, 0.9, 0.95])),
    )
    aliases = PayerAliasTable.from_pairs([("ｽｽﾞｷ ﾀﾛｳ", "P3")]) if draw(st.booleans()) else None
    return invoices, deposits, policy, aliases


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_auto_allocations_stay_within_deposit_and_outstanding(data) -> None:
    invoices, deposits, policy, aliases = data
    original = {i.invoice_id: i.outstanding for i in invoices}
    live = dict(original)
    result = reconcile_batch(deposits, invoices, policy, aliases)
    for d in result.decisions:
        for cand in ([d.proposal] if d.proposal else []) + list(d.alternatives):
            assert cand.applied_total + cand.overpayment <= d.amount
            for a in cand.allocations:
                assert a.applied >= 0 and a.fee >= 0
                assert a.cleared <= a.outstanding_before
        if d.kind is not MatchKind.AUTO:
            continue
        assert d.proposal is not None
        assert sum(a.applied for a in d.allocations) <= d.amount
        assert sum(a.applied for a in d.allocations) + d.overpayment == d.amount
        assert d.score >= policy.auto_apply_threshold
        assert d.fee <= policy.fee_max
        assert len({a.invoice_id for a in d.allocations}) == len(d.allocations)
        assert all(a.applied > 0 for a in d.allocations)  # every allocation is a payment of at least ¥1
        for a in d.allocations:
            assert a.outstanding_before == live[a.invoice_id]  # decided against the current state
            assert a.cleared <= live[a.invoice_id]
            live[a.invoice_id] -= a.cleared
    assert result.outstanding == live
    assert all(v >= 0 for v in result.outstanding.values())


@settings(max_examples=100, deadline=None)
@given(scenario())
def test_batch_is_deterministic_in_any_input_order(data) -> None:
    invoices, deposits, policy, aliases = data
    a = reconcile_batch(deposits, invoices, policy, aliases)
    b = reconcile_batch(list(reversed(deposits)), list(reversed(invoices)), policy, aliases)
    assert a == b


@settings(max_examples=100, deadline=None)
@given(scenario())
def test_decide_is_a_pure_read(data) -> None:
    invoices, deposits, policy, aliases = data
    rec = Reconciler(invoices, policy, aliases)
    before = rec.outstanding_map()
    for d in deposits:
        assert rec.decide(d) == rec.decide(d)
    assert rec.outstanding_map() == before
