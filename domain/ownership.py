"""Field ownership and the 3-way merge of one linked customer (HubSpot company ⇄ freee partner 取引先).

Pure rules: no I/O, no config loading — the policy is passed in (build it with :func:`default_policy`
or :meth:`PolicyTable.from_dict` from the app's config file).

Vocabulary
----------
*path*
    A field of the canonical record, nested fields written with a dot (``address.postal_code``,
    ``payment_terms.closing_day``). Records may be nested dicts, flat dotted dicts or pydantic models.
*owner*
    ``crm`` or ``erp`` (the side whose edits propagate; edits on the other — *foreign* — side are
    reported and overwritten, sent to review or only reported, per ``on_foreign_change``), or ``both``
    (3-way merged against the base snapshot).
*base*
    What each side held after the last successful sync, **per side**:
    ``{"crm": {path: value}, "erp": {path: value}}`` (a single flat dict is accepted too and read as
    the same base for both sides). Per-side bases let an acknowledged difference (``report_only``, a
    field one system rewrites) stay quiet instead of being re-reported on every run.
*missing vs empty*
    A path absent from a side's record means "this record does not carry the field" — it is never
    written to that side nor read as a change. ``None`` / ``""`` means "carried and empty".

Equality is on :func:`comparable` values, so formatting is never a change:

* every string: NFKC (full-/half-width, ㈱ → (株)), surrounding whitespace trimmed, inner runs of
  whitespace collapsed to one space; ``""`` ≡ ``None``;
* ``phone``: digits only, ``+81`` → ``0`` (:func:`domain.normalise.normalise_phone`);
* ``domain``: scheme, ``www.``, path and case dropped (:func:`domain.normalise.normalise_domain`);
* ``postal_code``: ``NNN-NNNN`` (``〒1000001`` ≡ ``100-0001``);
* ``corporate_number``: digits only; ``registration_number``: ``T`` + digits;
* ``billing_email`` / ``email``: case-folded;
* ``name_kana``: hiragana ≡ katakana, half-width ≡ full-width;
* enums by value, ``Decimal`` by value (``1.0`` ≡ ``1.00``), datetimes in UTC, empty dict/list ≡ ``None``.

Company names are *not* stripped of legal forms here (``株式会社山田商事`` → ``山田商事`` is a real edit of
the legal name on an invoice); that looser key is only used for matching (:mod:`domain.matching`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

import jaconv
from pydantic import BaseModel

from renkei.domain.identifiers import normalise_postal_code
from renkei.domain.normalise import normalise_domain, normalise_phone

Side = Literal["crm", "erp"]
SIDES: tuple[Side, Side] = ("crm", "erp")


def other_side(side: Side) -> Side:
    return "erp" if side == "crm" else "crm"


class _Missing:
    """Sentinel: the record does not carry this path (distinct from ``None`` = carried and empty)."""

    _instance: "_Missing | None" = None

    def __new__(cls) -> "_Missing":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

# ---------------------------------------------------------------------------------------------------
# policy


class Owner(str, Enum):
    CRM = "crm"
    ERP = "erp"
    BOTH = "both"


class OnForeignChange(str, Enum):
    """What to do when the non-owner side edits an owned field."""

    OVERWRITE = "overwrite"  # report it and write the owner's value back
    REVIEW = "review"  # no write; a review item until a decision is recorded
    REPORT_ONLY = "report_only"  # report once, leave it; the owner's next change overwrites it


class Direction(str, Enum):
    """Which sides Renkei may write for the field."""

    TO_ERP = "to_erp"
    TO_CRM = "to_crm"
    TWO_WAY = "two_way"
    NONE = "none"  # not synced at all (e.g. a field only one system has)


@dataclass(frozen=True)
class FieldPolicy:
    """Policy of one field. ``direction`` defaults to owner → other side (``two_way`` for ``both``)."""

    owner: Owner
    on_foreign_change: OnForeignChange = OnForeignChange.OVERWRITE
    direction: Direction | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "owner", Owner(self.owner))
        object.__setattr__(self, "on_foreign_change", OnForeignChange(self.on_foreign_change))
        direction = _default_direction(self.owner) if self.direction is None else Direction(self.direction)
        object.__setattr__(self, "direction", direction)
        allowed = {
            Owner.CRM: {Direction.TO_ERP, Direction.NONE},
            Owner.ERP: {Direction.TO_CRM, Direction.NONE},
            Owner.BOTH: {Direction.TWO_WAY, Direction.NONE},
        }[self.owner]
        if direction not in allowed:
            raise ValueError(
                f"direction {direction.value!r} contradicts owner {self.owner.value!r} "
                f"(allowed: {sorted(d.value for d in allowed)})"
            )

    @property
    def synced(self) -> bool:
        return self.direction is not Direction.NONE

    def writes_to(self, side: Side) -> bool:
        d = self.direction
        return d is Direction.TWO_WAY or (d is Direction.TO_ERP and side == "erp") or (
            d is Direction.TO_CRM and side == "crm"
        )

    def to_dict(self) -> dict[str, str]:
        assert self.direction is not None
        return {"owner": self.owner.value, "on_foreign_change": self.on_foreign_change.value,
                "direction": self.direction.value}


def _default_direction(owner: Owner, *, crm_carries: bool = True, erp_carries: bool = True) -> Direction:
    if owner is Owner.CRM:
        return Direction.TO_ERP if erp_carries and crm_carries else Direction.NONE
    if owner is Owner.ERP:
        return Direction.TO_CRM if crm_carries and erp_carries else Direction.NONE
    return Direction.TWO_WAY if crm_carries and erp_carries else Direction.NONE


# Canonical fields that are bookkeeping, not content: never merged, never hashed.
NON_SYNCED_FIELDS = frozenset({"crm_id", "erp_id", "erp_department_id", "updated_at", "warnings"})


@dataclass(frozen=True)
class _FieldInfo:
    owner: str
    crm_carries: bool
    erp_carries: bool


def _carries(name: str | None) -> bool | None:
    if name is None:
        return None
    return name.strip() not in ("", "—", "-")


def _model_fields(model: type[BaseModel], prefix: str = "", parent: _FieldInfo | None = None
                  ) -> Iterator[tuple[str, _FieldInfo]]:
    """Leaf paths of a canonical model with owner and which connector carries them (from ``meta``)."""
    for name, f in model.model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        owner = str(extra.get("owner") or (parent.owner if parent else "renkei"))
        crm = _carries(extra.get("hubspot") if "hubspot" in extra else None)  # type: ignore[arg-type]
        erp = _carries(extra.get("freee") if "freee" in extra else None)  # type: ignore[arg-type]
        info = _FieldInfo(
            owner,
            crm if crm is not None else (parent.crm_carries if parent else False),
            erp if erp is not None else (parent.erp_carries if parent else False),
        )
        path = f"{prefix}{name}"
        sub = _submodel(f.annotation)
        if sub is not None:
            yield from _model_fields(sub, f"{path}.", info)
        else:
            yield path, info


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


class PolicyTable(Mapping[str, FieldPolicy]):
    """Field policy per leaf path (``address.postal_code``). Iterating yields the synced paths' keys."""

    def __init__(self, policies: Mapping[str, FieldPolicy], *, _infos: Mapping[str, _FieldInfo] | None = None):
        self._policies = dict(sorted(policies.items()))
        self._infos = dict(_infos or {})

    # Mapping protocol -------------------------------------------------------------------------
    def __getitem__(self, path: str) -> FieldPolicy:
        return self._policies[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._policies)

    def __len__(self) -> int:
        return len(self._policies)

    def __repr__(self) -> str:
        return f"PolicyTable({len(self)} fields)"

    @property
    def synced_paths(self) -> tuple[str, ...]:
        """Paths Renkei writes (direction is not ``none``)."""
        return tuple(p for p, fp in self._policies.items() if fp.synced)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self._policies)

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {p: fp.to_dict() for p, fp in self._policies.items()}

    # building ---------------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: type[BaseModel]) -> "PolicyTable":
        """Default table from the canonical model's ``owner`` metadata.

        Renkei-owned fields and :data:`NON_SYNCED_FIELDS` are left out; a field that one connector does
        not carry (``freee="—"``, e.g. ``domain``, ``sales_owner``) gets direction ``none``.
        """
        policies: dict[str, FieldPolicy] = {}
        infos: dict[str, _FieldInfo] = {}
        for path, info in _model_fields(model):
            infos[path] = info
            if info.owner not in ("crm", "erp", "both") or path.split(".")[0] in NON_SYNCED_FIELDS:
                continue
            owner = Owner(info.owner)
            policies[path] = FieldPolicy(
                owner, direction=_default_direction(owner, crm_carries=info.crm_carries,
                                                    erp_carries=info.erp_carries))
        return cls(policies, _infos=infos)

    def with_overrides(self, config: Mapping[str, Any]) -> "PolicyTable":
        """A copy with the app's policy config applied. Format (YAML/TOML-friendly)::

            {"default_on_foreign_change": "overwrite",        # optional, applies to every field
             "fields": {
                 "phone": {"owner": "both"},                   # direction re-derived
                 "address": {"on_foreign_change": "review"},   # a parent applies to address.*
                 "sales_owner": "crm",                         # short form: owner only
                 "credit_hold": {"direction": "none"}}}

        A bare ``{field: ...}`` mapping (no ``fields`` key) is accepted too. Unknown fields raise
        ``ValueError`` — a typo in the config must not silently leave a field on the default.
        """
        config = dict(config)
        default_ofc = config.pop("default_on_foreign_change", None)
        fields_cfg = config.pop("fields", None)
        if fields_cfg is None:
            fields_cfg, config = config, {}
        if config:
            raise ValueError(f"unknown policy keys: {sorted(config)}")
        policies = dict(self._policies)
        if default_ofc is not None:
            policies = {p: FieldPolicy(fp.owner, OnForeignChange(default_ofc), fp.direction)
                        for p, fp in policies.items()}
        known = set(self._infos) | set(policies)
        for key, raw in fields_cfg.items():
            targets = sorted(p for p in known if p == key or p.startswith(key + "."))
            if not targets:
                raise ValueError(f"policy config names an unknown field: {key!r}")
            spec = {"owner": raw} if isinstance(raw, str) else dict(raw)
            bad = set(spec) - {"owner", "on_foreign_change", "direction"}
            if bad:
                raise ValueError(f"policy for {key!r}: unknown keys {sorted(bad)}")
            for path in targets:
                current = policies.get(path)
                info = self._infos.get(path)
                owner = Owner(spec.get("owner") or (current.owner if current else (info.owner if info else "")))
                ofc = spec.get("on_foreign_change") or (
                    current.on_foreign_change if current else (default_ofc or OnForeignChange.OVERWRITE))
                if "direction" in spec:
                    direction = Direction(spec["direction"])
                elif current is not None and "owner" not in spec:
                    direction = current.direction
                else:
                    direction = _default_direction(
                        owner, crm_carries=info.crm_carries if info else True,
                        erp_carries=info.erp_carries if info else True)
                policies[path] = FieldPolicy(owner, OnForeignChange(ofc), direction)
        return PolicyTable(policies, _infos=self._infos)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], *, model: type[BaseModel] | None = None) -> "PolicyTable":
        """Model defaults (Company unless ``model`` is given) with ``config`` applied on top."""
        return default_policy(model).with_overrides(config)


def default_policy(model: type[BaseModel] | None = None) -> PolicyTable:
    """The default policy of ``model`` (the canonical :class:`~domain.model.Company` by default)::

        crm owns   name, name_kana, corporate_number, phone (domain, sales_owner: CRM only, not synced)
        erp owns   registration_number, partner_code, entity_kind, address.*, billing_contact_name,
                   billing_email, payment_terms.* (credit_hold: no freee field, not synced)
        both       archived — 3-way merged
    """
    if model is None:
        from renkei.domain.model import Company

        model = Company
    return PolicyTable.from_model(model)


# ---------------------------------------------------------------------------------------------------
# values


_WS = re.compile(r"\s+")


def _text(value: str) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFKC", value)).strip()


def _postal(s: str) -> str:
    try:
        return normalise_postal_code(s)
    except ValueError:
        return s


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _registration(s: str) -> str:
    d = _digits(s)
    return f"T{d}" if d else s.upper()


_TEXT_RULES: dict[str, Any] = {
    "phone": normalise_phone,
    "domain": normalise_domain,
    "postal_code": _postal,
    "corporate_number": _digits,
    "registration_number": _registration,
    "billing_email": str.casefold,
    "email": str.casefold,
    "name_kana": lambda s: jaconv.hira2kata(s),
}


def comparable(path: str, value: Any) -> Any:
    """Value used for equality and hashing (see the module docstring for the rules); empty → ``None``.

    JSON-serialisable (str, int, bool, float, list, dict or None).
    """
    if value is None or value is MISSING:
        return None
    if isinstance(value, str) and value.startswith(PROTECTED_PREFIX):
        return value  # a keyed hash of a personal value (see protect_value): compared as it is
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python")
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        s = _text(value)
        if not s:
            return None
        rule = _TEXT_RULES.get(path.rsplit(".", 1)[-1])
        if rule is not None:
            s = rule(s)
        return s or None
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, Decimal):
        n = value.normalize()
        return format(n, "f") if n == n.to_integral() else str(n)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        out = {str(k): comparable(f"{path}.{k}", v) for k, v in value.items()}
        out = {k: v for k, v in sorted(out.items()) if v is not None}
        return out or None
    if isinstance(value, set | frozenset):
        items = sorted((comparable(path, v) for v in value), key=lambda x: json.dumps(x, sort_keys=True))
        return [v for v in items if v is not None] or None
    if isinstance(value, list | tuple):
        items = [comparable(path, v) for v in value]
        return [v for v in items if v is not None] or None
    return str(value)


def same(path: str, a: Any, b: Any) -> bool:
    """``a`` and ``b`` are the same value of ``path`` under :func:`comparable`."""
    return comparable(path, a) == comparable(path, b)


def as_mapping(record: Any) -> Mapping[str, Any]:
    """A record as a mapping: dicts as they are, pydantic models dumped in JSON mode, ``None`` → ``{}``."""
    if type(record) is dict:  # the common case, without abc instance checks (hot in large syncs)
        return record
    if record is None:
        return {}
    if isinstance(record, BaseModel):
        return record.model_dump(mode="json")
    if isinstance(record, Mapping):
        return record
    raise TypeError(f"expected a mapping or pydantic model, got {type(record).__name__}")


def get_path(record: Any, path: str) -> Any:
    """Value at ``path``: a flat dotted key wins, else nested dicts are walked. ``MISSING`` when the
    record does not carry the path; ``None`` when an enclosing object is ``None`` (carried, empty)."""
    rec = as_mapping(record)
    if path in rec:
        return rec[path]
    cur: Any = rec
    for part in path.split("."):
        if cur is None:
            return None
        if isinstance(cur, BaseModel):
            cur = cur.model_dump(mode="json")
        if not isinstance(cur, Mapping) or part not in cur:
            return MISSING
        cur = cur[part]
    return cur


def apply_updates(record: Any, updates: Mapping[str, Any]) -> dict[str, Any]:
    """A nested copy of ``record`` with dotted-path ``updates`` applied.

    A nested object whose values all end up ``None`` becomes ``None`` (so a cleared ``payment_terms``
    validates). Use it to build the full object a connector must send (e.g. freee's whole
    ``address_attributes``) from a plan's partial updates.
    """
    out = copy.deepcopy(dict(as_mapping(record)))
    touched: set[str] = set()
    for path, value in updates.items():
        if path in out and "." in path:  # flat dotted record
            out[path] = value
            continue
        parts = path.split(".")
        cur = out
        for i, part in enumerate(parts[:-1]):
            nxt = cur.get(part)
            if not isinstance(nxt, dict):
                nxt = {} if nxt is None or part not in cur else dict(nxt)
                cur[part] = nxt
            cur = nxt
            touched.add(".".join(parts[: i + 1]))
        cur[parts[-1]] = value
    for parent in sorted(touched, key=lambda p: -p.count(".")):
        parts = parent.split(".")
        holder = out
        for part in parts[:-1]:
            holder = holder[part]
        obj = holder.get(parts[-1])
        if isinstance(obj, dict) and obj and all(v is None for v in obj.values()):
            holder[parts[-1]] = None
    return out


def flatten(record: Any, paths: Iterable[str]) -> dict[str, Any]:
    """``{path: value}`` for the paths the record carries."""
    out = {}
    for p in paths:
        v = get_path(record, p)
        if v is not MISSING:
            out[p] = v
    return out


# ---------------------------------------------------------------------------------------------------
# plan


class ChangeAction(str, Enum):
    OVERWRITTEN = "overwritten"  # the owner's value was written over the foreign edit
    REVIEW = "review"  # held for a decision (also listed in MergePlan.review_items)
    REPORTED = "reported"  # left in place, reported once
    KEPT = "kept"  # first sync: the owner is empty, the other side's value is left alone


@dataclass(frozen=True)
class ForeignChange:
    """An owned field that differs on the non-owner side (reason codes ``FOREIGN_CHANGE`` on a
    synced record, ``FIRST_SYNC_DIFFERENT`` / ``FIRST_SYNC_OWNER_EMPTY`` when there is no base)."""

    field: str
    owner: Side
    side: Side  # where the foreign value is
    base: Any
    crm: Any
    erp: Any
    action: ChangeAction
    reason: str
    owner_changed: bool = False

    @property
    def key(self) -> str:
        return review_key(self.field, self.crm, self.erp)


@dataclass(frozen=True)
class Conflict:
    """A review item for one field: both sides hold different values and no rule may choose.

    ``reason``: ``BOTH_CHANGED`` (both-owned, changed on both sides since the base),
    ``FIRST_SYNC_DIFFERENT`` (both-owned, no base, both non-empty), ``FOREIGN_CHANGE_REVIEW`` (owned
    field edited on the other side, policy ``review``), ``OUT_OF_SYNC`` (both-owned, neither side
    changed but they differ — a base written by something else).
    """

    field: str
    reason: str
    base: Any
    crm: Any
    erp: Any
    owner: Owner = Owner.BOTH

    @property
    def key(self) -> str:
        """Stable id of this decision (field + the two values): dedupe review items with it."""
        return review_key(self.field, self.crm, self.erp)

    def resolve(self, chosen: Any) -> "Resolution":
        return Resolution(self.field, self.crm, self.erp, chosen)


def review_key(path: str, crm: Any, erp: Any) -> str:
    payload = json.dumps([path, comparable(path, crm), comparable(path, erp)], sort_keys=True,
                         ensure_ascii=False, separators=(",", ":"))
    return f"{path}:{hashlib.sha256(payload.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class Resolution:
    """A recorded decision: for ``field`` holding ``crm_value`` in the CRM and ``erp_value`` in the
    ERP, use ``chosen``. It applies only while the two sides still hold those values (compared with
    :func:`comparable`), so a later, different disagreement is raised afresh."""

    field: str
    crm_value: Any
    erp_value: Any
    chosen: Any

    def applies_to(self, crm: Any, erp: Any) -> bool:
        return same(self.field, self.crm_value, crm) and same(self.field, self.erp_value, erp)

    @classmethod
    def from_dict(cls, field_name: str, raw: Mapping[str, Any]) -> "Resolution":
        return cls(field_name, raw.get("crm"), raw.get("erp"), raw["chosen"])


@dataclass
class MergePlan:
    """What to do for one linked pair. Write ``updates_to_crm`` / ``updates_to_erp`` (dotted paths,
    see :func:`apply_updates`), raise ``review_items``, report ``foreign_changes``, and store a new
    base **only after both writes succeeded**: preferably :meth:`base_from` the re-read records (it
    absorbs what a system reformats or drops on save — see :meth:`unpersisted`), else ``new_base``.
    A failed write means: store nothing; the next run re-plans from the old base and converges."""

    updates_to_crm: dict[str, Any] = field(default_factory=dict)
    updates_to_erp: dict[str, Any] = field(default_factory=dict)
    foreign_changes: list[ForeignChange] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    applied_resolutions: list[Resolution] = field(default_factory=list)
    new_base: dict[str, dict[str, Any]] = field(default_factory=lambda: {"crm": {}, "erp": {}})
    held: frozenset[str] = frozenset()  # paths whose base was not advanced (open review items)
    paths: tuple[str, ...] = ()  # the synced paths this plan covered

    @property
    def has_writes(self) -> bool:
        return bool(self.updates_to_crm or self.updates_to_erp)

    @property
    def review_items(self) -> list[Conflict]:
        """Every item needing a human: conflicts, including foreign changes held for review."""
        return list(self.conflicts)

    @property
    def is_noop(self) -> bool:
        return not (self.has_writes or self.conflicts or self.foreign_changes)

    def updates_to(self, side: Side) -> dict[str, Any]:
        return self.updates_to_crm if side == "crm" else self.updates_to_erp

    def base_from(self, crm_after: Any, erp_after: Any) -> dict[str, dict[str, Any]]:
        """New base from the records as re-read after the writes (absorbs any reformatting a system
        does on save, so it is not seen as an edit next run); held paths keep the planned base."""
        out: dict[str, dict[str, Any]] = {"crm": {}, "erp": {}}
        for side, rec in (("crm", crm_after), ("erp", erp_after)):
            for p in self.paths:
                if p in self.held:
                    if p in self.new_base[side]:
                        out[side][p] = self.new_base[side][p]
                    continue
                v = get_path(rec, p)
                if v is not MISSING:
                    out[side][p] = v
        return out

    def unpersisted(self, crm_after: Any, erp_after: Any) -> list[tuple[Side, str, Any, Any]]:
        """Planned writes the re-read records do not show: ``(side, path, planned, actual)``.

        A system that silently drops a field (the connector does not map it, the API ignores it)
        would otherwise be rewritten every run; report these (``WRITE_NOT_PERSISTED``) and store
        :meth:`base_from` so the next run is quiet.
        """
        out: list[tuple[Side, str, Any, Any]] = []
        for side, rec in (("crm", crm_after), ("erp", erp_after)):
            for p, planned in self.updates_to(side).items():  # type: ignore[arg-type]
                actual = get_path(rec, p)
                if actual is MISSING or not same(p, planned, actual):
                    out.append((side, p, planned, None if actual is MISSING else actual))  # type: ignore[arg-type]
        return out


def _split_base(base: Mapping[str, Any] | None) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """Per-side base from ``{"crm": {...}, "erp": {...}}``, or one flat dict used for both sides."""
    if not base:
        return {}, {}
    if set(base) <= {"crm", "erp"} and all(isinstance(v, Mapping) for v in base.values()):
        return base.get("crm") or {}, base.get("erp") or {}
    return base, base


def _resolutions(resolutions: Any) -> dict[str, list[Resolution]]:
    out: dict[str, list[Resolution]] = {}
    if not resolutions:
        return out
    items: Iterable[Any]
    if isinstance(resolutions, Mapping):
        items = []
        for k, v in resolutions.items():
            vs = v if isinstance(v, list | tuple) else [v]
            items.extend(x if isinstance(x, Resolution) else Resolution.from_dict(k, x) for x in vs)
    else:
        items = resolutions
    for r in items:
        out.setdefault(r.field, []).append(r)
    return out


def plan_merge(
    base: Mapping[str, Any] | None,
    crm: Any,
    erp: Any,
    policy: PolicyTable | None = None,
    *,
    resolutions: Mapping[str, Any] | Iterable[Resolution] | None = None,
) -> MergePlan:
    """Plan the sync of one linked pair, field by field (see the module docstring).

    Owned field (owner O, other side F):
      * F carries the owner's value (compared normalised) → nothing;
      * F changed since the base (or there is no base) and differs → per ``on_foreign_change``:
        ``overwrite`` writes O's value to F and reports it; ``review`` holds it as a review item
        (no write, base not advanced); ``report_only`` reports it once and leaves it — unless O changed
        too, then O's change propagates (reported as overwritten);
      * only O changed → O's value is written to F;
      * first sync, O empty and F not → nothing is blanked; reported as ``KEPT``.
    Both-owned field: one side changed → written to the other; both changed to the same value →
    nothing; to different values → :class:`Conflict`; no base → fill an empty side, else conflict.
    A :class:`Resolution` matching the current pair of values applies its chosen value to both
    sides and stamps it as the new base, so the conflict does not come back.
    """
    policy = policy if policy is not None else default_policy()
    crm_rec, erp_rec = as_mapping(crm), as_mapping(erp)
    base_crm, base_erp = _split_base(base)
    by_field = _resolutions(resolutions)
    plan = MergePlan()
    held: set[str] = set()

    for path in policy.synced_paths:
        fp = policy[path]
        val = {"crm": get_path(crm_rec, path), "erp": get_path(erp_rec, path)}
        bas = {"crm": get_path(base_crm, path), "erp": get_path(base_erp, path)}
        carried = {s: val[s] is not MISSING for s in SIDES}
        if not carried["crm"] or not carried["erp"]:
            for s in SIDES:  # nothing to compare; remember what the carrying side holds
                if carried[s]:
                    plan.new_base[s][path] = val[s]
            continue
        cmp = {s: comparable(path, val[s]) for s in SIDES}
        has_base = bas["crm"] is not MISSING and bas["erp"] is not MISSING
        bcmp = {s: comparable(path, bas[s]) for s in SIDES}
        after = dict(val)

        def write(side: Side, value: Any) -> None:
            if fp.writes_to(side) and comparable(path, value) != cmp[side]:
                plan.updates_to(side)[path] = value
                after[side] = value

        def hold(conflict: Conflict) -> None:
            plan.conflicts.append(conflict)
            held.add(path)
            for s in SIDES:
                if bas[s] is not MISSING:
                    plan.new_base[s][path] = bas[s]

        if cmp["crm"] == cmp["erp"]:
            for s in SIDES:
                plan.new_base[s][path] = val[s]
            continue

        resolution = next((r for r in by_field.get(path, ()) if r.applies_to(val["crm"], val["erp"])), None)
        if resolution is not None:
            # a human decision may write the owner's side too; it is what resolving means
            for s in SIDES:
                if fp.synced and comparable(path, resolution.chosen) != cmp[s]:
                    plan.updates_to(s)[path] = resolution.chosen
                    after[s] = resolution.chosen
            plan.applied_resolutions.append(resolution)
            for s in SIDES:
                plan.new_base[s][path] = after[s]
            continue

        if not has_base:
            base_for_report: Any = None
        elif bcmp["crm"] == bcmp["erp"]:
            base_for_report = bas["crm"]
        else:
            base_for_report = {"crm": bas["crm"], "erp": bas["erp"]}
        if fp.owner is Owner.BOTH:
            if not has_base:
                if cmp["crm"] is None:
                    write("crm", val["erp"])
                elif cmp["erp"] is None:
                    write("erp", val["crm"])
                else:
                    hold(Conflict(path, "FIRST_SYNC_DIFFERENT", None, val["crm"], val["erp"]))
                    continue
            else:
                changed = {s: cmp[s] != bcmp[s] for s in SIDES}
                if changed["crm"] and not changed["erp"]:
                    write("erp", val["crm"])
                elif changed["erp"] and not changed["crm"]:
                    write("crm", val["erp"])
                else:
                    reason = "BOTH_CHANGED" if changed["crm"] else "OUT_OF_SYNC"
                    hold(Conflict(path, reason, base_for_report, val["crm"], val["erp"]))
                    continue
        else:
            o: Side = fp.owner.value  # type: ignore[assignment]
            f = other_side(o)
            o_changed = has_base and cmp[o] != bcmp[o]
            f_changed = (not has_base) or cmp[f] != bcmp[f]
            if not has_base and cmp[o] is None:
                plan.foreign_changes.append(ForeignChange(
                    path, o, f, None, val["crm"], val["erp"], ChangeAction.KEPT, "FIRST_SYNC_OWNER_EMPTY"))
            elif not has_base and cmp[f] is None:
                write(f, val[o])  # fill the empty side
            elif f_changed:
                reason = "FOREIGN_CHANGE" if has_base else "FIRST_SYNC_DIFFERENT"
                ofc = fp.on_foreign_change
                if ofc is OnForeignChange.REVIEW:
                    plan.foreign_changes.append(ForeignChange(
                        path, o, f, bas[f] if has_base else None, val["crm"], val["erp"], ChangeAction.REVIEW,
                        reason, o_changed))
                    hold(Conflict(path, "FOREIGN_CHANGE_REVIEW", base_for_report, val["crm"], val["erp"],
                                  fp.owner))
                    continue
                if ofc is OnForeignChange.OVERWRITE or o_changed:
                    write(f, val[o])
                    action = ChangeAction.OVERWRITTEN if fp.writes_to(f) else ChangeAction.REPORTED
                else:
                    action = ChangeAction.REPORTED
                plan.foreign_changes.append(ForeignChange(
                    path, o, f, bas[f] if has_base else None, val["crm"], val["erp"], action, reason, o_changed))
            elif o_changed:
                write(f, val[o])
            # else: neither changed; a difference acknowledged earlier (report_only) stays quiet
        for s in SIDES:
            plan.new_base[s][path] = after[s]

    plan.held = frozenset(held)
    plan.paths = policy.synced_paths
    return plan


# ---------------------------------------------------------------------------------------------------
# personal values at rest: keyed hashes in the base snapshot

PROTECTED_PREFIX = "hmac-sha256:"


def is_protected(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PROTECTED_PREFIX)


def protect_value(path: str, value: Any, key: bytes) -> Any:
    """A personal value as kept at rest: ``hmac-sha256:<hex>`` of its :func:`comparable` form, keyed, so
    equal values (under the merge's own equality) hash equal and nothing can be read back or guessed
    without the key. Empty stays empty (``None``); a protected value is returned as it is."""
    import hmac

    if is_protected(value):
        return value
    c = comparable(path, value)
    if c is None:
        return value if value in (None, "") else None
    body = json.dumps(c, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return PROTECTED_PREFIX + hmac.new(key, f"{path.rsplit('.', 1)[-1]}\x1f{body}".encode(), hashlib.sha256).hexdigest()


def reveal_protected(path: str, stored: Any, candidates: Iterable[Any], key: bytes) -> Any:
    """``stored`` with a protected value replaced by the candidate (a value read this run) it is the hash
    of; still protected when none matches (then it stands for "some other value": changed since)."""
    if not is_protected(stored):
        return stored
    for c in candidates:
        if c is not MISSING and not is_protected(c) and protect_value(path, c, key) == stored:
            return c
    return stored
