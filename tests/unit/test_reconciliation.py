"""Bank reconciliation (入金消込) — worked examples of each case (domain/reconciliation.py)."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from renkei.domain.model import BankDeposit, Company, Invoice
from renkei.domain.reconciliation_index import name_similarity
from renkei.domain.reconciliation import (
    AliasSource,
    FeeMode,
    FitKind,
    MatchDecision,
    MatchKind,
    NameEvidence,
    OpenInvoice,
    PayerAliasTable,
    ReasonCode,
    ReconciliationPolicy,
    Reconciler,
    learn_alias,
    payer_key,
    payments_for,
    reconcile_batch,
    reconcile_deposit,
)

ISSUED = date(2026, 4, 30)
DUE = date(2026, 5, 31)
PAID = date(2026, 5, 29)


def inv(invoice_id: str, partner_id: str, name: str, kana: str | None, amount: int, *, outstanding: int | None = None,
        issued: date = ISSUED, due: date | None = DUE, aliases: tuple[str, ...] = ()) -> OpenInvoice:
    return OpenInvoice(invoice_id=invoice_id, number=f"INV-{invoice_id}", partner_id=partner_id, partner_name=name,
                       partner_kana=kana, payer_aliases=aliases, total=amount,
                       outstanding=amount if outstanding is None else outstanding, issue_date=issued, due_date=due)


def dep(amount: int, payer: str, *, on: date = PAID, erp_id: str = "W1") -> BankDeposit:
    return BankDeposit(erp_id=erp_id, received_on=on, amount=amount, payer_name=payer)


def yamada(invoice_id: str = "12", amount: int = 110_000, **kw) -> OpenInvoice:
    return inv(invoice_id, "P-YAMADA", "株式会社山田商事", "ヤマダショウジ", amount, **kw)


# ---------------------------------------------------------------------------------------------------
# payer names (全銀 half-width kana, jp-invoicing-rules §5.3/§5.4)


@pytest.mark.parametrize(
    ("payer", "key"),
    [
        ("ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", "ヤマダシヨウジ"),  # 株式会社, prefix form
        ("ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ", "ヤマダシヨウジ"),  # 株式会社, suffix form
        ("ｶ) ﾔﾏﾀﾞ ｼﾖｳｼﾞ", "ヤマダシヨウジ"),  # spaces
        ("ﾕ)ﾔﾏﾀﾞｼﾖｳﾃﾝ", "ヤマダシヨウテン"),  # 有限会社
        ("ﾄﾞ)ｻｸﾗﾃﾞｻﾞｲﾝ", "サクラデザイン"),  # 合同会社, abbreviated
        ("ｺﾞｳﾄﾞｳｶﾞｲｼﾔ ｻｸﾗﾃﾞｻﾞｲﾝ", "サクラデザイン"),  # 合同会社 written in full (MUFG default)
        ("振込 カ）ABC", "ABC"),  # freee 摘要 with full-width paren
        ("1234567890 ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", "ヤマダシヨウジ"),  # 依頼人番号 in front
        ("ヤマダショウジ", "ヤマダシヨウジ"),  # small kana written large
        ("ｶ)", ""),
    ],
)
def test_payer_key(payer: str, key: str) -> None:
    assert payer_key(payer) == key


# ---------------------------------------------------------------------------------------------------
# exact payment, fee deducted


def test_exact_payment_auto() -> None:
    d = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada()])
    assert d.kind is MatchKind.AUTO
    assert d.score == 1.0
    assert d.partner_id == "P-YAMADA"
    assert [(a.invoice_id, a.applied, a.fee, a.outstanding_after) for a in d.allocations] == [("12", 110_000, 0, 0)]
    assert d.reasons == (ReasonCode.EXACT_MATCH,)
    assert "振込名義 ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ = 株式会社山田商事 (kana match" in d.explanation
    assert "amount ¥110,000 = invoice INV-12 ¥110,000" in d.explanation
    assert d.explanation.endswith("(自動消込)")


@pytest.mark.parametrize("payer", ["ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", "ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ", "ｶﾌﾞｼｷｶﾞｲｼﾔ ﾔﾏﾀﾞｼﾖｳｼﾞ"])
def test_company_abbreviation_forms_match(payer: str) -> None:
    assert reconcile_deposit(dep(110_000, payer), [yamada()]).kind is MatchKind.AUTO


@pytest.mark.parametrize("fee", [110, 440, 660, 880])
def test_fee_deducted_is_booked_as_expense(fee: int) -> None:
    d = reconcile_deposit(dep(110_000 - fee, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada()])
    assert d.kind is MatchKind.AUTO
    assert d.proposal is not None and d.proposal.fit is FitKind.FEE_DEDUCTED
    (a,) = d.allocations
    assert (a.applied, a.fee, a.outstanding_after) == (110_000 - fee, fee, 0)  # receivable cleared, fee expensed
    assert d.fee == fee and not d.partial and d.overpayment == 0
    assert f"= invoice INV-12 ¥110,000 − fee ¥{fee:,} (振込手数料 → 支払手数料)" in d.explanation
    assert ReasonCode.FEE_DEDUCTED in d.reasons


def test_worked_example_from_the_brief() -> None:
    d = reconcile_deposit(dep(109_890, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada()])
    assert d.kind is MatchKind.AUTO and d.score == 0.98
    assert d.explanation.startswith(
        "振込名義 ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ = 株式会社山田商事 (kana match / カナ一致); "
        "amount ¥109,890 = invoice INV-12 ¥110,000 − fee ¥110")


def test_shortfall_not_a_known_fee_is_a_partial_payment() -> None:
    d = reconcile_deposit(dep(110_000 - 500, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada()])  # ¥500 is not on the whitelist
    assert d.kind is MatchKind.NEEDS_APPROVAL
    assert d.proposal is not None and d.proposal.fit is FitKind.PARTIAL and d.partial


def test_range_mode_accepts_any_fee_up_to_the_maximum() -> None:
    policy = ReconciliationPolicy(fee_mode=FeeMode.RANGE, fee_max=1100)
    d = reconcile_deposit(dep(110_000 - 500, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada()], policy)
    assert d.kind is MatchKind.AUTO and d.fee == 500 and d.score < 0.98
    too_big = reconcile_deposit(dep(110_000 - 1_200, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada()], policy)
    assert too_big.kind is MatchKind.NEEDS_APPROVAL and too_big.proposal.fit is FitKind.PARTIAL


# ---------------------------------------------------------------------------------------------------
# legal forms: 有限会社 ﾕ), 合同会社 ﾄﾞ) / ｺﾞｳﾄﾞｳｶﾞｲｼﾔ, latin names


def test_yugen_kaisha() -> None:
    invoices = [inv("7", "P-TANAKA", "有限会社田中商店", "タナカショウテン", 33_000)]
    d = reconcile_deposit(dep(32_560, "ﾕ)ﾀﾅｶｼﾖｳﾃﾝ"), invoices)
    assert d.kind is MatchKind.AUTO and d.fee == 440


@pytest.mark.parametrize("payer", ["ﾄﾞ)ｻｸﾗﾃﾞｻﾞｲﾝ", "ｺﾞｳﾄﾞｳｶﾞｲｼﾔ ｻｸﾗﾃﾞｻﾞｲﾝ", "ｻｸﾗﾃﾞｻﾞｲﾝ(ﾄﾞ"])
def test_godo_kaisha_both_forms(payer: str) -> None:
    invoices = [inv("9", "P-SAKURA", "合同会社さくらデザイン", "さくらでざいん", 66_000)]
    d = reconcile_deposit(dep(65_340, payer), invoices)
    assert d.kind is MatchKind.AUTO and d.fee == 660 and d.partner_id == "P-SAKURA"


def test_latin_partner_name_without_kana() -> None:
    invoices = [inv("3", "P-ABC", "ABC株式会社", None, 220_000)]
    d = reconcile_deposit(dep(219_120, "振込 カ）ABC"), invoices)
    assert d.kind is MatchKind.AUTO and d.fee == 880
    assert d.proposal.name_evidence is NameEvidence.NAME


def test_from_canonical_invoice_and_company() -> None:
    company = Company(erp_id="P-YAMADA", name="株式会社山田商事", name_kana="ヤマダショウジ", payer_aliases=["ﾔﾏﾀﾞHD"])
    invoice = Invoice(erp_id="12", number="INV-12", reference="renkei:deal:1", partner_erp_id="P-YAMADA",
                      recipient_name="株式会社山田商事", issue_date=ISSUED, due_date=DUE, total=110_000)
    oi = OpenInvoice.from_invoice(invoice, company, outstanding=60_000)
    assert (oi.partner_kana, oi.outstanding, oi.payer_aliases) == ("ヤマダショウジ", 60_000, ("ﾔﾏﾀﾞHD",))
    assert reconcile_deposit(dep(60_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [oi]).kind is MatchKind.AUTO


# ---------------------------------------------------------------------------------------------------
# まとめ入金 (one deposit, several invoices of one customer)


def test_combined_payment_of_three_invoices() -> None:
    invoices = [yamada("1", 110_000), yamada("2", 55_000, issued=date(2026, 3, 31), due=date(2026, 4, 30)),
                yamada("3", 33_000), yamada("4", 12_345)]
    d = reconcile_deposit(dep(110_000 + 55_000 + 33_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices)
    assert d.kind is MatchKind.AUTO and d.score == 0.92
    assert d.proposal.fit is FitKind.COMBINED
    assert [a.invoice_id for a in d.allocations] == ["2", "1", "3"]  # oldest first
    assert all(a.outstanding_after == 0 and a.fee == 0 for a in d.allocations)
    assert sum(a.applied for a in d.allocations) == d.amount
    assert "amount ¥198,000 = INV-2 ¥55,000 + INV-1 ¥110,000 + INV-3 ¥33,000 (まとめ入金, 3 invoices)" in d.explanation


def test_combined_payment_less_a_fee() -> None:
    invoices = [yamada("1", 110_000), yamada("2", 55_000), yamada("3", 33_000)]
    two = reconcile_deposit(dep(110_000 + 33_000 - 440, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices)
    assert two.kind is MatchKind.AUTO and two.proposal.fit is FitKind.COMBINED_FEE
    assert [(a.invoice_id, a.applied, a.fee) for a in two.allocations] == [("1", 109_560, 440), ("3", 33_000, 0)]
    assert "− fee ¥440 (振込手数料 → 支払手数料) (まとめ入金, 2 invoices)" in two.explanation
    # three invoices less a fee: a chance sum is likely enough that a person confirms it
    three = reconcile_deposit(dep(110_000 + 55_000 + 33_000 - 660, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices)
    assert three.kind is MatchKind.NEEDS_APPROVAL and ReasonCode.BELOW_THRESHOLD in three.reasons
    assert three.proposal.fee == 660 and len(three.allocations) == 3


def test_deposit_fitting_two_subsets_is_ambiguous() -> None:
    # ¥50,000 = INV-A alone, or INV-B + INV-C
    invoices = [yamada("A", 50_000), yamada("B", 30_000), yamada("C", 20_000)]
    d = reconcile_deposit(dep(50_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices)
    assert d.kind is MatchKind.NEEDS_APPROVAL
    assert ReasonCode.AMBIGUOUS_ALLOCATION in d.reasons
    readings = {d.proposal.invoice_ids, *(alt.invoice_ids for alt in d.alternatives)}
    assert readings == {("A",), ("B", "C")}
    assert "ambiguous — 2 readings fit" in d.explanation
    assert d.score < 0.9


def test_identical_amounts_take_the_oldest_invoice() -> None:
    invoices = [yamada("MAY", 55_000, issued=date(2026, 4, 30), due=date(2026, 5, 31)),
                yamada("APR", 55_000, issued=date(2026, 3, 31), due=date(2026, 4, 30))]
    d = reconcile_deposit(dep(55_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices)
    assert d.kind is MatchKind.AUTO and d.allocations[0].invoice_id == "APR"
    assert ReasonCode.FIFO_IDENTICAL_AMOUNTS in d.reasons
    strict = ReconciliationPolicy(fifo_identical_amounts=False)
    assert reconcile_deposit(dep(55_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices, strict).kind is MatchKind.NEEDS_APPROVAL


def test_combined_payment_respects_max_invoices() -> None:
    invoices = [yamada(str(i), 10_000 + i) for i in range(4)]
    amount = sum(i.outstanding for i in invoices)
    four = reconcile_deposit(dep(amount, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices)  # found and proposed, confirmed by a person
    assert four.kind is MatchKind.NEEDS_APPROVAL and four.proposal.fit is FitKind.COMBINED
    assert len(four.allocations) == 4 and four.score == 0.89
    assert reconcile_deposit(dep(amount, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices,
                             ReconciliationPolicy(auto_apply_threshold=0.85)).kind is MatchKind.AUTO
    small = ReconciliationPolicy(max_invoices_per_payment=3)
    d = reconcile_deposit(dep(amount, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices, small)
    assert d.kind is MatchKind.NEEDS_APPROVAL and d.proposal.fit is FitKind.OVERPAYMENT


def test_subset_search_limit_blocks_auto() -> None:
    invoices = [yamada(str(i), 1_000 * (i + 1)) for i in range(25)]
    policy = ReconciliationPolicy(max_search_nodes=100)
    d = reconcile_deposit(dep(25_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices, policy)
    assert d.kind is MatchKind.NEEDS_APPROVAL and ReasonCode.SEARCH_LIMIT in d.reasons


# ---------------------------------------------------------------------------------------------------
# similar names


def shoten(invoice_id: str = "77", amount: int = 110_000) -> OpenInvoice:
    return inv(invoice_id, "P-SHOTEN", "株式会社山田商店", "ヤマダショウテン", amount)


def test_similar_names_with_the_same_amount_never_auto_match() -> None:
    # the payer name is a fuzzy match for both (a character lost): nothing singles one partner out
    d = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳ"), [yamada(), shoten()])
    assert d.kind is MatchKind.NEEDS_APPROVAL
    assert {d.partner_id, *(alt.partner_id for alt in d.alternatives)} == {"P-YAMADA", "P-SHOTEN"}
    # an exact kana match far ahead of the look-alike is applied (class 10; tests/unit/test_reconciliation_margin.py)
    clear = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada(), shoten()])
    assert clear.kind is MatchKind.AUTO and clear.partner_id == "P-YAMADA"
    assert {alt.partner_id for alt in clear.alternatives} == {"P-SHOTEN"}  # still shown, set aside
    # also with a fee deducted
    assert reconcile_deposit(dep(109_780, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada(), shoten()]).kind is MatchKind.AUTO


def test_similar_name_with_another_amount_does_not_block() -> None:
    d = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada(), shoten(amount=88_000)])
    assert d.kind is MatchKind.AUTO and d.partner_id == "P-YAMADA"


def test_only_the_similar_name_fits() -> None:
    # 山田商事 pays ¥88,000 but only 山田商店 has an ¥88,000 invoice: a closer name exists → approval
    d = reconcile_deposit(dep(88_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada(), shoten(amount=88_000)])
    assert d.kind is MatchKind.NEEDS_APPROVAL and d.partner_id == "P-SHOTEN"
    assert ReasonCode.BETTER_NAME_WITHOUT_FIT in d.reasons


def test_two_partners_with_the_same_kana_are_ambiguous() -> None:
    other = inv("99", "P-YAMADA-OSAKA", "山田商事株式会社(大阪)", "ヤマダショウジ", 110_000)
    d = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada(), other])
    assert d.kind is MatchKind.NEEDS_APPROVAL and ReasonCode.AMBIGUOUS_PARTNER in d.reasons


def test_fuzzy_name_needs_approval() -> None:
    d = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｼﾞ"), [yamada()])  # a character dropped by the payer
    assert d.kind is MatchKind.NEEDS_APPROVAL
    assert d.proposal.name_evidence is NameEvidence.FUZZY and ReasonCode.NAME_APPROXIMATE in d.reasons


def test_branch_suffix_is_a_prefix_match() -> None:
    d = reconcile_deposit(dep(110_000, "ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ)ﾄｳｷﾖｳｼﾃﾝ"), [yamada()])
    assert d.proposal.name_evidence is NameEvidence.PREFIX
    assert d.kind is MatchKind.AUTO and d.score == 0.92


# ---------------------------------------------------------------------------------------------------
# third parties and aliases


def test_registered_alias_of_a_third_party_payer() -> None:
    invoices = [yamada(aliases=("ｶ)ﾔﾏﾀﾞﾎｰﾙﾃﾞｨﾝｸﾞｽ",))]
    d = reconcile_deposit(dep(109_890, "ﾔﾏﾀﾞﾎｰﾙﾃﾞｲﾝｸﾞｽ(ｶ"), invoices)
    assert d.kind is MatchKind.AUTO and d.partner_id == "P-YAMADA"
    assert d.proposal.name_evidence is NameEvidence.REGISTERED_ALIAS
    assert ReasonCode.THIRD_PARTY_ALIAS in d.reasons


def test_alias_table_payer_to_partner() -> None:
    table = PayerAliasTable.from_pairs([("ｶ)ｽｽﾞｷｹﾝｾﾂ", "P-YAMADA")])
    d = reconcile_deposit(dep(110_000, "ｶ)ｽｽﾞｷｹﾝｾﾂ"), [yamada()], aliases=table)
    assert d.kind is MatchKind.AUTO and d.proposal.name_evidence is NameEvidence.ALIAS_TABLE


def test_unknown_third_party_needs_approval_then_is_learned() -> None:
    invoices = [yamada()]
    first = reconcile_deposit(dep(110_000, "ｽｽﾞｷ ﾀﾛｳ"), invoices)
    assert first.kind is MatchKind.NEEDS_APPROVAL
    assert ReasonCode.UNKNOWN_PAYER_AMOUNT_MATCH in first.reasons
    assert first.partner_id == "P-YAMADA" and first.score < 0.5
    assert "third party" in first.explanation
    table = learn_alias(None, first, "P-YAMADA")  # finance approved it
    assert table.aliases[0].payer_key == "スズキタロウ" and table.aliases[0].source is AliasSource.LEARNED
    again = reconcile_deposit(dep(110_000, "ｽｽﾞｷ ﾀﾛｳ", erp_id="W2"), invoices, aliases=table)
    assert again.kind is MatchKind.AUTO and again.proposal.name_evidence is NameEvidence.LEARNED_ALIAS
    assert learn_alias(table, first, "P-YAMADA") is table  # learning twice changes nothing


def test_unknown_payer_with_many_amount_matches_is_unmatched() -> None:
    invoices = [inv(str(i), f"P{i}", f"会社{i}", None, 110_000) for i in range(5)]
    d = reconcile_deposit(dep(110_000, "ｽｽﾞｷ ﾀﾛｳ"), invoices)
    assert d.kind is MatchKind.UNMATCHED and ReasonCode.TOO_MANY_AMOUNT_MATCHES in d.reasons


# ---------------------------------------------------------------------------------------------------
# partial, overpayment, unrelated


def test_partial_payment_needs_approval() -> None:
    d = reconcile_deposit(dep(50_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada()])
    assert d.kind is MatchKind.NEEDS_APPROVAL
    assert d.partial and d.proposal.fit is FitKind.PARTIAL
    (a,) = d.allocations
    assert (a.applied, a.fee, a.outstanding_after) == (50_000, 0, 60_000)
    assert "partial payment 一部入金, ¥60,000 stays open on INV-12" in d.explanation
    auto = reconcile_deposit(dep(50_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada()], ReconciliationPolicy(auto_apply_partial=True))
    assert auto.kind is MatchKind.AUTO


def test_partial_payment_is_allocated_oldest_first() -> None:
    invoices = [yamada("NEW", 100_000, issued=date(2026, 4, 30), due=date(2026, 5, 31)),
                yamada("OLD", 100_000, issued=date(2026, 3, 31), due=date(2026, 4, 30))]
    d = reconcile_deposit(dep(150_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices)
    assert [(a.invoice_id, a.applied) for a in d.allocations] == [("OLD", 100_000), ("NEW", 50_000)]


def test_overpayment_needs_approval() -> None:
    d = reconcile_deposit(dep(120_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada()])
    assert d.kind is MatchKind.NEEDS_APPROVAL and d.proposal.fit is FitKind.OVERPAYMENT
    assert d.overpayment == 10_000 and sum(a.applied for a in d.allocations) + d.overpayment == 120_000
    assert "overpayment 過入金 ¥10,000" in d.explanation
    policy = ReconciliationPolicy(auto_apply_overpayment=True)
    assert reconcile_deposit(dep(120_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada()], policy).kind is MatchKind.AUTO


def test_partial_with_a_similar_named_rival_stays_with_approval_even_when_allowed() -> None:
    other = inv("99", "P-YAMADA-OSAKA", "山田商事株式会社(大阪)", "ヤマダショウジ", 200_000)
    policy = ReconciliationPolicy(auto_apply_partial=True)
    d = reconcile_deposit(dep(50_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada(), other], policy)
    assert d.kind is MatchKind.NEEDS_APPROVAL and ReasonCode.AMBIGUOUS_PARTNER in d.reasons


@pytest.mark.parametrize(("amount", "payer"), [(3, "ﾘｿｸ"), (48_000, "ｺｸｾﾞｲｶﾝﾌﾟｷﾝ"), (77_777, "ﾀﾅｶ ﾊﾅｺ"), (500, "ｶ)")])
def test_unrelated_deposit_is_unmatched(amount: int, payer: str) -> None:
    d = reconcile_deposit(dep(amount, payer), [yamada(), shoten(amount=88_000)])
    assert d.kind is MatchKind.UNMATCHED and d.proposal is None and d.score == 0.0
    assert "UNMATCHED" in d.explanation


def test_deposit_long_before_the_invoice_is_outside_the_window() -> None:
    d = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", on=date(2026, 3, 1)), [yamada()])
    assert d.kind is MatchKind.NEEDS_APPROVAL and ReasonCode.OUTSIDE_DATE_WINDOW in d.reasons


def test_settled_invoice_is_ignored() -> None:
    d = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada(outstanding=0)])
    assert d.kind is MatchKind.UNMATCHED


# ---------------------------------------------------------------------------------------------------
# batches


def test_batch_never_allocates_an_invoice_twice() -> None:
    invoices = [yamada("12", 110_000)]
    deposits = [dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", erp_id="W2", on=date(2026, 5, 29)),
                dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", erp_id="W1", on=date(2026, 5, 29))]
    res = reconcile_batch(deposits, invoices)
    assert [d.deposit_id for d in res.decisions] == ["W1", "W2"]  # date, then id
    assert res.decisions[0].kind is MatchKind.AUTO
    assert res.decisions[1].kind is not MatchKind.AUTO
    assert res.outstanding == {"12": 0}


def test_batch_pays_identical_invoices_in_turn() -> None:
    invoices = [yamada("APR", 55_000, issued=date(2026, 3, 31), due=date(2026, 4, 30)),
                yamada("MAY", 55_000, issued=date(2026, 4, 30), due=date(2026, 5, 31))]
    deposits = [dep(54_560, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", erp_id="W-MAY", on=date(2026, 5, 29)),
                dep(55_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", erp_id="W-APR", on=date(2026, 4, 28))]
    res = reconcile_batch(deposits, invoices)
    assert [(d.deposit_id, d.kind, d.allocations[0].invoice_id) for d in res.decisions] == [
        ("W-APR", MatchKind.AUTO, "APR"), ("W-MAY", MatchKind.AUTO, "MAY")]
    assert res.outstanding == {"APR": 0, "MAY": 0}
    assert res.count(MatchKind.AUTO) == 2


def test_batch_partial_then_remainder() -> None:
    policy = ReconciliationPolicy(auto_apply_partial=True)
    deposits = [dep(50_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", erp_id="W1", on=date(2026, 5, 20)),
                dep(59_780, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", erp_id="W2", on=date(2026, 5, 29))]
    res = reconcile_batch(deposits, [yamada()], policy)
    assert [d.kind for d in res.decisions] == [MatchKind.AUTO, MatchKind.AUTO]
    assert res.decisions[1].fee == 220 and res.outstanding == {"12": 0}


def test_batch_rejects_duplicate_deposit_ids() -> None:
    with pytest.raises(ValueError, match="duplicate deposit"):
        reconcile_batch([dep(1, "ｱ"), dep(2, "ｲ")], [yamada()])


def test_apply_refuses_a_stale_decision() -> None:
    rec = Reconciler([yamada()])
    d = rec.decide(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"))
    rec.apply(d)
    assert rec.outstanding("12") == 0
    with pytest.raises(ValueError, match="exceeds its outstanding"):
        rec.apply(d)


def test_decide_does_not_change_state() -> None:
    rec = Reconciler([yamada()])
    first = rec.decide(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"))
    assert rec.decide(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ")) == first
    assert rec.outstanding("12") == 110_000


def test_payments_for_an_applied_decision() -> None:
    deposit = dep(109_560, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ")
    d = reconcile_deposit(deposit, [yamada()])
    (p,) = payments_for(d, deposit)
    assert (p.invoice_erp_id, p.deposit_erp_id, p.amount, p.fee, p.paid_on) == ("12", "W1", 109_560, 440, PAID)


# ---------------------------------------------------------------------------------------------------
# inputs are validated


def test_policy_refuses_float_fees() -> None:
    with pytest.raises(ValidationError):
        ReconciliationPolicy(fee_whitelist={110.0})
    with pytest.raises(ValidationError):
        ReconciliationPolicy(fee_max=1100.5)


def test_open_invoice_refuses_outstanding_above_total_and_float_money() -> None:
    with pytest.raises(ValidationError):
        yamada(outstanding=120_000)
    with pytest.raises(ValidationError):
        inv("1", "P", "X", None, 1000.0)  # type: ignore[arg-type]


def test_duplicate_invoice_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate invoice"):
        Reconciler([yamada("1"), yamada("1")])


# ---------------------------------------------------------------------------------------------------
# the rules that keep AUTO safe


def test_two_partners_sharing_a_payer_name_need_approval_even_if_only_one_fits() -> None:
    denki_a = inv("1", "P-DENKI-A", "山田電機株式会社", "ヤマダデンキ", 44_000)
    denki_b = inv("2", "P-DENKI-B", "山田電気株式会社", "ヤマダデンキ", 300_000)  # its partial would look the same
    d = reconcile_deposit(dep(44_000, "ﾔﾏﾀﾞﾃﾞﾝｷ(ｶ"), [denki_a, denki_b])
    assert d.kind is MatchKind.NEEDS_APPROVAL and ReasonCode.SHARED_PAYER_NAME in d.reasons
    allow = ReconciliationPolicy(auto_apply_shared_payer_name=True)
    assert reconcile_deposit(dep(44_000, "ﾔﾏﾀﾞﾃﾞﾝｷ(ｶ"), [denki_a, denki_b], allow).kind is MatchKind.AUTO


def test_look_alike_partner_without_kana_blocks_auto_when_it_fits_too() -> None:
    visible = inv("1", "P-INOUE-KI", "株式会社井上電気", "イノウエデンキ", 6_600)
    blind = inv("2", "P-INOUE-KI2", "株式会社井上電機", None, 6_600)  # no フリガナ: invisible to bank names
    d = reconcile_deposit(dep(6_160, "ｲﾉｳｴﾃﾞﾝｷ(ｶ"), [visible, blind])
    assert d.kind is MatchKind.NEEDS_APPROVAL and ReasonCode.LOOKALIKE_WITHOUT_KANA in d.reasons
    assert "P-INOUE-KI2" in {a.partner_id for a in d.alternatives}
    other_amount = inv("2", "P-INOUE-KI2", "株式会社井上電機", None, 9_900)
    assert reconcile_deposit(dep(6_160, "ｲﾉｳｴﾃﾞﾝｷ(ｶ"), [visible, other_amount]).kind is MatchKind.AUTO


def test_a_shared_industry_word_does_not_make_names_similar() -> None:
    assert name_similarity("ヤマダシヨウジ", "ヤマダシヨウテン") == 80.0  # 山田商事 / 山田商店: confusable
    assert name_similarity("ヤマダホルデイングス", "ハヤシホルデイングス") < 50  # 山田HD / 林HD: not
    hd = inv("1", "P-YAMADA-HD", "山田ホールディングス株式会社", "ヤマダホールディングス", 6_600)
    hayashi = inv("2", "P-HAYASHI-HD", "林ホールディングス株式会社", "ハヤシホールディングス", 6_600)
    d = reconcile_deposit(dep(6_600, "ﾔﾏﾀﾞ ﾎｰﾙﾃﾞｨﾝｸﾞｽ(ｶ"), [hd, hayashi])
    assert d.kind is MatchKind.AUTO and d.partner_id == "P-YAMADA-HD"


def test_a_small_invoice_swallowed_as_a_fee_is_not_a_second_reading() -> None:
    # {big} exactly, or {big, ¥1,100 invoice} less a "fee" of ¥1,100: the first is the reading
    invoices = [yamada("BIG", 772_200), yamada("SMALL", 1_100)]
    d = reconcile_deposit(dep(772_200, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices)
    assert d.kind is MatchKind.AUTO and d.proposal.invoice_ids == ("BIG",) and d.alternatives == ()


def test_combined_payment_among_many_open_invoices_is_not_conclusive() -> None:
    amounts = [1_000 + 937 * i for i in range(30)]
    invoices = [yamada(f"I{i:02d}", a) for i, a in enumerate(amounts)]
    target = amounts[3] + amounts[17] + amounts[25]
    d = reconcile_deposit(dep(target, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices)
    assert d.kind is MatchKind.NEEDS_APPROVAL
    assert {ReasonCode.COMBINATION_RISK, ReasonCode.AMBIGUOUS_ALLOCATION, ReasonCode.SEARCH_LIMIT} & set(d.reasons)


def test_combined_payment_never_includes_an_invoice_issued_after_the_deposit() -> None:
    invoices = [yamada("APR", 50_000), yamada("AUG", 60_000, issued=date(2026, 8, 31), due=date(2026, 9, 30))]
    d = reconcile_deposit(dep(110_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices)
    assert d.kind is MatchKind.NEEDS_APPROVAL and d.proposal.fit is not FitKind.COMBINED


def test_fuzzy_names_auto_apply_only_when_the_policy_says_so() -> None:
    long_name = inv("1", "P-LONG", "株式会社山田エンジニアリングサービス", "ヤマダエンジニアリングサービス", 330_000)
    payer = "ｶ)ﾔﾏﾀﾞｴﾝｼﾞﾆｱﾘﾝｸﾞｻｰﾋﾞ"  # last character lost
    d = reconcile_deposit(dep(330_000, payer), [long_name])
    assert d.proposal.name_evidence is NameEvidence.PREFIX and d.kind is MatchKind.AUTO  # cut at the end
    fuzzy = reconcile_deposit(dep(330_000, "ｶ)ﾔﾏﾀﾞｴﾝｼﾞﾆﾔﾘﾝｸﾞｻﾋﾞｽ"), [long_name])  # ﾆｱ misspelt ﾆﾔ
    assert fuzzy.kind is MatchKind.NEEDS_APPROVAL and ReasonCode.NAME_APPROXIMATE in fuzzy.reasons
    allowed = ReconciliationPolicy(auto_apply_fuzzy_names=True, auto_apply_threshold=0.8)
    assert reconcile_deposit(dep(330_000, "ｶ)ﾔﾏﾀﾞｴﾝｼﾞﾆﾔﾘﾝｸﾞｻﾋﾞｽ"), [long_name], allowed).kind is MatchKind.AUTO


def test_payer_that_only_starts_with_a_customer_name_needs_approval() -> None:
    nippon = inv("1", "P-NIPPON", "株式会社日本物流", "ニッポンブツリュウ", 44_000)
    d = reconcile_deposit(dep(44_000, "ｶ)ﾆﾂﾎﾟﾝﾌﾞﾂﾘﾕｳｾﾝﾀ-"), [nippon])  # 日本物流センター: maybe another company
    assert d.kind is MatchKind.NEEDS_APPROVAL and d.proposal.name_evidence is NameEvidence.PREFIX


def test_a_fee_as_large_as_an_invoice_is_not_a_fee() -> None:
    invoices = [yamada("A", 300), yamada("B", 300), yamada("C", 300)]
    d = reconcile_deposit(dep(240, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), invoices)  # 900 − 660 "fee" would leave B and C unpaid
    assert d.kind is MatchKind.NEEDS_APPROVAL and d.proposal.fit is FitKind.PARTIAL
    for cand in [d.proposal, *d.alternatives]:
        assert all(a.applied > 0 and a.cleared <= a.outstanding_before for a in cand.allocations)
        assert cand.applied_total + cand.overpayment <= 240
    ok = reconcile_deposit(dep(1_000 + 300 - 220, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada("A", 300), yamada("D", 1_000)])
    assert ok.kind is MatchKind.AUTO and [(a.invoice_id, a.applied, a.fee) for a in ok.allocations] == [
        ("A", 300, 0), ("D", 780, 220)]


def test_name_hits_blocked_and_exhaustive_agree_on_a_small_book() -> None:
    rec = Reconciler([yamada(), shoten(), inv("9", "P-X", "株式会社田中建設", "タナカケンセツ", 1_000)])
    fast = [(h.partner_id, h.evidence) for h in rec.name_hits("ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ")]
    assert fast == [(h.partner_id, h.evidence) for h in rec.name_hits("ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", exhaustive=True)]
    assert fast == [("P-YAMADA", NameEvidence.KANA), ("P-SHOTEN", NameEvidence.FUZZY)]


def test_decision_round_trips_through_json_for_the_approval_queue() -> None:
    d = reconcile_deposit(dep(50_000, "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"), [yamada(), shoten()])
    assert MatchDecision.model_validate_json(d.model_dump_json()) == d
    assert d.model_dump()["proposal"]["partial"] is True
