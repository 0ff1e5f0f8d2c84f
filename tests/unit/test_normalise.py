import pytest

from renkei.domain.normalise import (
    fold_small_kana,
    mask_personal,
    normalise_company_name,
    normalise_domain,
    normalise_kana,
    normalise_phone,
)


@pytest.mark.parametrize(
    "variant",
    ["株式会社山田商事", "株式会社 山田商事", "（株）山田商事", "(株)山田商事", "㈱山田商事", "山田商事株式会社",
     "山田商事　株式会社", "山田商事(株)", " 山田商事 "],
)
def test_legal_form_variants_share_one_key(variant):
    assert normalise_company_name(variant) == "山田商事"


@pytest.mark.parametrize(
    "variant",
    ["カブシキガイシャ ヤマダショウジ", "ｶﾌﾞｼｷｶﾞｲｼｬ ﾔﾏﾀﾞｼｮｳｼﾞ", "ヤマダショウジ　カブシキガイシャ", "ﾔﾏﾀﾞｼｮｳｼﾞｶﾌﾞｼｷｶﾞｲｼｬ",
     "やまだしょうじ"],
)
def test_kana_spellings_share_one_key(variant):
    assert normalise_company_name(variant) == "ヤマダシヨウジ"


def test_width_case_and_latin_legal_forms():
    assert normalise_company_name("ＡＢＣ　Ｃｏ．，Ｌｔｄ．") == "abc"
    assert normalise_company_name("ABC Co., Ltd.") == "abc"
    assert normalise_company_name("abc inc") == "abc"
    assert normalise_company_name("ＡＢＣ株式会社") == normalise_company_name("abc")


def test_different_companies_stay_different():
    assert normalise_company_name("山田商事") != normalise_company_name("山田商店")
    assert normalise_company_name("有限会社山田") == normalise_company_name("山田")  # legal form is not identity
    assert normalise_company_name("株式会社") == ""


@pytest.mark.parametrize(
    "payer, expected",
    [("ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ", "ヤマダシヨウジ"), ("ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ", "ヤマダシヨウジ"), ("ﾔﾏﾀﾞ(ｶ)ﾁﾊﾞｼﾃﾝ", "ヤマダチバシテン"),
     ("ﾕ)ｻﾄｳｼﾖｳﾃﾝ", "サトウシヨウテン"), ("ﾄﾞ)ｽｽﾞｷﾃﾞﾝｷ", "スズキデンキ"), ("ｺﾞｳﾄﾞｳｶﾞｲｼﾔｽｽﾞｷﾃﾞﾝｷ", "スズキデンキ"),
     ("ヤマダ ショウジ", "ヤマダシヨウジ"), ("サーバー", "サバ")],
)
def test_bank_payer_names(payer, expected):
    assert normalise_kana(payer) == expected


def test_small_kana_fold():
    assert fold_small_kana("ショウジ ッ ァ ヮ") == "シヨウジ ツ ア ワ"


def test_domain_and_phone():
    assert normalise_domain("https://www.Example.co.jp/about?x=1") == "example.co.jp"
    assert normalise_domain("info@yamada.co.jp") == "yamada.co.jp"
    assert normalise_domain("") == ""
    assert normalise_phone("+81 3-1234-5678") == "0312345678"
    assert normalise_phone("０３－１２３４－５６７８") == "0312345678"
    assert normalise_phone("(03) 1234 5678") == "0312345678"


def test_mask_personal():
    assert mask_personal("山田太郎") == "山***"
    assert mask_personal("taro.yamada@example.co.jp") == "t***@example.co.jp"
    assert mask_personal(None) == ""
