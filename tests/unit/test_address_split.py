"""Municipality split of one address line (domain.address): worked examples of the hard cases and a round trip."""

from hypothesis import given, settings, strategies as st

from renkei.domain.address import AddressLine, join_municipality, split_municipality

EXAMPLES = {
    "渋谷区道玄坂1-2-3": (None, "渋谷区", "道玄坂1-2-3"),
    "東京都渋谷区道玄坂1-2-3": ("東京都", "渋谷区", "道玄坂1-2-3"),
    "東京都 港区芝公園4-2-8": ("東京都 ", "港区", "芝公園4-2-8"),
    "千代田区丸の内１－１－１": (None, "千代田区", "丸の内１－１－１"),  # full-width digits
    "千代田区　丸の内1-1-1": (None, "千代田区", "丸の内1-1-1"),  # a full-width space is the boundary
    # 政令指定都市 + 区
    "横浜市中区山下町1": (None, "横浜市中区", "山下町1"),
    "名古屋市中村区名駅1-1-4": (None, "名古屋市中村区", "名駅1-1-4"),
    "さいたま市浦和区高砂3-15-1": (None, "さいたま市浦和区", "高砂3-15-1"),
    "北九州市八幡西区黒崎3-15-3": (None, "北九州市八幡西区", "黒崎3-15-3"),
    "横浜市 中区山下町1": (None, "横浜市", "中区山下町1"),  # a space written after the city is the boundary
    # 郡 + 町村
    "北海道虻田郡倶知安町北1条東2丁目": ("北海道", "虻田郡倶知安町", "北1条東2丁目"),
    "余市郡余市町朝日町4": (None, "余市郡余市町", "朝日町4"),
    "中新川郡上市町湯上野1": (None, "中新川郡上市町", "湯上野1"),
    "西村山郡河北町谷地己1": (None, "西村山郡河北町", "谷地己1"),
    "柴田郡村田町村田1": (None, "柴田郡村田町", "村田1"),
    "神崎郡市川町西川辺165-3": (None, "神崎郡市川町", "西川辺165-3"),
    "赤穂郡上郡町大持278": (None, "赤穂郡上郡町", "大持278"),
    "杵島郡大町町大字大町5017": (None, "杵島郡大町町", "大字大町5017"),
    # 市区町村 characters inside a city's name, or at its start
    "四日市市諏訪町1-5": (None, "四日市市", "諏訪町1-5"),
    "廿日市市下平良1-11-1": (None, "廿日市市", "下平良1-11-1"),
    "市川市八幡1-1-1": (None, "市川市", "八幡1-1-1"),
    "野々市市三納1-1": (None, "野々市市", "三納1-1"),
    "町田市森野2-2-22": (None, "町田市", "森野2-2-22"),
    "十日町市千歳町3-3": (None, "十日町市", "千歳町3-3"),
    "東村山市本町1-2-3": (None, "東村山市", "本町1-2-3"),
    "武蔵村山市本町1-1-1": (None, "武蔵村山市", "本町1-1-1"),
    "大町市大町3887": (None, "大町市", "大町3887"),
    # 郡 inside a city's name is not a county
    "大和郡山市北郡山町248-4": (None, "大和郡山市", "北郡山町248-4"),
    "郡上市八幡町島谷228": (None, "郡上市", "八幡町島谷228"),
    "郡山市朝日1-23-7": (None, "郡山市", "朝日1-23-7"),
    "小郡市小郡255-1": (None, "小郡市", "小郡255-1"),
    "蒲郡市旭町17-1": (None, "蒲郡市", "旭町17-1"),
    "丸亀市郡家町1": (None, "丸亀市", "郡家町1"),  # a street named 郡… after a city
    # nothing to split on: all of it is the rest
    "道玄坂1-2-3": (None, None, "道玄坂1-2-3"),
    "": (None, None, ""),
    "Shibuya 1-2-3": (None, "Shibuya", "1-2-3"),  # what join_municipality writes for a city it does not know
}


def test_worked_examples_and_join():
    for line, want in EXAMPLES.items():
        assert split_municipality(line) == AddressLine(*want), line
    assert split_municipality(None) == AddressLine(None, None, "")
    assert join_municipality("渋谷区", "道玄坂1-2-3") == "渋谷区道玄坂1-2-3"
    assert join_municipality("横浜市", "中区山下町1") == "横浜市 中区山下町1"  # joined it would split as 横浜市中区
    assert join_municipality("渋谷区", None) == "渋谷区" and join_municipality(None, "道玄坂1") == "道玄坂1"
    for city, rest in (("大和郡山市", "北郡山町248"), ("余市郡余市町", "朝日町4"), ("Shibuya", "1-2-3"),
                       ("横浜市", "中区山下町1"), ("千代田区", "丸の内１－１－１")):
        back = split_municipality(join_municipality(city, rest))
        assert (back.city, back.rest) == (city, rest)


_CHARS = st.sampled_from(list("市区町村郡都道府県東京横浜中山下本大和四日野々川田 　1２-－丁目番地号ビルabc"))


@settings(max_examples=300, deadline=None)
@given(st.lists(_CHARS, max_size=24).map("".join))
def test_split_joins_back_to_the_input_modulo_one_space(line):
    parts = split_municipality(line)
    joined = (parts.prefecture or "") + (parts.city or "") + parts.rest
    text = line.strip(" \t\u3000")
    assert joined == text or any(text[:i] + text[i + 1:] == joined for i, ch in enumerate(text) if ch in " \t\u3000")
    if parts.city is not None:
        assert parts.city and not any(ch in " \t\u3000" for ch in parts.city)
