"""Bank reconciliation (入金消込): match bank deposits to open invoices — pure business rules.

No Prefect, HTTP, database or configuration loading: every parameter arrives in a
:class:`ReconciliationPolicy`; deposits are :class:`domain.model.BankDeposit` lines, open invoices are
:class:`OpenInvoice` rows (build them with :meth:`OpenInvoice.from_invoice`). Money is integer yen.

For each deposit the engine returns a :class:`MatchDecision`:

``AUTO``
    exactly one way to read the deposit, above ``auto_apply_threshold``: the payer name points at the
    partner (カナ一致 / registered or learned 振込名義) and the amount is an invoice's outstanding amount,
    that amount less a bank transfer fee (振込手数料, booked as 支払手数料 — jp-invoicing-rules §5.1) or
    the sum of several of the partner's invoices (まとめ入金);
``NEEDS_APPROVAL``
    a plausible reading that a person must confirm: two partners with similar names and a fitting
    amount, two different sets of invoices that fit, a partial payment (一部入金), an overpayment
    (過入金), a payer we only know by amount (third party without a registered alias), a fuzzy name;
``UNMATCHED``
    nothing plausible (interest, refunds, unrelated transfers), or too many invoices share the amount.

Rules that keep ``AUTO`` safe (each is a :class:`ReasonCode` on the decision when it blocks):

* ambiguity — another *reading* fits: another set of the same partner's invoices (two subsets →
  ``AMBIGUOUS_ALLOCATION``; a superset that only adds invoices small enough to pass as the "fee" does
  not count), a single invoice of another candidate partner (similar names + same amount →
  ``AMBIGUOUS_PARTNER``), or any reading of a partner named about as closely;
* score margin — another partner's reading does not make the deposit ambiguous when the best reading
  is an exact name match (kana / name / alias, not prefix or fuzzy) and its score leads by at least
  ``auto_apply_margin`` (``CLEAR_MARGIN``; ﾔﾏﾀﾞｼﾖｳｼﾞ: 山田商事 1.00 vs 山田商店 0.76 → applied); equal or
  close scores (山田システム 1.00 vs 山田システムズ 0.89) stay with approval. The explanation shows both
  scores and the margin;
* the name must single the partner out — no other partner answers to the same payer name
  (``SHARED_PAYER_NAME``, e.g. 山田電機 / 山田電気 both ﾔﾏﾀﾞﾃﾞﾝｷ) or a closer one (``BETTER_NAME_WITHOUT_FIT``),
  no look-alike partner without フリガナ has a fitting invoice (``LOOKALIKE_WITHOUT_KANA``), and a
  fuzzy name alone never auto-applies (``NAME_APPROXIMATE``, policy flag);
* まとめ入金 is searched only among invoices issued by the deposit date; each further invoice lowers the
  score (by default up to three invoices paid exactly, or two less a fee, can be auto-applied); it is
  not auto-applied when the partner has so many open invoices that a chance fit is likely
  (``COMBINATION_RISK``) or the search hit its bound (``SEARCH_LIMIT``); a "fee" as large as one of the
  invoices is not a fee;
* 一部入金 / 過入金 need approval unless the policy allows them; invoices outside the date window too;
* same-amount invoices of one partner are interchangeable: the oldest is taken (``FIFO_IDENTICAL_AMOUNTS``).

How names and amounts are looked up without comparing every deposit with every invoice is in
:mod:`domain.reconciliation_index`. :func:`reconcile_batch` applies many deposits in a deterministic
order (入金日, then deposit id) and never allocates the same outstanding amount twice.

Worked example::

    deposit  2026-05-29  ¥109,890  ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ
    invoice  INV-12  株式会社山田商事 (ヤマダショウジ)  outstanding ¥110,000
    → AUTO, score 0.98: INV-12 applied ¥109,890 + fee ¥110 (支払手数料)
      "振込名義 ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ = 株式会社山田商事 (kana match / カナ一致); amount ¥109,890 = invoice
       INV-12 ¥110,000 − fee ¥110 (振込手数料 → 支払手数料); AUTO: unique match, score 0.98 ≥ 0.90 (自動消込)"
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any, Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from renkei.domain.model import BankDeposit, Company, Invoice, Payment
from renkei.domain.money import NonNegativeYen, format_yen
from renkei.domain.normalise import normalise_kana
from renkei.domain.reconciliation_index import (
    AmountIndex,
    NameEvidence,
    NameHit,
    NameIndex,
    OpenItem,
    company_name_key,
    PartnerEntry,
    find_subsets,
    first_in_order,
    name_similarity,
    partner_name_key,
    payer_key,
)

__all__ = [
    "AliasSource",
    "Allocation",
    "BatchResult",
    "Candidate",
    "DEFAULT_FEE_WHITELIST",
    "FeeMode",
    "FitKind",
    "MatchDecision",
    "MatchKind",
    "NameEvidence",
    "OpenInvoice",
    "PayerAlias",
    "PayerAliasTable",
    "ReasonCode",
    "ReconciliationPolicy",
    "Reconciler",
    "learn_alias",
    "payer_key",
    "payments_for",
    "reconcile_batch",
    "reconcile_deposit",
]


# ---------------------------------------------------------------------------------------------------
# vocabulary


class MatchKind(str, Enum):
    AUTO = "auto"  # apply without asking
    NEEDS_APPROVAL = "needs_approval"  # propose, a person confirms (review item)
    UNMATCHED = "unmatched"  # nothing plausible


class FitKind(str, Enum):
    """How the deposit amount relates to the invoices it is allocated to."""

    EXACT = "exact"  # amount = outstanding
    FEE_DEDUCTED = "fee_deducted"  # amount = outstanding − 振込手数料
    COMBINED = "combined"  # amount = Σ outstanding (まとめ入金)
    COMBINED_FEE = "combined_fee"  # amount = Σ outstanding − 振込手数料
    PARTIAL = "partial"  # amount < outstanding (一部入金), allocated oldest first
    OVERPAYMENT = "overpayment"  # amount > outstanding (過入金), remainder left unapplied

    @property
    def complete(self) -> bool:
        """The invoices are settled in full (with or without a fee)."""
        return self in (FitKind.EXACT, FitKind.FEE_DEDUCTED, FitKind.COMBINED, FitKind.COMBINED_FEE)


class ReasonCode(str, Enum):
    EXACT_MATCH = "EXACT_MATCH"
    FEE_DEDUCTED = "FEE_DEDUCTED"
    COMBINED_PAYMENT = "COMBINED_PAYMENT"
    PARTIAL_PAYMENT = "PARTIAL_PAYMENT"
    OVERPAYMENT = "OVERPAYMENT"
    THIRD_PARTY_ALIAS = "THIRD_PARTY_ALIAS"  # payer known through an alias (registered / table / learned)
    FIFO_IDENTICAL_AMOUNTS = "FIFO_IDENTICAL_AMOUNTS"  # same-amount invoices of one partner: oldest taken
    AMBIGUOUS_PARTNER = "AMBIGUOUS_PARTNER"  # fits for more than one partner
    AMBIGUOUS_ALLOCATION = "AMBIGUOUS_ALLOCATION"  # more than one set of one partner's invoices fits
    BETTER_NAME_WITHOUT_FIT = "BETTER_NAME_WITHOUT_FIT"  # a closer-named partner has no fitting invoice
    SHARED_PAYER_NAME = "SHARED_PAYER_NAME"  # another partner answers to the same payer name (同名・同読み)
    LOOKALIKE_WITHOUT_KANA = "LOOKALIKE_WITHOUT_KANA"  # a look-alike partner without フリガナ has a fit too
    NAME_APPROXIMATE = "NAME_APPROXIMATE"  # prefix / fuzzy name, not an exact key
    BELOW_THRESHOLD = "BELOW_THRESHOLD"
    OUTSIDE_DATE_WINDOW = "OUTSIDE_DATE_WINDOW"
    SEARCH_LIMIT = "SEARCH_LIMIT"  # subset search hit its bound: other subsets may fit
    COMBINATION_RISK = "COMBINATION_RISK"  # まとめ入金 among so many invoices that a chance fit is likely
    UNKNOWN_PAYER_AMOUNT_MATCH = "UNKNOWN_PAYER_AMOUNT_MATCH"  # third party / unknown name, amount fits
    TOO_MANY_AMOUNT_MATCHES = "TOO_MANY_AMOUNT_MATCHES"
    NO_CANDIDATE = "NO_CANDIDATE"
    EMPTY_PAYER_NAME = "EMPTY_PAYER_NAME"
    CLEAR_MARGIN = "CLEAR_MARGIN"  # a look-alike partner fits too but scores far lower: set aside (informational)


class FeeMode(str, Enum):
    WHITELIST = "whitelist"  # shortfall must be one of fee_whitelist (and ≤ fee_max)
    RANGE = "range"  # any shortfall 1..fee_max


# Spec set plus the regional/ATM values in jp-invoicing-rules §5.1 (165, 275, 385, 495).
DEFAULT_FEE_WHITELIST: frozenset[int] = frozenset(
    {110, 154, 165, 220, 275, 330, 385, 440, 495, 550, 660, 770, 880, 990, 1100}
)

# Amount scores (how sure the amount alone makes us); the candidate score is name × amount × date.
AMOUNT_SCORES: dict[FitKind, float] = {
    FitKind.EXACT: 1.0,
    FitKind.FEE_DEDUCTED: 0.98,
    FitKind.COMBINED: 0.95,  # two invoices; COMBINED_PER_INVOICE less for each further one
    FitKind.COMBINED_FEE: 0.92,
    FitKind.PARTIAL: 0.9,
    FitKind.OVERPAYMENT: 0.9,
}
# まとめ入金 of 2 / 3 / 4 / 5 invoices scores 0.95 / 0.92 / 0.89 / 0.86, with a fee 0.92 / 0.89 / ...: with the
# default threshold 0.9, up to three invoices paid exactly, or two less a fee, can be auto-applied (bigger
# sets are found and proposed, but a chance sum among a customer's invoices is too likely to go unseen)
COMBINED_PER_INVOICE = 0.03
RANGE_FEE_FACTOR = 0.94  # fee inside the range but not a known bank fee
OUT_OF_WINDOW_FACTOR = 0.8
AMOUNT_ONLY_NAME_SCORE = 0.4  # score stand-in for "payer unknown" (never reaches an auto threshold)
PARTNER_NAME_MARGIN = 0.05  # partial/over: another partner this close by name makes it ambiguous
# Name evidence that may out-rank a look-alike by score margin: an exact key, not a prefix / fuzzy guess.
STRONG_NAME_EVIDENCE = frozenset({NameEvidence.KANA, NameEvidence.NAME, NameEvidence.REGISTERED_ALIAS,
                                  NameEvidence.ALIAS_TABLE, NameEvidence.LEARNED_ALIAS})


class ReconciliationPolicy(BaseModel):
    """Parameters of the engine (loaded from policy config by the caller; nothing is read here)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fee_mode: FeeMode = Field(FeeMode.WHITELIST, description="how a shortfall is recognised as a fee")
    fee_whitelist: frozenset[int] = Field(DEFAULT_FEE_WHITELIST, description="known bank fees (yen)")
    fee_max: NonNegativeYen = Field(1100, description="largest shortfall booked as 支払手数料")
    fees_on_combined: bool = Field(True, description="accept a fee on まとめ入金 too")
    auto_apply_threshold: float = Field(0.9, ge=0.0, le=1.0)
    auto_apply_margin: float = Field(
        0.15, ge=0.0, le=1.0,
        description="score margin (best − runner-up) by which a strong, exact name match out-ranks another "
                    "partner's fitting invoice; closer than this the deposit is ambiguous (approval)")
    name_similarity_threshold: float = Field(
        0.75, ge=0.0, le=1.0, description="minimum name score for a partner to be a candidate (and a rival)")
    max_invoices_per_payment: int = Field(5, ge=1, le=12, description="largest まとめ入金")
    combination_pool_size: int = Field(30, ge=2, le=200, description="oldest invoices searched for まとめ入金")
    max_search_nodes: int = Field(50_000, ge=100)
    max_subset_solutions: int = Field(64, ge=2)
    max_combination_risk: float = Field(
        0.01, ge=0.0, description="まとめ入金 is not auto-applied when the expected number of chance fits "
                                  "(subsets searched × accepted fees / amount) exceeds this")
    days_before_issue: int = Field(7, ge=0, description="a deposit may arrive this many days before 請求日")
    days_after_due: int = Field(365, ge=0, description="... and this many days after 支払期日")
    auto_apply_partial: bool = Field(False, description="auto-apply 一部入金 for an unambiguous partner")
    auto_apply_overpayment: bool = Field(False, description="auto-apply 過入金 for an unambiguous partner")
    auto_apply_shared_payer_name: bool = Field(
        False, description="auto-apply when another partner has the same payer name but no fitting invoice "
                           "(off: its partial or over-payment would look the same)")
    auto_apply_fuzzy_names: bool = Field(
        False, description="let a fuzzy (similar, not equal) payer name be auto-applied when the score allows; "
                           "off: ｼｽﾃﾑ vs ｼｽﾃﾑｽﾞ may be two companies")
    fifo_identical_amounts: bool = Field(
        True, description="same-amount invoices of one partner are interchangeable: take the oldest")
    max_amount_only_candidates: int = Field(3, ge=0, description="unknown payer: propose up to this many")
    fuzzy_block_size: int = Field(64, ge=1, description="partner keys scored with rapidfuzz per deposit")

    @field_validator("fee_whitelist", mode="before")
    @classmethod
    def _ints(cls, v: object) -> object:
        if isinstance(v, (list, tuple, set, frozenset)):
            for x in v:
                if isinstance(x, (float, bool)) or not isinstance(x, int) or x <= 0:
                    raise ValueError("fees are positive whole yen")
            return frozenset(v)
        return v

    def fee_allowed(self, shortfall: int) -> bool:
        """Is a shortfall of ``shortfall`` yen a bank transfer fee we book as 支払手数料?"""
        if shortfall <= 0 or shortfall > self.fee_max:
            return False
        return self.fee_mode is FeeMode.RANGE or shortfall in self.fee_whitelist

    def fee_factor(self, fee: int) -> float:
        return 1.0 if fee == 0 or fee in self.fee_whitelist else RANGE_FEE_FACTOR


# ---------------------------------------------------------------------------------------------------
# inputs


class OpenInvoice(BaseModel):
    """An open (未決済) invoice as the engine sees it, with its partner's names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    invoice_id: str = Field(min_length=1, description="freee deal / invoice id")
    number: str | None = Field(None, description="請求書番号 for explanations")
    partner_id: str = Field(min_length=1, description="freee partner id (取引先)")
    partner_name: str = Field(min_length=1, description="取引先名")
    partner_kana: str | None = Field(None, description="フリガナ (any width / small kana)")
    payer_aliases: tuple[str, ...] = Field((), description="registered 振込名義 of the partner")
    total: NonNegativeYen = Field(description="請求金額 (税込)")
    outstanding: NonNegativeYen = Field(description="未入金残高 (freee due_amount)")
    issue_date: date
    due_date: date | None = None

    @model_validator(mode="after")
    def _outstanding_le_total(self) -> "OpenInvoice":
        if self.outstanding > self.total:
            raise ValueError("outstanding exceeds the invoice total")
        return self

    @classmethod
    def from_invoice(cls, invoice: Invoice, company: Company, outstanding: int | None = None) -> "OpenInvoice":
        """Build from the canonical :class:`Invoice` and its :class:`Company` (needs both ERP ids)."""
        if not invoice.erp_id or not (invoice.partner_erp_id or company.erp_id):
            raise ValueError("invoice and partner need their ERP ids")
        return cls(
            invoice_id=invoice.erp_id,
            number=invoice.number,
            partner_id=invoice.partner_erp_id or company.erp_id or "",
            partner_name=company.name,
            partner_kana=company.name_kana,
            payer_aliases=tuple(company.payer_aliases),
            total=invoice.total,
            outstanding=invoice.total if outstanding is None else outstanding,
            issue_date=invoice.issue_date,
            due_date=invoice.due_date,
        )


class AliasSource(str, Enum):
    REGISTERED = "registered"  # entered by finance (e.g. 親会社 pays for the partner)
    LEARNED = "learned"  # a payer name approved on an earlier deposit


class PayerAlias(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    payer_key: str = Field(min_length=1, description="normalised payer name (see payer_key())")
    partner_id: str = Field(min_length=1)
    source: AliasSource = AliasSource.REGISTERED


class PayerAliasTable(BaseModel):
    """Explicit payer → partner table (名義対応表). Immutable: :meth:`with_alias` returns a new table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    aliases: tuple[PayerAlias, ...] = ()
    _by_key: dict[str, tuple[PayerAlias, ...]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: object) -> None:
        by: dict[str, list[PayerAlias]] = {}
        for a in self.aliases:
            by.setdefault(a.payer_key, []).append(a)
        self._by_key = {k: tuple(v) for k, v in by.items()}

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]], source: AliasSource = AliasSource.REGISTERED
                   ) -> "PayerAliasTable":
        """``[(payer name as printed, partner id), ...]`` — names are normalised here."""
        return cls(aliases=tuple(PayerAlias(payer_key=payer_key(n), partner_id=p, source=source)
                                 for n, p in pairs if payer_key(n)))

    def lookup(self, key: str) -> tuple[PayerAlias, ...]:
        return self._by_key.get(key, ())

    def with_alias(self, payer_name: str, partner_id: str, source: AliasSource = AliasSource.LEARNED
                   ) -> "PayerAliasTable":
        key = payer_key(payer_name)
        if not key or any(a.partner_id == partner_id for a in self.lookup(key)):
            return self
        return PayerAliasTable(aliases=self.aliases + (PayerAlias(payer_key=key, partner_id=partner_id,
                                                                  source=source),))


def learn_alias(table: PayerAliasTable | None, decision: "MatchDecision", partner_id: str) -> PayerAliasTable:
    """After finance approves ``decision`` for ``partner_id``, remember its payer name as a learned
    alias (振込名義 → 取引先) so the next deposit from that payer can be auto-applied."""
    return (table or PayerAliasTable()).with_alias(decision.payer_name, partner_id, AliasSource.LEARNED)


# ---------------------------------------------------------------------------------------------------
# outputs


class Allocation(BaseModel):
    """Money applied to one invoice: ``applied`` from the deposit plus ``fee`` booked as 支払手数料."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    invoice_id: str
    invoice_number: str | None = None
    partner_id: str
    applied: NonNegativeYen = Field(description="入金額 applied to the receivable")
    fee: NonNegativeYen = Field(0, description="振込手数料 booked as 支払手数料 (clears the receivable)")
    outstanding_before: NonNegativeYen

    @property
    def cleared(self) -> int:
        return self.applied + self.fee

    @property
    def outstanding_after(self) -> int:
        return self.outstanding_before - self.applied - self.fee

    @property
    def label(self) -> str:
        return self.invoice_number or self.invoice_id


class Candidate(BaseModel):
    """One reading of a deposit: partner, allocations, fee, remainder, scores, explanation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner_id: str | None
    partner_name: str | None
    fit: FitKind
    name_evidence: NameEvidence
    name_score: float = Field(ge=0.0, le=1.0)
    amount_score: float = Field(ge=0.0, le=1.0)
    score: float = Field(ge=0.0, le=1.0)
    allocations: tuple[Allocation, ...]
    fee: NonNegativeYen = 0
    overpayment: NonNegativeYen = Field(0, description="過入金: deposit left unapplied (前受金/仮受金)")
    partial: bool = Field(False, description="一部入金: an invoice stays open after this allocation")
    in_window: bool = True
    explanation: str = ""

    @model_validator(mode="after")
    def _partial_flag(self) -> "Candidate":
        if self.partial != any(a.outstanding_after > 0 for a in self.allocations):
            raise ValueError("partial must say whether an invoice stays open")
        return self

    @property
    def applied_total(self) -> int:
        return sum(a.applied for a in self.allocations)

    @property
    def invoice_ids(self) -> tuple[str, ...]:
        return tuple(a.invoice_id for a in self.allocations)


class MatchDecision(BaseModel):
    """The engine's answer for one deposit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deposit_id: str
    received_on: date
    amount: int
    payer_name: str
    payer_key: str
    kind: MatchKind
    score: float = Field(ge=0.0, le=1.0)
    reasons: tuple[ReasonCode, ...]
    explanation: str
    proposal: Candidate | None = Field(None, description="the allocation to apply / to approve")
    alternatives: tuple[Candidate, ...] = Field((), description="other readings, for the approver")

    @property
    def allocations(self) -> tuple[Allocation, ...]:
        return self.proposal.allocations if self.proposal else ()

    @property
    def partner_id(self) -> str | None:
        return self.proposal.partner_id if self.proposal else None

    @property
    def fee(self) -> int:
        return self.proposal.fee if self.proposal else 0

    @property
    def overpayment(self) -> int:
        return self.proposal.overpayment if self.proposal else 0

    @property
    def partial(self) -> bool:
        return bool(self.proposal and self.proposal.partial)


class BatchResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    decisions: tuple[MatchDecision, ...]
    outstanding: dict[str, int] = Field(description="invoice id → outstanding after the applied decisions")

    def count(self, kind: MatchKind) -> int:
        return sum(1 for d in self.decisions if d.kind is kind)


def payments_for(decision: MatchDecision | Candidate, deposit: BankDeposit) -> list[Payment]:
    """freee payments to record for an applied decision (one per invoice; the fee rides along)."""
    cand = decision.proposal if isinstance(decision, MatchDecision) else decision
    if cand is None:
        return []
    return [Payment(invoice_erp_id=a.invoice_id, deposit_erp_id=deposit.erp_id, amount=a.applied, fee=a.fee,
                    paid_on=deposit.received_on) for a in cand.allocations]


# ---------------------------------------------------------------------------------------------------
# engine


@dataclass(slots=True)
class _Fit:
    partner: PartnerEntry
    hit: NameHit | None
    items: tuple[OpenItem, ...]
    kind: FitKind
    fee: int
    overpayment: int
    allocs: tuple[tuple[OpenItem, int, int], ...]  # (item, applied, fee)
    in_window: bool
    score: float
    amount_score: float
    risky: bool = False  # a まとめ入金 from a large search space: likely a coincidence

    def equivalence(self) -> tuple:
        """Fits with the same key are interchangeable (identical amounts for one partner)."""
        return (self.partner.partner_id, self.kind, self.fee, tuple(sorted(i.outstanding for i in self.items)))

    def fifo(self) -> tuple:
        return tuple(sorted(i.fifo for i in self.items))

    def ids(self) -> tuple[str, ...]:
        return tuple(sorted(i.invoice_id for i in self.items))


class Reconciler:
    """Indexes open invoices once; :meth:`decide` reads, :meth:`apply` consumes outstanding amounts.

    ``decide`` never changes state, so it can be called for previews; ``apply`` refuses allocations
    that no longer fit (an approval that went stale because another deposit was applied first).
    """

    def __init__(
        self,
        invoices: Iterable[OpenInvoice],
        policy: ReconciliationPolicy | None = None,
        aliases: PayerAliasTable | None = None,
    ) -> None:
        self.policy = policy or ReconciliationPolicy()
        self.aliases = aliases or PayerAliasTable()
        self._partners: dict[str, PartnerEntry] = {}
        self._items: dict[str, OpenItem] = {}
        self._names = NameIndex()
        self._amounts = AmountIndex()
        self._named: set[str] = set()  # partners with a kana / name key (visible to bank names)
        self._hit_cache: dict[str, list[NameHit]] = {}
        for inv in sorted(invoices, key=lambda i: i.invoice_id):  # input order never matters
            self._add_invoice(inv)
        for entry in self._partners.values():
            entry.items.sort(key=lambda it: it.fifo)
        for a in self.aliases.aliases:
            ev = NameEvidence.LEARNED_ALIAS if a.source is AliasSource.LEARNED else NameEvidence.ALIAS_TABLE
            self._names.add(a.payer_key, a.partner_id, ev)
        self._lookalikes = self._find_lookalikes()

    def _find_lookalikes(self) -> dict[str, list[str]]:
        """Partners without フリガナ (invisible to bank names) whose written name looks like a visible
        partner's: 井上電機 (no kana) vs 井上電気 (イノウエデンキ). A deposit for the visible one may be
        theirs, so their fitting invoices make a deposit ambiguous."""
        blind = [pid for pid in self._partners if pid not in self._named]
        if not blind:
            return {}
        written = NameIndex()
        names = {pid: company_name_key(e.name) for pid, e in self._partners.items()}
        for pid, n in names.items():
            written.add(n, pid, NameEvidence.NAME)
        cutoff = self.policy.name_similarity_threshold * 100.0
        out: dict[str, list[str]] = {}
        for b in sorted(blind):
            nb = names[b]
            if not nb:
                continue
            for pid in written.partners_near(nb, limit=self.policy.fuzzy_block_size):
                if pid != b and pid in self._named and name_similarity(nb, names[pid]) >= cutoff:
                    out.setdefault(pid, []).append(b)
        return out

    # -- building -----------------------------------------------------------------------------------

    def _add_invoice(self, inv: OpenInvoice) -> None:
        if inv.invoice_id in self._items:
            raise ValueError(f"duplicate invoice id {inv.invoice_id!r}")
        entry = self._partners.get(inv.partner_id)
        if entry is None:
            entry = self._partners[inv.partner_id] = PartnerEntry(inv.partner_id, inv.partner_name, inv.partner_kana)
        sig = (inv.partner_name, inv.partner_kana, inv.payer_aliases)
        if sig not in entry.signatures:
            entry.signatures.add(sig)
            self._add_names(inv)
        item = OpenItem(
            invoice_id=inv.invoice_id, number=inv.number, partner_id=inv.partner_id, total=inv.total,
            outstanding=inv.outstanding, issue_date=inv.issue_date, due_date=inv.due_date,
            fifo=(inv.due_date or inv.issue_date, inv.issue_date, inv.invoice_id),
        )
        self._items[inv.invoice_id] = item
        if item.outstanding > 0:
            entry.items.append(item)
            self._amounts.add(item)

    def _add_names(self, inv: OpenInvoice) -> None:
        kk = normalise_kana(inv.partner_kana) if inv.partner_kana else ""
        if kk:
            self._names.add(kk, inv.partner_id, NameEvidence.KANA)
            self._named.add(inv.partner_id)
        nk = partner_name_key(inv.partner_name)
        if nk:
            self._names.add(nk, inv.partner_id, NameEvidence.NAME)
            self._named.add(inv.partner_id)
        for alias in inv.payer_aliases:
            self._names.add(payer_key(alias), inv.partner_id, NameEvidence.REGISTERED_ALIAS)

    # -- state --------------------------------------------------------------------------------------

    def outstanding(self, invoice_id: str) -> int:
        return self._items[invoice_id].outstanding

    def outstanding_map(self) -> dict[str, int]:
        return {k: v.outstanding for k, v in self._items.items()}

    def apply(self, decision: MatchDecision | Candidate) -> None:
        """Consume the outstanding amounts of an applied (AUTO or approved) decision."""
        cand = decision.proposal if isinstance(decision, MatchDecision) else decision
        if cand is None:
            return
        for a in cand.allocations:
            item = self._items.get(a.invoice_id)
            if item is None:
                raise ValueError(f"unknown invoice {a.invoice_id!r}")
            if a.cleared > item.outstanding:
                raise ValueError(
                    f"allocation to {a.invoice_id} ({format_yen(a.cleared)}) exceeds its outstanding "
                    f"{format_yen(item.outstanding)}; decide again")
        for a in cand.allocations:
            item = self._items[a.invoice_id]
            self._amounts.remove(item)
            item.outstanding -= a.cleared
            if item.outstanding > 0:
                self._amounts.add(item)
            else:
                entry = self._partners[item.partner_id]
                entry.items = [it for it in entry.items if it.invoice_id != item.invoice_id]

    # -- deciding -----------------------------------------------------------------------------------

    def _in_window(self, item: OpenItem, received_on: date) -> bool:
        p = self.policy
        if (item.issue_date - received_on).days > p.days_before_issue:
            return False
        if item.due_date is not None and (received_on - item.due_date).days > p.days_after_due:
            return False
        return True

    def name_hits(self, payer_name: str, *, exhaustive: bool = False) -> list[NameHit]:
        """Partners a payer name points at (best first) — for approval screens and for measuring the
        blocking (``exhaustive`` compares with every key)."""
        key = payer_key(payer_name)
        return self._name_hits(key, exhaustive=exhaustive) if key else []

    def _name_hits(self, key: str, *, exhaustive: bool = False) -> list[NameHit]:
        p = self.policy
        hits = None if exhaustive else self._hit_cache.get(key)
        if hits is None:  # the name index never changes after building: payers who come back are free
            hits = self._names.search(key, threshold=p.name_similarity_threshold, limit=p.fuzzy_block_size,
                                      exhaustive=exhaustive)
            if not exhaustive:
                self._hit_cache[key] = hits
        return [h for h in hits if h.partner_id in self._partners and self._partners[h.partner_id].items]

    def _make_fit(self, partner: PartnerEntry, hit: NameHit | None, items: tuple[OpenItem, ...],
                  amount: int, received_on: date) -> _Fit:
        total = sum(i.outstanding for i in items)
        fee = total - amount
        if len(items) == 1:
            kind = FitKind.EXACT if fee == 0 else FitKind.FEE_DEDUCTED
        else:
            kind = FitKind.COMBINED if fee == 0 else FitKind.COMBINED_FEE
        ordered = sorted(items, key=lambda i: i.fifo)
        # the fee is booked against the largest invoice of the set (newest on ties), spilling over if needed
        fees: dict[str, int] = {}
        left = fee
        for it in sorted(ordered, key=lambda i: (i.outstanding, i.fifo), reverse=True):
            if left <= 0:
                break
            fees[it.invoice_id] = min(left, it.outstanding)
            left -= fees[it.invoice_id]
        # an invoice paid in full keeps its own amount object (``x - 0`` would make a new int for every fit)
        allocs = tuple((it, it.outstanding - fees[it.invoice_id], fees[it.invoice_id]) if it.invoice_id in fees
                       else (it, it.outstanding, 0) for it in ordered)
        return self._scored(partner, hit, tuple(ordered), kind, fee, 0, allocs, received_on)

    def _scored(self, partner, hit, items, kind, fee, over, allocs, received_on) -> _Fit:
        in_window = (self._in_window(items[0], received_on) if len(items) == 1
                     else all(self._in_window(i, received_on) for i in items))
        amount_score = AMOUNT_SCORES[kind] * self.policy.fee_factor(fee)
        if len(items) > 1 and kind.complete:  # each extra invoice makes a chance sum likelier
            amount_score -= COMBINED_PER_INVOICE * (len(items) - 2)
        amount_score = round(amount_score, 4)
        name_score = hit.score if hit else AMOUNT_ONLY_NAME_SCORE
        score = name_score * amount_score * (1.0 if in_window else OUT_OF_WINDOW_FACTOR)
        return _Fit(partner, hit, items, kind, fee, over, allocs, in_window, _score(score), _score(amount_score))

    def _complete_fits(self, partner: PartnerEntry, hit: NameHit | None, amount: int, received_on: date
                       ) -> tuple[list[_Fit], bool]:
        p = self.policy

        def accept(gap: int, size: int) -> bool:
            if gap == 0:
                return True
            if size > 1 and not p.fees_on_combined:
                return False
            return p.fee_allowed(gap)

        # a まとめ入金 cannot include an invoice issued after the deposit (beyond the window)
        issued_by = received_on.toordinal() + p.days_before_issue
        combo_items = [it for it in partner.items if it.issue_date.toordinal() <= issued_by]
        res = find_subsets(
            partner.items, amount, combo_items=combo_items, max_size=p.max_invoices_per_payment,
            accept_gap=accept, max_gap=p.fee_max, pool_size=p.combination_pool_size,
            node_budget=p.max_search_nodes, max_solutions=p.max_subset_solutions,
        )
        # a fee as large as one of the invoices is that invoice left unpaid, not a fee: every invoice of
        # a まとめ入金 receives money (so every allocation becomes a payment of at least ¥1)
        fits = [self._make_fit(partner, hit, sol, amount, received_on) for sol in res.solutions
                if len(sol) == 1 or min(i.outstanding for i in sol) > sum(i.outstanding for i in sol) - amount]
        # expected number of subsets that hit the amount by chance: subsets within reach × the gaps that
        # would have been accepted (1 for an exact sum, every accepted fee otherwise) / the amount range.
        # Above the policy's bound a まとめ入金 proves nothing (a customer with many open invoices).
        fee_gaps = (len([f for f in p.fee_whitelist if f <= p.fee_max]) if p.fee_mode is FeeMode.WHITELIST
                    else p.fee_max)
        for f in fits:
            if len(f.items) > 1:
                gaps = 1 if f.fee == 0 else 1 + fee_gaps
                f.risky = res.truncated or res.combinations * gaps / (amount + p.fee_max) > p.max_combination_risk
        return fits, res.limited

    def _fifo_fit(self, partner: PartnerEntry, hit: NameHit | None, amount: int, received_on: date) -> _Fit | None:
        """Fallback: allocate oldest first (一部入金 / 過入金)."""
        remaining = amount
        allocs: list[tuple[OpenItem, int, int]] = []
        for it in partner.items:
            if remaining <= 0 or len(allocs) >= self.policy.max_invoices_per_payment:
                break
            take = min(remaining, it.outstanding)
            allocs.append((it, take, 0))
            remaining -= take
        if not allocs:
            return None
        kind = FitKind.OVERPAYMENT if remaining > 0 else FitKind.PARTIAL
        items = tuple(a[0] for a in allocs)
        return self._scored(partner, hit, items, kind, 0, remaining, tuple(allocs), received_on)

    def _amount_only(self, amount: int, received_on: date) -> tuple[list[_Fit], int]:
        """Open invoices the amount fits regardless of names: (the best few as fits, how many in all)."""
        p = self.policy
        # buckets in ranking order: known fees before other shortfalls (range mode), smaller gaps first;
        # each bucket is already oldest first, so only the first few in-window invoices are looked at
        if p.fee_mode is FeeMode.WHITELIST:
            gaps = [0, *sorted(f for f in p.fee_whitelist if f <= p.fee_max)]
            buckets = [self._amounts.bucket(amount + gap) for gap in gaps]
        else:
            ranged = list(self._amounts.in_range(amount, amount + p.fee_max))
            ranged.sort(key=lambda ai: (-p.fee_factor(ai[0] - amount), ai[0]))
            buckets = [items for _amt, items in ranged]
        keep = max(3, p.max_amount_only_candidates) + 1
        found, count = first_in_order(buckets, keep, lambda i: self._in_window(i, received_on))
        fits = [self._make_fit(self._partners[i.partner_id], None, (i,), amount, received_on) for i in found]
        fits.sort(key=lambda f: (-f.score, f.fee, f.fifo(), f.partner.partner_id))
        return fits, count

    def decide(self, deposit: BankDeposit) -> MatchDecision:
        """Read one deposit against the current open invoices (no state change)."""
        amount = int(deposit.amount)
        key = payer_key(deposit.payer_name)
        hits = self._name_hits(key) if key else []

        complete: list[_Fit] = []
        limited = False
        for hit in hits:
            fits, lim = self._complete_fits(self._partners[hit.partner_id], hit, amount, deposit.received_on)
            complete.extend(fits)
            limited = limited or lim

        if complete:
            return self._decide_complete(deposit, key, complete, limited, hits)
        if hits:
            return self._decide_fallback(deposit, key, hits)
        return self._decide_amount_only(deposit, key)

    # one or more complete fits ---------------------------------------------------------------------

    def _classes(self, fits: list[_Fit]) -> list[_Fit]:
        """One representative per interchangeable group (the oldest invoices), best first."""
        ordered = sorted(fits, key=lambda f: (-f.score, f.fifo(), f.partner.partner_id))
        groups: dict[tuple, _Fit] = {}
        for f in ordered:
            k = f.equivalence() if self.policy.fifo_identical_amounts else (f.partner.partner_id, f.ids())
            groups.setdefault(k, f)
        return list(groups.values())

    def _decide_complete(self, deposit: BankDeposit, key: str, fits: list[_Fit], limited: bool,
                         hits: list[NameHit]) -> MatchDecision:
        p = self.policy
        # invoices outside the date window only compete when nothing inside it fits
        inside = [f for f in fits if f.in_window]
        pool = inside or fits
        classes = self._classes(pool)
        best = classes[0]
        # a reading is a rival when it is another set of the same partner's invoices, a single invoice of
        # another candidate partner (similar names + same amount), or any reading of a partner whose name
        # is about as close as the best one's
        best_name = best.hit.score if best.hit else 0.0
        best_ids = set(best.ids())

        strong = best.hit is not None and best.hit.evidence in STRONG_NAME_EVIDENCE

        def clearly_behind(c: _Fit) -> bool:
            """Another partner's reading the best one out-ranks: the best is an exact name match and
            ahead by at least the policy's margin (山田商事 paying as ﾔﾏﾀﾞｼﾖｳｼﾞ vs 山田商店 at 0.76)."""
            m = _margin(best, c)
            return strong and c.partner is not best.partner and m > 0 and m >= p.auto_apply_margin

        def competing(c: _Fit) -> bool:  # another partner's reading that could be the right one
            return c.partner is not best.partner and (
                len(c.items) == 1 or (c.hit is not None and c.hit.score >= best_name - PARTNER_NAME_MARGIN))

        def rival(c: _Fit) -> bool:
            if c.partner is best.partner:  # a superset only adds invoices small enough to pass as the fee
                return not best_ids < set(c.ids())
            return competing(c) and not clearly_behind(c)

        rivals = [c for c in classes[1:] if rival(c)]
        set_aside = [c for c in classes[1:] if competing(c) and clearly_behind(c)]
        # partners without フリガナ whose written name looks like the best partner's, with a fitting invoice
        blind = [f for b in self._lookalikes.get(best.partner.partner_id, ())
                 for f in self._complete_fits(self._partners[b], None, int(deposit.amount), deposit.received_on)[0]
                 if f.in_window]
        rivals += self._classes(blind)
        rival_ids = {id(c) for c in rivals}
        others = [c for c in classes[1:] if id(c) not in rival_ids]
        if inside:
            others += self._classes([f for f in fits if not f.in_window])
        reasons: list[ReasonCode] = [_fit_reason(best.kind)]
        if best.hit and best.hit.evidence in (NameEvidence.REGISTERED_ALIAS, NameEvidence.ALIAS_TABLE,
                                              NameEvidence.LEARNED_ALIAS):
            reasons.append(ReasonCode.THIRD_PARTY_ALIAS)
        same_group = [f for f in pool if f is not best and self._same_class(f, best)]
        if same_group:
            reasons.append(ReasonCode.FIFO_IDENTICAL_AMOUNTS)
        if set_aside:
            reasons.append(ReasonCode.CLEAR_MARGIN)
        blockers: list[ReasonCode] = []
        score = best.score
        if rivals:
            partners = {c.partner.partner_id for c in rivals} | {best.partner.partner_id}
            blockers.append(ReasonCode.AMBIGUOUS_PARTNER if len(partners) > 1 else ReasonCode.AMBIGUOUS_ALLOCATION)
            score = best.score * best.score / (best.score + sum(c.score for c in rivals))
        if limited:
            blockers.append(ReasonCode.SEARCH_LIMIT)
        if best.risky:
            blockers.append(ReasonCode.COMBINATION_RISK)
        if not best.in_window:
            blockers.append(ReasonCode.OUTSIDE_DATE_WINDOW)
        if blind:
            blockers.append(ReasonCode.LOOKALIKE_WITHOUT_KANA)
        # another partner answers to this payer name at least as well (and has no fitting invoice)
        closer = [h.score for h in hits if h.partner_id != best.partner.partner_id and h.score >= best_name]
        if closer and not (p.auto_apply_shared_payer_name and max(closer) == best_name):
            blockers.append(ReasonCode.BETTER_NAME_WITHOUT_FIT if max(closer) > best_name
                            else ReasonCode.SHARED_PAYER_NAME)
        if best.hit and best.hit.evidence is NameEvidence.FUZZY and not p.auto_apply_fuzzy_names:
            blockers.append(ReasonCode.NAME_APPROXIMATE)
        elif best.hit and best.hit.evidence in (NameEvidence.FUZZY, NameEvidence.PREFIX):
            reasons.append(ReasonCode.NAME_APPROXIMATE)
        if score < p.auto_apply_threshold:
            blockers.append(ReasonCode.BELOW_THRESHOLD)
        kind = MatchKind.NEEDS_APPROVAL if blockers else MatchKind.AUTO
        proposal = self._candidate(deposit, best)
        alts = tuple(self._candidate(deposit, c) for c in (rivals + others)[:6])
        text = proposal.explanation + "; " + _verdict(kind, score, p.auto_apply_threshold, blockers,
                                                       [best, *rivals], bool(same_group))
        text += _margin_text(best, rivals, set_aside, p.auto_apply_margin)
        return _decision(
            deposit_id=deposit.erp_id, received_on=deposit.received_on, amount=int(deposit.amount),
            payer_name=deposit.payer_name, payer_key=key, kind=kind, score=_score(min(score, 1.0)),
            reasons=tuple(dict.fromkeys(reasons + blockers)), explanation=text, proposal=proposal, alternatives=alts,
        )

    def _same_class(self, a: _Fit, b: _Fit) -> bool:
        return self.policy.fifo_identical_amounts and a.equivalence() == b.equivalence() and a.ids() != b.ids()

    # names fit, amounts do not: 一部入金 / 過入金 ------------------------------------------------------

    def _decide_fallback(self, deposit: BankDeposit, key: str, hits: list[NameHit]) -> MatchDecision:
        p = self.policy
        fits = [f for h in hits[:4] if (f := self._fifo_fit(self._partners[h.partner_id], h, int(deposit.amount),
                                                             deposit.received_on))]
        fits.sort(key=lambda f: (-f.score, f.partner.partner_id))
        best = fits[0]
        reasons = [_fit_reason(best.kind)]
        blockers: list[ReasonCode] = []
        allowed = p.auto_apply_partial if best.kind is FitKind.PARTIAL else p.auto_apply_overpayment
        if not allowed:
            blockers.append(_fit_reason(best.kind))
        # amounts say nothing here, so the name alone picks the partner: a near-equal name is a rival
        rivals = [f for f in fits[1:] if f.hit and best.hit and f.hit.score >= best.hit.score - PARTNER_NAME_MARGIN]
        if rivals:
            blockers.append(ReasonCode.AMBIGUOUS_PARTNER)
        if any(self._partners[b].items for b in self._lookalikes.get(best.partner.partner_id, ())):
            blockers.append(ReasonCode.LOOKALIKE_WITHOUT_KANA)
        if not best.in_window:
            blockers.append(ReasonCode.OUTSIDE_DATE_WINDOW)
        if best.hit and best.hit.evidence is NameEvidence.FUZZY and not p.auto_apply_fuzzy_names:
            blockers.append(ReasonCode.NAME_APPROXIMATE)
        elif best.hit and best.hit.evidence in (NameEvidence.FUZZY, NameEvidence.PREFIX):
            reasons.append(ReasonCode.NAME_APPROXIMATE)
        if best.score < p.auto_apply_threshold:
            blockers.append(ReasonCode.BELOW_THRESHOLD)
        kind = MatchKind.NEEDS_APPROVAL if blockers else MatchKind.AUTO
        proposal = self._candidate(deposit, best)
        taken = set(proposal.invoice_ids)
        extra = [f for f in self._amount_only(int(deposit.amount), deposit.received_on)[0]
                 if not taken.intersection(f.ids())][: p.max_amount_only_candidates]
        alts = tuple(self._candidate(deposit, f) for f in fits[1:] + extra)
        text = proposal.explanation + "; " + _verdict(kind, best.score, p.auto_apply_threshold, blockers,
                                                       [best, *rivals], False)
        return _decision(
            deposit_id=deposit.erp_id, received_on=deposit.received_on, amount=int(deposit.amount),
            payer_name=deposit.payer_name, payer_key=key, kind=kind, score=best.score,
            reasons=tuple(dict.fromkeys(reasons + blockers)), explanation=text, proposal=proposal, alternatives=alts,
        )

    # no name evidence: third party or unrelated --------------------------------------------------------

    def _decide_amount_only(self, deposit: BankDeposit, key: str) -> MatchDecision:
        p = self.policy
        fits, count = self._amount_only(int(deposit.amount), deposit.received_on)
        base = dict(deposit_id=deposit.erp_id, received_on=deposit.received_on, amount=int(deposit.amount),
                    payer_name=deposit.payer_name, payer_key=key)
        lead = [] if key else [ReasonCode.EMPTY_PAYER_NAME]
        head = f"振込名義 {deposit.payer_name} matches no partner (名義不一致)"
        if not fits:
            return _decision(**base, kind=MatchKind.UNMATCHED, score=0.0,
                                 reasons=tuple(lead + [ReasonCode.NO_CANDIDATE]),
                                 explanation=f"{head}; no open invoice of {format_yen(deposit.amount)} "
                                             f"(± fee) — UNMATCHED / 該当なし")
        if count > p.max_amount_only_candidates:
            alts = tuple(self._candidate(deposit, f) for f in fits[:3])
            return _decision(**base, kind=MatchKind.UNMATCHED, score=0.0,
                                 reasons=tuple(lead + [ReasonCode.TOO_MANY_AMOUNT_MATCHES]), alternatives=alts,
                                 explanation=f"{head}; {count} open invoices fit {format_yen(deposit.amount)} "
                                             f"— too many to propose, UNMATCHED / 候補多数")
        best = fits[0]
        score = _score(best.score / len(fits))
        proposal = self._candidate(deposit, best)
        alts = tuple(self._candidate(deposit, f) for f in fits[1:])
        return _decision(
            **base, kind=MatchKind.NEEDS_APPROVAL, score=score,
            reasons=tuple(lead + [ReasonCode.UNKNOWN_PAYER_AMOUNT_MATCH, _fit_reason(best.kind)]),
            explanation=(proposal.explanation + f"; NEEDS_APPROVAL: payer unknown — third party paying for "
                         f"{best.partner.name}? ({len(fits)} invoice(s) fit the amount; 第三者払い・要承認; "
                         f"approve to learn the alias)"),
            proposal=proposal, alternatives=alts,
        )

    # -- output -------------------------------------------------------------------------------------

    def _candidate(self, deposit: BankDeposit, f: _Fit) -> Candidate:
        allocs = tuple(
            # built from the index's own integers (0 ≤ fee, applied; applied + fee ≤ outstanding): not re-validated
            _built(Allocation, {"invoice_id": it.invoice_id, "invoice_number": it.number, "partner_id": it.partner_id,
                                "applied": applied, "fee": fee, "outstanding_before": it.outstanding})
            for it, applied, fee in f.allocs
        )
        evidence = f.hit.evidence if f.hit else NameEvidence.NONE
        # every value comes from the index's own integers and rounded scores in [0, 1], and ``partial`` is
        # computed as the model's validator checks it: built without re-validation (a 100,000-deposit
        # batch builds hundreds of thousands of these)
        return _built(Candidate, {
            "partner_id": f.partner.partner_id, "partner_name": f.partner.name, "fit": f.kind,
            "name_evidence": evidence, "name_score": _score(f.hit.score if f.hit else 0.0),
            "amount_score": f.amount_score, "score": min(f.score, 1.0), "allocations": allocs, "fee": f.fee,
            "overpayment": f.overpayment, "partial": any(a.outstanding_after > 0 for a in allocs),
            "in_window": f.in_window, "explanation": _explain(deposit, f),
        })


def _decision(**fields: Any) -> MatchDecision:
    """A :class:`MatchDecision` from the engine's own values (enums, dates, integer yen, a score rounded into
    [0, 1]), built without re-validation; defaults filled as validation would."""
    reasons = fields["reasons"]
    fields["reasons"] = _REASON_TUPLES.setdefault(reasons, reasons)  # a few dozen distinct tuples: shared
    return _built(MatchDecision, fields)


# reason tuples seen so far (each decision shares the one equal tuple instead of holding its own)
_REASON_TUPLES: dict[tuple[ReasonCode, ...], tuple[ReasonCode, ...]] = {}
# per model class: its field names in declaration order, the defaults of the optional ones, the set of all names
_LAYOUTS: dict[type, tuple[tuple[str, ...], dict[str, Any], set[str]]] = {}
# per (model class, names given): the one shared ``model_fields_set``
_FIELDS_SETS: dict[tuple[type, frozenset[str]], set[str]] = {}
_setattr = object.__setattr__


def _built(cls: type[Any], values: dict[str, Any]) -> Any:
    """``cls.model_construct(**values)`` for the engine's output models, without its per-object bookkeeping.

    Same ``__dict__`` (every field, in declaration order, defaults filled), same ``model_fields_set`` (the
    names given) — but that set is one object shared by every instance built from the same names instead
    of a new set per instance (about 0.5 KiB each; a 100,000-deposit batch builds about 400,000 of these
    objects). The models are frozen, so nothing mutates it; ``model_copy`` copies it before updating. Only
    for models without validators that must run, private attributes, extras or ``model_post_init``.
    ``values`` is taken over: given with every field in declaration order, it becomes the ``__dict__``."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        names = tuple(cls.model_fields)
        defaults = {n: f.get_default(call_default_factory=True) for n, f in cls.model_fields.items()
                    if not f.is_required()}
        layout = _LAYOUTS[cls] = (names, defaults, set(names))
    names, defaults, every = layout
    if len(values) == len(names) and tuple(values) == names:
        fields, fields_set = values, every
    else:
        key = (cls, frozenset(values))
        fields_set = _FIELDS_SETS.get(key)
        if fields_set is None:
            fields_set = _FIELDS_SETS[key] = set(n for n in names if n in values)
        fields = {n: values[n] if n in values else defaults[n] for n in names}
    m = cls.__new__(cls)
    _setattr(m, "__dict__", fields)
    _setattr(m, "__pydantic_fields_set__", fields_set)
    _setattr(m, "__pydantic_extra__", None)
    _setattr(m, "__pydantic_private__", None)
    return m


# rounded scores seen so far: at most 10,001 values in [0, 1], each one float object shared by every decision
_SCORES: dict[float, float] = {}


def _score(value: float) -> float:
    """``round(value, 4)`` as the one shared float object of that value (24 bytes saved per score held)."""
    r = round(value, 4)
    return _SCORES.setdefault(r, r) if r > 0.0 else r


def _fit_reason(kind: FitKind) -> ReasonCode:
    return {
        FitKind.EXACT: ReasonCode.EXACT_MATCH,
        FitKind.FEE_DEDUCTED: ReasonCode.FEE_DEDUCTED,
        FitKind.COMBINED: ReasonCode.COMBINED_PAYMENT,
        FitKind.COMBINED_FEE: ReasonCode.COMBINED_PAYMENT,
        FitKind.PARTIAL: ReasonCode.PARTIAL_PAYMENT,
        FitKind.OVERPAYMENT: ReasonCode.OVERPAYMENT,
    }[kind]


# ---------------------------------------------------------------------------------------------------
# explanations


def _explain(deposit: BankDeposit, f: _Fit) -> str:
    amt = format_yen(int(deposit.amount))
    if f.hit:
        ev = f.hit.evidence
        tag = ev.label if ev not in (NameEvidence.FUZZY, NameEvidence.PREFIX) else f"{ev.label} {f.hit.score:.2f}"
        name = f"振込名義 {deposit.payer_name} = {f.partner.name} ({tag})"
    else:
        name = f"振込名義 {deposit.payer_name} ≠ any partner; amount fits {f.partner.name}"
    parts = [f"{it.label} {format_yen(it.outstanding)}" for it, _a, _f in f.allocs]
    if f.kind is FitKind.EXACT:
        money = f"amount {amt} = invoice {parts[0]}"
    elif f.kind is FitKind.FEE_DEDUCTED:
        money = f"amount {amt} = invoice {parts[0]} − fee {format_yen(f.fee)} (振込手数料 → 支払手数料)"
    elif f.kind in (FitKind.COMBINED, FitKind.COMBINED_FEE):
        money = f"amount {amt} = " + " + ".join(parts)
        if f.fee:
            money += f" − fee {format_yen(f.fee)} (振込手数料 → 支払手数料)"
        money += f" (まとめ入金, {len(parts)} invoices)"
    elif f.kind is FitKind.PARTIAL:
        it, applied, _ = f.allocs[-1]
        left = it.outstanding - applied
        money = (f"amount {amt} < outstanding " + " + ".join(parts)
                 + f": partial payment 一部入金, {format_yen(left)} stays open on {it.label}")
    else:  # OVERPAYMENT
        money = (f"amount {amt} > outstanding " + " + ".join(parts)
                 + f": overpayment 過入金 {format_yen(f.overpayment)} left unapplied")
    if not f.in_window:
        money += " [outside the date window / 期間外]"
    return f"{name}; {money}"


def _margin(best: _Fit, other: _Fit) -> float:
    """Score margin between the best reading and another (rounded: the scores are rounded too)."""
    return round(best.score - other.score, 4)


def _margin_text(best: _Fit, rivals: Sequence[_Fit], set_aside: Sequence[_Fit], margin: float) -> str:
    """The score margin to the runner-up of another partner, for the approver (both scores shown)."""
    others = [c for c in [*rivals, *set_aside] if c.partner is not best.partner]
    if not others:
        return ""
    runner = max(others, key=lambda c: (c.score, c.partner.partner_id))
    m = _margin(best, runner)
    verdict = (f"≥ {margin:.2f}: clearly ahead (明確な差)" if any(runner is c for c in set_aside)
               else f"< {margin:.2f}: too close to tell (僅差)")
    return (f"; margin: best {best.partner.name} {best.score:.2f} vs runner-up {runner.partner.name} "
            f"{runner.score:.2f} = {m:.2f} {verdict}")


def _verdict(kind: MatchKind, score: float, threshold: float, blockers: list[ReasonCode], classes: Sequence[_Fit],
             fifo: bool) -> str:
    if kind is MatchKind.AUTO:
        text = f"AUTO: unique match, score {score:.2f} ≥ {threshold:.2f} (自動消込)"
        if fifo:
            text += "; identical amounts — oldest invoice taken first (同額は古い順)"
        return text
    why = []
    for b in blockers:
        if b in (ReasonCode.AMBIGUOUS_PARTNER, ReasonCode.AMBIGUOUS_ALLOCATION):
            options = " / ".join(f"{c.partner.name} " + "+".join(i.label for i in c.items) for c in classes[:4])
            why.append(f"ambiguous — {len(classes)} readings fit: {options} (曖昧)")
        elif b is ReasonCode.PARTIAL_PAYMENT:
            why.append("partial payment needs approval (一部入金は要承認)")
        elif b is ReasonCode.OVERPAYMENT:
            why.append("overpayment needs approval (過入金は要承認)")
        elif b is ReasonCode.SEARCH_LIMIT:
            why.append("subset search hit its limit (組合せ上限)")
        elif b is ReasonCode.NAME_APPROXIMATE:
            why.append("payer name only similar (類似名義)")
        elif b is ReasonCode.COMBINATION_RISK:
            why.append("too many open invoices for a まとめ入金 to be conclusive (組合せ多数)")
        elif b is ReasonCode.OUTSIDE_DATE_WINDOW:
            why.append("invoice outside the date window (期間外)")
        elif b is ReasonCode.BETTER_NAME_WITHOUT_FIT:
            why.append("a closer-named partner has no fitting invoice (より近い名義あり)")
        elif b is ReasonCode.SHARED_PAYER_NAME:
            why.append("another partner has the same payer name (同名義の取引先あり)")
        elif b is ReasonCode.LOOKALIKE_WITHOUT_KANA:
            why.append("a look-alike partner without フリガナ has a fitting invoice (カナ未登録の類似取引先)")
        elif b is ReasonCode.BELOW_THRESHOLD:
            why.append(f"score {score:.2f} < {threshold:.2f}")
    return "NEEDS_APPROVAL: " + "; ".join(why) + " (要承認)"


# ---------------------------------------------------------------------------------------------------
# entry points


def reconcile_deposit(
    deposit: BankDeposit,
    invoices: Iterable[OpenInvoice],
    policy: ReconciliationPolicy | None = None,
    aliases: PayerAliasTable | None = None,
) -> MatchDecision:
    """Decide one deposit (builds a fresh index; use :class:`Reconciler` for many)."""
    return Reconciler(invoices, policy, aliases).decide(deposit)


def reconcile_batch(
    deposits: Iterable[BankDeposit],
    invoices: Iterable[OpenInvoice],
    policy: ReconciliationPolicy | None = None,
    aliases: PayerAliasTable | None = None,
    *,
    apply_kinds: frozenset[MatchKind] = frozenset({MatchKind.AUTO}),
) -> BatchResult:
    """Decide many deposits in order (入金日, deposit id), consuming outstanding amounts as decisions of
    ``apply_kinds`` are applied, so no invoice is allocated twice. Decisions come back in that order."""
    rec = Reconciler(invoices, policy, aliases)
    ordered = sorted(deposits, key=lambda d: (d.received_on, d.erp_id))
    seen: set[str] = set()
    decisions: list[MatchDecision] = []
    for d in ordered:
        if d.erp_id in seen:
            raise ValueError(f"duplicate deposit id {d.erp_id!r}")
        seen.add(d.erp_id)
        dec = rec.decide(d)
        if dec.kind in apply_kinds and dec.proposal is not None:
            rec.apply(dec)
        decisions.append(dec)
    # the engine's own decisions and integers: not re-validated (that would copy 100,000 entries again)
    return _built(BatchResult, {"decisions": tuple(decisions), "outstanding": rec.outstanding_map()})
