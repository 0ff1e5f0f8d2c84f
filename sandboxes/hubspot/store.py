"""In-memory state of the HubSpot sandbox: records, property definitions, associations, pipelines,
owners — and the CRM rules applied on every write.

Internal representation of property values (all strings, like the wire):

* ``datetime`` — epoch milliseconds (``"1764000000000"``); rendered as ISO-8601 ``...Z`` on output.
* ``date`` — ``YYYY-MM-DD``.
* everything else — the string as written (``bool`` lower-cased, contact ``email`` lower-cased).

An empty string or ``null`` written to a property clears it. All public methods take the store lock,
so tests may call them from any thread (e.g. :meth:`HubSpotStore.bulk_create` while the server runs).
"""

from __future__ import annotations

import bisect
import itertools
import json
import operator
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from fnmatch import fnmatchcase
from typing import Any

from renkei.sandboxes.common import Clock

from .errors import HubSpotError, not_found, standard_error, validation
from .schema import (
    FIELD_TYPES,
    OBJECT_TYPES,
    PROPERTY_TYPES,
    AssociationType,
    ObjectType,
    PropertyDef,
    association_type,
    default_association,
    resolve_object_type,
    standard_groups,
    standard_properties,
    v3_association_type_name,
)

SEARCH_MAX_GROUPS = 5
SEARCH_MAX_FILTERS_PER_GROUP = 6
SEARCH_MAX_FILTERS = 18
SEARCH_MAX_LIMIT = 200
SEARCH_RESULT_CAP = 10_000
SEARCH_MAX_QUERY_CHARS = 3_000
LIST_MAX_LIMIT = 100
BATCH_MAX_INPUTS = 100
ASSOC_LIST_PAGE = 500
ASSOC_BATCH_READ_MAX = 1_000
ASSOC_BATCH_CREATE_MAX = 2_000

OPERATORS = (
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
)
_NUMERIC_TYPES = ("number", "datetime", "date")
_TOKEN_SPLIT = re.compile(r"[\s,;:/\\()\[\]{}\"'!?。、・]+")


# --------------------------------------------------------------------------------------------------
# value helpers
# --------------------------------------------------------------------------------------------------


def iso_ms(ms: int) -> str:
    """Epoch ms → ``2026-11-25T09:00:00.123Z`` (HubSpot's datetime rendering)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_datetime_ms(value: str) -> int | None:
    """Epoch ms from ``"1764000000000"``, an ISO-8601 date-time or a ``YYYY-MM-DD`` date (midnight UTC)."""
    s = value.strip()
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            return int(datetime.combine(date.fromisoformat(s), datetime.min.time(), UTC).timestamp() * 1000)
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _date_ms(d: str) -> int:
    return int(datetime.combine(date.fromisoformat(d), datetime.min.time(), UTC).timestamp() * 1000)


def _wire_str(value: Any) -> str | None:
    """JSON value → the string HubSpot would store (None = clear)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _fmt_decimal(d: Decimal) -> str:
    if d == d.to_integral_value():
        return str(d.quantize(Decimal(1)))
    return format(d.normalize(), "f")


class PropertyValueError(Exception):
    def __init__(self, name: str, code: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.code = code
        self.message = message

    def detail(self) -> dict[str, Any]:
        return {"isValid": False, "message": self.message, "error": self.code, "name": self.name,
                "localizedErrorMessage": self.message}


def _invalid_properties(errs: list[PropertyValueError]) -> HubSpotError:
    details = [e.detail() for e in errs]
    return validation(
        "Property values were not valid: " + json.dumps(details, ensure_ascii=False),
        errors=[{"message": e.message, "code": e.code, "context": {"propertyName": [e.name]}} for e in errs],
    )


# --------------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------------


@dataclass
class Record:
    id: str
    object_type: str
    props: dict[str, str]
    created_ms: int
    updated_ms: int
    archived: bool = False
    archived_ms: int | None = None
    changed_ms: dict[str, int] = field(default_factory=dict)
    versions: list[tuple[int, dict[str, str]]] | None = None
    """(written_ms, props snapshot) per write, kept only when search indexing lag is on."""

    def search_view(self, cutoff_ms: int | None) -> dict[str, str] | None:
        """The properties search sees at ``cutoff_ms`` (None = no lag): the latest version written at or
        before the cutoff, or None if the record was not yet indexed."""
        if cutoff_ms is None or self.versions is None:
            return self.props
        view = None
        for ts, snap in self.versions:
            if ts <= cutoff_ms:
                view = snap
            else:
                break
        return view


@dataclass
class Pipeline:
    id: str
    label: str
    display_order: int
    stages: list[dict[str, Any]]
    created_ms: int

    def stage(self, stage_id: str) -> dict[str, Any] | None:
        return next((s for s in self.stages if s["id"] == stage_id), None)

    def to_json(self) -> dict[str, Any]:
        ts = iso_ms(self.created_ms)
        return {
            "id": self.id,
            "label": self.label,
            "displayOrder": self.display_order,
            "stages": [self.stage_json(s) for s in self.stages],
            "createdAt": ts,
            "updatedAt": ts,
            "archived": False,
        }

    def stage_json(self, s: dict[str, Any]) -> dict[str, Any]:
        ts = iso_ms(self.created_ms)
        return {
            "id": s["id"],
            "label": s["label"],
            "displayOrder": s["displayOrder"],
            "metadata": dict(s["metadata"]),
            "createdAt": ts,
            "updatedAt": ts,
            "archived": False,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }


class HubSpotStore:
    """All sandbox state. See the module docstring for the value representation."""

    def __init__(self, clock: Clock, *, index_lag_ms: int = 0, preserve_merge_id: bool = False,
                 portal_id: int = 62515) -> None:
        self.clock = clock
        self.index_lag_ms = index_lag_ms
        self.preserve_merge_id = preserve_merge_id
        self.portal_id = portal_id
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, Record]] = {name: {} for name in OBJECT_TYPES}
        self.properties: dict[str, dict[str, PropertyDef]] = standard_properties()
        self.groups: dict[str, dict[str, dict[str, Any]]] = standard_groups()
        self.pipelines: dict[str, dict[str, Pipeline]] = {"deals": {}}
        self.owners: dict[str, dict[str, Any]] = {}
        # (object type, id) → to type → to id → set of association type ids (from the first side)
        self._assoc: dict[tuple[str, str], dict[str, dict[str, set[int]]]] = {}
        # (object type, unique property) → value → record id
        self._unique: dict[tuple[str, str], dict[str, str]] = {}
        self.merged_into: dict[tuple[str, str], str] = {}
        self.events: list[dict[str, Any]] = []
        """Change log (creation / propertyChange / deletion / merge / associationChange), webhook-shaped."""
        self.demo_ids: dict[str, dict[str, str]] = {}
        """Demo key → id per kind, filled by ``seed.load_demo``."""
        self._ids = itertools.count(1001)
        self._event_ids = itertools.count(1)
        # live (not archived) records per object type in (value, id) order, by id and by modification
        # date: list pages and the usual searches (changes since a date, id ranges) read a slice of these
        # instead of scanning and sorting every record (see ``_indexed_search``)
        self._order: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self.use_indexes = True  # False: every list / search scans (tests compare the two)

    # ------------------------------------------------------------------ helpers

    def object_type(self, name: str) -> ObjectType:
        obj = resolve_object_type(name)
        if obj is None:
            raise validation(f"Unable to infer object type from: {name}")
        return obj

    def _new_id(self) -> str:
        return str(next(self._ids))

    def _emit(self, obj: ObjectType, kind: str, object_id: str, **extra: Any) -> None:
        self.events.append({
            "eventId": next(self._event_ids),
            "subscriptionType": f"{obj.singular}.{kind}",
            "objectId": int(object_id),
            "occurredAt": self.clock.now_ms(),
            "portalId": self.portal_id,
            "changeSource": "API",
            **extra,
        })

    def _get(self, obj: ObjectType, record_id: str, *, archived: bool = False) -> Record:
        rec = self.records[obj.name].get(str(record_id))
        if rec is None or rec.archived != archived:
            raise not_found("resource not found" if not archived else "archived resource not found",
                            context={"id": [str(record_id)]})
        return rec

    def _pdef(self, obj: ObjectType, name: str) -> PropertyDef | None:
        p = self.properties[obj.name].get(name)
        return p if p is not None and not p.archived else None

    # ------------------------------------------------------------------ value normalisation

    def _normalise(self, obj: ObjectType, name: str, raw: Any) -> str | None:
        pdef = self._pdef(obj, name)
        if pdef is None:
            raise PropertyValueError(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
        value = _wire_str(raw)
        if value is None or value == "":
            return None
        if pdef.type == "number":
            try:
                d = Decimal(value.strip())
                if not d.is_finite():
                    raise InvalidOperation
            except InvalidOperation:
                raise PropertyValueError(name, "INVALID_FLOAT", f"{value} was not a valid number.") from None
            return value.strip()
        if pdef.type == "bool":
            v = value.strip().lower()
            if v not in ("true", "false"):
                raise PropertyValueError(name, "INVALID_BOOLEAN", f"{value} was not a valid boolean.")
            return v
        if pdef.type == "datetime":
            ms = parse_datetime_ms(value)
            if ms is None:
                raise PropertyValueError(name, "INVALID_DATETIME", f"{value} was not a valid long or ISO 8601 date-time.")
            return str(ms)
        if pdef.type == "date":
            s = value.strip()
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
                try:
                    date.fromisoformat(s)
                except ValueError:
                    raise PropertyValueError(name, "INVALID_DATE", f"{value} was not a valid date.") from None
                return s
            ms = parse_datetime_ms(s)
            if ms is None:
                raise PropertyValueError(name, "INVALID_DATE", f"{value} was not a valid date.")
            if ms % 86_400_000:
                raise PropertyValueError(name, "INVALID_DATE",
                                         f"{value} is at {iso_ms(ms)[11:19]} UTC, not midnight!")
            return datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()
        if pdef.type == "enumeration":
            if name == "hubspot_owner_id":
                if value not in self.owners:
                    raise PropertyValueError(name, "INVALID_OPTION",
                                             f"{value} was not one of the allowed options: owner ids")
                return value
            allowed = pdef.option_values()
            if allowed:
                chosen = value.split(";") if pdef.field_type == "checkbox" else [value]
                bad = [v for v in chosen if v not in allowed]
                if bad:
                    raise PropertyValueError(
                        name, "INVALID_OPTION",
                        f"{bad[0]} was not one of the allowed options: {', '.join(allowed)}",
                    )
            return value
        if name == "email" and obj.name == "contacts":
            value = value.strip().lower()
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
                raise PropertyValueError(name, "INVALID_EMAIL", f"Email address {value} is invalid")
        if len(value) > 65_536:
            raise PropertyValueError(name, "INVALID_STRING", f"{name} is longer than 65536 characters")
        return value

    def render(self, obj: ObjectType, name: str, stored: str | None) -> str | None:
        if stored is None:
            return None
        pdef = self.properties[obj.name].get(name)
        if pdef is not None and pdef.type == "datetime":
            try:
                return iso_ms(int(stored))
            except ValueError:
                return stored
        return stored

    # ------------------------------------------------------------------ the write path

    def _prepare(self, obj: ObjectType, current: Mapping[str, str], incoming: Mapping[str, Any],
                 *, record_id: str | None, creating: bool) -> dict[str, str]:
        """Validate ``incoming`` against the schema and business rules; return the new full property
        map (without the system timestamps). Raises a 400/409 :class:`HubSpotError`."""
        if not isinstance(incoming, Mapping):
            raise validation("properties must be an object of property name → value")
        errs: list[PropertyValueError] = []
        new = dict(current)
        for name, raw in incoming.items():
            pdef = self._pdef(obj, name)
            if pdef is not None and (pdef.read_only_value or pdef.calculated) and name not in ("hs_object_id",):
                errs.append(PropertyValueError(name, "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'))
                continue
            if name == "hs_object_id":
                if _wire_str(raw) not in (None, "", record_id):
                    errs.append(PropertyValueError(name, "READ_ONLY_VALUE", '"hs_object_id" is a read only property; its value cannot be set.'))
                continue
            try:
                value = self._normalise(obj, name, raw)
            except PropertyValueError as e:
                errs.append(e)
                continue
            if value is None:
                new.pop(name, None)
            else:
                new[name] = value
        if errs:
            raise _invalid_properties(errs)
        self._derive(obj, new, incoming, creating=creating)
        self._check_unique(obj, new, current, record_id)
        return new

    def _derive(self, obj: ObjectType, props: dict[str, str], incoming: Mapping[str, Any], *, creating: bool) -> None:
        """Object-specific rules and calculated properties."""
        if obj.name == "deals":
            pipeline_id = props.get("pipeline") or "default"
            pipeline = self.pipelines["deals"].get(pipeline_id)
            if pipeline is None:
                raise _invalid_properties([PropertyValueError(
                    "pipeline", "INVALID_OPTION",
                    f"{pipeline_id} was not one of the allowed options: {', '.join(self.pipelines['deals'])}")])
            props["pipeline"] = pipeline_id
            stage_id = props.get("dealstage")
            if stage_id is None:
                if not creating:
                    raise _invalid_properties([PropertyValueError("dealstage", "REQUIRED", "dealstage cannot be cleared")])
                stage_id = pipeline.stages[0]["id"]
                props["dealstage"] = stage_id
            stage = pipeline.stage(stage_id)
            if stage is None:
                raise _invalid_properties([PropertyValueError(
                    "dealstage", "INVALID_OPTION",
                    f"{stage_id} was not one of the allowed options: {', '.join(s['id'] for s in pipeline.stages)}"
                    f" (pipeline {pipeline_id})")])
            prob = stage["metadata"]["probability"]
            props["hs_deal_stage_probability"] = prob
            props["hs_is_closed"] = stage["metadata"].get("isClosed", "false")
            props["hs_is_closed_won"] = "true" if Decimal(prob) == 1 else "false"
        elif obj.name == "line_items":
            product_id = props.get("hs_product_id")
            if product_id and "hs_product_id" in incoming:
                product = self.records["products"].get(product_id)
                if product is None or product.archived:
                    raise _invalid_properties([PropertyValueError(
                        "hs_product_id", "INVALID_OPTION", f"Product {product_id} does not exist")])
                for key in ("name", "price", "hs_sku", "description", "recurringbillingfrequency",
                            "hs_recurring_billing_period"):
                    if key not in props and key in product.props:
                        props[key] = product.props[key]
            price = Decimal(props.get("price", "0"))
            if price < 0:
                raise _invalid_properties([PropertyValueError("price", "INVALID_FLOAT", "price cannot be negative")])
            qty = Decimal(props.get("quantity", "1"))
            unit_discount = Decimal(props.get("discount", "0"))
            pct = Decimal(props.get("hs_discount_percentage", "0"))
            gross = qty * price
            discount_total = qty * unit_discount + (gross - qty * unit_discount) * pct / 100
            props["hs_total_discount"] = _fmt_decimal(discount_total)
            props["amount"] = f"{gross - discount_total:.2f}"

    def _check_unique(self, obj: ObjectType, new: Mapping[str, str], current: Mapping[str, str],
                      record_id: str | None) -> None:
        for name, pdef in self.properties[obj.name].items():
            if not pdef.has_unique_value or name == "hs_object_id" or pdef.archived:
                continue
            value = new.get(name)
            if value is None or value == current.get(name):
                continue
            owner = self._unique.get((obj.name, name), {}).get(value)
            if owner is not None and owner != record_id:
                if obj.name == "contacts" and name == "email":
                    raise HubSpotError(409, f"Contact already exists. Existing ID: {owner}", "CONFLICT")
                raise HubSpotError(
                    409, f"A {obj.singular} with {name} '{value}' already exists. Existing ID: {owner}", "CONFLICT",
                    context={"existingId": [owner], "propertyName": [name]},
                )

    def _index_unique(self, obj: ObjectType, rec: Record, old: Mapping[str, str]) -> None:
        for name, pdef in self.properties[obj.name].items():
            if not pdef.has_unique_value or name == "hs_object_id":
                continue
            idx = self._unique.setdefault((obj.name, name), {})
            before, after = old.get(name), (None if rec.archived else rec.props.get(name))
            if before is not None and idx.get(before) == rec.id and before != after:
                del idx[before]
            if after is not None:
                idx[after] = rec.id

    def _commit(self, obj: ObjectType, rec: Record, props: dict[str, str], now: int, *, creating: bool,
                emit: bool = True) -> None:
        old = {} if creating else rec.props
        if creating:
            props.setdefault("createdate", str(rec.created_ms))
        props["hs_object_id"] = rec.id
        props[obj.modified_property] = str(now)
        changed = [k for k, v in props.items() if old.get(k) != v]
        changed += [k for k in old if k not in props]
        self._unindex(obj, rec, old)
        rec.props = props
        rec.updated_ms = now
        for k in changed:
            rec.changed_ms[k] = now
        if not rec.archived:
            self._reindex(obj, rec)
        if self.index_lag_ms > 0:
            rec.versions = (rec.versions or []) + [(now, dict(props))]
            self._prune_versions(rec)
        self._index_unique(obj, rec, old)
        if not emit:
            return
        if creating:
            self._emit(obj, "creation", rec.id)
        else:
            for k in changed:
                if k not in (obj.modified_property,):
                    self._emit(obj, "propertyChange", rec.id, propertyName=k, propertyValue=props.get(k, ""))

    # ------------------------------------------------------------------ ordered indexes

    def _order_keys(self, obj: ObjectType, rec_id: str, props: Mapping[str, str]) -> list[tuple[str, tuple[int, int]]]:
        rid = int(rec_id)
        out = [("hs_object_id", (rid, rid))]
        mod = props.get(obj.modified_property)
        if mod is not None:
            try:
                out.append((obj.modified_property, (int(mod), rid)))
            except ValueError:
                pass
        return out

    def _unindex(self, obj: ObjectType, rec: Record, props: Mapping[str, str]) -> None:
        if rec.archived:
            return
        for name, key in self._order_keys(obj, rec.id, props):
            keys = self._order.get((obj.name, name))
            if keys:
                i = bisect.bisect_left(keys, key)
                if i < len(keys) and keys[i] == key:
                    del keys[i]

    def _reindex(self, obj: ObjectType, rec: Record) -> None:
        for name, key in self._order_keys(obj, rec.id, rec.props):
            keys = self._order.setdefault((obj.name, name), [])
            if not keys or keys[-1] < key:
                keys.append(key)
            else:
                i = bisect.bisect_left(keys, key)
                if i == len(keys) or keys[i] != key:
                    keys.insert(i, key)

    def _prune_versions(self, rec: Record) -> None:
        cutoff = self.clock.now_ms() - self.index_lag_ms
        versions = rec.versions or []
        while len(versions) > 1 and versions[1][0] <= cutoff:
            versions.pop(0)

    # ------------------------------------------------------------------ CRUD

    def create(self, object_type: str, properties: Mapping[str, Any],
               associations: list[dict[str, Any]] | None = None, *, now: int | None = None) -> Record:
        obj = self.object_type(object_type)
        with self.lock:
            now = self.clock.now_ms() if now is None else now
            assoc_plan = self._plan_inline_associations(obj, associations or [])
            rec = Record(id=self._new_id(), object_type=obj.name, props={}, created_ms=now, updated_ms=now)
            props = self._prepare(obj, {}, properties, record_id=rec.id, creating=True)
            if "createdate" in props:  # an explicit createdate (imports) also sets createdAt
                rec.created_ms = int(props["createdate"])
            self._commit(obj, rec, props, now, creating=True)
            self.records[obj.name][rec.id] = rec
            for to_obj, to_id, type_ids in assoc_plan:
                self._associate(obj.name, rec.id, to_obj.name, to_id, type_ids)
            return rec

    def _plan_inline_associations(self, obj: ObjectType, associations: list[dict[str, Any]]) -> list[tuple[ObjectType, str, list[int]]]:
        plan = []
        for a in associations:
            try:
                to_id = str(a["to"]["id"])
                types = a["types"]
                type_ids = [int(t["associationTypeId"]) for t in types]
            except (KeyError, TypeError, ValueError):
                raise validation("associations[].to.id and associations[].types[].associationTypeId are required") from None
            to_obj = self._target_type_for(obj.name, type_ids[0] if type_ids else -1)
            if to_obj is None:
                raise validation(f"association type id {type_ids} is not valid for {obj.name}",
                                 sub_category="crm.associations.INVALID_ASSOCIATION_TYPE")
            target = self.records[to_obj.name].get(to_id)
            if target is None or target.archived:
                raise validation(f"{to_obj.singular} {to_id} does not exist; cannot associate",
                                 sub_category="crm.associations.OBJECT_NOT_FOUND")
            plan.append((to_obj, to_id, type_ids))
        return plan

    def _target_type_for(self, from_type: str, type_id: int) -> ObjectType | None:
        for to_name in OBJECT_TYPES:
            if association_type(from_type, to_name, type_id):
                return OBJECT_TYPES[to_name]
        return None

    def read(self, object_type: str, record_id: str, *, id_property: str | None = None,
             archived: bool = False) -> Record:
        obj = self.object_type(object_type)
        with self.lock:
            if id_property and id_property != "hs_object_id":
                rid = self._lookup_unique(obj, id_property, str(record_id))
                if rid is None:
                    raise not_found("resource not found", context={"id": [str(record_id)]})
                record_id = rid
            return self._get(obj, str(record_id), archived=archived)

    def _require_unique(self, obj: ObjectType, id_property: str) -> None:
        pdef = self._pdef(obj, id_property)
        if pdef is None:
            raise validation(f'Property "{id_property}" does not exist', sub_category="crm.properties.PROPERTY_DOESNT_EXIST")
        if not pdef.has_unique_value:
            raise validation(f"{id_property} is not a unique property", sub_category="crm.objects.PROPERTY_NOT_UNIQUE",
                             context={"propertyName": [id_property]})

    def _lookup_unique(self, obj: ObjectType, id_property: str, value: str) -> str | None:
        self._require_unique(obj, id_property)
        if id_property == "email" and obj.name == "contacts":
            value = value.strip().lower()
        return self._unique.get((obj.name, id_property), {}).get(value)

    def update(self, object_type: str, record_id: str, properties: Mapping[str, Any], *,
               id_property: str | None = None, now: int | None = None) -> Record:
        obj = self.object_type(object_type)
        with self.lock:
            rec = self.read(obj.name, record_id, id_property=id_property)
            now = self.clock.now_ms() if now is None else now
            props = self._prepare(obj, rec.props, properties, record_id=rec.id, creating=False)
            self._commit(obj, rec, props, now, creating=False)
            return rec

    def archive(self, object_type: str, record_id: str, *, now: int | None = None) -> bool:
        """Archive (soft-delete). Returns False when the record did not exist or was archived already."""
        obj = self.object_type(object_type)
        with self.lock:
            rec = self.records[obj.name].get(str(record_id))
            if rec is None or rec.archived:
                return False
            now = self.clock.now_ms() if now is None else now
            old = dict(rec.props)
            self._unindex(obj, rec, old)
            rec.archived = True
            rec.archived_ms = now
            rec.updated_ms = now
            self._index_unique(obj, rec, old)
            self._emit(obj, "deletion", rec.id)
            if obj.name == "deals":  # a line item belongs to one parent: archive it with the deal
                for li_id in list(self._assoc.get(("deals", rec.id), {}).get("line_items", {})):
                    self.archive("line_items", li_id, now=now)
            return True

    def bulk_create(self, object_type: str, properties: Iterable[Mapping[str, Any]], *,
                    timestamp_ms: int | None = None, validate: bool = False) -> list[str]:
        """Create many records without HTTP (tests, seeding). All get ``timestamp_ms`` (default: now)
        as ``createdate`` and modification date. ``validate=False`` skips schema validation for speed
        (values are still stringified; unknown properties are kept)."""
        obj = self.object_type(object_type)
        with self.lock:
            now = self.clock.now_ms() if timestamp_ms is None else int(timestamp_ms)
            ids: list[str] = []
            table = self.records[obj.name]
            for raw in properties:
                rid = self._new_id()
                rec = Record(id=rid, object_type=obj.name, props={}, created_ms=now, updated_ms=now)
                if validate:
                    props = self._prepare(obj, {}, raw, record_id=rid, creating=True)
                else:
                    props = {k: v for k, v in ((k, _wire_str(v)) for k, v in raw.items()) if v not in (None, "")}
                    for k, v in list(props.items()):
                        pdef = self.properties[obj.name].get(k)
                        if pdef is not None and pdef.type == "datetime":
                            props[k] = str(parse_datetime_ms(v) or v)
                    if obj.name in ("deals", "line_items"):
                        self._derive(obj, props, raw, creating=True)
                props["createdate"] = props.get("createdate", str(now))
                props["hs_object_id"] = rid
                props[obj.modified_property] = str(now)
                rec.props = props
                if self.index_lag_ms > 0:
                    rec.versions = [(now, dict(props))]
                table[rid] = rec
                self._reindex(obj, rec)
                self._index_unique(obj, rec, {})
                ids.append(rid)
            return ids

    def bulk_associate(self, from_type: str, to_type: str, pairs: Iterable[tuple[str, str]],
                       type_ids: list[int] | None = None) -> None:
        """Associate many ``(from_id, to_id)`` pairs (default association type unless ``type_ids``)."""
        f, t = self.object_type(from_type), self.object_type(to_type)
        with self.lock:
            for from_id, to_id in pairs:
                self._associate(f.name, str(from_id), t.name, str(to_id), type_ids or [])

    def list_page(self, object_type: str, *, limit: int = 10, after: str | None = None,
                  archived: bool = False) -> tuple[list[Record], str | None]:
        """One page of records in id order; returns ``(records, next_after)``."""
        obj = self.object_type(object_type)
        with self.lock:
            start_id = decode_cursor(after) if after else 0
            out: list[Record] = []
            next_after = None
            table = self.records[obj.name]
            if archived or not self.use_indexes:  # rare: scan
                ordered = ((rid, rec) for rid, rec in sorted(table.items(), key=lambda kv: int(kv[0])))
            else:  # live records in id order from the cursor on (the id index holds only live ones)
                keys = self._order.get((obj.name, "hs_object_id"), [])
                i = bisect.bisect_left(keys, (start_id, -1))
                ordered = ((str(k[1]), table[str(k[1])]) for k in itertools.islice(keys, i, None))
            for rid, rec in ordered:
                if int(rid) < start_id or rec.archived != archived:
                    continue
                if len(out) == limit:
                    next_after = encode_cursor(int(rid))
                    break
                out.append(rec)
            return out, next_after

    # ------------------------------------------------------------------ batch

    def batch_read(self, object_type: str, inputs: list[dict[str, Any]], *, id_property: str | None,
                   archived: bool = False) -> tuple[list[Record], list[dict[str, Any]]]:
        obj = self.object_type(object_type)
        with self.lock:
            if id_property and id_property != "hs_object_id":
                self._require_unique(obj, id_property)
            found: list[Record] = []
            missing: list[str] = []
            for item in inputs:
                rid = str(item.get("id", "")) if isinstance(item, dict) else ""
                try:
                    found.append(self.read(obj.name, rid, id_property=id_property, archived=archived))
                except HubSpotError:
                    missing.append(rid)
            errors = []
            if missing:
                errors.append(standard_error(
                    f"Could not get some {obj.singular.upper()} objects, they may be deleted or not exist. "
                    "Check that ids are valid.",
                    "OBJECT_NOT_FOUND", context={"ids": missing},
                ))
            return found, errors

    def batch_write(self, object_type: str, mode: str, inputs: list[dict[str, Any]]) -> tuple[list[tuple[Record, bool]], list[dict[str, Any]]]:
        """``mode`` ∈ create / update / upsert. Each input succeeds or fails on its own (207 on partial
        failure); all writes of one batch share one timestamp. Returns ``([(record, new)], errors)``."""
        obj = self.object_type(object_type)
        with self.lock:
            now = self.clock.now_ms()
            if mode == "upsert":
                id_props = {i.get("idProperty") for i in inputs if isinstance(i, dict)}
                for ip in id_props:
                    if not ip:
                        raise validation("idProperty is required for upsert")
                    if ip != "hs_object_id":
                        self._require_unique(obj, ip)
            results: list[tuple[Record, bool]] = []
            errors: list[dict[str, Any]] = []
            for n, item in enumerate(inputs):
                trace = item.get("objectWriteTraceId") if isinstance(item, dict) else None
                ctx = {"objectWriteTraceId": [str(trace)]} if trace is not None else {}
                try:
                    if not isinstance(item, dict):
                        raise validation(f"inputs[{n}] must be an object")
                    props = item.get("properties", {})
                    if mode == "create":
                        results.append((self.create(obj.name, props, item.get("associations"), now=now), True))
                    elif mode == "update":
                        if "id" not in item:
                            raise validation(f"inputs[{n}].id is required")
                        results.append((self.update(obj.name, str(item["id"]), props,
                                                    id_property=item.get("idProperty"), now=now), False))
                    else:
                        results.append(self._upsert_one(obj, item, props, now))
                except HubSpotError as e:
                    if e.status == 404:
                        ctx = {**ctx, "ids": [str(item.get("id"))]}
                    errors.append(e.as_standard_error(ctx))
            return results, errors

    def _upsert_one(self, obj: ObjectType, item: dict[str, Any], props: Mapping[str, Any], now: int) -> tuple[Record, bool]:
        if "id" not in item:
            raise validation("id is required for upsert")
        id_property = item["idProperty"]
        value = str(item["id"])
        rid = value if id_property == "hs_object_id" else self._lookup_unique(obj, id_property, value)
        if rid is not None and rid in self.records[obj.name] and not self.records[obj.name][rid].archived:
            return self.update(obj.name, rid, props, now=now), False
        if id_property == "hs_object_id":
            raise not_found(f"{obj.singular} {value} does not exist", context={"id": [value]})
        return self.create(obj.name, {**props, id_property: value}, now=now), True

    # ------------------------------------------------------------------ merge

    def merge(self, object_type: str, primary_id: str, merge_id: str) -> Record:
        """Merge ``merge_id`` into ``primary_id``. Primary values win; empty ones are filled from the
        merged record; associations of both move to the survivor. By default the survivor gets a new id
        (``preserve_merge_id`` keeps the primary id); the old ids stop resolving (404) and are listed in
        ``hs_merged_object_ids``."""
        obj = self.object_type(object_type)
        if not obj.mergeable:
            raise validation(f"{obj.name} cannot be merged")
        with self.lock:
            primary_id, merge_id = str(primary_id), str(merge_id)
            if primary_id == merge_id:
                raise validation("Cannot merge an object with itself")
            primary = self._get(obj, primary_id)
            other = self._get(obj, merge_id)
            now = self.clock.now_ms()
            props = {**other.props, **primary.props}
            merged_ids = [x for x in (primary.props.get("hs_merged_object_ids", "") + ";" +
                                      other.props.get("hs_merged_object_ids", "")).split(";") if x]
            merged_ids.append(merge_id)
            new_id = primary_id if self.preserve_merge_id else self._new_id()
            if new_id != primary_id:
                merged_ids.append(primary_id)
            props["hs_merged_object_ids"] = ";".join(merged_ids)
            links = {
                old: {t: dict(m) for t, m in self._assoc.get((obj.name, old), {}).items()}
                for old in (primary_id, merge_id)
            }
            for old in (merge_id, primary_id):
                self._drop_record(obj, old)
            rec = Record(id=new_id, object_type=obj.name, props={}, created_ms=primary.created_ms, updated_ms=now)
            props["createdate"] = primary.props.get("createdate", str(primary.created_ms))
            self._commit(obj, rec, props, now, creating=False, emit=False)
            rec.changed_ms = {**other.changed_ms, **primary.changed_ms, obj.modified_property: now}
            self.records[obj.name][new_id] = rec
            # primary's associations first so its primary labels win
            for old in (primary_id, merge_id):
                for to_name, targets in links[old].items():
                    for to_id, type_ids in targets.items():
                        self._associate(obj.name, new_id, to_name, to_id, sorted(type_ids), replace_primary=False)
            for old in (primary_id, merge_id):
                if old != new_id:
                    self.merged_into[(obj.name, old)] = new_id
            self._emit(obj, "merge", new_id, mergedObjectIds=[int(primary_id), int(merge_id)],
                       primaryObjectId=int(primary_id), newObjectId=int(new_id))
            return rec

    def _drop_record(self, obj: ObjectType, record_id: str) -> None:
        rec = self.records[obj.name].pop(record_id)
        old = dict(rec.props)
        self._unindex(obj, rec, old)
        rec.archived = True
        self._index_unique(obj, rec, old)
        for to_name, targets in self._assoc.pop((obj.name, record_id), {}).items():
            for to_id in targets:
                back = self._assoc.get((to_name, to_id), {}).get(obj.name, {})
                back.pop(record_id, None)

    # ------------------------------------------------------------------ associations

    def _associate(self, from_type: str, from_id: str, to_type: str, to_id: str, type_ids: list[int],
                   *, replace_primary: bool = True) -> list[AssociationType]:
        """Link both directions. ``type_ids`` empty = the default (unlabeled) type. Labeled types always
        also carry the unlabeled one. Returns the association types added on the from side."""
        default = default_association(from_type, to_type)
        if default is None:
            raise validation(f"Associations from {from_type} to {to_type} are not supported by the sandbox",
                             sub_category="crm.associations.INVALID_OBJECT_TYPE")
        wanted: list[AssociationType] = [default]
        for tid in type_ids:
            a = association_type(from_type, to_type, int(tid))
            if a is None:
                raise validation(f"{tid} is not a valid association type id between {from_type} and {to_type}",
                                 sub_category="crm.associations.INVALID_ASSOCIATION_TYPE")
            if a not in wanted:
                wanted.append(a)
        if from_type == "line_items" and to_type == "deals" or from_type == "deals" and to_type == "line_items":
            li_id, deal_id = (from_id, to_id) if from_type == "line_items" else (to_id, from_id)
            parents = [d for d in self._assoc.get(("line_items", li_id), {}).get("deals", {}) if d != deal_id]
            if parents:
                raise validation(f"Line item {li_id} is already associated with deal {parents[0]}; a line item "
                                 "belongs to one parent", sub_category="crm.associations.LINE_ITEM_HAS_PARENT")
        fwd = self._assoc.setdefault((from_type, from_id), {}).setdefault(to_type, {}).setdefault(to_id, set())
        back = self._assoc.setdefault((to_type, to_id), {}).setdefault(from_type, {}).setdefault(from_id, set())
        for a in wanted:
            if a.label == "Primary":
                # one primary per record: drop the primary label from any other target
                for other_id, ids in self._assoc[(from_type, from_id)][to_type].items():
                    if other_id != to_id and a.type_id in ids:
                        if not replace_primary:
                            break
                        ids.discard(a.type_id)
                        self._assoc[(to_type, other_id)][from_type][from_id].discard(a.inverse_id)
                else:
                    fwd.add(a.type_id)
                    back.add(a.inverse_id)
                continue
            fwd.add(a.type_id)
            back.add(a.inverse_id)
        obj = OBJECT_TYPES[from_type]
        self._emit(obj, "associationChange", from_id, toObjectId=int(to_id), associationRemoved=False,
                   associationType=f"{obj.singular.upper()}_TO_{OBJECT_TYPES[to_type].singular.upper()}")
        return wanted

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str, type_ids: list[int]) -> list[AssociationType]:
        f, t = self.object_type(from_type), self.object_type(to_type)
        with self.lock:
            self._get(f, str(from_id))
            self._get(t, str(to_id))
            return self._associate(f.name, str(from_id), t.name, str(to_id), type_ids)

    def unassociate(self, from_type: str, from_id: str, to_type: str, to_id: str,
                    type_ids: list[int] | None = None) -> None:
        """Remove all associations of the pair (or only ``type_ids``; removing the unlabeled type removes all)."""
        f, t = self.object_type(from_type), self.object_type(to_type)
        with self.lock:
            from_id, to_id = str(from_id), str(to_id)
            fwd = self._assoc.get((f.name, from_id), {}).get(t.name, {})
            if to_id not in fwd:
                return
            default = default_association(f.name, t.name)
            if type_ids is None or (default and default.type_id in type_ids):
                fwd.pop(to_id, None)
                self._assoc.get((t.name, to_id), {}).get(f.name, {}).pop(from_id, None)
            else:
                for tid in type_ids:
                    a = association_type(f.name, t.name, tid)
                    if a:
                        fwd[to_id].discard(a.type_id)
                        self._assoc[(t.name, to_id)][f.name][from_id].discard(a.inverse_id)
            self._emit(f, "associationChange", from_id, toObjectId=int(to_id), associationRemoved=True,
                       associationType=f"{f.singular.upper()}_TO_{t.singular.upper()}")

    def associations_of(self, from_type: str, from_id: str, to_type: str) -> list[tuple[str, list[AssociationType]]]:
        """``[(to_id, [types])]`` in id order, archived targets excluded."""
        f, t = self.object_type(from_type), self.object_type(to_type)
        with self.lock:
            targets = self._assoc.get((f.name, str(from_id)), {}).get(t.name, {})
            out = []
            for to_id in sorted(targets, key=int):
                target = self.records[t.name].get(to_id)
                if target is None or target.archived or not targets[to_id]:
                    continue
                types = [a for tid in sorted(targets[to_id]) if (a := association_type(f.name, t.name, tid))]
                out.append((to_id, types))
            return out

    def record_exists(self, object_type: str, record_id: str) -> bool:
        obj = self.object_type(object_type)
        rec = self.records[obj.name].get(str(record_id))
        return rec is not None and not rec.archived

    # ------------------------------------------------------------------ JSON rendering

    def record_json(self, rec: Record, properties: list[str] | None = None, *,
                    associations: list[str] | None = None, with_history: list[str] | None = None,
                    view: Mapping[str, str] | None = None) -> dict[str, Any]:
        obj = OBJECT_TYPES[rec.object_type]
        source = rec.props if view is None else view
        names = list(obj.default_properties) if not properties else list(properties)
        for always in ("createdate", obj.modified_property, "hs_object_id"):
            if always not in names:
                names.append(always)
        props: dict[str, str | None] = {}
        for name in names:
            if name in props:
                continue
            if name in source:
                props[name] = self.render(obj, name, source[name])
            elif self._pdef(obj, name) is not None:
                props[name] = None
        out: dict[str, Any] = {
            "id": rec.id,
            "properties": props,
            "createdAt": iso_ms(rec.created_ms),
            "updatedAt": iso_ms(rec.updated_ms),
            "archived": rec.archived,
        }
        if rec.archived and rec.archived_ms is not None:
            out["archivedAt"] = iso_ms(rec.archived_ms)
        if with_history:
            hist: dict[str, list[dict[str, Any]]] = {}
            for name in with_history:
                if name in source:
                    hist[name] = [{
                        "value": self.render(obj, name, source[name]),
                        "timestamp": iso_ms(rec.changed_ms.get(name, rec.created_ms)),
                        "sourceType": "API",
                        "sourceId": "renkei-sandbox",
                    }]
            out["propertiesWithHistory"] = hist
        if associations:
            assoc_out: dict[str, Any] = {}
            for name in associations:
                to = resolve_object_type(name)
                if to is None:
                    continue
                items = [
                    {"id": to_id, "type": v3_association_type_name(a)}
                    for to_id, types in self.associations_of(obj.name, rec.id, to.name)
                    for a in types
                ]
                if items:
                    assoc_out[name] = {"results": items}
            if assoc_out:
                out["associations"] = assoc_out
        return out

    # ------------------------------------------------------------------ search

    def search(self, object_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
        obj = self.object_type(object_type)
        if not isinstance(body, Mapping):
            raise validation("Invalid input JSON: the search body must be an object")
        groups = body.get("filterGroups") or []
        sorts = body.get("sorts") or []
        query = body.get("query")
        limit = body.get("limit", 10)
        after = body.get("after")
        properties = body.get("properties") or None
        if isinstance(properties, str):
            properties = [p.strip() for p in properties.split(",") if p.strip()]
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            raise validation("filterGroups must be a list of objects")
        if len(groups) > SEARCH_MAX_GROUPS:
            raise validation(f"Too many filter groups ({len(groups)}). The maximum number of filter groups is "
                             f"{SEARCH_MAX_GROUPS}.", sub_category="crm.search.TOO_MANY_FILTER_GROUPS")
        total_filters = 0
        for g in groups:
            filters = g.get("filters") or []
            if len(filters) > SEARCH_MAX_FILTERS_PER_GROUP:
                raise validation(f"Too many filters in a filter group ({len(filters)}). The maximum is "
                                 f"{SEARCH_MAX_FILTERS_PER_GROUP}.", sub_category="crm.search.TOO_MANY_FILTERS")
            total_filters += len(filters)
        if total_filters > SEARCH_MAX_FILTERS:
            raise validation(f"Too many filters ({total_filters}). The maximum number of filters across all "
                             f"filter groups is {SEARCH_MAX_FILTERS}.", sub_category="crm.search.TOO_MANY_FILTERS")
        try:
            limit = int(limit)
        except (TypeError, ValueError):
            raise validation(f"limit must be an integer, got {limit!r}") from None
        if limit < 1 or limit > SEARCH_MAX_LIMIT:
            raise validation(f"limit must be between 1 and {SEARCH_MAX_LIMIT}, got {limit}")
        try:
            offset = int(after) if after not in (None, "") else 0
        except (TypeError, ValueError):
            raise validation(f"after must be an integer formatted as a string, got {after!r}") from None
        if offset < 0:
            raise validation("after cannot be negative")
        if offset + limit > SEARCH_RESULT_CAP:
            raise validation(
                f"The search endpoints are limited to {SEARCH_RESULT_CAP} total results for any given query; "
                f"after={offset} with limit={limit} pages beyond that.",
                sub_category="crm.search.RESULT_LIMIT_EXCEEDED",
            )
        if query is not None and (not isinstance(query, str) or len(query) > SEARCH_MAX_QUERY_CHARS):
            raise validation(f"query must be a string of at most {SEARCH_MAX_QUERY_CHARS} characters")
        if isinstance(sorts, (str, dict)):
            sorts = [sorts]
        if len(sorts) > 1:
            raise validation("Only one sort is supported per search request", sub_category="crm.search.TOO_MANY_SORTS")
        compiled = [[self._compile_filter(obj, f) for f in (g.get("filters") or [])] for g in groups]
        sort_prop, descending = self._parse_sort(obj, sorts[0]) if sorts else ("createdate", False)

        with self.lock:
            cutoff = self.clock.now_ms() - self.index_lag_ms if self.index_lag_ms > 0 else None
            tokens = _tokens(query) if query else []
            if self.use_indexes and cutoff is None and (obj.name, sort_prop) in self._order and len(groups) <= 1:
                found = self._indexed_search(obj, sort_prop, descending, groups, compiled, tokens, offset + limit)
                if found is not None:
                    total, page = found
                    page = page[offset: offset + limit]
                    out = {"total": total,
                           "results": [self.record_json(rec, properties, view=rec.props) for rec in page]}
                    if offset + limit < total:
                        out["paging"] = {"next": {"after": str(offset + limit)}}
                    return out
            hits: list[tuple[Record, Mapping[str, str]]] = []
            for rec in self.records[obj.name].values():
                if rec.archived:
                    continue
                view = rec.search_view(cutoff)
                if view is None:
                    continue
                if compiled and not _matches(compiled, rec, view):
                    continue
                if tokens and not self._query_match(obj, view, tokens):
                    continue
                hits.append((rec, view))
            pdef = self._pdef(obj, sort_prop)
            numeric = pdef is not None and (pdef.type in _NUMERIC_TYPES or sort_prop == "hs_object_id")

            def key(item: tuple[Record, Mapping[str, str]]) -> tuple:
                rec, view = item
                raw = view.get(sort_prop)
                if raw is None:
                    return (1, 0, int(rec.id))
                v: Any = _sort_value(raw, pdef) if numeric else raw.lower()
                return (0, v, int(rec.id))

            hits.sort(key=key)
            if descending:
                present = [h for h in hits if h[1].get(sort_prop) is not None]
                missing = [h for h in hits if h[1].get(sort_prop) is None]
                present.sort(key=lambda h: (_sort_value(h[1][sort_prop], pdef) if numeric else h[1][sort_prop].lower(),
                                            -int(h[0].id)), reverse=True)
                hits = present + missing
            total = len(hits)
            page = hits[offset: offset + limit]
            out: dict[str, Any] = {
                "total": total,
                "results": [self.record_json(rec, properties, view=view) for rec, view in page],
            }
            if offset + limit < total:
                out["paging"] = {"next": {"after": str(offset + limit)}}
            return out

    def _indexed_search(self, obj: ObjectType, sort_prop: str, descending: bool, groups: list, compiled: list,
                        tokens: list[str], want: int) -> tuple[int, list[Record]] | None:
        """A search sorted by ``hs_object_id`` or the modification date, with at most one filter group,
        read from the ordered index: only the slice the group's range filters on the sort property allow
        is visited, in sort order; every filter still runs on every record visited, so the results are the
        scan's. ``total`` is the slice's length when the range filters are all there is, else counted."""
        keys = self._order[(obj.name, sort_prop)]
        lo, hi = 0, len(keys)
        range_only = not tokens
        raw = (groups[0].get("filters") or []) if groups else []
        pdef = self._pdef(obj, sort_prop)
        for flt in raw:
            op = str(flt.get("operator", "EQ")).upper()
            if flt.get("propertyName") != sort_prop or op not in ("GT", "GTE", "LT", "LTE", "EQ", "BETWEEN"):
                range_only = False
                continue
            try:
                v = _sort_value(str(_wire_str(flt.get("value"))), pdef)
                hv = _sort_value(str(_wire_str(flt.get("highValue"))), pdef) if op == "BETWEEN" else v
            except Exception:  # noqa: BLE001 - unusual values: let the scan decide
                return None
            if op == "GT":
                lo = max(lo, bisect.bisect_right(keys, (v, float("inf"))))
            elif op in ("GTE", "EQ", "BETWEEN"):
                lo = max(lo, bisect.bisect_left(keys, (v, float("-inf"))))
            if op == "LT":
                hi = min(hi, bisect.bisect_left(keys, (v, float("-inf"))))
            elif op in ("LTE", "EQ", "BETWEEN"):
                hi = min(hi, bisect.bisect_right(keys, (hv, float("inf"))))
        if hi <= lo:
            return 0, []
        table = self.records[obj.name]
        group = compiled[0] if compiled else []
        span = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
        hits: list[tuple[int, int, Record]] = []
        count = 0
        last = None
        for i in span:
            v, rid = keys[i]
            if len(hits) >= want and range_only and v != last:
                break
            rec = table[str(rid)]
            view = rec.props
            if any(not pred(rec, view) for pred in group):
                continue
            if tokens and not self._query_match(obj, view, tokens):
                continue
            count += 1
            if len(hits) < want or v == last:
                hits.append((v, rid, rec))
                last = v
        if descending:  # the scan orders equal values by id ascending in both directions
            hits.sort(key=lambda h: (-h[0], h[1]))
        total = hi - lo if range_only else count
        return total, [h[2] for h in hits]

    def _parse_sort(self, obj: ObjectType, sort: Any) -> tuple[str, bool]:
        if isinstance(sort, str):
            name, desc = (sort[1:], True) if sort.startswith("-") else (sort, False)
        elif isinstance(sort, dict):
            name = sort.get("propertyName")
            direction = str(sort.get("direction", "ASCENDING")).upper()
            if direction not in ("ASCENDING", "DESCENDING"):
                raise validation(f"sort direction must be ASCENDING or DESCENDING, got {direction}")
            desc = direction == "DESCENDING"
        else:
            raise validation("sorts must be a list of {propertyName, direction}")
        if not name or self._pdef(obj, name) is None:
            raise validation(f"Unable to sort by property {name!r}: it does not exist on {obj.name}")
        return name, desc

    def _query_match(self, obj: ObjectType, view: Mapping[str, str], tokens: list[str]) -> bool:
        fields = [view.get(p, "") for p in obj.searchable]
        words = {w for f in fields for w in _tokens(f)}
        blob = " ".join(fields).lower()
        # every query token must prefix-match a word or appear in a searchable value
        return all(any(w.startswith(t) for w in words) or t in blob for t in tokens)

    def _compile_filter(self, obj: ObjectType, flt: Any):
        if not isinstance(flt, dict):
            raise validation("filters must be objects")
        name = flt.get("propertyName")
        op = str(flt.get("operator", "EQ")).upper()
        if op not in OPERATORS:
            raise validation(f"Unknown filter operator {op}. Valid operators: {', '.join(OPERATORS)}")
        if not name:
            raise validation("filter.propertyName is required")
        if name.startswith("associations."):
            return self._association_filter(obj, name, op, flt)
        pdef = self._pdef(obj, name)
        if pdef is None:
            raise validation(f"There was a problem with the request: property {name!r} does not exist on {obj.name}",
                             sub_category="crm.search.PROPERTY_DOESNT_EXIST")
        kind = "numeric" if (pdef.type in _NUMERIC_TYPES or name == "hs_object_id") else (
            "enum" if pdef.type in ("enumeration", "bool") else "string")
        needs_value = op not in ("HAS_PROPERTY", "NOT_HAS_PROPERTY", "IN", "NOT_IN")
        value = flt.get("value")
        if needs_value and value is None:
            raise validation(f"filter on {name} with operator {op} requires a value")
        if op == "BETWEEN" and flt.get("highValue") is None:
            raise validation(f"BETWEEN filter on {name} requires highValue")
        if op in ("IN", "NOT_IN") and not isinstance(flt.get("values"), list):
            raise validation(f"{op} filter on {name} requires values[]")

        def num(v: Any) -> int | Decimal:
            s = _wire_str(v) or ""
            if pdef.type in ("datetime", "date"):
                ms = parse_datetime_ms(s)
                if ms is None:
                    raise validation(f"{s!r} is not a valid date value for {name} (epoch milliseconds expected)")
                return ms
            try:
                d = Decimal(s.strip())
            except InvalidOperation:
                raise validation(f"{s!r} is not a valid number for {name}") from None
            # ints compare with ints far faster than with Decimals (search scans every record)
            return int(d) if d == d.to_integral_value() else d

        if op == "HAS_PROPERTY":
            return lambda rec, view: name in view
        if op == "NOT_HAS_PROPERTY":
            return lambda rec, view: name not in view
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            pattern = str(_wire_str(value)).lower()

            def contains(rec: Record, view: Mapping[str, str]) -> bool:
                raw = view.get(name)
                if raw is None:
                    return False
                low = raw.lower()
                if "*" in pattern:
                    return fnmatchcase(low, pattern) or any(fnmatchcase(t, pattern) for t in _tokens(low))
                return pattern in _tokens(low) or pattern == low

            if op == "CONTAINS_TOKEN":
                return contains
            return lambda rec, view: not contains(rec, view)
        if kind == "numeric":
            if op in ("IN", "NOT_IN"):
                targets = {num(v) for v in flt["values"]}
                if op == "IN":
                    return lambda rec, view: name in view and _sort_value(view[name], pdef) in targets
                return lambda rec, view: name not in view or _sort_value(view[name], pdef) not in targets
            lo = num(value)
            hi = num(flt.get("highValue")) if op == "BETWEEN" else lo
            if op == "BETWEEN":
                def between(rec: Record, view: Mapping[str, str]) -> bool:
                    raw = view.get(name)
                    return raw is not None and lo <= _sort_value(raw, pdef) <= hi

                return between
            compare = _COMPARATORS[op]
            if op == "NEQ":
                return lambda rec, view: name not in view or compare(_sort_value(view[name], pdef), lo)

            def numeric(rec: Record, view: Mapping[str, str]) -> bool:
                raw = view.get(name)
                return raw is not None and compare(_sort_value(raw, pdef), lo)

            return numeric
        # string / enumeration / bool
        exact = kind == "enum"

        def norm(v: Any) -> str:
            s = _wire_str(v) or ""
            if pdef.type == "bool":
                return s.lower()
            return s if exact else s.lower()

        if op in ("IN", "NOT_IN"):
            # HubSpot: IN values for string properties must be lower case (an upper-case value never
            # matches); enumeration values are compared case-sensitively.
            targets = {(_wire_str(v) or "") for v in flt["values"]}
            if op == "IN":
                return lambda rec, view: name in view and norm(view[name]) in targets
            return lambda rec, view: name not in view or norm(view[name]) not in targets
        lo_s = norm(value)
        hi_s = norm(flt.get("highValue")) if op == "BETWEEN" else lo_s
        scmp = {
            "EQ": lambda x: x == lo_s, "NEQ": lambda x: x != lo_s, "LT": lambda x: x < lo_s,
            "LTE": lambda x: x <= lo_s, "GT": lambda x: x > lo_s, "GTE": lambda x: x >= lo_s,
            "BETWEEN": lambda x: lo_s <= x <= hi_s,
        }[op]
        if op == "NEQ":
            return lambda rec, view: name not in view or scmp(norm(view[name]))
        return lambda rec, view: name in view and scmp(norm(view[name]))

    def _association_filter(self, obj: ObjectType, name: str, op: str, flt: dict[str, Any]):
        to = resolve_object_type(name.split(".", 1)[1])
        if to is None:
            raise validation(f"Unknown association pseudo-property {name}")
        if op == "EQ":
            ids = {str(flt.get("value"))}
        elif op == "IN":
            ids = {str(v) for v in flt.get("values") or []}
        else:
            raise validation(f"Operator {op} is not supported on {name}; use EQ or IN")

        def pred(rec: Record, view: Mapping[str, str]) -> bool:
            targets = self._assoc.get((obj.name, rec.id), {}).get(to.name, {})
            return any(i in targets and targets[i] for i in ids)

        return pred

    # ------------------------------------------------------------------ properties API

    def property_json(self, pdef: PropertyDef) -> dict[str, Any]:
        return {
            "name": pdef.name,
            "label": pdef.label,
            "type": pdef.type,
            "fieldType": pdef.field_type,
            "description": pdef.description,
            "groupName": pdef.group_name,
            "options": [dict(o) for o in pdef.options],
            "displayOrder": pdef.display_order,
            "calculated": pdef.calculated,
            "externalOptions": False,
            "hasUniqueValue": pdef.has_unique_value,
            "hidden": pdef.hidden,
            "hubspotDefined": pdef.hubspot_defined,
            "formField": pdef.form_field,
            "modificationMetadata": {
                "archivable": not pdef.hubspot_defined,
                "readOnlyDefinition": pdef.hubspot_defined,
                "readOnlyValue": pdef.read_only_value,
            },
            "createdAt": iso_ms(pdef.created_ms) if pdef.created_ms else None,
            "updatedAt": iso_ms(pdef.updated_ms) if pdef.updated_ms else None,
            "archived": pdef.archived,
        } | ({"archivedAt": iso_ms(pdef.updated_ms)} if pdef.archived else {})

    def create_property(self, object_type: str, body: Mapping[str, Any], *, hubspot_defined: bool = False) -> PropertyDef:
        obj = self.object_type(object_type)
        if not isinstance(body, Mapping):
            raise validation("property definition must be an object")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise validation(f"Missing required field(s): {', '.join(missing)}",
                             errors=[{"message": f"{k} is required", "code": "REQUIRED_FIELD", "in": k} for k in missing])
        name = str(body["name"])
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise validation(f"Property name {name!r} must start with a lower-case letter and contain only "
                             "lower-case letters, digits and underscores")
        if body["type"] not in PROPERTY_TYPES:
            raise validation(f"type must be one of {', '.join(PROPERTY_TYPES)}")
        if body["fieldType"] not in FIELD_TYPES:
            raise validation(f"fieldType must be one of {', '.join(FIELD_TYPES)}")
        options = body.get("options") or []
        if body["type"] == "enumeration" and body["fieldType"] != "booleancheckbox" and not options:
            raise validation("options are required for an enumeration property")
        with self.lock:
            if body["groupName"] not in self.groups[obj.name]:
                raise validation(f"Property group {body['groupName']!r} does not exist on {obj.name}")
            existing = self.properties[obj.name].get(name)
            if existing is not None and not existing.archived:
                raise HubSpotError(409, f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS",
                                   sub_category="crm.properties.PROPERTY_ALREADY_EXISTS",
                                   context={"name": [name]})
            now = self.clock.now_ms()
            pdef = PropertyDef(
                name=name, label=str(body["label"]), type=str(body["type"]), field_type=str(body["fieldType"]),
                group_name=str(body["groupName"]), description=str(body.get("description") or ""),
                options=[{"label": o.get("label", ""), "value": o.get("value", ""),
                          "displayOrder": o.get("displayOrder", i), "hidden": bool(o.get("hidden", False)),
                          "description": o.get("description", "")} for i, o in enumerate(options)],
                display_order=int(body.get("displayOrder", -1)), has_unique_value=bool(body.get("hasUniqueValue", False)),
                hidden=bool(body.get("hidden", False)), form_field=bool(body.get("formField", False)),
                hubspot_defined=hubspot_defined, created_ms=now, updated_ms=now,
            )
            self.properties[obj.name][name] = pdef
            return pdef

    def update_property(self, object_type: str, name: str, body: Mapping[str, Any]) -> PropertyDef:
        obj = self.object_type(object_type)
        with self.lock:
            pdef = self._pdef(obj, name)
            if pdef is None:
                raise not_found(f"Unable to find property {name} on {obj.name}")
            if pdef.hubspot_defined and set(body) - {"label", "description", "options", "displayOrder", "hidden", "groupName"}:
                raise validation(f"{name} is a HubSpot-defined property; only label/description/options can change")
            for key, attr in (("label", "label"), ("description", "description"), ("groupName", "group_name"),
                              ("displayOrder", "display_order"), ("hidden", "hidden"), ("type", "type"),
                              ("fieldType", "field_type")):
                if key in body:
                    setattr(pdef, attr, body[key])
            if "options" in body:
                pdef.options = [dict(o) for o in body["options"]]
            pdef.updated_ms = self.clock.now_ms()
            return pdef

    def archive_property(self, object_type: str, name: str) -> None:
        obj = self.object_type(object_type)
        with self.lock:
            pdef = self._pdef(obj, name)
            if pdef is None:
                raise not_found(f"Unable to find property {name} on {obj.name}")
            if pdef.hubspot_defined:
                raise validation(f"{name} is a HubSpot-defined property and cannot be archived")
            pdef.archived = True
            pdef.updated_ms = self.clock.now_ms()

    def get_property(self, object_type: str, name: str, *, archived: bool = False) -> PropertyDef:
        obj = self.object_type(object_type)
        pdef = self.properties[obj.name].get(name)
        if pdef is None or pdef.archived != archived:
            raise not_found(f"Unable to find property {name} on {obj.name}", context={"name": [name]})
        return pdef

    def create_group(self, object_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
        obj = self.object_type(object_type)
        if not isinstance(body, Mapping) or not body.get("name") or not body.get("label"):
            raise validation("name and label are required for a property group")
        with self.lock:
            name = str(body["name"])
            if name in self.groups[obj.name]:
                raise HubSpotError(409, f"Property group '{name}' already exists.", "OBJECT_ALREADY_EXISTS",
                                   sub_category="crm.properties.GROUP_ALREADY_EXISTS")
            group = {"name": name, "label": str(body["label"]), "displayOrder": int(body.get("displayOrder", -1)),
                     "archived": False}
            self.groups[obj.name][name] = group
            return dict(group)

    # ------------------------------------------------------------------ pipelines / owners

    def add_pipeline(self, object_type: str, pipeline_id: str, label: str,
                     stages: list[tuple[str, str, str]]) -> Pipeline:
        """``stages``: ``(id, label, probability)``; probability 0.0 / 1.0 stages are closed."""
        with self.lock:
            table = self.pipelines.setdefault(object_type, {})
            p = Pipeline(
                id=pipeline_id, label=label, display_order=len(table), created_ms=self.clock.now_ms(),
                stages=[
                    {"id": sid, "label": slabel, "displayOrder": i,
                     "metadata": {"isClosed": "true" if Decimal(prob) in (0, 1) else "false", "probability": prob}}
                    for i, (sid, slabel, prob) in enumerate(stages)
                ],
            )
            table[pipeline_id] = p
            self.properties["deals"]["pipeline"].options = [
                {"label": q.label, "value": q.id, "displayOrder": q.display_order, "hidden": False, "description": ""}
                for q in self.pipelines["deals"].values()
            ]
            return p

    def add_owner(self, email: str, first_name: str, last_name: str) -> dict[str, Any]:
        with self.lock:
            n = len(self.owners) + 1
            now = iso_ms(self.clock.now_ms())
            owner = {
                "id": str(70_000_000 + n),
                "email": email,
                "firstName": first_name,
                "lastName": last_name,
                "userId": 9_000_000 + n,
                "userIdIncludingInactive": 9_000_000 + n,
                "type": "PERSON",
                "teams": [],
                "createdAt": now,
                "updatedAt": now,
                "archived": False,
            }
            self.owners[owner["id"]] = owner
            return owner


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------


def _sort_value(raw: str, pdef: PropertyDef | None) -> int | Decimal:
    """Numeric value of a stored number / datetime (epoch ms) / date (``YYYY-MM-DD`` → epoch ms).
    Plain ints take the fast path (search compares thousands of these per request)."""
    try:
        return int(raw)
    except ValueError:
        pass
    if pdef is not None and pdef.type == "date" and "-" in raw:
        return _date_ms(raw)
    try:
        return Decimal(raw)
    except InvalidOperation:
        ms = parse_datetime_ms(raw)
        return ms if ms is not None else 0


_COMPARATORS = {"EQ": operator.eq, "NEQ": operator.ne, "LT": operator.lt, "LTE": operator.le, "GT": operator.gt,
                "GTE": operator.ge}


def _matches(groups: list[list[Any]], rec: Record, view: Mapping[str, str]) -> bool:
    """OR across filter groups, AND within one (plain loops: this runs for every record per search)."""
    for group in groups:
        for pred in group:
            if not pred(rec, view):
                break
        else:
            return True
    return False


def _tokens(text: str) -> list[str]:
    return [t for t in _TOKEN_SPLIT.split(text.lower()) if t]


def encode_cursor(next_id: int) -> str:
    """Opaque list cursor (HubSpot's are base64-ish strings)."""
    import base64

    return base64.urlsafe_b64encode(f"{next_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    import base64

    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return int(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise validation(f"Invalid paging cursor after={cursor!r}") from None
