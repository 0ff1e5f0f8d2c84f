"""Matching companies without an ID mapping (domain/matching.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import renkei.domain.matching as matching
from renkei.domain.identifiers import houjin_check_digit
from renkei.domain.matching import MatchIndex, MatchKind, Rule, legal_ids, match, match_batch
from renkei.domain.model import Address, Company, EntityKind


def corp(base12: str) -> str:
    """A valid 13-digit corporate number built from 12 digits."""
    return f"{houjin_check_digit(base12)}{base12}"


CN_YAMADA = corp("010001000001")
CN_OTHER = corp("010001000002")
CN_ABC = corp("010001000003")


def partner(pid: str, name: str, **kw) -> dict:
    return {"erp_id": pid, "name": name, **kw}


def company(cid: str, name: str, **kw) -> dict:
    return {"crm_id": cid, "name": name, **kw}


def ids(result) -> list[str]:
    return [c.target_id for c in result.candidates]


# --------------------------------------------------------------------------------------- rule 1


def test_corporate_number_exact_links():
    idx = MatchIndex([partner("p1", "全然違う名前", corporate_number=CN_YAMADA), partner("p2", "山田商事")])
    r = match(company("c1", "株式会社山田商事", corporate_number=CN_YAMADA), idx)
    assert (r.kind, r.target, r.rule, r.score) == (MatchKind.LINK, "p1", Rule.CORPORATE_NUMBER, 1.0)
    assert r.source_id == "c1" and "corporate_number" in r.candidates[0].reasons


def test_registration_number_gives_the_corporate_number():
    idx = MatchIndex([partner("p1", "山田商事", registration_number=f"T{CN_YAMADA}")])
    assert match(company("c1", "山田商事", corporate_number=CN_YAMADA), idx).target == "p1"
    # and the other way round, written loosely
    idx2 = MatchIndex([partner("p1", "山田商事", corporate_number=CN_YAMADA)])
    assert match(company("c1", "x", registration_number=f"Ｔ{CN_YAMADA[:4]}-{CN_YAMADA[4:]}"), idx2).target == "p1"


def test_sole_trader_registration_number_matches_exactly():
    idx = MatchIndex([partner("p1", "山田太郎", registration_number=f"T{CN_OTHER}", entity_kind="sole_trader")])
    r = match(company("c1", "やまだ屋", registration_number=f"T{CN_OTHER}"), idx)
    assert (r.kind, r.target) == (MatchKind.LINK, "p1")


def test_several_targets_with_one_corporate_number_go_to_review():
    idx = MatchIndex([partner("p1", "山田商事", corporate_number=CN_YAMADA),
                      partner("p2", "山田商事 大阪支店", registration_number=f"T{CN_YAMADA}")])
    r = match(company("c1", "山田商事", corporate_number=CN_YAMADA), idx)
    assert (r.kind, r.reason, sorted(ids(r))) == (MatchKind.REVIEW, "AMBIGUOUS_CORPORATE_NUMBER", ["p1", "p2"])


def test_conflicting_corporate_numbers_veto_domain_and_name_links():
    idx = MatchIndex([partner("p1", "山田商事", corporate_number=CN_OTHER, domain="yamada.co.jp",
                              phone="03-1234-5678")])
    r = match(company("c1", "山田商事", corporate_number=CN_YAMADA, domain="yamada.co.jp",
                      phone="03-1234-5678"), idx)
    assert r.kind is MatchKind.CREATE  # a different legal entity: never linked on other evidence
    assert any("p1" in n for n in r.notes)


def test_malformed_corporate_number_is_ignored_not_trusted():
    assert legal_ids({"corporate_number": "1234567890123"}) == frozenset()  # check digit fails
    assert legal_ids({"registration_number": "T12345"}) == frozenset()
    assert legal_ids(Company(name="x", corporate_number=CN_ABC)) == {CN_ABC}


# --------------------------------------------------------------------------------------- rule 2


def test_unique_domain_links():
    idx = MatchIndex([partner("p1", "ABC株式会社", domain="abc.co.jp"), partner("p2", "XYZ")])
    r = match(company("c1", "エービーシー", domain="https://www.ABC.co.jp/company"), idx)
    assert (r.kind, r.target, r.rule) == (MatchKind.LINK, "p1", Rule.DOMAIN)


@pytest.mark.parametrize("generic", ["gmail.com", "yahoo.co.jp", "docomo.ne.jp", "taro@gmail.com",
                                     "yamada.wixsite.com"])
def test_free_mail_and_hosting_domains_are_ignored(generic):
    idx = MatchIndex([partner("p1", "全然違う会社", domain=generic)])
    assert match(company("c1", "山田商事", domain=generic), idx).kind is MatchKind.CREATE


def test_shared_domain_is_not_decisive():
    idx = MatchIndex([partner("p1", "山田ホールディングス", domain="yamada.co.jp"),
                      partner("p2", "山田物流", domain="yamada.co.jp")])
    r = match(company("c1", "山田商事", domain="yamada.co.jp"), idx)
    assert (r.kind, r.reason, sorted(ids(r))) == (MatchKind.REVIEW, "SHARED_DOMAIN", ["p1", "p2"])


def test_shared_domain_then_name_and_phone_decides():
    idx = MatchIndex([partner("p1", "山田ホールディングス", domain="yamada.co.jp"),
                      partner("p2", "山田商事", domain="yamada.co.jp", phone="03-1234-5678")])
    r = match(company("c1", "株式会社山田商事", domain="yamada.co.jp", phone="0312345678"), idx)
    assert (r.kind, r.target, r.rule) == (MatchKind.LINK, "p2", Rule.NAME_AND_PHONE)


def test_domain_and_name_pointing_at_different_targets_is_review():
    idx = MatchIndex([partner("p1", "ABC", domain="abc.co.jp"),
                      partner("p2", "山田商事", phone="03-1234-5678")])
    r = match(company("c1", "山田商事", domain="abc.co.jp", phone="03-1234-5678"), idx)
    assert (r.kind, r.reason, sorted(ids(r))) == (MatchKind.REVIEW, "CONFLICTING_SIGNALS", ["p1", "p2"])


# --------------------------------------------------------------------------------------- rule 3


@pytest.mark.parametrize("name", ["株式会社山田商事", "(株)山田商事", "㈱山田商事", "山田商事 株式会社",
                                  "株式会社　山田商事"])
def test_legal_form_variants_link_with_phone(name):
    idx = MatchIndex([partner("p1", "株式会社山田商事", phone="03-1234-5678"),
                      partner("p2", "山田商店", phone="03-1234-0000")])
    r = match(company("c1", name, phone="+81 3-1234-5678"), idx)
    assert (r.kind, r.target, r.rule) == (MatchKind.LINK, "p1", Rule.NAME_AND_PHONE)


def test_name_and_postal_code_links():
    idx = MatchIndex([partner("p1", "㈱山田商事", address={"postal_code": "100-0001", "city": "千代田区"})])
    r = match(Company(crm_id="c1", name="株式会社山田商事", address=Address(postal_code="〒1000001")), idx)
    assert (r.kind, r.target, r.rule) == (MatchKind.LINK, "p1", Rule.NAME_AND_POSTAL_CODE)


def test_full_width_latin_name_links():
    idx = MatchIndex([partner("p1", "ABC Co., Ltd.", phone="03-1111-2222")])
    r = match(company("c1", "ＡＢＣ　Ｃｏ．，Ｌｔｄ．", phone="０３－１１１１－２２２２"), idx)
    assert (r.kind, r.target) == (MatchKind.LINK, "p1")


def test_kana_name_links_through_the_reading():
    idx = MatchIndex([partner("p1", "ﾔﾏﾀﾞｼｮｳｼﾞ", phone="03-1234-5678")])
    r = match(company("c1", "株式会社山田商事", name_kana="ヤマダショウジ", phone="03-1234-5678"), idx)
    assert (r.kind, r.target, r.rule) == (MatchKind.LINK, "p1", Rule.NAME_AND_PHONE)
    assert "kana" in r.candidates[0].reasons


def test_kana_name_without_a_reading_is_never_a_duplicate():
    """No kana on the CRM side: not linkable by name, but the same phone brings it to review."""
    idx = MatchIndex([partner("p1", "ﾔﾏﾀﾞｼｮｳｼﾞ", phone="03-1234-5678")])
    r = match(company("c1", "株式会社山田商事", phone="03-1234-5678"), idx)
    assert (r.kind, r.reason, ids(r)) == (MatchKind.REVIEW, "SAME_PHONE", ["p1"])


def test_same_reading_different_kanji_is_only_review():
    idx = MatchIndex([partner("p1", "山多商事", name_kana="ヤマダショウジ", phone="03-1234-5678")])
    r = match(company("c1", "山田商事", name_kana="ヤマダショウジ", phone="03-1234-5678"), idx)
    assert r.kind is MatchKind.REVIEW and "kana_weak" in r.candidates[0].reasons


def test_same_name_different_cities_is_review_with_both_candidates():
    idx = MatchIndex([
        partner("p1", "株式会社山田商事", phone="03-1234-5678",
                address={"postal_code": "100-0001", "prefecture": "東京都", "city": "千代田区"}),
        partner("p2", "株式会社山田商事", phone="06-1234-5678",
                address={"postal_code": "530-0001", "prefecture": "大阪府", "city": "大阪市北区"}),
    ])
    r = match(company("c1", "山田商事", phone="092-123-4567",
                      address={"postal_code": "810-0001", "city": "福岡市中央区"}), idx)
    assert (r.kind, r.reason, sorted(ids(r))) == (MatchKind.REVIEW, "NAME_ONLY", ["p1", "p2"])
    assert {c.city for c in r.candidates} == {"東京都 千代田区", "大阪府 大阪市北区"}
    assert all(c.reasons == ("name",) for c in r.candidates)


def test_same_name_twice_with_the_same_phone_is_ambiguous():
    idx = MatchIndex([partner("p1", "山田商事", phone="03-1234-5678"),
                      partner("p2", "(株)山田商事", phone="03-1234-5678")])
    r = match(company("c1", "山田商事", phone="03-1234-5678"), idx)
    assert (r.kind, r.reason) == (MatchKind.REVIEW, "AMBIGUOUS_NAME")


def test_similar_but_different_names_are_not_linked():
    idx = MatchIndex([partner("p1", "山田商店", phone="03-1234-5678")])
    assert match(company("c1", "山田商事"), idx).kind is MatchKind.CREATE
    # even with the same phone it is a question for a human, never a link
    r = match(company("c1", "山田商事", phone="03-1234-5678"), idx)
    assert r.kind is MatchKind.REVIEW and r.target is None


def test_fuzzy_name_goes_to_review():
    idx = MatchIndex([partner("p1", "Acme Trading Co., Ltd."), partner("p2", "Zeta Holdings")])
    r = match(company("c1", "Acme Tradng"), idx)
    assert (r.kind, r.reason, ids(r)) == (MatchKind.REVIEW, "FUZZY_NAME", ["p1"])
    assert any(x.startswith("fuzzy_name:") for x in r.candidates[0].reasons)


def test_nothing_creates():
    idx = MatchIndex([partner("p1", "山田商事", phone="03-1234-5678", domain="yamada.co.jp")])
    r = match(company("c1", "鈴木工業", phone="06-9999-0000", domain="suzuki.co.jp"), idx)
    assert (r.kind, r.target, r.candidates) == (MatchKind.CREATE, None, ())


def test_name_made_only_of_a_legal_form_does_not_match_by_name():
    idx = MatchIndex([partner("p1", "株式会社", phone="03-1234-5678")])
    r = match(company("c1", "(株)", phone="03-9999-9999"), idx)
    assert r.kind is MatchKind.CREATE


# --------------------------------------------------------------------------------------- guards


def test_target_already_mapped_is_review():
    idx = MatchIndex([partner("p1", "山田商事", corporate_number=CN_YAMADA)], mapped_ids={"p1"})
    r = match(company("c9", "山田商事", corporate_number=CN_YAMADA), idx)
    assert (r.kind, r.reason, ids(r)) == (MatchKind.REVIEW, "TARGET_ALREADY_MAPPED", ["p1"])
    assert "already_mapped" in r.candidates[0].reasons


def test_archived_target_is_review():
    idx = MatchIndex([partner("p1", "山田商事", corporate_number=CN_YAMADA, archived=True)])
    r = match(company("c1", "山田商事", corporate_number=CN_YAMADA), idx)
    assert (r.kind, r.reason) == (MatchKind.REVIEW, "TARGET_ARCHIVED")


def test_claims_make_a_second_source_review():
    idx = MatchIndex([partner("p1", "山田商事", corporate_number=CN_YAMADA)])
    first = match(company("c1", "山田商事", corporate_number=CN_YAMADA), idx)
    assert first.kind is MatchKind.LINK
    idx.claim(first.target, "c1")
    assert match(company("c1", "山田商事", corporate_number=CN_YAMADA), idx).kind is MatchKind.LINK  # rerun
    second = match(company("c2", "山田商事", corporate_number=CN_YAMADA), idx)
    assert (second.kind, second.reason) == (MatchKind.REVIEW, "DUPLICATE_IN_BATCH")


def test_batch_two_sources_one_target_both_review():
    idx = MatchIndex([partner("p1", "株式会社山田商事", phone="03-1234-5678")])
    rs = match_batch([company("c1", "(株)山田商事", phone="03-1234-5678"),
                      company("c2", "㈱山田商事", phone="0312345678"),
                      company("c3", "鈴木工業")], idx)
    assert [(r.kind, r.reason) for r in rs] == [
        (MatchKind.REVIEW, "DUPLICATE_IN_BATCH"), (MatchKind.REVIEW, "DUPLICATE_IN_BATCH"), (MatchKind.CREATE, None)]
    assert idx.claimed_by("p1") is None  # nothing claimed


def test_batch_duplicate_sources_do_not_create_twice():
    """株式会社山田商事 / (株)山田商事 / ㈱山田商事 / ﾔﾏﾀﾞｼｮｳｼﾞ in one CRM batch, none in the ERP."""
    idx = MatchIndex([partner("p9", "鈴木工業")])
    rs = match_batch([
        company("c1", "株式会社山田商事", phone="03-1234-5678"),
        company("c2", "(株)山田商事", phone="03-1234-5678"),
        company("c3", "㈱山田商事", address={"postal_code": "100-0001"}, phone="03-1234-5678"),
        company("c4", "ﾔﾏﾀﾞｼｮｳｼﾞ", phone="03-1234-5678"),
        company("c5", "ＡＢＣ", domain="abc.co.jp"),
        company("c6", "ABC", domain="abc.co.jp"),
        company("c7", "鈴木商店"),
    ], idx)
    kinds = {r.source_id: (r.kind, r.reason) for r in rs}
    for cid in ("c1", "c2", "c3", "c4", "c5", "c6"):  # c4: only the phone in common, as SAME_PHONE
        assert kinds[cid] == (MatchKind.REVIEW, "DUPLICATE_SOURCE_IN_BATCH"), cid
    assert kinds["c7"] == (MatchKind.CREATE, None)


def test_batch_duplicates_never_across_different_corporate_numbers():
    idx = MatchIndex([])
    rs = match_batch([company("c1", "山田商事", corporate_number=CN_YAMADA, phone="03-1234-5678"),
                      company("c2", "山田商事", corporate_number=CN_OTHER, phone="03-1234-5678")], idx)
    assert [r.kind for r in rs] == [MatchKind.CREATE, MatchKind.CREATE]


def test_batch_claims_links_for_later_calls():
    idx = MatchIndex([partner("p1", "山田商事", corporate_number=CN_YAMADA)])
    (r,) = match_batch([company("c1", "x", corporate_number=CN_YAMADA)], idx)
    assert r.kind is MatchKind.LINK and idx.claimed_by("p1") == "c1"
    assert match(company("c2", "y", corporate_number=CN_YAMADA), idx).reason == "DUPLICATE_IN_BATCH"


def test_index_rejects_targets_without_or_with_duplicate_ids():
    with pytest.raises(ValueError):
        MatchIndex([{"name": "x"}])
    with pytest.raises(ValueError):
        MatchIndex([partner("p1", "a"), partner("p1", "b")])


def test_models_and_the_reverse_direction():
    """ERP partners matched to CRM companies: id fields swap."""
    crm_side = [Company(crm_id="c1", name="株式会社山田商事", phone="03-1234-5678")]
    idx = MatchIndex(crm_side, id_field="crm_id", source_id_field="erp_id")
    r = match(Company(erp_id="p1", name="山田商事", phone="0312345678", entity_kind=EntityKind.CORPORATION), idx)
    assert (r.kind, r.target, r.source_id) == (MatchKind.LINK, "c1", "p1")


# --------------------------------------------------------------------------------------- scale


def test_matching_is_blocked_not_all_pairs(monkeypatch):
    # 5,000 targets: the prefix block "会社" is too big to be useful and is skipped; the suffix blocks
    # (last two digits) hold 50 targets each — fuzzy scoring only ever sees one such block.
    targets = [partner(f"p{i}", f"会社{i:05d}", phone=f"03-{i // 10000:04d}-{i % 10000:04d}") for i in range(5000)]
    idx = MatchIndex(targets)
    sizes: list[int] = []
    real = matching.process.extract

    def spy(query, choices, **kw):
        sizes.append(len(choices))
        return real(query, choices, **kw)

    monkeypatch.setattr(matching.process, "extract", spy)
    rs = match_batch([company(f"c{i}", f"別会社{i:05d}") for i in range(500)], idx)
    assert len(rs) == 500
    assert len(sizes) == 500 and max(sizes) == 50
    assert sum(sizes) <= 500 * 5000 // 50  # vs 2,500,000 comparisons for all pairs


# --------------------------------------------------------------------------------------- properties

POOL_NAMES = ["株式会社山田商事", "(株)山田商事", "山田商店", "ＡＢＣ", "ABC株式会社", "鈴木工業", "ﾔﾏﾀﾞｼｮｳｼﾞ"]
POOL_PHONES = ["03-1234-5678", "0312345678", "06-1111-2222", None]
POOL_DOMAINS = ["yamada.co.jp", "abc.co.jp", "gmail.com", None]
POOL_CNS = [CN_YAMADA, CN_ABC, None, None]


def _rec(kind: str, n: int, name: str, phone, domain, cn) -> dict:
    return {f"{kind}_id": f"{kind[0]}{n}", "name": name, "phone": phone, "domain": domain, "corporate_number": cn}


rec_fields = st.tuples(st.sampled_from(POOL_NAMES), st.sampled_from(POOL_PHONES), st.sampled_from(POOL_DOMAINS),
                       st.sampled_from(POOL_CNS))


def _summary(results) -> dict:
    return {r.source_id: (r.kind, r.target, r.reason, r.rule, tuple(sorted(ids(r)))) for r in results}


@settings(max_examples=200, deadline=None)
@given(sources=st.lists(rec_fields, max_size=6), targets=st.lists(rec_fields, max_size=6),
       seed=st.integers(0, 10_000))
def test_property_order_independent(sources, targets, seed):
    src = [_rec("crm", n, *f) for n, f in enumerate(sources)]
    tgt = [_rec("erp", n, *f) for n, f in enumerate(targets)]
    baseline = _summary(match_batch(src, MatchIndex(tgt)))
    rnd = random.Random(seed)
    src2, tgt2 = src[:], tgt[:]
    rnd.shuffle(src2)
    rnd.shuffle(tgt2)
    assert _summary(match_batch(src2, MatchIndex(tgt2))) == baseline


@settings(max_examples=200, deadline=None)
@given(sources=st.lists(rec_fields, max_size=6), targets=st.lists(rec_fields, max_size=6))
def test_property_links_are_one_to_one_and_never_on_conflicting_numbers(sources, targets):
    src = [_rec("crm", n, *f) for n, f in enumerate(sources)]
    tgt = {t["erp_id"]: t for t in (_rec("erp", n, *f) for n, f in enumerate(targets))}
    results = match_batch(src, MatchIndex(tgt.values()))
    linked = [r.target for r in results if r.kind is MatchKind.LINK]
    assert len(linked) == len(set(linked))
    by_src = {s["crm_id"]: s for s in src}
    for r in results:
        if r.kind is MatchKind.LINK:
            a, b = legal_ids(by_src[r.source_id]), legal_ids(tgt[r.target])
            assert not (a and b) or a & b


def _full(results) -> list:
    return [(r.kind, r.target, r.rule, r.score, r.reason, r.notes,
             [(c.target_id, c.reasons, c.score, c.name, c.city) for c in r.candidates]) for r in results]


@settings(max_examples=100, deadline=None)
@given(sources=st.lists(rec_fields, max_size=6), targets=st.lists(rec_fields, max_size=6),
       mapped=st.sets(st.integers(0, 5), max_size=3))
def test_property_an_index_of_keys_only_matches_as_the_full_one(sources, targets, mapped):
    # customer-sync keeps 100,000 partners out of memory: the index holds their match keys, a live view of
    # the mapped ids, and reads a candidate's name and city back by id — every result must stay the same
    src = [_rec("crm", n, *f) for n, f in enumerate(sources)]
    tgt = [{**_rec("erp", n, *f), "address": {"prefecture": "東京都", "city": f"区{n}"}} for n, f in enumerate(targets)]
    linked = {f"e{m}": "active" for m in mapped}
    by_id = {t["erp_id"]: t for t in tgt}
    slim = MatchIndex([], mapped_ids=linked.keys(), keep_records=False, record_of=by_id.get)
    for t in tgt:
        slim.add(t)
    full = MatchIndex(tgt, mapped_ids=set(linked))
    assert slim.records == [] and all(k.display_name is None for k in slim.keys)
    assert _full(match_batch(src, slim)) == _full(match_batch(src, full))
    linked["e9"] = "active"  # linked later in the run: the view sees it without a copy
    assert "e9" in slim.mapped_ids and "e9" not in full.mapped_ids
