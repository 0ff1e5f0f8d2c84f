"""Matching a company with no ID mapping yet to the other side's records (HubSpot company ⇄ freee
partner 取引先). Pure rules: the flow builds a :class:`MatchIndex` once over the other side, then
calls :func:`match_batch` (or :func:`match`) — O(N) dict look-ups, never all pairs.

Rules, in order (first decisive one wins; the result is LINK, CREATE or REVIEW, never a guess):

1. **Corporate number** (法人番号; also the 13 digits of a ``T`` registration number 登録番号 — the NTA
   gives sole traders numbers that never collide with corporate numbers). One target → LINK; several →
   REVIEW ``AMBIGUOUS_CORPORATE_NUMBER``. When both records have numbers and they differ, that target is
   a different legal entity: it is *vetoed* for every later rule.
2. **Domain** (normalised; free-mail / shared-hosting domains such as ``gmail.com`` are ignored). Held by
   exactly one target → LINK — unless rule 3 firmly points at another target (REVIEW
   ``CONFLICTING_SIGNALS``). Held by several → not decisive; they become review candidates.
3. **Normalised name equal** (``株式会社山田商事`` ≡ ``(株)山田商事`` ≡ ``㈱山田商事``, ``ＡＢＣ`` ≡ ``ABC``; or the
   kana reading equal when one side only has the name in kana, ``ﾔﾏﾀﾞｼｮｳｼﾞ``) **and** phone or postal
   code equal → LINK; several such targets → REVIEW ``AMBIGUOUS_NAME``.
4. Name equal alone (``NAME_ONLY``), a shared domain (``SHARED_DOMAIN``), a fuzzy name (rapidfuzz
   ratio ≥ ``fuzzy_threshold``, scored only within blocks sharing the normalised name's first or last
   two characters; ``FUZZY_NAME``) or the same phone number (``SAME_PHONE``) → REVIEW with the
   candidates and why each is one. A postal code alone is not evidence (a whole office district shares
   one).
5. Nothing → CREATE.

Guards on every LINK: a target already in the ID map (``TARGET_ALREADY_MAPPED``), claimed by another
source in this batch (``DUPLICATE_IN_BATCH``) or archived (``TARGET_ARCHIVED``) → REVIEW.
:func:`match_batch` is order-independent: when two sources want the same target, *both* go to review
(which one is right is a guess), and sources that would each CREATE but look like the same company
(shared corporate number, domain, phone, or name + postal code) go to review together
(``DUPLICATE_SOURCE_IN_BATCH``) instead of creating duplicates.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, KeysView, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from rapidfuzz import fuzz, process

from renkei.domain.identifiers import check_registration_number, normalise_corporate_number, normalise_postal_code
from renkei.domain.normalise import normalise_company_name, normalise_domain, normalise_kana, normalise_phone
from renkei.domain.ownership import MISSING, as_mapping, get_path

# Domains many unrelated companies share: free mail, carrier mail, ISPs, site builders, social
# networks. A company's "domain" on one of these says nothing about which company it is.
GENERIC_DOMAINS: frozenset[str] = frozenset({
    # free / carrier / ISP mail (JP and global)
    "gmail.com", "googlemail.com", "yahoo.co.jp", "ymail.ne.jp", "yahoo.com", "outlook.com", "outlook.jp",
    "hotmail.com", "hotmail.co.jp", "live.com", "live.jp", "msn.com", "icloud.com", "me.com", "mac.com",
    "aol.com", "protonmail.com", "proton.me", "gmx.com", "gmx.net", "mail.com", "zoho.com", "yandex.com",
    "docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp", "i.softbank.jp", "disney.ne.jp",
    "ymobile.ne.jp", "rakuten.jp", "nifty.com", "biglobe.ne.jp", "ocn.ne.jp", "so-net.ne.jp",
    "plala.or.jp", "ybb.ne.jp", "dion.ne.jp", "infoweb.ne.jp", "excite.co.jp", "goo.jp", "livedoor.com",
    "example.com", "example.jp", "example.co.jp",
    # site builders, shops and social profiles used as a "website"
    "wixsite.com", "wix.com", "jimdo.com", "jimdofree.com", "amebaownd.com", "ameblo.jp", "fc2.com",
    "blogspot.com", "wordpress.com", "github.io", "notion.site", "peraichi.com", "base.shop", "thebase.in",
    "stores.jp", "square.site", "shopify.com", "myshopify.com", "google.com", "sites.google.com",
    "facebook.com", "instagram.com", "twitter.com", "x.com", "linkedin.com", "line.me", "note.com",
    "youtube.com", "tiktok.com",
})

_KATAKANA = re.compile(r"[ァ-ヺ]+")
_NONE: frozenset[str] = frozenset()  # shared by every record without numbers / kana (an index holds 10,000s)


class MatchKind(str, Enum):
    LINK = "link"  # link the pair in the ID map
    CREATE = "create"  # create the record on the other side
    REVIEW = "review"  # a human chooses among the candidates


class Rule(str, Enum):
    CORPORATE_NUMBER = "corporate_number"
    DOMAIN = "domain"
    NAME_AND_PHONE = "name_and_phone"
    NAME_AND_POSTAL_CODE = "name_and_postal_code"
    NAME_ONLY = "name_only"
    FUZZY_NAME = "fuzzy_name"
    PHONE = "phone"
    BATCH = "batch"
    NONE = "none"


@dataclass(frozen=True)
class Candidate:
    """A possible target and why: reasons such as ``corporate_number``, ``domain``, ``name``,
    ``kana``, ``phone``, ``postal_code``, ``fuzzy_name:91``, ``already_mapped``, ``archived``,
    ``corporate_number_differs``."""

    target_id: str
    reasons: tuple[str, ...]
    score: float
    name: str | None = None
    city: str | None = None
    record: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class MatchResult:
    kind: MatchKind
    target: str | None  # target id when kind is LINK
    rule: Rule
    score: float  # 0..1 confidence of the rule used (1.0 = corporate number)
    candidates: tuple[Candidate, ...] = ()
    reason: str | None = None  # SCREAMING_SNAKE reason code when kind is REVIEW
    source_id: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Keys:
    id: str | None
    legal_ids: tuple[str, ...]  # sorted (a tuple of one is a quarter of a frozenset's memory)
    domain: str | None
    name: str | None
    name_is_kana: bool
    kana: frozenset[str]
    phone: str | None
    postal: str | None
    archived: bool
    display_name: str | None
    city: str | None


def _str(record: Mapping[str, Any], path: str) -> str | None:
    v = get_path(record, path)
    if v is None or v is MISSING:
        return None
    if isinstance(v, Enum):
        v = v.value
    s = str(v).strip()
    return s or None


def legal_ids(record: Any) -> frozenset[str]:
    """13-digit numbers identifying the legal entity: the corporate number and the digits of the
    registration number (T + 13). Malformed values are ignored (they cannot identify anything)."""
    rec = as_mapping(record)
    out: set[str] = set()
    corp = _str(rec, "corporate_number")
    if corp:
        try:
            out.add(normalise_corporate_number(corp))
        except ValueError:
            pass
    reg = _str(rec, "registration_number")
    if reg:
        try:
            chk = check_registration_number(reg, sole_trader=True)
            if chk.check_digit_ok:
                out.add(chk.value[1:])
        except ValueError:
            pass
    return frozenset(out) if out else _NONE


def _details(rec: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """What a candidate shows of its record: the name as written and the prefecture + city."""
    return _str(rec, "name"), _shared(
        " ".join(x for x in (_str(rec, "address.prefecture"), _str(rec, "address.city")) if x) or None)


def _keys(record: Any, id_field: str, generic_domains: frozenset[str], details: bool = True) -> _Keys:
    rec = as_mapping(record)
    domain = _str(rec, "domain")
    d = normalise_domain(domain) if domain else ""
    if d in generic_domains or "." not in d or any(d.endswith("." + g) for g in generic_domains):
        d = ""
    raw_name = _str(rec, "name")
    name = normalise_company_name(raw_name) if raw_name else ""
    kana: set[str] = set()
    name_is_kana = False
    if raw_name:
        k = normalise_kana(raw_name)
        if _KATAKANA.fullmatch(k):
            kana.add(k)
            name_is_kana = True
    raw_kana = _str(rec, "name_kana")
    if raw_kana:
        k = normalise_kana(raw_kana)
        if k:
            kana.add(k)
    phone = _str(rec, "phone")
    p = normalise_phone(phone) if phone else ""
    postal = _str(rec, "address.postal_code")
    try:
        pc = normalise_postal_code(postal) if postal else None
    except ValueError:
        pc = None
    archived = get_path(rec, "archived")
    return _Keys(
        id=_str(rec, id_field),
        legal_ids=tuple(sorted(legal_ids(rec))),
        domain=d or None,
        name=name or None,
        name_is_kana=name_is_kana,
        kana=frozenset(kana) if kana else _NONE,
        phone=p if len(p) >= 9 else None,  # shorter is an extension or junk, not a corroborator
        postal=_shared(pc),
        archived=bool(archived) if archived is not MISSING else False,
        display_name=raw_name if details else None,
        city=_details(rec)[1] if details else None,
    )


def _shared(s: str | None) -> str | None:
    """One object per distinct postal code / city across an index (tens of thousands of targets share a
    few hundred of them)."""
    return sys.intern(s) if s else s


def _name_relation(a: _Keys, b: _Keys) -> str | None:
    """``name`` (normalised names equal), ``kana`` (readings equal, one side only has a kana name),
    ``kana_weak`` (readings equal, kanji names differ: 山田商事 / 山多商事) or ``None``."""
    if a.name and a.name == b.name:
        return "name"
    if a.kana & b.kana:
        return "kana" if (a.name_is_kana or b.name_is_kana or not a.name or not b.name) else "kana_weak"
    return None


class _Postings(dict):
    """``key → target positions``. A key held by one target (a corporate number, a phone, a name: nearly
    every key of a large index) keeps the bare position; a list only from the second target on (an index
    over 100,000 partners would otherwise hold 300,000 one-element lists)."""

    __slots__ = ()

    def add(self, key: str, i: int) -> None:
        cur = dict.get(self, key)
        if cur is None:
            self[key] = i
        elif type(cur) is int:
            self[key] = [cur, i]
        else:
            cur.append(i)

    def get(self, key: str, default: Any = ()) -> Any:  # type: ignore[override]
        cur = dict.get(self, key)
        if cur is None:
            return default
        return (cur,) if type(cur) is int else cur


def _shares(a: Iterable[str], b: Iterable[str]) -> bool:
    return not set(a).isdisjoint(b)


class MatchIndex:
    """Look-up tables over the other side's records, built once per batch.

    ``id_field`` names the targets' id (``erp_id`` when matching CRM companies to freee partners),
    ``source_id_field`` the sources' id. ``mapped_ids`` are targets already linked in the ID map (a
    dict's ``keys()`` view is used as it is, so links the caller adds later count without a copy).
    ``keep_records=False`` keeps the match keys only (``records`` stays empty and candidates carry no
    record): for a caller that holds the records elsewhere and finds them by target id; given
    ``record_of(target_id)``, candidates take their name and city from it and the index holds no display
    text either (a 100,000-partner index is then mostly numbers and normalised keys).
    """

    def __init__(
        self,
        targets: Iterable[Any],
        *,
        id_field: str = "erp_id",
        source_id_field: str = "crm_id",
        mapped_ids: Iterable[str] = (),
        generic_domains: Iterable[str] = GENERIC_DOMAINS,
        fuzzy_threshold: float = 88.0,
        max_block: int = 500,
        keep_records: bool = True,
        record_of: Callable[[str], Any] | None = None,
    ) -> None:
        self.id_field = id_field
        self.source_id_field = source_id_field
        self.generic_domains = frozenset(normalise_domain(d) for d in generic_domains)
        self.fuzzy_threshold = fuzzy_threshold
        self.max_block = max_block
        self.keep_records = keep_records
        # without the records, the caller's look-up by target id gives a candidate's name and city (the
        # index then keeps no display text at all)
        self.record_of = record_of if not keep_records else None
        # a dict's keys view stays live (the caller's map of linked ids); anything else is copied
        self.mapped_ids = mapped_ids if isinstance(mapped_ids, KeysView) else set(mapped_ids)
        self._claims: dict[str, str] = {}
        self.records: list[Any] = []
        self.keys: list[_Keys] = []
        self.by_id: dict[str, int] = {}
        self.by_legal = _Postings()
        self.by_domain = _Postings()
        self.by_name = _Postings()
        self.by_kana = _Postings()
        self.by_phone = _Postings()
        self.by_block = _Postings()
        for record in targets:
            self.add(record)

    def add(self, record: Any) -> None:
        k = _keys(record, self.id_field, self.generic_domains, details=self.record_of is None)
        if k.id is None:
            raise ValueError(f"target record without {self.id_field}: {k.display_name!r}")
        if k.id in self.by_id:
            raise ValueError(f"duplicate target id {k.id!r}")
        i = len(self.keys)
        if self.keep_records:
            self.records.append(record)
        self.keys.append(k)
        self.by_id[k.id] = i
        for lid in k.legal_ids:
            self.by_legal.add(lid, i)
        if k.domain:
            self.by_domain.add(k.domain, i)
        if k.name:
            self.by_name.add(k.name, i)
            for b in _blocks(k.name):
                self.by_block.add(b, i)
        for kn in k.kana:
            self.by_kana.add(kn, i)
        if k.phone:
            self.by_phone.add(k.phone, i)

    def __len__(self) -> int:
        return len(self.keys)

    # batch claims ------------------------------------------------------------------------------
    def claim(self, target_id: str, source_id: str) -> None:
        """Record that ``source_id`` links to ``target_id`` in this batch (later sources → REVIEW)."""
        self._claims[target_id] = source_id

    def unclaim(self, target_id: str) -> None:
        """The claim is no longer needed: the caller has put ``target_id`` into ``mapped_ids`` (a mapped
        target is refused as ``TARGET_ALREADY_MAPPED`` before any claim is looked at)."""
        self._claims.pop(target_id, None)

    def claimed_by(self, target_id: str) -> str | None:
        return self._claims.get(target_id)

    def source_keys(self, record: Any) -> _Keys:
        return _keys(record, self.source_id_field, self.generic_domains)


def _blocks(name: str) -> tuple[str, ...]:
    return (f"^{name[:2]}", f"{name[-2:]}$")


_RULE_SCORE = {
    Rule.CORPORATE_NUMBER: 1.0,
    Rule.DOMAIN: 0.95,
    Rule.NAME_AND_PHONE: 0.9,
    Rule.NAME_AND_POSTAL_CODE: 0.85,
    Rule.NAME_ONLY: 0.6,
}


def _candidate(index: MatchIndex, i: int, reasons: Iterable[str], score: float) -> Candidate:
    k = index.keys[i]
    rs = list(dict.fromkeys(reasons))
    if k.id in index.mapped_ids:
        rs.append("already_mapped")
    if k.archived:
        rs.append("archived")
    assert k.id is not None
    name, city = k.display_name, k.city
    if index.record_of is not None:
        name, city = _details(as_mapping(index.record_of(k.id) or {}))
    return Candidate(k.id, tuple(rs), round(score, 4), name, city, index.records[i] if index.keep_records else None)


def _evidence(src: _Keys, t: _Keys) -> list[str]:
    out = []
    if _shares(src.legal_ids, t.legal_ids):
        out.append("corporate_number")
    if src.domain and src.domain == t.domain:
        out.append("domain")
    rel = _name_relation(src, t)
    if rel:
        out.append(rel)
    if src.phone and src.phone == t.phone:
        out.append("phone")
    if src.postal and src.postal == t.postal:
        out.append("postal_code")
    return out


def match(record: Any, index: MatchIndex, *, use_claims: bool = True) -> MatchResult:
    """Match one source record (a canonical Company or its dict) against ``index``."""
    src = index.source_keys(record)
    return _match_keys(src, index, use_claims=use_claims)


def _match_keys(src: _Keys, index: MatchIndex, *, use_claims: bool) -> MatchResult:
    K = index.keys

    def review(reason: str, rule: Rule, cands: dict[int, tuple[list[str], float]], notes: Sequence[str] = ()
               ) -> MatchResult:
        cs = sorted((_candidate(index, i, r, s) for i, (r, s) in cands.items()),
                    key=lambda c: (-c.score, c.target_id))
        best = cs[0].score if cs else 0.0
        return MatchResult(MatchKind.REVIEW, None, rule, best, tuple(cs), reason, src.id, tuple(notes))

    def link(i: int, rule: Rule, notes: list[str]) -> MatchResult:
        t = K[i]
        assert t.id is not None
        score = _RULE_SCORE[rule]
        one = {i: (_evidence(src, t), score)}
        if t.id in index.mapped_ids:
            return review("TARGET_ALREADY_MAPPED", rule, one, notes)
        claimant = index.claimed_by(t.id) if use_claims else None
        if claimant is not None and claimant != src.id:
            return review("DUPLICATE_IN_BATCH", rule, one, [*notes, f"already linked by {claimant}"])
        if t.archived:
            return review("TARGET_ARCHIVED", rule, one, notes)
        return MatchResult(MatchKind.LINK, t.id, rule, score, (_candidate(index, i, one[i][0], score),),
                           None, src.id, tuple(notes))

    notes: list[str] = []

    def vetoed(i: int) -> bool:
        return bool(src.legal_ids and K[i].legal_ids and not _shares(src.legal_ids, K[i].legal_ids))

    # 1. corporate number
    if src.legal_ids:
        hits = sorted({i for lid in src.legal_ids for i in index.by_legal.get(lid, ())})
        if len(hits) > 1:
            return review("AMBIGUOUS_CORPORATE_NUMBER", Rule.CORPORATE_NUMBER,
                          {i: (_evidence(src, K[i]), 1.0) for i in hits})
        if len(hits) == 1:
            return link(hits[0], Rule.CORPORATE_NUMBER, notes)

    # 2. domain
    domain_all = list(index.by_domain.get(src.domain, ())) if src.domain else []
    domain_hits = [i for i in domain_all if not vetoed(i)]

    # 3. name (+ phone / postal code)
    name_idx = set(index.by_name.get(src.name, ())) if src.name else set()
    for kn in src.kana:
        name_idx.update(index.by_kana.get(kn, ()))
    name_hits = {i: _name_relation(src, K[i]) for i in sorted(name_idx) if not vetoed(i)}
    strong: dict[int, Rule] = {}
    for i, rel in name_hits.items():
        if rel in ("name", "kana"):
            if src.phone and src.phone == K[i].phone:
                strong[i] = Rule.NAME_AND_PHONE
            elif src.postal and src.postal == K[i].postal:
                strong[i] = Rule.NAME_AND_POSTAL_CODE
    vetoed_ids = sorted({K[i].id or "" for i in [*domain_all, *name_idx] if vetoed(i)})
    if vetoed_ids:
        notes.append("corporate number differs, not the same entity: " + ", ".join(vetoed_ids))

    if len(domain_all) == 1 and domain_hits:
        i = domain_hits[0]
        others = [j for j in strong if j != i]
        if others:
            return review("CONFLICTING_SIGNALS", Rule.DOMAIN,
                          {j: (_evidence(src, K[j]), _RULE_SCORE[Rule.DOMAIN if j == i else strong[j]])
                           for j in [i, *others]}, notes)
        return link(i, Rule.DOMAIN, notes)
    if len(strong) == 1:
        (i, rule), = strong.items()
        return link(i, rule, notes)

    cands: dict[int, tuple[list[str], float]] = {}
    if len(strong) > 1:
        for i, rule in strong.items():
            cands[i] = (_evidence(src, K[i]), _RULE_SCORE[rule])
        return review("AMBIGUOUS_NAME", Rule.NAME_ONLY, cands, notes)

    # 4. weak evidence → review
    for i in domain_hits:
        cands[i] = (_evidence(src, K[i]), 0.7)
    for i, rel in name_hits.items():
        ev = _evidence(src, K[i])
        cands[i] = (ev, max(cands.get(i, ([], 0.0))[1], _RULE_SCORE[Rule.NAME_ONLY] if rel != "kana_weak" else 0.5))
    weak = _fuzzy(src, index, exclude=set(cands), vetoed=vetoed)
    cands.update(weak)
    if cands:
        if domain_hits:
            reason, rule = "SHARED_DOMAIN", Rule.DOMAIN
        elif name_hits:
            reason, rule = "NAME_ONLY", Rule.NAME_ONLY
        elif any(any(r.startswith("fuzzy_name") and float(r.split(":")[1]) >= index.fuzzy_threshold
                     for r in rs) for rs, _ in weak.values()):
            reason, rule = "FUZZY_NAME", Rule.FUZZY_NAME
        else:
            reason, rule = "SAME_PHONE", Rule.PHONE
        return review(reason, rule, cands, notes)
    return MatchResult(MatchKind.CREATE, None, Rule.NONE, 0.0, (), None, src.id, tuple(notes))


def _fuzzy(src: _Keys, index: MatchIndex, *, exclude: set[int], vetoed: Any) -> dict[int, tuple[list[str], float]]:
    """Weak candidates, looked for only within blocks so the cost per record is bounded by block
    sizes, never by the index size: a fuzzy name (ratio ≥ ``fuzzy_threshold``) among targets whose
    normalised name shares its first or last two characters, and any target with the same phone."""
    out: dict[int, tuple[list[str], float]] = {}
    block: set[int] = set()
    if src.name:
        for b in _blocks(src.name):
            ids = index.by_block.get(b, ())
            if len(ids) <= index.max_block:
                block.update(ids)
    phone_block = set(index.by_phone.get(src.phone, ())) if src.phone else set()
    if len(phone_block) > index.max_block:  # a shared switchboard number says nothing
        phone_block = set()
    block = (block | phone_block) - exclude
    ratios: dict[int, float] = {}
    choices = {i: index.keys[i].name for i in sorted(block) if index.keys[i].name and not vetoed(i)}
    if src.name and choices:
        for _, ratio, i in process.extract(src.name, choices, scorer=fuzz.ratio, limit=None):
            ratios[i] = float(ratio)
    for i in sorted(block):
        if vetoed(i):
            continue
        ratio = ratios.get(i, 0.0)
        reasons = _evidence(src, index.keys[i])
        if ratio >= index.fuzzy_threshold:
            out[i] = ([*reasons, f"fuzzy_name:{ratio:.0f}"], ratio / 100 * 0.6)
        elif i in phone_block:
            out[i] = ([*reasons, f"fuzzy_name:{ratio:.0f}"], 0.3 + ratio / 100 * 0.2)
    return out


# ---------------------------------------------------------------------------------------------------
# batch


def match_batch(records: Sequence[Any], index: MatchIndex) -> list[MatchResult]:
    """Match a batch of sources; results in input order, independent of that order.

    Two sources proposing the same target both become REVIEW (``DUPLICATE_IN_BATCH``); sources that
    would each CREATE but share a corporate number, a (non-generic) domain, a phone, or a name with a
    postal code become REVIEW together (``DUPLICATE_SOURCE_IN_BATCH``). The surviving LINKs are
    claimed in ``index`` so later :func:`match` calls see them.
    """
    keys = [index.source_keys(r) for r in records]
    results = [_match_keys(k, index, use_claims=True) for k in keys]

    by_target: dict[str, list[int]] = defaultdict(list)
    for n, r in enumerate(results):
        if r.kind is MatchKind.LINK and r.target is not None:
            by_target[r.target].append(n)
    for target, ns in by_target.items():
        if len(ns) > 1:
            for n in ns:
                others = sorted(str(keys[m].id) for m in ns if m != n)
                results[n] = replace(results[n], kind=MatchKind.REVIEW, target=None, reason="DUPLICATE_IN_BATCH",
                                     notes=(*results[n].notes, f"{target} also matched by source {', '.join(others)}"))

    creates = [n for n, r in enumerate(results) if r.kind is MatchKind.CREATE]
    for group in _duplicate_groups([keys[n] for n in creates], max_block=index.max_block):
        ns = [creates[g] for g in group]
        for n in ns:
            others = sorted(str(keys[m].id) for m in ns if m != n)
            results[n] = replace(results[n], kind=MatchKind.REVIEW, rule=Rule.BATCH,
                                 reason="DUPLICATE_SOURCE_IN_BATCH",
                                 notes=(*results[n].notes, "looks like the same company as source " + ", ".join(others)))

    for r in results:
        if r.kind is MatchKind.LINK and r.target is not None and r.source_id is not None:
            index.claim(r.target, r.source_id)
    return results


def _duplicate_groups(keys: Sequence[_Keys], *, max_block: int) -> list[list[int]]:
    """Groups (size ≥ 2) of records that would have been review candidates of each other: a shared
    corporate number, domain, phone, or name with postal code — never across differing corporate
    numbers. A key shared by more than ``max_block`` records is ignored (not evidence)."""
    parent = list(range(len(keys)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    buckets: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for n, k in enumerate(keys):
        for lid in k.legal_ids:
            buckets[("legal", lid)].append(n)
        if k.domain:
            buckets[("domain", k.domain)].append(n)
        if k.phone:
            buckets[("phone", k.phone)].append(n)
        names = ([k.name] if k.name else []) + [f"kana:{x}" for x in k.kana]
        for nm in names:
            if k.postal:
                buckets[("name_postal", nm, k.postal)].append(n)
    for members in buckets.values():
        if len(members) > max_block:
            continue
        for pos, a in enumerate(members):
            for b in members[pos + 1:]:
                x, y = keys[a], keys[b]
                if x.legal_ids and y.legal_ids and not _shares(x.legal_ids, y.legal_ids):
                    continue
                parent[find(b)] = find(a)
    groups: dict[int, list[int]] = defaultdict(list)
    for n in range(len(keys)):
        groups[find(n)].append(n)
    return [sorted(g) for g in groups.values() if len(g) > 1]
