"""Japanese address lines: split the municipality (市区町村) off the rest of a line.

Systems keep an address differently: HubSpot and Salesforce have a separate *city* field, freee keeps
``市区町村・番地`` in one line (``street_name1``, e.g. ``千代田区丸の内1-1-1``) and Money Forward has one line too.
:func:`split_municipality` finds where the municipality ends so the canonical ``Address.city`` and
``Address.street`` can be filled from such a line, and :func:`join_municipality` writes them back as one line.

The split is a rule table (no network, no data file), kept small on purpose:

* an optional leading prefecture (``東京都``, ``北海道`` …) is recognised and returned on its own;
* 郡 + 町村: ``虻田郡倶知安町`` (the county is part of the municipality, as in the national list);
* 政令指定都市 + 区: ``横浜市中区`` — the ward of the 20 designated cities belongs to the city;
* otherwise the municipality is the shortest run (no digits, no white space) ending in 市, 区, 町 or 村, where the
  first character never ends it (``市川市``, ``町田市``, ``村上市``), and the names that have one of those
  characters inside them (``四日市市``, ``廿日市市``, ``野々市市``, ``大町市``, ``十日町市``, ``東村山市``, ``上市町`` …)
  and the municipalities with 郡 in their name (``郡山市``, ``大和郡山市``, ``小郡市``, ``郡上市``, ``蒲郡市``,
  ``上郡町``) are listed.

The rule table was checked against the 1,915 entries of the national list of local governments
(全国地方公共団体コード): every 市区町村 there, with and without its county, followed by a street, splits back
into itself (``tests/unit/test_address_split.py`` keeps the hard cases as worked examples). A line whose
municipality cannot be found is not split (``city`` is None, the whole line is the rest): nothing is lost.

Round trip: ``prefecture + city + rest`` is always the input line, except that one white space between the
municipality and the rest is dropped (a line written as ``渋谷区 道玄坂1-2-3`` splits at that space).

No library is used: the maintained Python ports of normalize-japanese-addresses (japanese-address-parser-py,
jageocoder) fetch address data over the network or need a downloaded dictionary, and the pure-Python
``japan_address`` has not been maintained since 2021; the split needs only the municipality boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PREFECTURE_NAMES", "DESIGNATED_CITIES", "AddressLine", "split_municipality", "join_municipality"]

PREFECTURE_NAMES: tuple[str, ...] = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県",
    "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
    "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)

# 政令指定都市: their wards (区) are part of the municipality.
DESIGNATED_CITIES: frozenset[str] = frozenset({
    "札幌市", "仙台市", "さいたま市", "千葉市", "横浜市", "川崎市", "相模原市", "新潟市", "静岡市", "浜松市",
    "名古屋市", "京都市", "大阪市", "堺市", "神戸市", "岡山市", "広島市", "北九州市", "福岡市", "熊本市",
})

# Municipalities (市・町・村) whose name has 市, 区, 町, 村 or 郡 after its first character, so the generic rule would
# end them too early (or take a county). Matched whole, longest first, at the start or right after a county.
_HARD_NAMES: tuple[str, ...] = (
    # 市
    "四日市市", "廿日市市", "野々市市", "大町市", "十日町市", "東村山市", "武蔵村山市", "羽村市", "田村市",
    "大村市", "郡山市", "大和郡山市", "小郡市", "郡上市", "蒲郡市",
    # 町・村 (after their county)
    "上市町", "下市町", "余市町", "大町町", "玉村町", "上郡町",
)

# Counties (郡) whose name has 市, 区, 町 or 村 in it; other counties are matched by the generic county rule.
_HARD_COUNTIES: tuple[str, ...] = ("余市郡", "高市郡", "田村郡", "西村山郡", "北村山郡", "東村山郡")

_WS = " \t\u3000"
_NAME_CHAR = r"[^\s0-9０-９\-－‐―ー−()（）]"
_HARD = "|".join(sorted(map(re.escape, _HARD_NAMES), key=len, reverse=True))
_COUNTY = re.compile(
    "(?:" + "|".join(map(re.escape, _HARD_COUNTIES)) + r"|[^\s0-9０-９市区町村郡]{1,5}郡)")
_MUNICIPALITY = re.compile(r"(?:" + _HARD + r"|" + _NAME_CHAR + _NAME_CHAR + r"{0,8}?[市区町村])")
_WARD = re.compile(_NAME_CHAR + r"{1,4}?区")


@dataclass(frozen=True)
class AddressLine:
    """One address line split: ``prefecture`` (as written at its start, or None), ``city`` (市区町村, or None
    when not found) and ``rest`` (町域・番地 …, never None)."""

    prefecture: str | None
    city: str | None
    rest: str


def _municipality(text: str) -> str | None:
    """The municipality at the start of ``text`` (no prefecture), or None."""
    m = _COUNTY.match(text)
    # a county is only taken when a town or village follows it (大和郡山市 is a city, not 大和郡 + 山市)
    if m and not re.match(_HARD, text):
        tail = text[m.end():]
        t = _MUNICIPALITY.match(tail)
        if t and t.group(0)[-1] in "町村":
            return m.group(0) + t.group(0)
    m = _MUNICIPALITY.match(text)
    if not m:
        return None
    city = m.group(0)
    if city in DESIGNATED_CITIES:
        w = _WARD.match(text, len(city))
        if w:
            city += w.group(0)
    return city


def split_municipality(line: str | None) -> AddressLine:
    """Split one address line into prefecture (if written), municipality and the rest.

    >>> split_municipality("横浜市中区山下町1")
    AddressLine(prefecture=None, city='横浜市中区', rest='山下町1')
    >>> split_municipality("東京都渋谷区道玄坂1-2-3")
    AddressLine(prefecture='東京都', city='渋谷区', rest='道玄坂1-2-3')

    A white space after the first word is the boundary (and is dropped) unless the rules find a shorter
    municipality inside that word (``渋谷区道玄坂 1-2-3`` is 渋谷区 + ``道玄坂 1-2-3``): ``渋谷区 道玄坂1-2-3``
    and what :func:`join_municipality` writes for a city the rules do not know both split at the space."""
    text = (line or "").strip(_WS)
    pref = next((p for p in PREFECTURE_NAMES if text.startswith(p)), None)
    body = text[len(pref):] if pref else text
    if pref and body[:1] in _WS and body.strip(_WS):  # "東京都 渋谷区…"
        body = body.lstrip(_WS)
        pref = text[: len(text) - len(body)]
    head, sep, tail = _split_ws(body)
    if sep and head:
        found = _municipality(head)
        if found is None or found == head:  # "渋谷区 道玄坂1-2-3", or a city the rules do not know
            return AddressLine(pref, head, tail)
    city = _municipality(body)
    if city is None:
        return AddressLine(pref, None, body)
    rest = body[len(city):]
    if rest[:1] in _WS:
        rest = rest[1:]
    return AddressLine(pref, city, rest)


def _split_ws(s: str) -> tuple[str, str, str]:
    for i, ch in enumerate(s):
        if ch in _WS:
            return s[:i], ch, s[i + 1:]
    return s, "", ""


def join_municipality(city: str | None, rest: str | None) -> str:
    """City and rest as one line the way freee writes ``市区町村・番地`` (``千代田区丸の内1-1-1``, no space) when
    :func:`split_municipality` splits it back into the same two parts; otherwise with one space between them,
    which the split takes as the boundary — so a line written by :func:`join_municipality` always reads back the
    same."""
    city = (city or "").strip(_WS)
    rest = (rest or "").strip(_WS)
    if not city or not rest:
        return city or rest
    joined = city + rest
    back = split_municipality(joined)
    if back.prefecture is None and back.city == city and back.rest == rest:
        return joined
    return f"{city} {rest}"
