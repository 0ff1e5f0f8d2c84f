"""Typed decisions on review items: which choices an item offers, and whether a decision fits it.

Pure rules (no Prefect, no HTTP, no store): the CLI (``renkei reviews resolve``) and the Prefect UI form
(:mod:`flows.review_decisions`) both call :func:`decide`, so the two doors accept and refuse exactly the
same decisions. The store records the result (:meth:`store.repo.Store.record_decision`); the owning flow
applies it on its next run, once.

Kinds
-----
``match``     a doubtful match (customer-sync): ``link`` to one of the item's candidates, ``create`` a
              new record on the other side, or ``ignore`` (the record stays unlinked; reason required).
``conflict``  a field both systems disagree on: take the ``crm`` value, the ``erp`` value, or enter a
              ``value`` (validated against the field's type in the canonical model).
``invalid``   a record that cannot be synced: ``retry`` (fixed at source; the next run reads it again)
              or ``dismiss`` (reason required).
``approval``  invoice / payment / proration approvals: decided through ``renkei approvals``, not here.
``other``     anything else: ``acknowledge`` or ``dismiss`` (reason required).

``ignore`` and ``dismiss`` close the item as *dismissed*: it stays dismissed while the source record is
unchanged (the store compares the record's fingerprint) and a changed record opens a new item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

MATCH_REASONS = frozenset({"AMBIGUOUS_CORPORATE_NUMBER", "CONFLICTING_SIGNALS", "AMBIGUOUS_NAME", "SHARED_DOMAIN",
                           "NAME_ONLY", "FUZZY_NAME", "SAME_PHONE", "TARGET_ALREADY_MAPPED", "DUPLICATE_IN_BATCH",
                           "TARGET_ARCHIVED", "DUPLICATE_SOURCE_IN_BATCH", "DOUBTFUL_MATCH"})
INVALID_REASONS = frozenset({"INVALID_CRM_COMPANY", "INVALID_ERP_PARTNER", "INVALID_FOR_WRITE", "EMAIL_INVALID",
                             "MARKUP_IN_TEXT", "INVALID_DEAL", "INVALID_ERP_ITEM", "INVALID_BANK_LINE",
                             "SUBSCRIPTION_INVALID", "AMENDMENT_WITHOUT_EFFECTIVE_DATE",
                             "AMENDMENT_BEFORE_LAST_VERSION"})
# Review items that are finance approvals (decided through `renkei approvals`, never here).
APPROVAL_REASONS = frozenset({"DEPOSIT_NEEDS_APPROVAL", "PRORATION_NET_CREDIT", "PRORATION_OVER_THRESHOLD"})
# Invalid-record reasons whose `retry` customer-sync carries out (it reads the record again).
RETRYABLE_BY_SYNC = frozenset({"INVALID_CRM_COMPANY", "INVALID_ERP_PARTNER", "INVALID_FOR_WRITE", "EMAIL_INVALID",
                               "MARKUP_IN_TEXT"})
# (flow, entity) of the other flows that park records and carry a `retry` out on their next run, once
RETRIED_BY_FLOW = frozenset({("order-to-invoice", "deal"), ("subscription-proration", "deal"),
                             ("payment-writeback", "deposit")})

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# choice → (Japanese, English) labels, shown by both doors
LABELS: dict[str, tuple[str, str]] = {
    "link": ("候補と紐付ける", "link to candidate"),
    "create": ("新規作成", "create new"),
    "ignore": ("紐付けない", "ignore"),
    "crm": ("CRMの値を採用", "take CRM"),
    "erp": ("ERPの値を採用", "take ERP"),
    "value": ("値を入力", "enter a value"),
    "retry": ("修正済み・再実行", "fixed at source, retry"),
    "dismiss": ("対応不要として閉じる", "dismiss"),
    "acknowledge": ("確認済み", "acknowledge"),
}
NEEDS_REASON = frozenset({"ignore", "dismiss"})
DISMISSING = frozenset({"ignore", "dismiss"})


class DecisionRefused(ValueError):
    """The decision does not fit the item (the message says why, for a person)."""


@dataclass(frozen=True)
class Option:
    choice: str  # "link:<id>" for a match candidate, else a plain choice
    label_ja: str
    label_en: str
    detail: str = ""

    @property
    def label(self) -> str:
        return f"{self.label_ja} / {self.label_en}" + (f" — {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Decision:
    """A validated decision: what a person chose, and what it will change when the owning flow runs."""

    kind: str
    choice: str  # link | create | ignore | crm | erp | value | retry | dismiss | acknowledge
    by: str
    reason: str = ""
    target: str | None = None  # link: the candidate's id
    value: Any = None  # value: the entered value, as the canonical model normalised it
    effect: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """The item's status once decided."""
        return "dismissed" if self.choice in DISMISSING else "resolved"

    @property
    def needs_apply(self) -> bool:
        """A flow has to carry it out (else it takes effect when recorded)."""
        return bool(self.effect.get("apply"))

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "choice": self.choice, "target": self.target, "value": self.value,
                "by": self.by, "reason": self.reason, "effect": dict(self.effect)}


def kind_of(flow: str, reason_code: str, entity: str, payload: Mapping[str, Any] | None) -> str:
    """The decision kind of an item (see the module docstring)."""
    p = payload or {}
    if reason_code in APPROVAL_REASONS or p.get("approval_run") or (flow == "order-to-invoice" and "reasons" in p):
        return "approval"
    if reason_code in MATCH_REASONS and "candidates" in p:
        return "match"
    if p.get("field") and p.get("crm_id") and p.get("erp_id") and "crm" in p and "erp" in p:
        return "conflict"
    if reason_code in INVALID_REASONS:
        return "invalid"
    return "other"


def options(flow: str, reason_code: str, entity: str, payload: Mapping[str, Any] | None) -> list[Option]:
    """The choices an item offers, in the order a person reads them."""
    p = payload or {}
    kind = kind_of(flow, reason_code, entity, p)
    if kind == "match":
        other = "freee" if p.get("source_side") == "crm" else "HubSpot"
        out = [Option(f"link:{c.get('id')}", *LABELS["link"], detail=f"{c.get('name') or ''} ({c.get('id')})")
               for c in p.get("candidates") or []]
        return out + [Option("create", *LABELS["create"], detail=f"new in {other}"), Option("ignore", *LABELS["ignore"])]
    if kind == "conflict":
        return [Option("crm", *LABELS["crm"], detail=shown_value(p.get("crm"))),
                Option("erp", *LABELS["erp"], detail=shown_value(p.get("erp"))),
                Option("value", *LABELS["value"], detail=str(p.get("field")))]
    if kind == "invalid":
        return [Option("retry", *LABELS["retry"]), Option("dismiss", *LABELS["dismiss"])]
    if kind == "approval":
        return []
    return [Option("acknowledge", *LABELS["acknowledge"]), Option("dismiss", *LABELS["dismiss"])]


def shown_value(value: Any) -> str:
    """A payload value as a person may see it: a personal value kept as a keyed hash shows as ``(hidden)``."""
    from renkei.domain.ownership import is_protected

    return "(hidden)" if is_protected(value) else str(value)


def validate_field_value(field_path: str, value: Any) -> Any:
    """``value`` for ``field_path`` of a company as the canonical model accepts and normalises it
    (:class:`domain.model.Company`); :class:`DecisionRefused` with the model's message otherwise."""
    from pydantic import ValidationError

    from renkei.domain.model import Company
    from renkei.domain.ownership import MISSING, apply_updates, get_path

    if value is None or (isinstance(value, str) and not value.strip()):
        raise DecisionRefused(f"enter a value for {field_path}")
    base = {} if field_path == "name" else {"name": "検証用"}
    try:
        company = Company.model_validate(apply_updates(base, {field_path: value}))
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ())) or field_path}: {e.get('msg')}"
                         for e in exc.errors())
        raise DecisionRefused(f"{field_path}: invalid value ({msgs})") from None
    out = get_path(company.model_dump(mode="json"), field_path)
    if out is MISSING:
        raise DecisionRefused(f"{field_path} is not a field of a company")
    return out


def decide(*, flow: str, reason_code: str, entity: str, entity_key: str, payload: Mapping[str, Any] | None,
           status: str, choice: str, by: str, reason: str = "", value: Any = None) -> Decision:
    """Check a person's decision against the item; the :class:`Decision` or :class:`DecisionRefused`."""
    p = payload or {}
    kind = kind_of(flow, reason_code, entity, p)
    by = (by or "").strip()
    reason = (reason or "").strip()
    choice = (choice or "").strip()
    if status != "open":
        raise DecisionRefused(f"the item is {status}, not open: nothing to decide")
    if kind == "approval":
        raise DecisionRefused("this item is a finance approval: decide it with `renkei approvals decide`")
    if not EMAIL.match(by):
        raise DecisionRefused("the decider (--by) must be an e-mail address")
    target: str | None = None
    if choice.startswith("link:"):
        choice, target = "link", choice.split(":", 1)[1].strip()
    elif choice == "link" and value not in (None, ""):
        target = str(value).strip()
    allowed = sorted({o.choice.split(":")[0] for o in options(flow, reason_code, entity, p)})
    if choice not in allowed:
        raise DecisionRefused(f"choice {choice!r} does not fit a {kind} item; choose one of: {', '.join(allowed)}")
    if choice in NEEDS_REASON and not reason:
        raise DecisionRefused(f"a reason is required to {choice}")
    effect: dict[str, Any] = {"apply": False}
    chosen_value: Any = None
    if kind == "match":
        side = p.get("source_side")
        source = str(p.get("source_id") or entity_key.split(":", 1)[-1])
        if choice == "link":
            ids = [str(c.get("id")) for c in p.get("candidates") or []]
            if not target:
                raise DecisionRefused(f"say which candidate to link: one of {', '.join(ids)}")
            if target not in ids:
                raise DecisionRefused(f"{target} is not among the item's candidates ({', '.join(ids)})")
            crm_id, erp_id = (source, target) if side == "crm" else (target, source)
            effect = {"apply": True, "link": {"crm_id": crm_id, "erp_id": erp_id}}
        elif choice == "create":
            effect = {"apply": True, "create": {"side": "erp" if side == "crm" else "crm", "from": side,
                                                "source_id": source}}
        else:
            effect = {"apply": False, "unlinked": {"side": side, "source_id": source}}
    elif kind == "conflict":
        fld = str(p["field"])
        if choice == "value":
            chosen_value = validate_field_value(fld, value)
        effect = {"apply": True, "field": fld, "crm_id": str(p["crm_id"]), "erp_id": str(p["erp_id"]),
                  "write_to": {"crm": "erp", "erp": "crm", "value": "both"}[choice]}
    elif kind == "invalid" and choice == "retry":
        # company records are read again by customer-sync; deals by order-to-invoice / subscription-proration,
        # deposits by payment-writeback (each on its next run, once); a problem still there opens a new item
        effect = {"apply": (entity == "company" and reason_code in RETRYABLE_BY_SYNC)
                  or (flow, entity) in RETRIED_BY_FLOW, "retry": entity_key}
    return Decision(kind=kind, choice=choice, by=by, reason=reason, target=target, value=chosen_value, effect=effect)
