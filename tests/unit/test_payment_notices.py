"""The payment-notice rule (domain.payment_notices) on worked examples."""

from __future__ import annotations

from datetime import date

import pytest

from renkei.domain.payment_notices import (Notice, NoticeRules, SettledDeposit, comparable_payer, evidence, invoice_key,
                                           match_notices, overdue, payer_key)

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
