"""Score margin between the best reading and a look-alike partner's (issue #11, class 10) — worked examples.

An exact payer-name match (kana / name / registered alias) that leads another partner's same-amount
invoice by at least ``auto_apply_margin`` (policy ``[reconciliation]``, default 0.15) is applied; closer
scores, or a best reading that is itself only a fuzzy / prefix name, stay with finance. The explanation
shows both scores and the margin."""

from __future__ import annotations

from renkei.domain.reconciliation import MatchKind, ReasonCode, ReconciliationPolicy, reconcile_deposit
from tests.unit.test_reconciliation import dep, inv, yamada


def shoten(amount: int = 110_000):
    return inv("77", "P-SHOTEN", "株式会社山田商店", "ヤマダショウテン", amount)


def test_exact_kana_far_ahead_of_a_lookalike_with_the_same_amount_is_applied() -> None:
    # the case from the issue: ﾔﾏﾀﾞｼﾖｳｼﾞ is 山田商事's registered reading (score 1.00); 山田商店 is only
    # similar (ratio 80 → 0.76) and happens to have an invoice of the same amount
    d = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada(), shoten()])
    assert d.kind is MatchKind.AUTO and d.partner_id == "P-YAMADA"
    assert [(a.invoice_id, a.applied) for a in d.allocations] == [("12", 110_000)]
    assert ReasonCode.CLEAR_MARGIN in d.reasons and ReasonCode.AMBIGUOUS_PARTNER not in d.reasons
    assert d.explanation.endswith("margin: best 株式会社山田商事 1.00 vs runner-up 株式会社山田商店 0.76 = 0.24 "
                                  "≥ 0.15: clearly ahead (明確な差)")
    assert [a.partner_id for a in d.alternatives] == ["P-SHOTEN"]  # still listed for the record


def test_the_margin_is_a_policy_value() -> None:
    strict = ReconciliationPolicy(auto_apply_margin=0.3)  # 0.24 is not enough under this policy
    d = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada(), shoten()], strict)
    assert d.kind is MatchKind.NEEDS_APPROVAL and ReasonCode.AMBIGUOUS_PARTNER in d.reasons
    assert "= 0.24 < 0.30: too close to tell (僅差)" in d.explanation


def test_close_scores_are_truly_ambiguous_and_go_to_finance() -> None:
    # 山田システム (exact, 1.00) vs 山田システムズ (similar, 0.89): margin 0.11 < 0.15
    sys_ = inv("1", "P-SYS", "株式会社山田システム", "ヤマダシステム", 110_000)
    sysz = inv("2", "P-SYSZ", "株式会社山田システムズ", "ヤマダシステムズ", 110_000)
    d = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼｽﾃﾑ"), [sys_, sysz])
    assert d.kind is MatchKind.NEEDS_APPROVAL and ReasonCode.AMBIGUOUS_PARTNER in d.reasons
    assert d.partner_id == "P-SYS" and [a.partner_id for a in d.alternatives] == ["P-SYSZ"]
    assert ("margin: best 株式会社山田システム 1.00 vs runner-up 株式会社山田システムズ 0.89 = 0.11 < 0.15: "
            "too close to tell (僅差)") in d.explanation


def test_equal_scores_never_auto_apply_whatever_the_margin() -> None:
    # 山田電機 / 山田電気 both read ﾔﾏﾀﾞﾃﾞﾝｷ: margin 0, even with a margin policy of 0
    a = inv("1", "P-DENKI-A", "山田電機株式会社", "ヤマダデンキ", 44_000)
    b = inv("2", "P-DENKI-B", "山田電気株式会社", "ヤマダデンキ", 44_000)
    for margin in (0.0, 0.15):
        d = reconcile_deposit(dep(44_000, "ﾔﾏﾀﾞﾃﾞﾝｷ(ｶ"), [a, b], ReconciliationPolicy(auto_apply_margin=margin))
        assert d.kind is MatchKind.NEEDS_APPROVAL and ReasonCode.AMBIGUOUS_PARTNER in d.reasons


def test_a_fuzzy_best_name_never_wins_by_margin() -> None:
    # the payer lost a character: neither partner is named exactly, so the margin rule does not apply
    d = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳ"), [yamada(), shoten()])
    assert d.kind is MatchKind.NEEDS_APPROVAL


def test_margin_with_a_fee_deducted() -> None:
    # ¥220 fee: 0.98 (kana × fee) vs 0.745 (similar × fee) → margin 0.23
    d = reconcile_deposit(dep(109_780, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada(), shoten()])
    assert d.kind is MatchKind.AUTO and d.fee == 220 and d.partner_id == "P-YAMADA"
