"""The payment-notice rule (domain.payment_notices) on worked examples."""

from __future__ import annotations

from datetime import date

import pytest

from renkei.domain.payment_notices import (Notice, NoticeRules, SettledDeposit, comparable_payer, evidence, how_settled,
                                           invoice_key, match_notices, overdue, paid_in_erp, payer_key)

KEY = b"k" * 32
YAMADA = payer_key("ｶ)ﾔﾏﾀﾞｼｮｳｼﾞ", KEY)
SUZUKI = payer_key("ｽｽﾞｷ ﾀﾛｳ", KEY)
D = date(2026, 12, 1)


def day(n: int) -> date:
    return date(2026, 12, n)


def test_payer_forms_and_keys():
    # the bank's half-width kana with its company mark and the same name written in full-width kana agree
    assert payer_key("ヤマダショウジ（カ", KEY) == YAMADA and YAMADA.startswith("hmac-sha256:")
    assert "ヤマダ" not in YAMADA and payer_key("ｶ)ﾔﾏﾀﾞｼｮｳｼﾞ", b"x" * 32) != YAMADA  # keyed
    # kanji, a masked name or nothing cannot be compared with a bank line: no key, no evidence either way
    assert comparable_payer("山田商事株式会社") is None and comparable_payer("山***") is None
    assert payer_key(None, KEY) is None and payer_key("", KEY) is None
    assert invoice_key(" inv-0001 ") == invoice_key("ＩＮＶ０００１") == "INV0001"


def test_worked_example_of_the_module_docstring():
    notices = [Notice("N1", 55_000, day(1), payer_key=YAMADA), Notice("N2", 55_000, day(1))]
    deposits = [SettledDeposit("D1", 55_000, day(2), payer_key=YAMADA),
                SettledDeposit("D2", 55_000, day(3), payer_key=SUZUKI)]
    assert evidence(notices[0], deposits[1], NoticeRules()) is None  # payer differs
    got = {(m.notice_key, m.deposit_id): m.evidence for m in match_notices(notices, deposits)}
    assert got == {("N1", "D1"): ("amount", "day+1", "payer"), ("N2", "D2"): ("amount", "day+2")}


@pytest.mark.parametrize("deposit, why", [
    (SettledDeposit("D", 54_560, day(2)), "a fee deducted: another amount"),
    (SettledDeposit("D", 55_000, day(7)), "booked 6 days after the notice (5 allowed)"),
    (SettledDeposit("D", 55_000, date(2026, 11, 28)), "3 days before the notice (2 allowed)"),
    (SettledDeposit("D", 55_000, day(2), invoice_numbers=("INV-0002",)), "applied to another invoice"),
])
def test_no_match(deposit, why):
    n = Notice("N", 55_000, day(1), invoice_number="INV-0001")
    assert match_notices([n], [deposit]) == [], why


def test_edges_of_the_window_and_the_invoice_number_match():
    n = Notice("N", 55_000, day(3), invoice_number="inv 0001")
    assert [m.deposit_id for m in match_notices([n], [SettledDeposit("D", 55_000, day(1))])] == ["D"]  # -2
    assert [m.deposit_id for m in match_notices([n], [SettledDeposit("D", 55_000, day(8))])] == ["D"]  # +5
    # two deposits of the amount: the one applied to the named invoice wins over the closer day
    m, = match_notices([n], [SettledDeposit("near", 55_000, day(3)),
                             SettledDeposit("inv", 55_000, day(4), invoice_numbers=("INV-0001",))])
    assert (m.deposit_id, m.evidence) == ("inv", ("amount", "day+1", "invoice"))


def test_ties_stay_open_both_ways():
    # two equal deposits for one notice: which one is the announced money is not known → no match
    n = Notice("N", 10_000, day(1))
    assert match_notices([n], [SettledDeposit("A", 10_000, day(2)), SettledDeposit("B", 10_000, day(2))]) == []
    # two equal notices for one deposit: no match either
    assert match_notices([Notice("N1", 10_000, day(1)), Notice("N2", 10_000, day(1))],
                         [SettledDeposit("A", 10_000, day(2))]) == []
    # but the closer day decides, and each deposit closes one notice only
    got = match_notices([Notice("N1", 10_000, day(1)), Notice("N2", 10_000, day(5))],
                        [SettledDeposit("A", 10_000, day(1)), SettledDeposit("B", 10_000, day(5))])
    assert [(m.notice_key, m.deposit_id) for m in got] == [("N1", "A"), ("N2", "B")]


def test_overdue_after_the_grace_days():
    rules = NoticeRules(days_before=2, days_after=5, unmatched_after_days=7)
    n = Notice("N", 1, day(1))
    assert not overdue(n, day(8), rules) and overdue(n, day(9), rules)
    with pytest.raises(ValueError):
        NoticeRules(days_after=-1)


def test_an_invoice_paid_in_the_erp_is_settled_money_by_the_same_rule():
    # the rise of its paid amount over what is accounted for, on its payment day, named by its number
    first = paid_in_erp("77", "INV-0007", 30_000, day(2), accounted=0)
    assert first == SettledDeposit("invoice:77:30000", 30_000, day(2), None, ("INV-0007",))
    rest = paid_in_erp("77", "INV-0007", 55_000, day(6), accounted=30_000)  # the second instalment
    assert (rest.deposit_id, rest.amount) == ("invoice:77:55000", 25_000)
    assert paid_in_erp("77", "INV-0007", 55_000, day(6), accounted=55_000) is None  # Renkei's own / seen
    assert paid_in_erp("77", None, 55_000, None, accounted=0) is None  # no payment day
    assert (how_settled(rest.deposit_id), how_settled("wallet-991")) == ("paid_in_erp", "reconciled_by_renkei")
    # matched like a bank line: a pair only when each is the other's single best
    n = Notice("N", 25_000, day(5), invoice_number="inv-0007")
    assert [(m.deposit_id, m.evidence) for m in match_notices([n], [rest])] == [
        ("invoice:77:55000", ("amount", "day+1", "invoice"))]
    assert match_notices([Notice("N", 25_000, day(5))],
                         [rest, SettledDeposit("line", 25_000, day(6))]) == []  # a tie: stays open
