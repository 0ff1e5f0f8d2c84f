"""Normalisation of names, kana, domains and phone numbers for matching (pure functions).

Examples (each is a unit test)::

    normalise_company_name("株式会社 山田商事")   == "山田商事"
    normalise_company_name("(株)山田商事")        == "山田商事"
    normalise_company_name("㈱山田商事")          == "山田商事"
    normalise_company_name("山田商事 株式会社")   == "山田商事"
    normalise_company_name("ﾔﾏﾀﾞｼｮｳｼﾞ ｶﾌﾞｼｷｶﾞｲｼｬ") == "ヤマダショウジ"
    normalise_company_name("ＡＢＣ　Ｃｏ．，Ｌｔｄ．") == "abc"
    normalise_kana("ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ")                == "ヤマダシヨウジ"
    normalise_kana("やまだしょうじ")              == "ヤマダシヨウジ"   (small kana written large)
"""

from __future__ import annotations

import re
import unicodedata

import jaconv

# Legal-form words (法人格) in kanji, after NFKC. Longest first so 一般社団法人 wins over 社団法人.
LEGAL_FORMS_KANJI = sorted(
    [
        "株式会社", "有限会社", "合同会社", "合名会社", "合資会社", "相互会社",
        "一般社団法人", "公益社団法人", "社団法人", "一般財団法人", "公益財団法人", "財団法人",
        "医療法人社団", "医療法人財団", "医療法人", "学校法人", "社会福祉法人", "特定非営利活動法人", "NPO法人",
        "独立行政法人", "宗教法人", "弁護士法人", "税理士法人", "司法書士法人", "行政書士法人", "農事組合法人",
    ],
    key=len,
    reverse=True,
)
# Abbreviations written in brackets: (株) (有) (同) (名) (資) (医) (財) (社) (学) (福) (特非) ...
LEGAL_ABBREV_KANJI = ["株", "有", "同", "名", "資", "医", "財", "社", "学", "福", "特非", "宗", "独"]
# Legal forms spelled in katakana (after small-kana folding; both spellings kept).
LEGAL_FORMS_KANA = sorted(
    [
        "カブシキガイシヤ", "カブシキカイシヤ", "ユウゲンガイシヤ", "ユウゲンカイシヤ", "ゴウドウガイシヤ",
        "ゴウドウカイシヤ", "ゴウメイガイシヤ", "ゴウシガイシヤ", "イツパンシヤダンホウジン",
        "イツパンザイダンホウジン", "シヤダンホウジン", "ザイダンホウジン", "イリヨウホウジン",
        "ガツコウホウジン", "シヤカイフクシホウジン", "トクテイヒエイリカツドウホウジン",
    ],
    key=len,
    reverse=True,
)
# 全銀 bank-name abbreviations (jp-invoicing-rules §5.3), after h2z: カ ユ ド メ シ イ ザイ シヤ ...
BANK_ABBREV_KANA = sorted(
    ["カ", "ユ", "ド", "メ", "シ", "イ", "ザイ", "シヤ", "シユウ", "ソ", "ガク", "フク", "トクヒ", "ドク",
     "ベン", "ゼイ", "シホウ", "ギヨ", "ノウ", "エイ", "シユツ"],
    key=len,
    reverse=True,
)
LEGAL_FORMS_LATIN = [
    "co., ltd.", "co.,ltd.", "co. ltd.", "co ltd", "company limited", "corporation", "corp.", "corp",
    "inc.", "inc", "ltd.", "ltd", "llc", "k.k.", "kk", "g.k.", "gk", "co.",
]

_SMALL_TO_LARGE = str.maketrans("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ")
_SPACES = re.compile(r"[\s\u3000]+")
_PUNCT = re.compile(r"[・･,，.．、。'\"`「」『』【】\[\]{}<>＜＞!！?？:：;；/／\\&＆＋+~〜_\-‐－−–—]")


def nfkc(value: str) -> str:
    """NFKC: full-width ASCII → half, half-width kana → full, ㈱ → (株), composed voiced marks."""
    return unicodedata.normalize("NFKC", value)


def fold_small_kana(value: str) -> str:
    """Write small kana large, as bank transfer names do (ショウ → シヨウ, ッ → ツ)."""
    return value.translate(_SMALL_TO_LARGE)


def to_katakana(value: str) -> str:
    return jaconv.hira2kata(nfkc(value))


def _strip_legal_forms(s: str) -> str:
    for abbr in LEGAL_ABBREV_KANJI:
        s = s.replace(f"({abbr})", " ")
    for word in LEGAL_FORMS_KANJI:
        s = s.replace(word, " ")
    return s


def normalise_company_name(name: str) -> str:
    """Key for comparing company names across systems.

    NFKC (width, ㈱ → (株)), lower case, legal-form words removed wherever they stand (株式会社 /
    (株) / ㈱ / カブシキガイシャ / Co., Ltd. ...), small kana folded, spaces and punctuation dropped.
    Returns ``""`` for a name made only of legal-form words.
    """
    s = nfkc(name).lower()
    s = _strip_legal_forms(s)
    for word in LEGAL_FORMS_LATIN:
        s = re.sub(rf"(^|\s|,){re.escape(word)}(?=$|\s|,)", " ", s)
    s = jaconv.hira2kata(s)
    s = fold_small_kana(s)
    s = _SPACES.sub(" ", s)
    tokens = [t for t in s.split(" ") if t]
    tokens = [t for t in tokens if t not in LEGAL_FORMS_KANA]
    s = "".join(tokens)
    for word in LEGAL_FORMS_KANA:  # glued to the name: ヤマダシヨウジカブシキガイシヤ
        if s.endswith(word) and len(s) > len(word):
            s = s[: -len(word)]
        if s.startswith(word) and len(s) > len(word):
            s = s[len(word):]
    s = _PUNCT.sub("", s)
    return s.replace("(", "").replace(")", "")


def normalise_kana(value: str, *, strip_legal_forms: bool = True) -> str:
    """Key for comparing reading / bank payer names (jp-invoicing-rules §5.4).

    NFKC → full-width katakana (hiragana too), small kana folded to large, spaces and ー dropped, then
    the company-type abbreviations in ``カ)``, ``(カ``, ``(カ)`` form and long katakana forms removed.
    """
    s = to_katakana(value).upper()
    s = fold_small_kana(s)
    s = _SPACES.sub("", s).replace("ー", "").replace("-", "")
    if strip_legal_forms:
        for ab in BANK_ABBREV_KANA:
            s = s.replace(f"({ab})", "")
            if s.startswith(f"{ab})"):
                s = s[len(ab) + 1:]
            if s.endswith(f"({ab}"):
                s = s[: -len(ab) - 1]
        for word in LEGAL_FORMS_KANA:
            s = s.replace(word, "")
    return re.sub(r"[()（）.,・/]", "", s)


def normalise_domain(value: str) -> str:
    """``https://www.Example.co.jp/about`` → ``example.co.jp``; ``""`` when nothing is left."""
    s = nfkc(value).strip().lower()
    s = re.sub(r"^[a-z]+://", "", s)
    s = s.split("/", 1)[0].split("?", 1)[0].split("@")[-1]
    s = s.split(":", 1)[0]
    if s.startswith("www."):
        s = s[4:]
    return s.strip(".")


def normalise_phone(value: str) -> str:
    """Digits only, ``+81`` written as a leading 0: ``+81 3-1234-5678`` → ``0312345678``."""
    s = nfkc(value)
    s = re.sub(r"\D", "", s.replace("+81", "0", 1) if s.strip().startswith("+81") else s)
    if s.startswith("00"):
        s = s[1:]
    return s


def mask_personal(value: str | None, keep: int = 1) -> str:
    """Mask personal data for logs and the audit log: ``山田太郎`` → ``山***``; e-mail keeps the domain."""
    if not value:
        return ""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:keep]}***@{domain}"
    return value[:keep] + "***"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}()#+!|~>-])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def safe_text(value: object, limit: int = 200) -> str:
    """Text as shown in a message, table or artifact: never renders as markup. HTML is escaped (``<b>`` →
    ``&lt;b&gt;``), markdown punctuation is backslash-escaped, control characters become one space and
    the text is cut at ``limit`` characters: ``<b>株式会社X</b>`` shows as written, not in bold."""
    import html

    s = _CONTROL.sub(" ", "" if value is None else str(value))
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return _MD_SPECIAL.sub(r"\\\1", html.escape(s, quote=False))
