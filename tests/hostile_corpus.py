"""Hostile-input corpus: records no sane system would hold, fed through the vendor APIs (HubSpot companies,
deals, line items; freee bank lines), each with the end state it must reach after customer-sync,
order-to-invoice and payment-writeback:

* ``written(...)`` — it lands, and the value in freee / HubSpot is checked;
* ``review(codes)`` — exactly one open review item for it, with one of ``codes`` (``ANY`` where several
  reason codes are legitimate);
* ``ignored(rule)`` — nothing written and no review item, by the documented rule named;
* ``rejected`` may be allowed on top: the vendor API itself refuses the record (then it never exists).

Companies without a freee counterpart are created in freee by customer-sync (取引先コード ``HS-<id>``).
Deals and lines hang off one clean customer (``CLEAN``) registered in both systems, so the only thing
wrong with a deal is what the record says. Bank lines either pay one clean deal (payer = the customer's
kana) or match nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ANY = ("*",)

# the clean customer every deal record uses
CLEAN_NAME = "株式会社コーパス商事"
CLEAN_KANA = "コーパスショウジ"
CLEAN_CORP = "7010705000725"
CLEAN_PAYER = "ｶ)ｺ-ﾊﾟｽｼﾖｳｼﾞ"
CLEAN_EMAIL = "keiri@corpus-shoji.example.jp"

# personal values the corpus itself brings in (for the personal-data scan)
INDIVIDUAL_KANA = "ﾆｼﾑﾗ ｹﾝｲﾁ"
INDIVIDUAL_EMAIL = "kenichi.nishimura@corpus-private.example.jp"
INDIVIDUAL_PHONE = "090-1234-5678"


@dataclass(frozen=True)
class Expect:
    state: str  # "written" | "review" | "ignored"
    codes: tuple[str, ...] = ()
    rule: str = ""
    value: dict[str, Any] = field(default_factory=dict)
    rejected_ok: bool = False
    """The vendor API may refuse the record outright (it then never exists, which is fine)."""
    or_review: bool = False
    """Written — or, where the canonical model's text rule (no control characters or emoji, ≤ 255
    characters: ``domain.model.clean_text``) refuses the raw value, exactly one open review item instead."""


def written(rejected_ok: bool = False, or_review: bool = False, **value: Any) -> Expect:
    return Expect("written", value=value, rejected_ok=rejected_ok, or_review=or_review)


def review(*codes: str, rejected_ok: bool = False, without: dict[str, Any] | None = None) -> Expect:
    """``without={"email": "x"}``: the record may still land with that field left out (documented in
    ``tasks/customers.py``: a finding outside the name drops only that field), but never with the value."""
    return Expect("review", codes=codes or ANY, rejected_ok=rejected_ok, value={"without": without or {}})


def ignored(rule: str, rejected_ok: bool = False) -> Expect:
    return Expect("ignored", rule=rule, rejected_ok=rejected_ok)


@dataclass(frozen=True)
class Rec:
    key: str
    kind: str  # "company" | "deal" | "line" | "bank"
    note: str
    data: dict[str, Any]
    expect: Expect


LONG = "長" * 10_000
CTRL = "\x07\x1b"
RTL = "\u202e"
ZW = "\u200b"

# ---------------------------------------------------------------------------------------------- companies
_C = [
    ("C01", "plain company (control record)", {"name": "株式会社コーパス正常", "renkei_billing_email": "keiri@seijo.example.jp"},
     written(name="株式会社コーパス正常", email="keiri@seijo.example.jp")),
    ("C02", "control characters in the name", {"name": f"株式会社制御{CTRL}文字"}, review()),
    ("C03", "tab in the name", {"name": "株式会社\tタブ"}, review()),
    ("C04", "newline in the name", {"name": "株式会社\n改行"}, review()),
    ("C05", "emoji in the name (domain.model.clean_text refuses emoji)", {"name": "株式会社スマイル😀"}, review()),
    ("C06", "10,000-character name", {"name": "株式会社" + LONG}, review()),
    ("C07", "right-to-left override in the name", {"name": f"株式会社{RTL}逆順"}, review()),
    ("C08", "zero-width space in the name (clean_text allows U+200B)", {"name": f"株式会社ゼロ{ZW}幅"},
     written(name=f"株式会社ゼロ{ZW}幅")),
    ("C09", "HTML in the name", {"name": "<b>株式会社エイチティー</b>"}, review("MARKUP_IN_TEXT")),
    ("C10", "markdown link as the name", {"name": "[株式会社マークダウン](http://evil.example)"}, review("MARKUP_IN_TEXT")),
    ("C11", "script tag in the name", {"name": "<script>alert(1)</script>株式会社スクリプト"}, review("MARKUP_IN_TEXT")),
    ("C12", "spreadsheet formula as the name", {"name": '=HYPERLINK("http://evil.example","株式会社数式")'},
     review("MARKUP_IN_TEXT")),
    ("C13", "SQL-ish name is just text", {"name": "株式会社'); DROP TABLE partners;--"},
     written(name="株式会社'); DROP TABLE partners;--")),
    ("C14", "invalid billing e-mail not-an-email@@",
     {"name": "株式会社メール不正", "renkei_billing_email": "not-an-email@@"},
     review("EMAIL_INVALID", without={"email": "not-an-email@@"})),
    ("C15", "billing e-mail with two @", {"name": "株式会社ダブルアット", "renkei_billing_email": "keiri@@example.jp"},
     review("EMAIL_INVALID", without={"email": "keiri@@example.jp"})),
    ("C16", "lone ampersand is a legal name", {"name": "A&B株式会社"}, written(name="A&B株式会社")),
    ("C17", "ideographic space in the name", {"name": "株式会社　全角空白"}, written(name="株式会社　全角空白")),
    ("C18", "markdown emphasis in the name", {"name": "**株式会社強調**"}, review("MARKUP_IN_TEXT")),
    ("C19", "an individual's private e-mail as billing address (sole trader)",
     {"name": "西村デザイン工房", "renkei_billing_email": INDIVIDUAL_EMAIL, "phone": INDIVIDUAL_PHONE,
      "renkei_entity_kind": "sole_trader"},
     written(name="西村デザイン工房", email=INDIVIDUAL_EMAIL)),
    ("C20", "HTML entity in the name", {"name": "株式会社&lt;エンティティ&gt;"}, review("MARKUP_IN_TEXT")),
]

# ---------------------------------------------------------------------------------------------- deals
# line shorthand: (name, quantity, price, extra props)
def _l(name: str = "保守サービス", quantity: Any = 1, price: Any = 10_000, **extra: Any) -> dict:
    return {"name": name, "quantity": quantity, "price": price, "renkei_tax_category": "standard_10", **extra}


_D = [
    ("D01", "clean deal (control record)", {"dealname": "コーパス 通常案件", "lines": [_l(price=12_345)]},
     written(total=13_579)),
    ("D02", "closed in 1900", {"dealname": "コーパス 1900年", "closedate": "1900-01-01T00:00:00.000Z",
                                "lines": [_l(price=10_001)]}, review("DATE_OUT_OF_RANGE", rejected_ok=True)),
    ("D03", "closed in 2100", {"dealname": "コーパス 2100年", "closedate": "2100-01-01T00:00:00.000Z",
                                "lines": [_l(price=10_002)]}, review("DATE_OUT_OF_RANGE")),
    ("D04", "¥0 deal", {"dealname": "コーパス ゼロ円", "lines": [_l(price=0)], "amount": 0},
     review("ZERO_OR_NEGATIVE_TOTAL")),
    ("D05", "negative price", {"dealname": "コーパス マイナス", "lines": [_l(price=-5_000)], "amount": -5_000},
     review(rejected_ok=True)),
    ("D06", "no company associated", {"dealname": "コーパス 会社なし", "company": None, "lines": [_l(price=10_003)]},
     review("NO_COMPANY")),
    ("D07", "won deal with no line items", {"dealname": "コーパス 明細なし", "lines": [], "amount": 10_000},
     review("NO_LINE_ITEMS")),
    ("D08", "duplicate deal name (1 of 2)", {"dealname": "コーパス 重複名", "lines": [_l(price=10_004)]},
     written(total=11_004)),
    ("D09", "duplicate deal name (2 of 2)", {"dealname": "コーパス 重複名", "lines": [_l(price=10_005)]},
     written(total=11_005)),
    ("D10", "SQL-ish deal name", {"dealname": "x'; DELETE FROM review_item; --", "lines": [_l(price=10_006)]},
     written(total=11_006)),
    ("D11", "10,000-character deal name (names ≤ 255)", {"dealname": "案件" + LONG, "lines": [_l(price=10_007)]},
     written(total=11_007, or_review=True)),
    ("D12", "emoji in the deal name", {"dealname": "コーパス 🎉 記念案件", "lines": [_l(price=10_008)]},
     written(total=11_008, or_review=True)),
    ("D13", "tab and newline in the deal name", {"dealname": "コーパス\t改行\n案件", "lines": [_l(price=10_009)]},
     written(total=11_009, or_review=True)),
    ("D14", "amount 10^15", {"dealname": "コーパス 巨額", "lines": [_l(price=10**15)], "amount": 10**15},
     review(rejected_ok=True)),
    ("D15", "deal amount not a number", {"dealname": "コーパス 金額文字", "lines": [_l(price=10_010)], "amount": "abc"},
     written(total=11_011, rejected_ok=True)),
    ("D16", "deal amount disagrees with its lines", {"dealname": "コーパス 金額不一致", "lines": [_l(price=4_000)],
                                                    "amount": 5_000}, review("AMOUNT_MISMATCH")),
    ("D17", "currency USD", {"dealname": "コーパス ドル建て", "lines": [_l(price=10_011)], "deal_currency_code": "USD"},
     review("NON_JPY_CURRENCY")),
    ("D18", "deal on the company with an invalid e-mail", {"dealname": "コーパス 不正メール先", "company": "C14",
                                                          "lines": [_l(price=10_012)]}, review()),
    ("D19", "deal on the company with HTML in its name", {"dealname": "コーパス HTML社", "company": "C09",
                                                         "lines": [_l(price=10_013)]}, review()),
    ("D20", "HTML in the deal name", {"dealname": "<img src=x onerror=alert(1)>案件", "lines": [_l(price=10_014)]},
     review("MARKUP_IN_TEXT")),
    ("D21", "closed-lost deal with a hostile line is not read", {"dealname": "コーパス 失注", "dealstage": "closedlost",
                                                                "lines": [_l(price=-1, discount=99)]},
     ignored("order-to-invoice reads won stages only (probability 1.0)", rejected_ok=True)),
    ("D22", "RTL override and zero-width space in the deal name",
     {"dealname": f"コーパス{RTL}逆{ZW}案件", "lines": [_l(price=10_015)]}, review()),
    ("D23", "clean deal paid by a bank line with a control character", {"dealname": "コーパス 入金先A",
                                                                        "lines": [_l(price=10_016)]},
     written(total=11_017)),
    ("D24", "clean deal paid by a bank line with an emoji", {"dealname": "コーパス 入金先B", "lines": [_l(price=10_017)]},
     written(total=11_018)),
    ("D25", "clean deal paid by a 300-character bank line", {"dealname": "コーパス 入金先C",
                                                             "lines": [_l(price=10_018)]}, written(total=11_019)),
]

# ---------------------------------------------------------------------------------------------- line items
# each line sits alone on its own won deal of the clean customer; the record's end state is that deal's
_L = [
    ("L01", "discount greater than the price", {"line": _l(price=1_000, discount=1_500)}, review()),
    ("L02", "quantity 0", {"line": _l(quantity=0, price=10_100)}, review()),
    ("L03", "negative quantity", {"line": _l(quantity=-2, price=10_101)}, review(rejected_ok=True)),
    ("L04", "fractional quantity 1.5 × ¥20,000", {"line": _l(quantity="1.5", price=20_000)}, written(total=33_000)),
    ("L05", "float-looking price 1e3 (a HubSpot number: 1000, or refused)", {"line": _l(price="1e3")},
     written(total=1_100, or_review=True, rejected_ok=True)),
    ("L06", "fractional yen price 12.5", {"line": _l(quantity=2, price="12.5")}, review(rejected_ok=True)),
    ("L07", "non-numeric price", {"line": _l(price="abc")}, review(rejected_ok=True)),
    ("L08", "price 10^15", {"line": _l(price=10**15)}, review(rejected_ok=True)),
    ("L09", "discount percentage 150", {"line": _l(price=10_102, hs_discount_percentage=150)}, review(rejected_ok=True)),
    ("L10", "negative discount percentage", {"line": _l(price=10_103, hs_discount_percentage=-10)},
     review(rejected_ok=True)),
    ("L11", "control characters in the line name", {"line": _l(name=f"保守{CTRL}", price=10_104)}, review()),
    ("L12", "emoji in the line name", {"line": _l(name="保守🔧サービス", price=10_105)},
     written(total=11_115, or_review=True)),
    ("L13", "10,000-character line name", {"line": _l(name="品" * 10_000, price=10_106)},
     written(total=11_116, or_review=True)),
    ("L14", "script in the line name", {"line": _l(name="<script>alert(1)</script>", price=10_107)},
     review("MARKUP_IN_TEXT")),
    ("L15", "formula in the line name", {"line": _l(name="=cmd|' /C calc'!A0", price=10_108)}, review("MARKUP_IN_TEXT")),
    ("L16", "unknown tax category", {"line": _l(price=10_109, renkei_tax_category="standard_99")},
     review(rejected_ok=True)),
    ("L17", "tab and newline in the line name", {"line": _l(name="保守\tサービス\n11月", price=10_110)},
     written(total=11_121, or_review=True)),
]

# ---------------------------------------------------------------------------------------------- bank lines
# pays: the deal record whose invoice the deposit pays in full (its total), else an unmatched amount
_B = [
    ("B01", "legitimate deposit (control record)", {"description": f"振込 {CLEAN_PAYER}", "pays": "D08"},
     written(payment_status="paid")),
    ("B02", "tab in the payer description, pays an invoice", {"description": f"振込\t{CLEAN_PAYER}", "pays": "D09"},
     written(payment_status="paid", or_review=True)),
    ("B03", "newline in the description, pays an invoice", {"description": f"振込\n{CLEAN_PAYER}", "pays": "D10"},
     written(payment_status="paid", or_review=True)),
    ("B04", "control character in the description, pays an invoice",
     {"description": f"振込{CTRL}{CLEAN_PAYER}", "pays": "D23"}, written(payment_status="paid", or_review=True)),
    ("B05", "emoji in the description, pays an invoice", {"description": f"振込 {CLEAN_PAYER} 🙏", "pays": "D24"},
     written(payment_status="paid", or_review=True)),
    ("B06", "300-character description, pays an invoice",
     {"description": f"振込 {CLEAN_PAYER} " + "ﾒﾓ" * 150, "pays": "D25"}, written(payment_status="paid", or_review=True)),
    ("B07", "an individual's kana name, nothing to pay", {"description": f"振込 {INDIVIDUAL_KANA}", "amount": 7_777},
     review()),
    ("B08", "tab, nothing to pay", {"description": "振込\tﾌﾒｲ", "amount": 7_778}, review()),
    ("B09", "newline, nothing to pay", {"description": "振込\nﾌﾒｲ", "amount": 7_779}, review()),
    ("B10", "emoji only", {"description": "💴💴💴", "amount": 7_780}, review()),
    ("B11", "300 characters, nothing to pay", {"description": "ｱ" * 300, "amount": 7_781}, review()),
    ("B12", "empty description", {"description": "", "amount": 7_782}, review()),
    ("B13", "HTML in the description", {"description": "<script>alert(1)</script>", "amount": 7_783}, review()),
    ("B14", "deposit dated 1900", {"description": f"振込 {CLEAN_PAYER}", "amount": 7_784, "date": "1900-01-02"},
     review(rejected_ok=True)),
    ("B15", "deposit dated 2100", {"description": f"振込 {CLEAN_PAYER}", "amount": 7_785, "date": "2100-01-02"},
     review(rejected_ok=True)),
    ("B16", "amount 10^15", {"description": f"振込 {CLEAN_PAYER}", "amount": 10**15}, review(rejected_ok=True)),
    ("B17", "¥0 bank line", {"description": "振込 ﾃｽﾄ", "amount": 0},
     ignored("payment-writeback matches bank lines with an amount left to match (> ¥0)", rejected_ok=True)),
    ("B18", "expense-side line", {"description": f"振込 {CLEAN_PAYER}", "amount": 7_786, "entry_side": "expense"},
     ignored("payment-writeback reads income lines only")),
    ("B19", "zero-width and RTL characters, nothing to pay", {"description": f"ﾌﾒｲ{ZW}{RTL}ﾒｲｷﾞ", "amount": 7_787},
     review()),
    ("B20", "legitimate deposit paying the fractional-quantity invoice", {"description": f"振込 {CLEAN_PAYER}",
                                                                         "pays": "L04"},
     written(payment_status="paid")),
]


def _records() -> list[Rec]:
    out = []
    for kind, rows in (("company", _C), ("deal", _D), ("line", _L), ("bank", _B)):
        for key, note, data, expect in rows:
            out.append(Rec(key, kind, note, data, expect))
    return out


CORPUS: list[Rec] = _records()
BY_KEY = {r.key: r for r in CORPUS}
assert len(CORPUS) >= 60 and len(BY_KEY) == len(CORPUS)
