"""Who may decide an approval: pure rules, no I/O (the policy's ``[authority]`` section builds them).

* **Allowlists per kind and amount tier**: each decision kind (``invoice``, ``payment``, ``proration``) has
  tiers ordered by ``max_amount`` (yen, inclusive; the last tier may be open-ended). The first tier whose
  ``max_amount`` covers the amount names the roles allowed to decide; a role is a list of e-mail addresses
  (or ``*@domain`` patterns). An amount above every tier cannot be decided by anyone (refused).
  A kind without tiers is open to any e-mail (the packaged default; configure tiers in production).
* **Segregation of duties**: the deal owner (CRM owner id, mapped to e-mails by the policy) cannot approve
  their own deal. Rejecting it is allowed (it moves nothing).
* **Second approval**: above ``second_approval_above[kind]`` an approval needs two distinct authorised
  approvers; both are recorded.

:func:`check` returns a :class:`Verdict`; refusals carry a stable ``code`` for the audit trail.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

KINDS = ("invoice", "payment", "proration")


@dataclass(frozen=True)
class Tier:
    max_amount: int | None  # inclusive upper bound in yen; None = no upper bound
    roles: tuple[str, ...]


@dataclass(frozen=True)
class AuthorityRules:
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tiers: Mapping[str, tuple[Tier, ...]] = field(default_factory=dict)
    second_approval_above: Mapping[str, int] = field(default_factory=dict)
    owners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # CRM owner id → e-mails


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    code: str  # OK | NOT_IN_ALLOWLIST | OVER_ALL_TIERS | SELF_APPROVAL | SAME_APPROVER
    message: str
    roles: tuple[str, ...] = ()
    needs_second: bool = False  # allowed, but one more distinct approver must approve


def norm_email(email: str) -> str:
    return (email or "").strip().lower()


def _matches(email: str, entries: Iterable[str]) -> bool:
    e = norm_email(email)
    return any(fnmatch.fnmatchcase(e, norm_email(p)) for p in entries)


def roles_of(rules: AuthorityRules, email: str) -> tuple[str, ...]:
    return tuple(sorted(r for r, members in rules.roles.items() if _matches(email, members)))


def tier_for(rules: AuthorityRules, kind: str, amount: int) -> Tier | None:
    """The tier covering ``amount`` (absolute yen); None when above every tier."""
    for t in sorted(rules.tiers.get(kind, ()), key=lambda t: (t.max_amount is None, t.max_amount or 0)):
        if t.max_amount is None or abs(amount) <= t.max_amount:
            return t
    return None


def check(rules: AuthorityRules, *, kind: str, amount: int, approver: str, approve: bool,
          owner_ids: Sequence[str] = (), earlier_approvers: Sequence[str] = ()) -> Verdict:
    """May ``approver`` decide (``approve`` or reject) an approval of ``kind`` over ``amount`` yen?
    ``earlier_approvers``: who already approved this very request (second-approval rule)."""
    if kind not in KINDS:
        raise ValueError(f"unknown approval kind {kind!r}")
    who = norm_email(approver)
    held = roles_of(rules, who)
    tiers = rules.tiers.get(kind, ())
    if tiers:
        tier = tier_for(rules, kind, amount)
        if tier is None:
            return Verdict(False, "OVER_ALL_TIERS",
                           f"{kind} of ¥{abs(amount):,} is above every approval tier: nobody may decide it", held)
        if not set(held) & set(tier.roles):
            below = [t.max_amount for t in tiers if t.max_amount is not None and t.max_amount < abs(amount)]
            limit = (f"up to ¥{tier.max_amount:,}" if tier.max_amount is not None
                     else f"above ¥{max(below):,}" if below else "of any amount")
            return Verdict(False, "NOT_IN_ALLOWLIST",
                           f"{who} is not allowed to decide {kind} approvals {limit} "
                           f"(roles needed: {', '.join(tier.roles)})", held)
    if not approve:
        return Verdict(True, "OK", "rejection allowed", held)
    for owner in owner_ids:
        if owner and _matches(who, rules.owners.get(str(owner), ())):
            return Verdict(False, "SELF_APPROVAL", f"{who} owns this deal and cannot approve it", held)
    earlier = {norm_email(e) for e in earlier_approvers}
    if who in earlier:
        return Verdict(False, "SAME_APPROVER", f"{who} already approved: a second, different approver is needed",
                       held)
    threshold = rules.second_approval_above.get(kind)
    needs_second = threshold is not None and abs(amount) > threshold and len(earlier) == 0
    return Verdict(True, "OK", "second approval needed" if needs_second else "approved", held, needs_second)
