"""Deterministic Japanese B2B demo dataset shared by the HubSpot and freee sandboxes.

Everything is written out (no randomness, no Faker at import), so every run, machine and library
version sees the same data. Money is always integer yen, tax-exclusive (外税) on products and lines.

HubSpot side
    :data:`OWNERS`, :data:`COMPANIES` (40: 株式会社 / 有限会社 / 合同会社, two 個人事業者),
    :data:`CONTACTS` (2 per company), :data:`PRODUCTS` (16, some at the reduced 8% rate),
    :data:`DEAL_PIPELINES` (``default`` + a custom pipeline with numeric stage ids),
    :data:`DEALS` (every stage, 1-4 line items each, discounts, 8% items, subscriptions with recurring
    line items, amendments carrying ``effective_date``).

freee side
    :data:`FREEE_PARTNERS` (most companies, some under a slightly different name, some only on one
    side; billing e-mail, payment terms, partner codes), :data:`FREEE_ITEMS` (the products by code),
    :data:`BANK_DEPOSITS` (half-width katakana payer names; exact, short by a transfer fee, one paying
    two invoices, one unrelated).

Records refer to each other by stable string keys (``"C01"``, ``"D07"``, product codes), never by
system ids: each sandbox assigns its own ids when it loads the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import jaconv

from renkei.domain.address import PREFECTURE_NAMES
from renkei.domain.identifiers import houjin_check_digit

__all__ = [
    "BANK_DEPOSITS",
    "COMPANIES",
    "COSTS",
    "CONTACTS",
    "DEALS",
    "DEAL_PIPELINES",
    "FREEE_ITEMS",
    "FREEE_PARTNERS",
    "OWNERS",
    "PREFECTURES",
    "PRODUCTS",
    "BankDeposit",
    "DemoCompany",
    "DemoContact",
    "DemoCost",
    "DemoDeal",
    "DemoLineItem",
    "DemoOwner",
    "DemoProduct",
    "FreeeItem",
    "FreeePartner",
    "PaymentTerms",
    "Pipeline",
    "PipelineStage",
    "bank_payer_name",
    "company",
    "corporate_number",
    "deal",
    "invoice_total",
    "product",
]

TAX_RATE_PERCENT = {"standard_10": 10, "reduced_8": 8}

PREFECTURES: tuple[str, ...] = PREFECTURE_NAMES  # JIS X 0401 order: freee prefecture_code = index
"""JIS order; the index is freee's ``prefecture_code`` (0 = 北海道 … 46 = 沖縄県)."""


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

_SMALL_TO_LARGE = str.maketrans("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ")
_BANK_LEGAL_ABBREV = {"株式会社": "ｶ", "有限会社": "ﾕ", "合同会社": "ﾄﾞ"}


def corporate_number(base12: str) -> str:
    """13-digit 法人番号: check digit (houjin_check_digit) + the 12-digit base."""
    return f"{houjin_check_digit(base12)}{base12}"


def bank_payer_name(kana: str, legal_form: str | None = None, position: str = "pre") -> str:
    """Payer name as a Japanese bank statement shows it: half-width katakana, small kana written
    large, ``ー`` as ``-``, legal form abbreviated (``ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ`` / ``ﾐﾗｲﾃﾂｸ(ｶ``)."""
    body = jaconv.z2h(kana.translate(_SMALL_TO_LARGE), kana=True, ascii=False, digit=False)
    body = body.replace("ｰ", "-").replace("\u3000", " ")
    abbrev = _BANK_LEGAL_ABBREV.get(legal_form or "")
    if not abbrev:
        return body
    return f"{abbrev}){body}" if position == "pre" else f"{body}({abbrev}"


# --------------------------------------------------------------------------------------------------
# owners
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoOwner:
    key: str
    email: str
    first_name: str
    last_name: str


OWNERS: tuple[DemoOwner, ...] = (
    DemoOwner("O1", "k.aoyama@renkei-demo.example", "健太", "青山"),
    DemoOwner("O2", "y.sakurai@renkei-demo.example", "由美", "桜井"),
    DemoOwner("O3", "t.fukuda@renkei-demo.example", "拓也", "福田"),
)


# --------------------------------------------------------------------------------------------------
# companies
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentTerms:
    """支払条件 in freee's shape: close on ``cutoff_day`` (32 = month end), pay ``additional_months``
    later on ``fixed_day`` (32 = month end)."""

    label: str
    cutoff_day: int = 32
    additional_months: int = 1
    fixed_day: int = 32


TERMS_EOM_NEXT_EOM = PaymentTerms("月末締め翌月末払い", 32, 1, 32)
TERMS_20_NEXT_10 = PaymentTerms("20日締め翌月10日払い", 20, 1, 10)
TERMS_EOM_2M_EOM = PaymentTerms("月末締め翌々月末払い", 32, 2, 32)
TERMS_15_NEXT_15 = PaymentTerms("15日締め翌月15日払い", 15, 1, 15)


@dataclass(frozen=True)
class DemoCompany:
    """A customer. ``name`` is the legal name as registered in HubSpot; ``kana`` the full-width
    katakana reading of the name without its legal form (HubSpot ``renkei_name_kana``)."""

    key: str
    name: str
    kana: str
    legal_form: str | None  # 株式会社 / 有限会社 / 合同会社; None for a sole trader (個人事業者)
    legal_form_position: str  # "pre" (株式会社山田商事) or "post" (ミライテック株式会社)
    domain: str
    phone: str
    postal_code: str
    prefecture: str
    city: str
    street: str
    industry: str
    owner: str
    corporate_number: str | None
    registration_number: str | None
    payment_terms: PaymentTerms = TERMS_EOM_NEXT_EOM
    representative: str | None = None  # sole traders: the person (bank payer name is theirs)
    representative_kana: str | None = None

    @property
    def sole_trader(self) -> bool:
        return self.legal_form is None

    @property
    def entity_kind(self) -> str:
        return "sole_trader" if self.sole_trader else "corporation"

    @property
    def prefecture_code(self) -> int:
        return PREFECTURES.index(self.prefecture)

    @property
    def bank_payer_name(self) -> str:
        if self.sole_trader and self.representative_kana:
            return bank_payer_name(self.representative_kana)
        return bank_payer_name(self.kana, self.legal_form, self.legal_form_position)

    @property
    def billing_email(self) -> str:
        return f"keiri@{self.domain}"

    def hubspot_properties(self) -> dict[str, str]:
        """Company properties as HubSpot stores them (all strings; custom ones start ``renkei_``)."""
        props = {
            "name": self.name,
            "domain": self.domain,
            "phone": self.phone,
            "zip": self.postal_code,
            "state": self.prefecture,
            "city": self.city,
            "address": self.street,
            "country": "Japan",
            "industry": self.industry,
            "hubspot_owner_id": self.owner,  # owner key; the sandbox maps it to the owner id
            "renkei_name_kana": self.kana,
            "renkei_entity_kind": self.entity_kind,
        }
        if self.corporate_number:
            props["renkei_corporate_number"] = self.corporate_number
        if self.registration_number:
            props["renkei_invoice_registration_number"] = self.registration_number
        return props


# (key, legal form, position, core name, core kana, domain stem, phone, postal, prefecture, city, street,
#  industry, owner, registered (適格請求書発行事業者), terms)
_COMPANY_ROWS: tuple[tuple, ...] = (
    ("C01", "株式会社", "pre", "山田商事", "ヤマダショウジ", "yamada-shoji", "03-3211-4501", "100-0005", "東京都", "千代田区", "丸の内1-1-1", "WHOLESALE", "O1", True, TERMS_EOM_NEXT_EOM),
    ("C02", "株式会社", "pre", "佐藤製作所", "サトウセイサクショ", "sato-ss", "06-6345-1102", "530-0001", "大阪府", "大阪市北区", "梅田2-4-9", "MACHINERY", "O2", True, TERMS_20_NEXT_10),
    ("C03", "有限会社", "pre", "鈴木食品", "スズキショクヒン", "suzuki-foods", "054-252-3303", "420-0031", "静岡県", "静岡市葵区", "呉服町1-5-2", "FOOD_PRODUCTION", "O1", True, TERMS_EOM_NEXT_EOM),
    ("C04", "合同会社", "pre", "高橋デザイン", "タカハシデザイン", "takahashi-design", "03-5413-2404", "150-0001", "東京都", "渋谷区", "神宮前3-7-1", "DESIGN", "O3", True, TERMS_EOM_NEXT_EOM),
    ("C05", "株式会社", "pre", "田中システム", "タナカシステム", "tanaka-sys", "045-222-5505", "220-0012", "神奈川県", "横浜市西区", "みなとみらい2-2-1", "COMPUTER_SOFTWARE", "O2", True, TERMS_EOM_NEXT_EOM),
    ("C06", "株式会社", "pre", "伊藤物産", "イトウブッサン", "ito-bussan", "052-581-6606", "450-0002", "愛知県", "名古屋市中村区", "名駅4-7-1", "WHOLESALE", "O1", True, TERMS_EOM_NEXT_EOM),
    ("C07", "株式会社", "pre", "渡辺工業", "ワタナベコウギョウ", "watanabe-kogyo", "048-641-7707", "330-0854", "埼玉県", "さいたま市大宮区", "桜木町1-7-5", "INDUSTRIAL_AUTOMATION", "O3", True, TERMS_EOM_2M_EOM),
    ("C08", "株式会社", "post", "ミライテック", "ミライテック", "miraitech", "03-6453-8808", "108-0023", "東京都", "港区", "芝浦3-1-1", "INFORMATION_TECHNOLOGY_AND_SERVICES", "O2", True, TERMS_EOM_NEXT_EOM),
    ("C09", "株式会社", "pre", "中村珈琲", "ナカムラコーヒー", "nakamura-coffee", "075-211-9909", "604-8152", "京都府", "京都市中京区", "烏丸通錦小路上ル手洗水町650", "FOOD_BEVERAGES", "O1", True, TERMS_EOM_NEXT_EOM),
    ("C10", "株式会社", "pre", "小林運輸", "コバヤシウンユ", "kobayashi-unyu", "043-224-1010", "260-0015", "千葉県", "千葉市中央区", "富士見2-3-1", "TRANSPORTATION_TRUCKING_RAILROAD", "O3", True, TERMS_EOM_NEXT_EOM),
    ("C11", "有限会社", "pre", "加藤酒店", "カトウサケテン", "kato-saketen", "025-222-1111", "951-8063", "新潟県", "新潟市中央区", "古町通5番町601", "WINE_AND_SPIRITS", "O1", False, TERMS_EOM_NEXT_EOM),
    ("C12", "株式会社", "pre", "吉田建設", "ヨシダケンセツ", "yoshida-kensetsu", "092-431-1212", "812-0011", "福岡県", "福岡市博多区", "博多駅前2-1-1", "CONSTRUCTION", "O2", True, TERMS_20_NEXT_10),
    ("C13", "株式会社", "post", "さくらネットワークス", "サクラネットワークス", "sakura-nw", "03-5321-1313", "163-0401", "東京都", "新宿区", "西新宿2-1-1", "COMPUTER_NETWORKING", "O3", True, TERMS_EOM_NEXT_EOM),
    ("C14", "株式会社", "pre", "山本ホールディングス", "ヤマモトホールディングス", "yamamoto-hd", "06-6263-1414", "541-0053", "大阪府", "大阪市中央区", "本町1-8-12", "FINANCIAL_SERVICES", "O1", True, TERMS_EOM_2M_EOM),
    ("C15", "合同会社", "pre", "松本ラボ", "マツモトラボ", "matsumoto-lab", "0263-32-1515", "390-0811", "長野県", "松本市", "中央1-3-5", "RESEARCH", "O2", False, TERMS_EOM_NEXT_EOM),
    ("C16", "株式会社", "pre", "井上電機", "イノウエデンキ", "inoue-denki", "078-391-1616", "650-0021", "兵庫県", "神戸市中央区", "三宮町1-4-3", "ELECTRICAL_ELECTRONIC_MANUFACTURING", "O3", True, TERMS_EOM_NEXT_EOM),
    ("C17", "株式会社", "pre", "木村フーズ", "キムラフーズ", "kimura-foods", "011-231-1717", "060-0001", "北海道", "札幌市中央区", "北一条西3-2", "FOOD_PRODUCTION", "O1", True, TERMS_15_NEXT_15),
    ("C18", "株式会社", "pre", "林コンサルティング", "ハヤシコンサルティング", "hayashi-consulting", "03-3272-1818", "103-0027", "東京都", "中央区", "日本橋2-1-3", "MANAGEMENT_CONSULTING", "O2", True, TERMS_EOM_NEXT_EOM),
    ("C19", "株式会社", "post", "東和商会", "トウワショウカイ", "towa-shokai", "082-247-1919", "730-0031", "広島県", "広島市中区", "紙屋町1-2-22", "WHOLESALE", "O1", True, TERMS_EOM_NEXT_EOM),
    ("C20", "株式会社", "pre", "清水製菓", "シミズセイカ", "shimizu-seika", "076-221-2020", "920-0981", "石川県", "金沢市", "片町1-1-1", "FOOD_PRODUCTION", "O3", True, TERMS_EOM_NEXT_EOM),
    ("C21", "有限会社", "pre", "山口印刷", "ヤマグチインサツ", "yamaguchi-insatsu", "083-922-2121", "753-0074", "山口県", "山口市", "中央2-5-1", "PRINTING", "O2", True, TERMS_20_NEXT_10),
    ("C22", "株式会社", "pre", "森ファーマ", "モリファーマ", "mori-pharma", "076-421-2222", "930-0083", "富山県", "富山市", "総曲輪3-2-1", "PHARMACEUTICALS", "O1", True, TERMS_EOM_2M_EOM),
    ("C23", "株式会社", "pre", "池田ロジスティクス", "イケダロジスティクス", "ikeda-logi", "022-261-2323", "980-0021", "宮城県", "仙台市青葉区", "中央1-6-35", "LOGISTICS_AND_SUPPLY_CHAIN", "O3", True, TERMS_EOM_NEXT_EOM),
    ("C24", "株式会社", "pre", "橋本不動産", "ハシモトフドウサン", "hashimoto-fudosan", "03-3424-2424", "154-0024", "東京都", "世田谷区", "三軒茶屋2-11-22", "REAL_ESTATE", "O2", True, TERMS_EOM_NEXT_EOM),
    ("C25", "株式会社", "post", "あおぞらソフト", "アオゾラソフト", "aozora-soft", "092-721-2525", "810-0001", "福岡県", "福岡市中央区", "天神1-10-1", "COMPUTER_SOFTWARE", "O1", True, TERMS_EOM_NEXT_EOM),
    ("C26", "株式会社", "pre", "石川精機", "イシカワセイキ", "ishikawa-seiki", "053-452-2626", "430-0928", "静岡県", "浜松市中央区", "板屋町1-1", "MACHINERY", "O3", True, TERMS_EOM_2M_EOM),
    ("C27", "株式会社", "pre", "前田テキスタイル", "マエダテキスタイル", "maeda-textile", "058-262-2727", "500-8842", "岐阜県", "岐阜市", "金町5-1", "TEXTILES", "O2", True, TERMS_EOM_NEXT_EOM),
    ("C28", "合同会社", "pre", "藤田クリエイティブ", "フジタクリエイティブ", "fujita-creative", "03-3718-2828", "152-0035", "東京都", "目黒区", "自由が丘1-8-3", "MARKETING_AND_ADVERTISING", "O1", True, TERMS_EOM_NEXT_EOM),
    ("C29", "株式会社", "pre", "岡田エンジニアリング", "オカダエンジニアリング", "okada-eng", "029-851-2929", "305-0032", "茨城県", "つくば市", "竹園1-1-1", "MECHANICAL_OR_INDUSTRIAL_ENGINEERING", "O3", True, TERMS_EOM_NEXT_EOM),
    ("C30", "株式会社", "pre", "後藤水産", "ゴトウスイサン", "goto-suisan", "054-628-3030", "425-0022", "静岡県", "焼津市", "本町2-16-32", "FISHERY", "O2", True, TERMS_15_NEXT_15),
    ("C31", "株式会社", "pre", "長谷川メディカル", "ハセガワメディカル", "hasegawa-medical", "06-6386-3131", "564-0063", "大阪府", "吹田市", "江坂町1-23-5", "MEDICAL_DEVICES", "O1", True, TERMS_EOM_NEXT_EOM),
    ("C32", "株式会社", "post", "北斗通信", "ホクトツウシン", "hokuto-tsushin", "011-726-3232", "060-0807", "北海道", "札幌市北区", "北七条西2-8", "TELECOMMUNICATIONS", "O3", True, TERMS_EOM_NEXT_EOM),
    ("C33", "株式会社", "pre", "村上ベーカリー", "ムラカミベーカリー", "murakami-bakery", "044-211-3333", "210-0007", "神奈川県", "川崎市川崎区", "駅前本町11-2", "FOOD_PRODUCTION", "O2", True, TERMS_EOM_NEXT_EOM),
    ("C34", "株式会社", "pre", "近藤商店", "コンドウショウテン", "kondo-shoten", "0565-31-3434", "471-0026", "愛知県", "豊田市", "若宮町1-57", "RETAIL", "O1", True, TERMS_20_NEXT_10),
    ("C35", "有限会社", "pre", "坂本オフィスサービス", "サカモトオフィスサービス", "sakamoto-office", "049-224-3535", "350-1123", "埼玉県", "川越市", "脇田本町1-1", "FACILITIES_SERVICES", "O3", False, TERMS_EOM_NEXT_EOM),
    ("C36", "株式会社", "pre", "遠藤アグリ", "エンドウアグリ", "endo-agri", "096-352-3636", "860-0806", "熊本県", "熊本市中央区", "花畑町4-1", "FARMING", "O2", True, TERMS_EOM_NEXT_EOM),
    ("C37", "株式会社", "pre", "青木エステート", "アオキエステート", "aoki-estate", "03-3490-3737", "141-0032", "東京都", "品川区", "大崎1-11-2", "REAL_ESTATE", "O1", True, TERMS_EOM_NEXT_EOM),
    ("C38", "株式会社", "pre", "藤井情報システム", "フジイジョウホウシステム", "fujii-is", "086-225-3838", "700-0024", "岡山県", "岡山市北区", "駅元町1-1", "INFORMATION_TECHNOLOGY_AND_SERVICES", "O3", True, TERMS_EOM_NEXT_EOM),
)

# Sole traders (個人事業者): trade name, reading, the person (bank transfers carry the person's name).
_SOLE_TRADER_ROWS: tuple[tuple, ...] = (
    ("C39", "西村デザイン事務所", "ニシムラデザインジムショ", "西村 健一", "ニシムラ ケンイチ", "nishimura-design", "03-3314-3939", "166-0003", "東京都", "杉並区", "高円寺南3-45-1", "GRAPHIC_DESIGN", "O3", f"T{corporate_number('810123456789')}", TERMS_EOM_NEXT_EOM),
    ("C40", "すずらん珈琲店", "スズランコーヒーテン", "小川 美穂", "オガワ ミホ", "suzuran-coffee", "0467-22-4040", "248-0006", "神奈川県", "鎌倉市", "小町2-10-8", "FOOD_BEVERAGES", "O1", None, TERMS_EOM_NEXT_EOM),
)


def _build_companies() -> tuple[DemoCompany, ...]:
    out: list[DemoCompany] = []
    for i, row in enumerate(_COMPANY_ROWS, start=1):
        key, form, pos, core, kana, stem, phone, postal, pref, city, street, industry, owner, registered, terms = row
        name = f"{form}{core}" if pos == "pre" else f"{core}{form}"
        # 12-digit base: a registry-office-like prefix plus a running serial (check digit computed).
        base12 = f"{'010401' if pref == '東京都' else '120001'}{i * 7919 % 1_000_000:06d}"
        corp = corporate_number(base12)
        out.append(
            DemoCompany(
                key=key, name=name, kana=kana, legal_form=form, legal_form_position=pos,
                domain=f"{stem}.co.jp", phone=phone, postal_code=postal, prefecture=pref, city=city,
                street=street, industry=industry, owner=owner, corporate_number=corp,
                registration_number=f"T{corp}" if registered else None, payment_terms=terms,
            )
        )
    for row in _SOLE_TRADER_ROWS:
        key, name, kana, person, person_kana, stem, phone, postal, pref, city, street, industry, owner, reg, terms = row
        out.append(
            DemoCompany(
                key=key, name=name, kana=kana, legal_form=None, legal_form_position="pre",
                domain=f"{stem}.jp", phone=phone, postal_code=postal, prefecture=pref, city=city,
                street=street, industry=industry, owner=owner, corporate_number=None,
                registration_number=reg, payment_terms=terms, representative=person,
                representative_kana=person_kana,
            )
        )
    return tuple(out)


COMPANIES: tuple[DemoCompany, ...] = _build_companies()
_COMPANY_BY_KEY = {c.key: c for c in COMPANIES}


def company(key: str) -> DemoCompany:
    return _COMPANY_BY_KEY[key]


# --------------------------------------------------------------------------------------------------
# contacts
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoContact:
    key: str
    company: str
    last_name: str
    first_name: str
    last_name_kana: str
    first_name_kana: str
    email: str
    phone: str
    job_title: str
    billing: bool  # the company's billing contact (請求書送付先)

    def hubspot_properties(self) -> dict[str, str]:
        return {
            "lastname": self.last_name,
            "firstname": self.first_name,
            "email": self.email,
            "phone": self.phone,
            "jobtitle": self.job_title,
        }


_SURNAMES = (
    ("佐々木", "ササキ", "sasaki"), ("山崎", "ヤマザキ", "yamazaki"), ("森田", "モリタ", "morita"),
    ("阿部", "アベ", "abe"), ("石井", "イシイ", "ishii"), ("原田", "ハラダ", "harada"),
    ("小野", "オノ", "ono"), ("竹内", "タケウチ", "takeuchi"), ("金子", "カネコ", "kaneko"),
    ("和田", "ワダ", "wada"), ("中島", "ナカジマ", "nakajima"), ("上田", "ウエダ", "ueda"),
    ("太田", "オオタ", "ota"), ("中川", "ナカガワ", "nakagawa"), ("斎藤", "サイトウ", "saito"),
    ("三浦", "ミウラ", "miura"), ("野口", "ノグチ", "noguchi"), ("松田", "マツダ", "matsuda"),
    ("菅原", "スガワラ", "sugawara"), ("市川", "イチカワ", "ichikawa"), ("杉山", "スギヤマ", "sugiyama"),
    ("千葉", "チバ", "chiba"), ("岩崎", "イワサキ", "iwasaki"),
)
_GIVEN = (
    ("翔太", "ショウタ", "shota"), ("美咲", "ミサキ", "misaki"), ("大輔", "ダイスケ", "daisuke"),
    ("陽子", "ヨウコ", "yoko"), ("直樹", "ナオキ", "naoki"), ("恵", "メグミ", "megumi"),
    ("亮", "リョウ", "ryo"), ("真由美", "マユミ", "mayumi"), ("誠", "マコト", "makoto"),
    ("彩", "アヤ", "aya"), ("智也", "トモヤ", "tomoya"), ("裕子", "ユウコ", "yuko"),
    ("浩二", "コウジ", "koji"), ("千尋", "チヒロ", "chihiro"), ("隆", "タカシ", "takashi"),
    ("さやか", "サヤカ", "sayaka"), ("健二", "ケンジ", "kenji"), ("奈々", "ナナ", "nana"),
    ("悠人", "ユウト", "yuto"),
)
_TITLES = ("代表取締役", "営業部長", "経理部 主任", "総務部 課長", "購買担当", "情報システム部 マネージャー")


def _build_contacts() -> tuple[DemoContact, ...]:
    out: list[DemoContact] = []
    n = 0
    for c in COMPANIES:
        for j in range(2):
            last, last_kana, last_ro = _SURNAMES[(n * 7) % len(_SURNAMES)]
            first, first_kana, first_ro = _GIVEN[(n * 5 + 3) % len(_GIVEN)]
            if c.sole_trader and j == 0 and c.representative and c.representative_kana:
                last, first = c.representative.split(" ")
                last_kana, first_kana = c.representative_kana.split(" ")
                last_ro, first_ro = "owner", "info"
            billing = j == 1
            title = "経理担当" if billing else _TITLES[n % len(_TITLES)]
            local = "keiri" if billing else f"{first_ro}.{last_ro}"
            out.append(
                DemoContact(
                    key=f"{c.key}-P{j + 1}", company=c.key, last_name=last, first_name=first,
                    last_name_kana=last_kana, first_name_kana=first_kana, email=f"{local}@{c.domain}",
                    phone=c.phone, job_title=title, billing=billing,
                )
            )
            n += 1
    return tuple(out)


CONTACTS: tuple[DemoContact, ...] = _build_contacts()


# --------------------------------------------------------------------------------------------------
# products
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoProduct:
    code: str  # SKU (HubSpot hs_sku) = freee item code
    name: str
    unit_price: int  # yen, tax-exclusive
    tax_category: str  # "standard_10" | "reduced_8"
    description: str = ""
    recurring: str | None = None  # "monthly" | "annually" for subscription products

    def hubspot_properties(self) -> dict[str, str]:
        props = {
            "name": self.name,
            "hs_sku": self.code,
            "price": str(self.unit_price),
            "description": self.description,
            "renkei_tax_category": self.tax_category,
        }
        if self.recurring:
            props["recurringbillingfrequency"] = self.recurring
            props["hs_recurring_billing_period"] = "P12M" if self.recurring == "annually" else "P1M"
        return props


PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct("RK-SAAS-STD", "クラウド会計連携 スタンダード（月額・1ユーザー）", 3_000, "standard_10", "月額ライセンス", "monthly"),
    DemoProduct("RK-SAAS-PRO", "クラウド会計連携 プロ（月額・1ユーザー）", 5_000, "standard_10", "月額ライセンス（上位プラン）", "monthly"),
    DemoProduct("RK-SAAS-ENT", "エンタープライズ年間ライセンス", 1_200_000, "standard_10", "年額一括", "annually"),
    DemoProduct("RK-SUP-Y", "保守サポート（年額）", 240_000, "standard_10", "平日9-18時の問い合わせ対応", "annually"),
    DemoProduct("RK-ONB", "導入支援パッケージ", 300_000, "standard_10", "初期設定・データ移行"),
    DemoProduct("RK-TRN", "オンサイト研修（1日）", 150_000, "standard_10", "講師1名・最大20名"),
    DemoProduct("RK-CNS-H", "業務コンサルティング（1時間）", 20_000, "standard_10"),
    DemoProduct("RK-DEV-D", "カスタム開発（人日）", 80_000, "standard_10"),
    DemoProduct("HW-TAB", "業務用タブレット端末", 64_800, "standard_10"),
    DemoProduct("HW-PRN", "レシートプリンター", 32_000, "standard_10"),
    DemoProduct("OF-PAPER", "コピー用紙 A4 2500枚", 3_980, "standard_10"),
    DemoProduct("SV-SHIP", "配送料", 1_500, "standard_10"),
    DemoProduct("FD-COFFEE", "オリジナルブレンド珈琲豆 1kg", 4_320, "reduced_8", "飲食料品（軽減税率対象）"),
    DemoProduct("FD-WATER", "ミネラルウォーター 500ml×24本", 2_160, "reduced_8", "飲食料品（軽減税率対象）"),
    DemoProduct("FD-BENTO", "会議用お弁当（10食セット）", 10_800, "reduced_8", "飲食料品（軽減税率対象）"),
    DemoProduct("FD-SWEETS", "焼き菓子詰め合わせ", 3_240, "reduced_8", "飲食料品（軽減税率対象）"),
)
_PRODUCT_BY_CODE = {p.code: p for p in PRODUCTS}


def product(code: str) -> DemoProduct:
    return _PRODUCT_BY_CODE[code]


# --------------------------------------------------------------------------------------------------
# pipelines
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineStage:
    id: str
    label: str
    probability: str  # string on the wire, "0.0" .. "1.0"


@dataclass(frozen=True)
class Pipeline:
    id: str
    label: str
    stages: tuple[PipelineStage, ...]


DEAL_PIPELINES: tuple[Pipeline, ...] = (
    Pipeline(
        "default",
        "Sales Pipeline",
        (
            PipelineStage("appointmentscheduled", "Appointment Scheduled", "0.2"),
            PipelineStage("qualifiedtobuy", "Qualified To Buy", "0.4"),
            PipelineStage("presentationscheduled", "Presentation Scheduled", "0.6"),
            PipelineStage("decisionmakerboughtin", "Decision Maker Bought-In", "0.8"),
            PipelineStage("contractsent", "Contract Sent", "0.9"),
            PipelineStage("closedwon", "Closed Won", "1.0"),
            PipelineStage("closedlost", "Closed Lost", "0.0"),
        ),
    ),
    Pipeline(
        "87654321",
        "サブスクリプション契約",
        (
            PipelineStage("160014501", "トライアル", "0.2"),
            PipelineStage("160014502", "見積提示", "0.5"),
            PipelineStage("160014503", "稟議中", "0.8"),
            PipelineStage("160014504", "契約締結", "1.0"),
            PipelineStage("160014505", "失注", "0.0"),
        ),
    ),
)
SUBSCRIPTION_PIPELINE = "87654321"
SUBSCRIPTION_WON_STAGE = "160014504"


# --------------------------------------------------------------------------------------------------
# deals
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoLineItem:
    product_code: str
    quantity: int
    unit_price: int | None = None  # None = the product's price
    discount: int = 0  # yen per unit (HubSpot "discount")
    discount_percentage: int = 0  # HubSpot "hs_discount_percentage"
    recurring: str | None = None  # "monthly" | "annually"
    billing_start: str | None = None  # ISO date, hs_recurring_billing_start_date
    term_months: int | None = None
    effective_date: str | None = None  # amendments: renkei_effective_date

    @property
    def product(self) -> DemoProduct:
        return product(self.product_code)

    @property
    def price(self) -> int:
        return self.product.unit_price if self.unit_price is None else self.unit_price

    @property
    def tax_category(self) -> str:
        return self.product.tax_category

    @property
    def amount(self) -> int:
        """Net line amount in yen: quantity × (price − discount), less the percentage (rounded down)."""
        gross = self.quantity * (self.price - self.discount)
        return gross - gross * self.discount_percentage // 100

    def hubspot_properties(self) -> dict[str, str]:
        props = {
            "name": self.product.name,
            "hs_sku": self.product_code,
            "quantity": str(self.quantity),
            "price": str(self.price),
            "renkei_tax_category": self.tax_category,
        }
        if self.discount:
            props["discount"] = str(self.discount)
        if self.discount_percentage:
            props["hs_discount_percentage"] = str(self.discount_percentage)
        if self.recurring:
            props["recurringbillingfrequency"] = self.recurring
        if self.billing_start:
            props["hs_recurring_billing_start_date"] = self.billing_start
        if self.term_months:
            props["hs_term_in_months"] = str(self.term_months)
        if self.effective_date:
            props["renkei_effective_date"] = self.effective_date
        return props


@dataclass(frozen=True)
class DemoDeal:
    key: str
    name: str
    company: str
    stage: str
    close_date: str  # ISO date
    line_items: tuple[DemoLineItem, ...]
    pipeline: str = "default"
    owner: str = "O1"
    contacts: tuple[str, ...] = ()
    note: str = ""

    @property
    def amount(self) -> int:
        return sum(li.amount for li in self.line_items)

    @property
    def won(self) -> bool:
        return self.stage in ("closedwon", SUBSCRIPTION_WON_STAGE)

    def hubspot_properties(self) -> dict[str, str]:
        return {
            "dealname": self.name,
            "pipeline": self.pipeline,
            "dealstage": self.stage,
            "amount": str(self.amount),
            "closedate": self.close_date,
            "deal_currency_code": "JPY",
            "hubspot_owner_id": self.owner,
        }


L = DemoLineItem
_SUB = SUBSCRIPTION_PIPELINE

DEALS: tuple[DemoDeal, ...] = (
    # --- closed won, one-off -------------------------------------------------------------------
    DemoDeal("D01", "山田商事 導入一式", "C01", "closedwon", "2026-10-03", (L("RK-ONB", 1), L("RK-TRN", 2), L("HW-TAB", 5, discount=4_800)), owner="O1"),
    DemoDeal("D02", "佐藤製作所 業務改善コンサル", "C02", "closedwon", "2026-10-10", (L("RK-CNS-H", 24), L("RK-DEV-D", 5)), owner="O2"),
    DemoDeal("D03", "鈴木食品 展示会ケータリング", "C03", "closedwon", "2026-10-15", (L("FD-BENTO", 12), L("FD-WATER", 6), L("SV-SHIP", 1)), owner="O1"),
    DemoDeal("D04", "ミライテック 端末追加", "C08", "closedwon", "2026-10-20", (L("HW-TAB", 10), L("HW-PRN", 4, discount_percentage=10)), owner="O2"),
    DemoDeal("D05", "伊藤物産 研修（10月）", "C06", "closedwon", "2026-10-08", (L("RK-TRN", 1),), owner="O1"),
    DemoDeal("D06", "伊藤物産 研修（11月）", "C06", "closedwon", "2026-10-22", (L("RK-TRN", 1), L("FD-SWEETS", 10)), owner="O1"),
    DemoDeal("D07", "高橋デザイン 制作支援", "C04", "closedwon", "2026-10-12", (L("RK-CNS-H", 10, unit_price=18_000), L("OF-PAPER", 3)), owner="O3"),
    DemoDeal("D08", "吉田建設 現場用タブレット", "C12", "closedwon", "2026-10-25", (L("HW-TAB", 8, discount=2_800), L("RK-ONB", 1, discount=50_000)), owner="O2"),
    DemoDeal("D09", "西村デザイン事務所 スポット相談", "C39", "closedwon", "2026-10-18", (L("RK-CNS-H", 3),), owner="O3"),
    DemoDeal("D10", "中村珈琲 オフィス向け珈琲豆", "C09", "closedwon", "2026-11-02", (L("FD-COFFEE", 20, discount=320), L("SV-SHIP", 2)), owner="O1"),
    DemoDeal("D11", "加藤酒店 POS更新", "C11", "closedwon", "2026-11-05", (L("HW-PRN", 2), L("HW-TAB", 2), L("FD-WATER", 4)), owner="O1"),
    DemoDeal("D12", "後藤水産 業務システム開発", "C30", "closedwon", "2026-11-09", (L("RK-DEV-D", 20), L("RK-CNS-H", 8), L("RK-TRN", 1), L("FD-BENTO", 2)), owner="O2"),
    # --- closed won, subscriptions (custom pipeline) -------------------------------------------
    DemoDeal("D13", "田中システム クラウド契約", "C05", SUBSCRIPTION_WON_STAGE, "2026-09-28",
             (L("RK-SAAS-PRO", 25, recurring="monthly", billing_start="2026-10-01", term_months=12), L("RK-ONB", 1)),
             pipeline=_SUB, owner="O2"),
    DemoDeal("D14", "山本ホールディングス 年間契約", "C14", SUBSCRIPTION_WON_STAGE, "2026-09-15",
             (L("RK-SAAS-ENT", 1, recurring="annually", billing_start="2026-10-01", term_months=12),
              L("RK-SUP-Y", 1, recurring="annually", billing_start="2026-10-01", term_months=12, discount=40_000)),
             pipeline=_SUB, owner="O1"),
    DemoDeal("D15", "さくらネットワークス 月額契約（増席）", "C13", SUBSCRIPTION_WON_STAGE, "2026-08-30",
             (L("RK-SAAS-STD", 10, recurring="monthly", billing_start="2026-09-01", term_months=12),
              # amendment: +5 seats from 2026-11-16 (prorated by the subscription flow)
              L("RK-SAAS-STD", 5, recurring="monthly", billing_start="2026-11-16", term_months=10, effective_date="2026-11-16")),
             pipeline=_SUB, owner="O3", note="amendment: seats added mid-term"),
    DemoDeal("D16", "林コンサルティング プラン変更", "C18", SUBSCRIPTION_WON_STAGE, "2026-07-25",
             (L("RK-SAAS-STD", 8, recurring="monthly", billing_start="2026-08-01", term_months=12),
              # amendment: upgrade STD → PRO from 2026-12-01 (quantity 0 on the old plan = ended)
              L("RK-SAAS-STD", 0, recurring="monthly", billing_start="2026-08-01", term_months=12, effective_date="2026-12-01"),
              L("RK-SAAS-PRO", 8, recurring="monthly", billing_start="2026-12-01", term_months=8, effective_date="2026-12-01")),
             pipeline=_SUB, owner="O2", note="amendment: plan upgrade"),
    DemoDeal("D17", "藤井情報システム 年間サポート", "C38", SUBSCRIPTION_WON_STAGE, "2026-10-30",
             (L("RK-SUP-Y", 1, recurring="annually", billing_start="2026-11-01", term_months=12),), pipeline=_SUB, owner="O3"),
    DemoDeal("D18", "すずらん珈琲店 月額プラン", "C40", SUBSCRIPTION_WON_STAGE, "2026-10-05",
             (L("RK-SAAS-STD", 1, recurring="monthly", billing_start="2026-10-05", term_months=12), L("FD-COFFEE", 1)),
             pipeline=_SUB, owner="O1"),
    # --- open, default pipeline ----------------------------------------------------------------
    DemoDeal("D19", "小林運輸 配車管理 初回面談", "C10", "appointmentscheduled", "2026-12-20", (L("RK-ONB", 1),), owner="O3"),
    DemoDeal("D20", "渡辺工業 工場DX", "C07", "qualifiedtobuy", "2026-12-25", (L("RK-DEV-D", 30), L("RK-CNS-H", 20)), owner="O3"),
    DemoDeal("D21", "井上電機 研修パッケージ", "C16", "presentationscheduled", "2026-12-10", (L("RK-TRN", 3), L("FD-BENTO", 3)), owner="O3"),
    DemoDeal("D22", "木村フーズ 催事用品", "C17", "decisionmakerboughtin", "2026-12-05", (L("FD-SWEETS", 50, discount=240), L("FD-WATER", 20), L("SV-SHIP", 3)), owner="O1"),
    DemoDeal("D23", "東和商会 端末入替", "C19", "contractsent", "2026-11-30", (L("HW-TAB", 15, discount_percentage=5), L("HW-PRN", 5)), owner="O1"),
    DemoDeal("D24", "清水製菓 導入", "C20", "contractsent", "2026-12-01", (L("RK-ONB", 1), L("RK-TRN", 1)), owner="O3"),
    DemoDeal("D25", "森ファーマ 開発案件", "C22", "qualifiedtobuy", "2027-01-15", (L("RK-DEV-D", 40),), owner="O1"),
    DemoDeal("D26", "池田ロジスティクス 倉庫端末", "C23", "appointmentscheduled", "2027-01-31", (L("HW-TAB", 30), L("HW-PRN", 10)), owner="O3"),
    DemoDeal("D27", "村上ベーカリー 店舗POS", "C33", "presentationscheduled", "2026-12-15", (L("HW-PRN", 3), L("OF-PAPER", 10)), owner="O2"),
    # --- open, subscription pipeline -----------------------------------------------------------
    DemoDeal("D28", "あおぞらソフト トライアル", "C25", "160014501", "2026-12-31",
             (L("RK-SAAS-PRO", 5, recurring="monthly", billing_start="2027-01-01", term_months=12),), pipeline=_SUB, owner="O1"),
    DemoDeal("D29", "長谷川メディカル 見積", "C31", "160014502", "2027-01-10",
             (L("RK-SAAS-ENT", 1, recurring="annually", billing_start="2027-02-01", term_months=24),), pipeline=_SUB, owner="O1"),
    DemoDeal("D30", "北斗通信 稟議中", "C32", "160014503", "2026-12-20",
             (L("RK-SAAS-STD", 40, recurring="monthly", billing_start="2027-01-01", term_months=12, discount=300), L("RK-ONB", 1)),
             pipeline=_SUB, owner="O3"),
    # --- lost ----------------------------------------------------------------------------------
    DemoDeal("D31", "橋本不動産 端末提案", "C24", "closedlost", "2026-09-30", (L("HW-TAB", 6),), owner="O2"),
    DemoDeal("D32", "前田テキスタイル 年間契約", "C27", "160014505", "2026-10-31",
             (L("RK-SAAS-ENT", 1, recurring="annually", billing_start="2026-11-01", term_months=12),), pipeline=_SUB, owner="O2"),
    DemoDeal("D33", "石川精機 コンサル", "C26", "closedlost", "2026-10-20", (L("RK-CNS-H", 12),), owner="O3"),
)
_DEAL_BY_KEY = {d.key: d for d in DEALS}


def deal(key: str) -> DemoDeal:
    return _DEAL_BY_KEY[key]


def invoice_total(line_items: tuple[DemoLineItem, ...] | list[DemoLineItem]) -> int:
    """Tax-inclusive invoice total in yen for one billing of these lines: net amounts summed per tax
    rate, tax rounded down once per rate (適格請求書: one rounding per rate), plus the nets.

    Amendment lines (``effective_date`` set) are left out: they bill from a later period.
    """
    nets: dict[int, int] = {}
    for li in line_items:
        if li.effective_date:
            continue
        rate = TAX_RATE_PERCENT[li.tax_category]
        nets[rate] = nets.get(rate, 0) + li.amount
    return sum(net + net * rate // 100 for rate, net in nets.items())


# --------------------------------------------------------------------------------------------------
# freee: partners, items, bank deposits
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FreeePartner:
    """A freee 取引先 as it already exists in the demo freee company.

    ``company`` is the HubSpot-side company key it corresponds to (None: exists only in freee). The
    ``name`` may differ slightly from HubSpot's (㈱ / (株) / half-width kana / spaces) on purpose.
    """

    code: str
    name: str
    company: str | None
    name_kana: str
    long_name: str
    org_code: int  # 1 法人, 2 個人
    email: str | None
    contact_name: str | None
    phone: str | None
    zipcode: str | None
    prefecture_code: int | None
    street_name1: str | None
    street_name2: str | None
    invoice_registration_number: str | None
    payment_terms: PaymentTerms
    bank_account_name: str | None = None  # 振込名義 (half-width katakana) as seen on deposits
    note: str = ""

    @property
    def qualified_invoice_issuer(self) -> bool:
        return self.invoice_registration_number is not None


# HubSpot companies whose freee partner name deviates on purpose (key → freee name).
_NAME_VARIANTS: dict[str, tuple[str, str]] = {
    "C01": ("㈱山田商事", "㈱ (U+3231) instead of 株式会社"),
    "C02": ("(株)佐藤製作所", "(株) instead of 株式会社"),
    "C05": ("株式会社 田中システム", "space after the legal form"),
    "C08": ("ミライテック（株）", "full-width (株) after the name"),
    "C13": ("ｻｸﾗﾈｯﾄﾜｰｸｽ株式会社", "half-width katakana for hiragana さくら"),
    "C18": ("株式会社　林コンサルティング", "ideographic space"),
    "C22": ("株式会社森ﾌｧｰﾏ", "half-width katakana"),
    "C25": ("あおぞらソフト　株式会社", "ideographic space before the legal form"),
    "C38": ("株式会社藤井情報システム ", "trailing space"),
}
# HubSpot companies with no freee partner yet (customer-sync must create them).
_HUBSPOT_ONLY = ("C33", "C34", "C35", "C36", "C37", "C31")


def _build_partners() -> tuple[FreeePartner, ...]:
    out: list[FreeePartner] = []
    n = 0
    for c in COMPANIES:
        if c.key in _HUBSPOT_ONLY:
            continue
        n += 1
        name, note = _NAME_VARIANTS.get(c.key, (c.name, ""))
        billing = next(p for p in CONTACTS if p.company == c.key and p.billing)
        reg = c.registration_number
        if c.key == "C12":  # freee was never told the number (HubSpot knows it)
            reg, note = None, "registration number only in HubSpot"
        out.append(
            FreeePartner(
                code=f"TK{n:04d}", name=name, company=c.key, name_kana=c.kana, long_name=c.name,
                org_code=2 if c.sole_trader else 1, email=c.billing_email,
                contact_name=f"{billing.last_name} {billing.first_name}", phone=c.phone,
                zipcode=c.postal_code, prefecture_code=c.prefecture_code,
                street_name1=f"{c.city}{c.street}", street_name2=None,
                invoice_registration_number=reg, payment_terms=c.payment_terms,
                bank_account_name=c.bank_payer_name, note=note,
            )
        )
    # Partners that exist only in freee (suppliers / legacy customers).
    out.append(
        FreeePartner(
            code="TK9001", name="株式会社丸井文具", company=None, name_kana="マルイブング", long_name="株式会社丸井文具",
            org_code=1, email="order@marui-bungu.example", contact_name="丸井 太郎", phone="03-3861-9001",
            zipcode="111-0053", prefecture_code=PREFECTURES.index("東京都"), street_name1="台東区浅草橋1-1-1",
            street_name2=None, invoice_registration_number=f"T{corporate_number('010501009001')}",
            payment_terms=TERMS_EOM_NEXT_EOM, bank_account_name=bank_payer_name("マルイブング", "株式会社"),
            note="freee only",
        )
    )
    out.append(
        FreeePartner(
            code="TK9002", name="有限会社大西運送", company=None, name_kana="オオニシウンソウ", long_name="有限会社大西運送",
            org_code=1, email=None, contact_name=None, phone="0566-21-9002", zipcode="446-0032",
            prefecture_code=PREFECTURES.index("愛知県"), street_name1="安城市御幸本町1-1", street_name2=None,
            invoice_registration_number=None, payment_terms=TERMS_20_NEXT_10,
            bank_account_name=bank_payer_name("オオニシウンソウ", "有限会社"), note="freee only, no registration",
        )
    )
    return tuple(out)


FREEE_PARTNERS: tuple[FreeePartner, ...] = _build_partners()


@dataclass(frozen=True)
class FreeeItem:
    """A freee 品目 matching a HubSpot product by ``code`` (= hs_sku)."""

    code: str
    name: str
    unit_price: int
    tax_category: str


FREEE_ITEMS: tuple[FreeeItem, ...] = tuple(
    FreeeItem(p.code, p.name, p.unit_price, p.tax_category) for p in PRODUCTS if p.code != "OF-PAPER"
)
"""All products but ``OF-PAPER`` (product-sync must create it in freee)."""


@dataclass(frozen=True)
class BankDeposit:
    """An incoming bank transfer (freee 口座明細 / wallet txn).

    ``deals`` and ``fee`` are the expected reconciliation: which won deals' invoices it pays and the
    transfer fee (振込手数料) the payer deducted — ``amount == sum(invoice_total) − fee``.
    """

    key: str
    date: str  # ISO date (Asia/Tokyo)
    amount: int  # yen
    payer_name: str  # half-width katakana, bank style
    deals: tuple[str, ...] = ()
    fee: int = 0
    note: str = ""


def _deposit(key: str, day: str, deal_keys: tuple[str, ...], fee: int = 0, note: str = "", payer: str | None = None) -> BankDeposit:
    total = sum(invoice_total(deal(k).line_items) for k in deal_keys)
    comp = company(deal(deal_keys[0]).company)
    return BankDeposit(key, day, total - fee, payer or comp.bank_payer_name, deal_keys, fee, note)


BANK_DEPOSITS: tuple[BankDeposit, ...] = (
    _deposit("B01", "2026-11-30", ("D01",), note="exact"),
    _deposit("B02", "2026-11-10", ("D02",), fee=440, note="short by transfer fee 440"),
    _deposit("B03", "2026-11-30", ("D03",), fee=110, note="short by transfer fee 110"),
    _deposit("B04", "2026-11-30", ("D04",), note="exact, legal form after the name"),
    _deposit("B05", "2026-11-30", ("D05", "D06"), note="one transfer paying two invoices"),
    _deposit("B06", "2026-11-30", ("D07",), fee=660, note="short by transfer fee 660"),
    _deposit("B07", "2026-11-10", ("D08",), fee=880, note="short by transfer fee 880"),
    _deposit("B08", "2026-11-30", ("D09",), note="sole trader pays under the person's name"),
    _deposit("B09", "2026-11-30", ("D10",), fee=440, note="small kana folded: ｺ-ﾋ-"),
    BankDeposit("B10", "2026-11-25", 55_000, "ｶ)ﾃﾞﾝｾﾂｺｳｺｸ", (), 0, "unrelated deposit (no invoice)"),
)


@dataclass(frozen=True)
class DemoCost:
    """A cost tagged to a customer — in freee an expense 取引 (支出) with the customer as partner, 外注費 at
    課対仕入10%: ``net`` 税抜 + ``vat`` = the 取引's amount. The reporting flow counts Σ net per customer as its
    cost (gross margin = sales − cost)."""

    key: str
    date: str  # ISO date (Asia/Tokyo)
    company: str  # DemoCompany key
    net: int  # 税抜 yen
    description: str

    @property
    def vat(self) -> int:
        return self.net // 10

    @property
    def amount(self) -> int:
        return self.net + self.vat


COSTS: tuple[DemoCost, ...] = (
    DemoCost("E01", "2026-11-05", deal("D01").company, 120_000, "外注費 導入作業"),
    DemoCost("E02", "2026-11-12", deal("D02").company, 45_000, "外注費 保守対応"),
    DemoCost("E03", "2026-11-18", deal("D03").company, 300_000, "外注費 開発委託"),
    DemoCost("E04", "2026-11-20", deal("D05").company, 80_000, "外注費 設置工事"),
    DemoCost("E05", "2026-11-25", deal("D05").company, 15_000, "外注費 配送"),
    DemoCost("E06", "2026-11-26", deal("D08").company, 60_000, "外注費 研修講師"),
)
"""Costs of some invoiced customers (one customer has two), so the demo shows margins."""
