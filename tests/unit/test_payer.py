"""Bank payer names: the documented normalisation of a bank description, and who is an individual
(masked wherever a person or a log sees the name) — domain/payer.py (issue #11, classes 3 and 9)."""

from __future__ import annotations

from datetime import date

import pytest

from renkei.domain.model import BankDeposit
from renkei.domain.payer import PAYER_NAME_MAX, is_organisation_payer, payer_display, payer_name_from_bank, redact_payer


@pytest.mark.parametrize(("raw", "name"), [
    ("ｶ)ﾔﾏﾀﾞ\tｼﾖｳｼﾞ\n", "ｶ)ﾔﾏﾀﾞ ｼﾖｳｼﾞ"),  # tab / newline → space, ends trimmed
    ("ﾔﾏﾀﾞ😀ｼﾖｳｼﾞ(ｶ", "ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ"),  # emoji dropped
    ("ﾔﾏﾀﾞ\r\n\x00\x1bｼﾖｳｼﾞ", "ﾔﾏﾀﾞ ｼﾖｳｼﾞ"),  # control characters → one space (folded)
    ("ﾔﾏﾀﾞ\u2028ｼﾖｳｼﾞ\u3000\u3000(ｶ", "ﾔﾏﾀﾞ ｼﾖｳｼﾞ (ｶ"),  # line separator, full-width spaces folded
    ("ﾔ\u200dﾏ\u202eﾀﾞ\ufeff", "ﾔﾏﾀﾞ"),  # zero-width joiner, bidi override, BOM dropped
    ("👨‍👩‍👧 1️⃣ 🇯🇵 ★ｶ)ABC", "1 ｶ)ABC"),  # emoji sequences, keycaps, flags, dingbats
    ("\ue000ｶ)ABC\U000f0000", "ｶ)ABC"),  # private use dropped
    (None, ""),
    ("", ""),
])
def test_bank_description_becomes_a_payer_name(raw, name) -> None:
    assert payer_name_from_bank(raw) == name
    BankDeposit(erp_id="1", received_on=date(2026, 12, 1), amount=1, payer_name=payer_name_from_bank(raw))


def test_long_description_is_cut_to_the_model_limit() -> None:
    raw = "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ " + "ｱ" * 400
    name = payer_name_from_bank(raw)
    assert len(name) == PAYER_NAME_MAX and name.startswith("ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ ｱ")
    BankDeposit(erp_id="1", received_on=date(2026, 12, 1), amount=1, payer_name=name)


def test_any_text_becomes_a_valid_payer_name() -> None:
    every = "".join(chr(c) for c in range(0, 0x3000)) + "".join(chr(c) for c in range(0x1F000, 0x1FB00))
    for i in range(0, len(every), 200):
        name = payer_name_from_bank(every[i:i + 200])
        BankDeposit(erp_id="1", received_on=date(2026, 12, 1), amount=1, payer_name=name)


@pytest.mark.parametrize("name", [
    "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", "ﾐﾂﾊｼｻﾝｷﾞﾖｳ(ｶ", "ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ)ﾄｳｷﾖｳｼﾃﾝ", "ｶﾌﾞｼｷｶﾞｲｼﾔ ﾔﾏﾀﾞｼﾖｳｼﾞ", "ﾄﾞ)ｻｸﾗﾃﾞｻﾞｲﾝ",
    "ｺﾞｳﾄﾞｳｶﾞｲｼﾔ ｻｸﾗﾃﾞｻﾞｲﾝ", "ﾕ)ﾔﾏﾀﾞｼﾖｳﾃﾝ", "株式会社山田商事", "(株)山田商事", "ABC Co., Ltd.", "振込 カ）ABC",
    "ﾀﾅｶｶｲｹｲｼﾞﾑｼﾖ", "ｹﾝｺｳﾎｹﾝｸﾐｱｲ", "ﾘｿｸ", "ｺｸｾﾞｲ ｶﾝﾌﾟｷﾝ", "ATM ﾆﾕｳｷﾝ",
])
def test_organisations_stay_readable(name: str) -> None:
    assert is_organisation_payer(name)
    assert payer_display(name) == name


@pytest.mark.parametrize(("name", "shown"), [
    ("ﾆｼﾑﾗ ｹﾝｲﾁ", "ﾆ***"), ("ｽｽﾞｷ ｲﾁﾛｳ", "ｽ***"), ("ﾀﾅｶ ﾊﾅｺ", "ﾀ***"), ("ヤマダタロウ", "ヤ***"),
    ("1234567890 ﾆｼﾑﾗ ｹﾝｲﾁ", "1***"),  # a 依頼人番号 does not make a person a company
    ("ﾔﾏﾀﾞ ｼﾖｳｼﾞ", "ﾔ***"),  # 山田昭二 — or 山田商事 without its legal form: masking is the safe mistake
])
def test_individuals_are_masked(name: str, shown: str) -> None:
    assert not is_organisation_payer(name)
    assert payer_display(name) == shown


def test_redact_replaces_the_individual_in_a_text() -> None:
    text = "振込名義 ﾆｼﾑﾗ ｹﾝｲﾁ matches no partner (名義不一致); 入金承認 ﾆｼﾑﾗ ｹﾝｲﾁ"
    assert redact_payer(text, "ﾆｼﾑﾗ ｹﾝｲﾁ") == "振込名義 ﾆ*** matches no partner (名義不一致); 入金承認 ﾆ***"
    assert redact_payer("振込名義 ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ = …", "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ") == "振込名義 ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ = …"
