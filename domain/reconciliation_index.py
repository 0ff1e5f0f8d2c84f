"""Indexes and searches behind the bank reconciliation engine (入金消込) — pure, in memory.

Split from :mod:`domain.reconciliation` so the rules there read as rules. Nothing here compares every
deposit with every invoice:

* **names** — an exact-key dict (normalised payer key → partners, with the evidence that produced the
  key), then *blocking* through a character-bigram inverted index (top-K keys by bigram overlap, the
  most common bigrams dropped when posting lists get long) and rapidfuzz only inside that block;
* **amounts** — a dict outstanding amount → open invoices plus a sorted list of the distinct amounts,
  so "outstanding = deposit + fee" is a handful of dict look-ups (whitelist) or one bisect (range);
* **subsets** (まとめ入金) — a bounded depth-first search over one partner's open invoices, sorted by
  amount with prefix-sum pruning, a node budget and a solution cap.

All amounts are integer yen.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from functools import lru_cache
from operator import itemgetter
from typing import Iterable, Sequence

from rapidfuzz import fuzz, process

from renkei.domain.normalise import nfkc, normalise_company_name, normalise_kana


class NameEvidence(str, Enum):
    """Why a payer name (振込依頼人名) points at a partner (取引先)."""

    KANA = "kana"  # payer key == the partner's normalised フリガナ
    NAME = "name"  # payer key == the partner's normalised name (names written in kana / latin letters)
    REGISTERED_ALIAS = "registered_alias"  # a 振込名義 registered on the partner (Company.payer_aliases)
    ALIAS_TABLE = "alias_table"  # explicit payer → partner table (e.g. a parent company paying)
    LEARNED_ALIAS = "learned_alias"  # a payer name approved earlier for this partner
    PREFIX = "prefix"  # one key starts with the other (48-character cap, branch suffix ...)
    FUZZY = "fuzzy"  # rapidfuzz ratio inside the block
    NONE = "none"  # no name evidence (amount only)

    @property
    def label(self) -> str:
        return {
            "kana": "kana match / カナ一致",
            "name": "name match / 名称一致",
            "registered_alias": "registered payer alias / 登録済み振込名義",
            "alias_table": "payer alias table / 名義対応表",
            "learned_alias": "learned payer alias / 承認済み振込名義",
            "prefix": "prefix match / 前方一致",
            "fuzzy": "similar name / 類似名義",
            "none": "no name match / 名義不一致",
        }[self.value]


# Name scores per evidence (fuzzy and prefix are computed, capped below the exact ones).
EXACT_NAME_SCORES: dict[NameEvidence, float] = {
    NameEvidence.KANA: 1.0,
    NameEvidence.NAME: 1.0,
    NameEvidence.REGISTERED_ALIAS: 1.0,
    NameEvidence.ALIAS_TABLE: 1.0,
    NameEvidence.LEARNED_ALIAS: 0.98,
}
FUZZY_NAME_CAP = 0.95  # a fuzzy name never scores above this (ratio × cap)
PREFIX_BRANCH_SCORE = 0.92  # payer = partner key + a branch name (ﾔﾏﾀﾞｼﾖｳｼﾞ(ｶ)ﾄｳｷﾖｳｼﾃﾝ)
PREFIX_OTHER_SCORE = 0.85  # payer = partner key + something else (ﾆﾂﾎﾟﾝﾌﾞﾂﾘﾕｳｾﾝﾀ- vs 日本物流): approval
BRANCH_WORDS = ("シテン", "ホンテン", "ホンシヤ", "エイギヨウシヨ", "シユツチヨウシヨ", "ジギヨウシヨ")
PREFIX_TRUNCATED_SCORE = 0.95  # payer is a long prefix of the partner key (48-character cap)
PREFIX_SHORT_SCORE = 0.85  # payer is a short prefix of the partner key (abbreviated by the payer)
PREFIX_MIN_LEN = 5  # the shorter key must have at least this many characters for a prefix match
TRUNCATED_MIN_LEN = 12

_PAYER_PREFIX = re.compile(r"^(?:振込|フリコミ(?=[\s\u3000]))[\s\u3000]*")  # freee 摘要 "振込 カ）ABC"
_LEADING_NUMBER = re.compile(r"^\d{6,}[\s\u3000]*")  # 依頼人番号 before the name
_TRAILING_NUMBER = re.compile(r"[\s\u3000]+\d{6,}$")  # 依頼人番号 after the name
_KEY_CHARS = re.compile(r"^[ァ-ヴA-Z0-9]+$")


@lru_cache(maxsize=1 << 16)
def payer_key(payer_name: str) -> str:
    """Matching key of a bank payer name (振込依頼人名), jp-invoicing-rules §5.4.

    ``"振込 ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"`` → ``"ヤマダシヨウジ"``; a leading/trailing 依頼人番号 (6+ digits) and freee's
    ``振込`` 摘要 prefix are dropped first, then :func:`domain.normalise.normalise_kana`.
    """
    s = nfkc(payer_name).strip()
    s = _PAYER_PREFIX.sub("", s)
    s = _LEADING_NUMBER.sub("", s)
    s = _TRAILING_NUMBER.sub("", s)
    return normalise_kana(s)


@lru_cache(maxsize=1 << 17)
def company_name_key(name: str) -> str:
    """:func:`domain.normalise.normalise_company_name`, remembered (every partner's name is normalised
    for its name key and again for the look-alike check)."""
    return normalise_company_name(name)


def partner_name_key(name: str) -> str | None:
    """Key of a partner *name* usable against bank kana: only names written in kana / latin letters
    (``ABC株式会社`` → ``ABC``, ``ヤマダ商事`` → None because 商事 is kanji)."""
    k = normalise_kana(company_name_key(name))
    return k if k and _KEY_CHARS.match(k) else None


SUFFIX_MIN = 3  # a shared ending this long is an industry word (ホールディングス, デンキ, テクノロジー ...)


def name_similarity(a: str, b: str) -> float:
    """rapidfuzz ratio (0-100) that does not let a shared industry word make two names similar.

    Japanese company names are [distinctive part][industry word]; ヤマダホールディングス and
    ハヤシホールディングス share 7 of 10 characters but are plainly different, while ヤマダシヨウジ and
    ヤマダシヨウテン (山田商事 / 山田商店) are the confusable kind. When both names end in the same ≥ 3
    characters, the parts before that ending must be similar too (the score is the lower of the two).
    """
    full = fuzz.ratio(a, b)
    n = 0
    for x, y in zip(reversed(a), reversed(b)):
        if x != y:
            break
        n += 1
    if n >= SUFFIX_MIN and n < len(a) and n < len(b):
        return min(full, fuzz.ratio(a[:-n], b[:-n]))
    return full


def bigrams(key: str) -> list[str]:
    if len(key) < 2:
        return [key] if key else []
    return list(dict.fromkeys(key[i: i + 2] for i in range(len(key) - 1)))  # ordered: deterministic ties


# ---------------------------------------------------------------------------------------------------
# mutable working copies


@dataclass(slots=True)
class OpenItem:
    """Working copy of one open invoice inside an index (outstanding goes down as deposits apply)."""

    invoice_id: str
    number: str | None
    partner_id: str
    total: int
    outstanding: int
    issue_date: date
    due_date: date | None
    fifo: tuple  # (due or issue date, issue date, invoice id): oldest first

    @property
    def label(self) -> str:
        return self.number or self.invoice_id


@dataclass(slots=True)
class PartnerEntry:
    partner_id: str
    name: str
    kana: str | None
    items: list[OpenItem] = field(default_factory=list)  # FIFO order; settled ones removed
    signatures: set = field(default_factory=set)  # (name, kana, aliases) already indexed


@dataclass(slots=True, frozen=True)
class NameHit:
    partner_id: str
    evidence: NameEvidence
    score: float
    key: str  # the partner-side key that matched


# ---------------------------------------------------------------------------------------------------
# name index


class NameIndex:
    """Exact keys plus a bigram-blocked fuzzy search over partner keys (kana, name, aliases)."""

    def __init__(self, *, posting_budget: int = 3000) -> None:
        self._exact: dict[str, dict[str, NameEvidence]] = {}
        self._keys: list[tuple[str, str, NameEvidence]] = []  # key id → (key, partner id, evidence)
        self._key_ids: dict[tuple[str, str], int] = {}
        self._grams: dict[str, list[int]] = {}
        self._sizes: list[int] = []  # key id → number of distinct bigrams
        self._posting_budget = posting_budget

    def add(self, key: str, partner_id: str, evidence: NameEvidence) -> None:
        if not key:
            return
        hits = self._exact.setdefault(key, {})
        old = hits.get(partner_id)
        if old is None or EXACT_NAME_SCORES.get(evidence, 0) > EXACT_NAME_SCORES.get(old, 0):
            hits[partner_id] = evidence
        if (key, partner_id) in self._key_ids:
            return
        kid = len(self._keys)
        grams = bigrams(key)
        self._keys.append((key, partner_id, evidence))
        self._sizes.append(len(grams))
        self._key_ids[(key, partner_id)] = kid
        for g in grams:
            self._grams.setdefault(g, []).append(kid)

    def exact(self, key: str) -> dict[str, NameEvidence]:
        return self._exact.get(key, {})

    def block(self, key: str, limit: int) -> list[int]:
        """Candidate key ids for ``key``: keys sharing bigrams with it, ranked by a Dice-like overlap
        (2·shared / (bigrams of one + bigrams of the other)), at most ``limit``, ties by key id.

        Posting lists are read in full while their total stays within ``posting_budget``; beyond that the
        longest (most common) bigrams are left out first.
        """
        grams = bigrams(key)
        if not grams:
            return []
        lists = sorted((self._grams[g] for g in grams if g in self._grams), key=len)
        total = 0
        used = []
        for p in lists:
            if used and total + len(p) > self._posting_budget:
                break
            used.append(p)
            total += len(p)
        counts: Counter[int] = Counter()
        for p in used:
            counts.update(p)
        if len(counts) <= limit:
            return sorted(counts)
        n = len(grams)
        sizes = self._sizes
        # the most shared bigrams first, then the closest of those by overlap
        ranked = sorted((-2 * c / (n + sizes[kid]), kid) for kid, c in _most_common(counts, limit * 2))
        return [kid for _, kid in ranked[:limit]]

    def partners_near(self, key: str, limit: int) -> list[str]:
        """Partners owning a key in ``key``'s block (exact key first), without scoring."""
        out = list(self.exact(key))
        for kid in self.block(key, limit):
            pid = self._keys[kid][1]
            if pid not in out:
                out.append(pid)
        return out

    def search(self, key: str, *, threshold: float, limit: int, exhaustive: bool = False) -> list[NameHit]:
        """Partners whose keys match ``key`` exactly, by prefix or fuzzily (≥ ``threshold``), best per
        partner, best first (ties by partner id). ``exhaustive`` scores every key instead of the block
        (for measuring the blocking; O(keys))."""
        best: dict[str, NameHit] = {}

        def offer(hit: NameHit) -> None:
            cur = best.get(hit.partner_id)
            if cur is None or hit.score > cur.score:
                best[hit.partner_id] = hit

        for pid, ev in self.exact(key).items():
            offer(NameHit(pid, ev, EXACT_NAME_SCORES[ev], key))
        if len(key) >= 2:
            cutoff = min(100.0, threshold * 100.0 / FUZZY_NAME_CAP)
            block = [kid for kid in (range(len(self._keys)) if exhaustive else self.block(key, limit))
                     if self._keys[kid][0] != key]
            ratios = {i: r for _c, r, i in process.extract(key, [self._keys[k][0] for k in block],
                                                             scorer=fuzz.ratio, score_cutoff=cutoff, limit=None)}
            for pos, kid in enumerate(block):
                other, pid, _ev = self._keys[kid]
                short, long_ = (key, other) if len(key) <= len(other) else (other, key)
                prefix = len(short) >= PREFIX_MIN_LEN and long_.startswith(short)
                if not prefix and pos not in ratios:
                    continue
                score = 0.0
                evidence = NameEvidence.FUZZY
                if prefix:
                    evidence = NameEvidence.PREFIX
                    if short is other:  # payer = partner key + suffix: a branch (支店) or another company
                        rest = key[len(other):]
                        score = PREFIX_BRANCH_SCORE if rest.endswith(BRANCH_WORDS) else PREFIX_OTHER_SCORE
                    elif len(short) >= TRUNCATED_MIN_LEN:  # payer cut at the bank's length cap
                        score = PREFIX_TRUNCATED_SCORE
                    else:
                        score = PREFIX_SHORT_SCORE
                r = ratios.get(pos, 0.0)
                if r:
                    r = name_similarity(key, other)
                    r = r if r >= cutoff else 0.0
                if r and r / 100.0 * FUZZY_NAME_CAP > score:
                    score, evidence = round(r / 100.0 * FUZZY_NAME_CAP, 4), NameEvidence.FUZZY
                if score >= threshold:
                    offer(NameHit(pid, evidence, score, other))
        return sorted(best.values(), key=lambda h: (-h.score, h.partner_id))


def _most_common(counts: Counter, k: int) -> list[tuple[int, int]]:
    """``counts.most_common(k)`` (ties in insertion order) by one C-level stable sort, without the heap."""
    return sorted(counts.items(), key=_second, reverse=True)[:k]


_second = itemgetter(1)


# ---------------------------------------------------------------------------------------------------
# amount index


class AmountIndex:
    """Open invoices by outstanding amount, kept current as deposits apply.

    Each amount's bucket is kept in FIFO order (oldest first: due date, issue date, invoice id), so a
    look-up never sorts the invoices that share an amount (round prices: hundreds of ¥110,000 invoices).
    """

    def __init__(self) -> None:
        self._by_amount: dict[int, list[OpenItem]] = {}
        self._sorted: list[int] = []

    def add(self, item: OpenItem) -> None:
        bucket = self._by_amount.get(item.outstanding)
        if bucket is None:
            self._by_amount[item.outstanding] = [item]
            bisect.insort(self._sorted, item.outstanding)
            return
        if bucket[-1].fifo < item.fifo:  # the common case while building (invoices arrive by id)
            bucket.append(item)
        else:
            i = bisect.bisect_left(bucket, item.fifo, key=_fifo_key)
            if i < len(bucket) and bucket[i].invoice_id == item.invoice_id:
                return
            bucket.insert(i, item)

    def remove(self, item: OpenItem) -> None:
        bucket = self._by_amount.get(item.outstanding)
        if not bucket:
            return
        i = bisect.bisect_left(bucket, item.fifo, key=_fifo_key)
        if i >= len(bucket) or bucket[i].invoice_id != item.invoice_id:
            return
        del bucket[i]
        if not bucket:
            del self._by_amount[item.outstanding]
            j = bisect.bisect_left(self._sorted, item.outstanding)
            del self._sorted[j]

    def exact(self, amount: int) -> list[OpenItem]:
        """Open invoices of exactly ``amount`` outstanding, oldest first (FIFO)."""
        return list(self._by_amount.get(amount, ()))

    def bucket(self, amount: int) -> Sequence[OpenItem]:
        """Like :meth:`exact` without copying (read only; FIFO order)."""
        return self._by_amount.get(amount, ())

    def in_range(self, lo: int, hi: int) -> Iterable[tuple[int, list[OpenItem]]]:
        i = bisect.bisect_left(self._sorted, lo)
        while i < len(self._sorted) and self._sorted[i] <= hi:
            amt = self._sorted[i]
            yield amt, list(self._by_amount[amt])
            i += 1


def _fifo_key(item: OpenItem) -> tuple:
    return item.fifo


def first_in_order(buckets: Sequence[Sequence[OpenItem]], keep: int, good) -> tuple[list[OpenItem], int]:
    """The first ``keep`` items of ``buckets`` read in order (each bucket in its own order), those with
    ``good(item)`` before all others, and how many items there are in all — what sorting every item by
    ``(not good, bucket position, position in bucket)`` and cutting at ``keep`` gives, without the sort."""
    count = sum(len(b) for b in buckets)
    picked: list[OpenItem] = []
    later: list[OpenItem] = []
    for b in buckets:
        for it in b:
            if good(it):
                picked.append(it)
                if len(picked) >= keep:
                    return picked, count
            elif len(later) < keep:
                later.append(it)
    return picked + later[: keep - len(picked)], count


# ---------------------------------------------------------------------------------------------------
# subset search (まとめ入金)


@dataclass(slots=True)
class SubsetSearch:
    solutions: list[tuple[OpenItem, ...]]
    limited: bool  # node budget or solution cap reached: the list may be incomplete
    nodes: int
    combinations: int = 0  # subsets of size ≥ 2 whose sum stayed within reach (≤ amount + max_gap)
    truncated: bool = False  # more items could take part than pool_size: combinations are incomplete


class _Stop(Exception):
    """Ends a subset search early (node budget or solution cap reached)."""


def find_subsets(
    items: list[OpenItem],
    amount: int,
    *,
    combo_items: list[OpenItem] | None = None,
    max_size: int,
    accept_gap,  # (gap: int, size: int) -> bool ; gap = sum − amount ≥ 0
    max_gap: int,
    pool_size: int,
    node_budget: int,
    max_solutions: int,
) -> SubsetSearch:
    """All subsets of ``items`` (size 1..``max_size``) whose outstanding sum is ``amount + gap`` with
    ``0 ≤ gap ≤ max_gap`` and ``accept_gap(gap, size)``.

    Singles are checked over every item; combinations only over ``combo_items`` (default: all), the
    ``pool_size`` oldest of them that can take part (outstanding < amount + max_gap). Depth-first over
    the pool sorted by amount (largest first) with prefix-sum pruning, at most ``node_budget`` nodes
    and ``max_solutions``; ``combinations`` counts the subsets within reach (for the chance-fit risk).
    """
    hi = amount + max_gap
    solutions: list[tuple[OpenItem, ...]] = []
    for it in items:
        gap = it.outstanding - amount
        if 0 <= gap <= max_gap and accept_gap(gap, 1):
            solutions.append((it,))
    if max_size < 2:
        return SubsetSearch(solutions, False, len(items))
    eligible = [it for it in (items if combo_items is None else combo_items) if it.outstanding < hi]
    truncated = len(eligible) > pool_size
    pool = eligible[:pool_size]
    pool.sort(key=lambda it: (-it.outstanding, it.fifo))
    n = len(pool)
    if n < 2:
        return SubsetSearch(solutions, False, len(items))
    values = [it.outstanding for it in pool]
    prefix = [0]
    for v in values:
        prefix.append(prefix[-1] + v)
    if prefix[-1] < amount:
        return SubsetSearch(solutions, False, len(items), 0, truncated)
    nodes = 0
    combinations = 0
    limited = False
    chosen: list[OpenItem] = []

    def dfs(start: int, total: int) -> None:
        nonlocal nodes, limited, combinations
        slots = max_size - len(chosen)
        for j in range(start, n):
            # the best this branch can still reach: total + the next `slots` largest values
            if total + prefix[min(n, j + slots)] - prefix[j] < amount:
                return
            nodes += 1
            if nodes > node_budget:
                limited = True
                raise _Stop
            t = total + values[j]
            if t > hi:
                continue
            chosen.append(pool[j])
            size = len(chosen)
            if size >= 2:
                combinations += 1
            if size >= 2 and t >= amount and accept_gap(t - amount, size):
                solutions.append(tuple(chosen))
                if len(solutions) >= max_solutions:
                    limited = True
                    raise _Stop
            if size < max_size and t < amount + max_gap:
                dfs(j + 1, t)
            chosen.pop()

    try:
        dfs(0, 0)
    except _Stop:
        pass
    return SubsetSearch(solutions, limited, nodes, combinations, truncated)
