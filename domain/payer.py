"""Bank payer names (振込依頼人名): from a raw bank description to the name used for matching, and how
much of it a person or a log may see — pure functions, no I/O.

A bank line's description is real-world data, not an error: a tab or a newline pasted by the bank's
system, an emoji typed into an online-banking form, a 300-character memo. :func:`payer_name_from_bank`
turns any description into a name the canonical :class:`domain.model.BankDeposit` accepts:

1. control characters (tab, newline, CR, other C0/C1 controls) and line / paragraph separators → one space;
2. emoji (and their joiners, variation selectors, skin-tone modifiers, keycaps) and other unprintable
   characters (format characters such as zero-width joiners / bidi overrides, surrogates, private use,
   unassigned code points) are dropped;
3. whitespace runs (ASCII and full-width U+3000) are folded into one ASCII space, the ends trimmed;
4. the result is cut to :data:`PAYER_NAME_MAX` characters (the model's limit).

Half-width kana stay as the bank printed them (matching keys are built later by
:func:`domain.reconciliation_index.payer_key`).

Personal data: an *individual* payer's name (``ﾆｼﾑﾗ ｹﾝｲﾁ``) is personal data and is masked wherever a
person or a log sees it (run names, review messages, logs, artifacts) — :func:`payer_display`. A
*company* payer (``ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ``, ``ﾐﾂﾊｼｻﾝｷﾞﾖｳ(ｶ``, ``ｶﾌﾞｼｷｶﾞｲｼﾔ ...``, ``株式会社…``, ``… Co., Ltd.``)
or an organisation (``…ｼﾞﾑｼﾖ`` 事務所, ``…ｸﾐｱｲ`` 組合, ``ﾘｿｸ`` 利息) stays readable.
:func:`is_organisation_payer` decides; anything it cannot recognise as an organisation counts as an
individual (masking too much is the safe mistake).

Worked examples (each is a unit test)::

    payer_name_from_bank("ｶ)ﾔﾏﾀﾞ\\tｼﾖｳｼﾞ\\n")   == "ｶ)ﾔﾏﾀﾞ ｼﾖｳｼﾞ"
    payer_name_from_bank("ﾔﾏﾀﾞ😀ｼﾖｳｼﾞ(ｶ")      == "ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ"
    payer_display("ﾆｼﾑﾗ ｹﾝｲﾁ")                 == "ﾆ***"
    payer_display("ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ")               == "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"
"""

from __future__ import annotations

import re
import unicodedata

from renkei.domain.model import _is_emoji  # the model's own emoji rule: what it refuses, this drops
from renkei.domain.normalise import (BANK_ABBREV_KANA, LEGAL_ABBREV_KANJI, LEGAL_FORMS_KANA, LEGAL_FORMS_KANJI,
                              fold_small_kana, mask_personal, nfkc)

PAYER_NAME_MAX = 255  # BankDeposit.payer_name (domain.model.Text) max_length

_WS = re.compile(r"[\s\u3000]+")
_EMOJI_EXTRA = ((0x1F1E6, 0x1F1FF), (0x1F3FB, 0x1F3FF), (0xFE00, 0xFE0F), (0xE0000, 0xE007F), (0xE0100, 0xE01EF))


def _dropped(ch: str) -> bool:
    """Emoji and unprintable characters: removed from the payer name."""
    cp = ord(ch)
    if _is_emoji(ch) or any(lo <= cp <= hi for lo, hi in _EMOJI_EXTRA) or cp == 0x20E3:
        return True
    return unicodedata.category(ch) in ("Cf", "Cs", "Co", "Cn")


def _spaced(ch: str) -> bool:
    """Control characters and line / paragraph separators: they separate words, so they become a space."""
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def payer_name_from_bank(description: str | None, max_length: int = PAYER_NAME_MAX) -> str:
    """The payer name of a bank line's description (module docstring, steps 1–4); never raises on text."""
    if not description:
        return ""
    out = []
    for ch in str(description):
        if _spaced(ch):
            out.append(" ")
        elif not _dropped(ch):
            out.append(ch)
    return _WS.sub(" ", "".join(out)).strip()[:max_length].rstrip()


# --- individual or organisation ---------------------------------------------------------------------

# words that make a payer an organisation, in full-width katakana after small-kana folding (as banks print)
ORGANISATION_WORDS_KANA = (
    "ジムシヨ",  # 事務所 (会計 / 税理士 / 法律)
    "クミアイ",  # 組合
    "キヨウカイ",  # 協会
    "ホウジン",  # 法人
    "ギンコウ", "シンキン", "シンクミ", "ロウキン",  # banks (利息 / 振替)
    "ゼイムシヨ", "シヤクシヨ", "クヤクシヨ", "ヤクバ", "ケンチヨウ", "トチヨウ", "コクゼイ", "チホウゼイ",  # 官公庁・税
    "リソク", "カンプ", "テスウリヨウ", "ネンキン", "ホケン", "キコウ", "センタ", "ダイガク", "ガツコウ",
    "ビヨウイン", "クリニツク", "シヨウカイ", "シヨウテン", "コウギヨウ", "サンギヨウ", "ケンセツ",
)
_LATIN_FORMS = re.compile(r"(?i)\b(?:co\.?,?\s*ltd|inc|corp(?:oration)?|llc|k\.?k\.?|g\.?k\.?|ltd|company|limited)\b")
_ABBREV_KANA = "|".join(re.escape(a) for a in BANK_ABBREV_KANA)
_BANK_FORM = re.compile(rf"(?:^|[\s(])(?:{_ABBREV_KANA})\)|\((?:{_ABBREV_KANA})(?:\)|$|\s)")
_NON_PERSON = re.compile(r"(?i)\bATM\b")  # machine / system lines


def _kana_form(name: str) -> str:
    s = nfkc(name).upper().replace("（", "(").replace("）", ")")
    s = "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in s)  # hiragana → katakana
    return fold_small_kana(s)


def is_organisation_payer(name: str | None) -> bool:
    """Does the payer name say it is a company or another organisation (not a private person)?

    Company-type marks as banks print them (``ｶ)`` / ``(ｶ`` / ``(ｶ)`` / ``ﾕ)`` / ``ﾄﾞ)`` …), legal forms
    written out (``ｶﾌﾞｼｷｶﾞｲｼﾔ``, ``株式会社``, ``(株)``, ``Co., Ltd.``), organisation words (事務所, 組合,
    銀行, 利息, 税 …) or a system line (``ATM``). Anything else is treated as an individual."""
    if not name or not name.strip():
        return False
    s = _kana_form(name)
    if _BANK_FORM.search(s) or _LATIN_FORMS.search(s) or _NON_PERSON.search(s):
        return True
    compact = _WS.sub("", s)
    if any(w in compact for w in LEGAL_FORMS_KANA) or any(w in compact for w in LEGAL_FORMS_KANJI):
        return True
    if any(f"({a})" in compact for a in LEGAL_ABBREV_KANJI):
        return True
    return any(w in compact for w in ORGANISATION_WORDS_KANA)


def payer_display(name: str | None) -> str:
    """The payer name as a person or a log may see it: an organisation as printed, an individual masked
    (first character + ``***``)."""
    if not name:
        return ""
    return name if is_organisation_payer(name) else mask_personal(name)


def redact_payer(text: str, name: str | None) -> str:
    """``text`` with every occurrence of the payer name (as printed and with its spaces folded)
    replaced by :func:`payer_display` — for explanations that quote the payer."""
    if not text or not name:
        return text or ""
    shown = payer_display(name)
    if shown == name:
        return text
    for variant in sorted({name, name.strip(), _WS.sub(" ", name).strip(), _WS.sub("", name)}, key=len, reverse=True):
        if variant:
            text = text.replace(variant, shown)
    return text
