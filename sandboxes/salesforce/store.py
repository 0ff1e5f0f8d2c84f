"""State of the Salesforce sandbox org: records per object, ids, audit fields, the rules Salesforce enforces
on writes (required fields, read-only fields, unique / external-ID fields, restricted stage picklist,
price-book rules, Amount roll-up from line items), deletes to the Recycle Bin, Account merge, and
``allOrNone`` transactions.

Values are held as: text ``str``; numbers ``Decimal``; booleans ``bool``; dates ``"YYYY-MM-DD"``;
datetimes epoch milliseconds (whole seconds, as Salesforce stores them); references 18-char ids.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Iterable, Iterator

from renkei.sandboxes.common import Clock

from .errors import SFError, not_found
from .schema import BASE62, Field, SObject, build_schema, id18, normalise_id


@dataclass(frozen=True)
class Stage:
    label: str  # MasterLabel = ApiName in a fresh org
    probability: int
    forecast: str  # Pipeline, BestCase, Commit, Closed, Omitted
    closed: bool = False
    won: bool = False


DEFAULT_STAGES: tuple[Stage, ...] = (
    Stage("Prospecting", 10, "Pipeline"), Stage("Qualification", 10, "Pipeline"),
    Stage("Needs Analysis", 20, "Pipeline"), Stage("Value Proposition", 50, "Pipeline"),
    Stage("Id. Decision Makers", 60, "Pipeline"), Stage("Perception Analysis", 70, "Pipeline"),
    Stage("Proposal/Price Quote", 75, "Pipeline"), Stage("Negotiation/Review", 90, "Pipeline"),
    Stage("Closed Won", 100, "Closed", True, True), Stage("Closed Lost", 0, "Omitted", True, False),
)
FORECAST_NAMES = {"Pipeline": "Pipeline", "BestCase": "Best Case", "Commit": "Commit", "Closed": "Closed",
                  "Omitted": "Omitted"}


def _tokyo():
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Tokyo")
    except Exception:  # noqa: BLE001 - no tz data: Japan has no DST
        from datetime import timedelta

        return timezone(timedelta(hours=9))


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def parse_datetime(v: str) -> int:
    s = v.strip().replace("Z", "+00:00")
    if len(s) >= 5 and s[-5] in "+-" and s[-3] != ":":
        s = s[:-2] + ":" + s[-2:]
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1000


class SalesforceStore:
    """One org. Not thread-safe by itself: the app serialises access (async routes, one event loop)."""

    WHOLE_REQUEST_CODES = {"INVALID_FIELD", "JSON_PARSER_ERROR", "INVALID_TYPE"}

    def __init__(self, clock: Clock, *, version: str = "60.0", renkei_fields: bool = True,
                 missing_fields: Iterable[str] = (), stages: Iterable[Stage] = DEFAULT_STAGES,
                 multicurrency: bool = False):
        self.clock = clock
        self.zone = _tokyo()
        self.version = version
        self.schema: dict[str, SObject] = build_schema(renkei_fields, missing_fields, multicurrency)
        self.records: dict[str, dict[str, dict]] = {name: {} for name in self.schema}
        self._lower_ids: dict[str, str] = {}  # lower-case 18-char id → id (ids are case-insensitive at 18)
        self._counter: dict[str, int] = {}
        self.deleted_log: list[tuple[str, str, int]] = []  # (object, id, deleted ms)
        self.org_id = id18("00D5g00000RNKEI")
        self.user_id: str = ""
        for i, s in enumerate(stages):
            self._insert("OpportunityStage", {
                "MasterLabel": s.label, "ApiName": s.label, "IsActive": True, "SortOrder": i + 1, "IsClosed": s.closed,
                "IsWon": s.won, "ForecastCategory": s.forecast, "ForecastCategoryName": FORECAST_NAMES[s.forecast],
                "DefaultProbability": Decimal(s.probability), "Description": None})
        self.user_id = self.add_user("renkei-integration@renkei-demo.example", "連携", "Integration User")
        self.standard_pricebook = self._insert("Pricebook2", {"Name": "Standard Price Book", "IsActive": True,
                                                              "IsStandard": True, "Description": None})

    # ------------------------------------------------------------------ ids and time
    def now(self) -> int:
        return self.clock.now_ms() // 1000 * 1000

    def today(self) -> date:
        """Today in the integration user's time zone (:attr:`zone`, Asia/Tokyo)."""
        return datetime.fromtimestamp(self.now() / 1000, tz=self.zone).date()

    def new_id(self, obj: str) -> str:
        n = self._counter.get(obj, 0) + 1
        self._counter[obj] = n
        body = ""
        for _ in range(5):
            n, r = divmod(n, 62)
            body = BASE62[r] + body
        return id18(self.schema[obj].prefix + "5g00000" + body)

    def resolve_id(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        if len(value) == 18:
            return self._lower_ids.get(value.lower())
        n = normalise_id(value)
        return n if n and n.lower() in self._lower_ids else None

    def object_of(self, rid: str) -> str | None:
        for name, o in self.schema.items():
            if rid.startswith(o.prefix):
                return name
        return None

    # ------------------------------------------------------------------ reads
    def get(self, obj: str, rid: Any, include_deleted: bool = False) -> dict | None:
        real = self.resolve_id(rid) if isinstance(rid, str) else None
        rec = self.records[obj].get(real) if real else None
        if rec is None or (rec.get("IsDeleted") and not include_deleted):
            return None
        return rec

    def get_live(self, obj: str, rid: str) -> dict:
        """The record or Salesforce's 404 (``ENTITY_IS_DELETED`` for a record in the Recycle Bin)."""
        rec = self.get(obj, rid, include_deleted=True)
        if rec is None:
            raise not_found()
        if rec.get("IsDeleted"):
            raise SFError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        return rec

    def rows(self, obj: str, include_deleted: bool = False) -> Iterator[dict]:
        for rec in self.records[obj].values():
            if include_deleted or not rec.get("IsDeleted"):
                yield rec

    def attributes(self, obj: str, rid: str) -> dict:
        return {"type": obj, "url": f"/services/data/v{self.version}/sobjects/{obj}/{rid}"}

    def wire(self, f: Field, v: Any) -> Any:
        if v is None:
            return None
        if f.type == "datetime":
            return iso(v)
        return v

    def record_json(self, obj: str, rec: dict, fields: Iterable[str] | None = None) -> dict:
        o = self.schema[obj]
        out: dict[str, Any] = {"attributes": self.attributes(obj, rec["Id"])}
        names = [f.name for f in o.fields] if fields is None else list(fields)
        for n in names:
            f = o.field(n)
            if f is None:
                raise SFError(400, "INVALID_FIELD", f"No such column '{n}' on entity '{obj}'. If you are attempting to "
                              "use a custom field, be sure to append the '__c' after the custom field name. Please "
                              "reference your WSDL or the describe call for the appropriate names.")
            out[f.name] = self.wire(f, rec.get(f.name))
        return out

    def find_by_external(self, obj: str, field_name: str, value: str) -> list[dict]:
        o = self.schema[obj]
        f = o.field(field_name)
        if f is None or not (f.external_id or f.name == "Id"):
            raise SFError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field_name}")
        if f.name == "Id":
            rec = self.get(obj, value)
            return [rec] if rec else []
        key = value if f.case_sensitive else str(value).lower()
        return [r for r in self.rows(obj)
                if r.get(f.name) is not None and (r[f.name] if f.case_sensitive else str(r[f.name]).lower()) == key]

    # ------------------------------------------------------------------ writes
    def _insert(self, obj: str, values: dict, *, now: int | None = None) -> str:
        """Raw insert (seed / internal objects): no validation."""
        rid = self.new_id(obj)
        t = self.now() if now is None else now
        rec = {f.name: None for f in self.schema[obj].fields}
        rec.update(values)
        rec.update(Id=rid, CreatedDate=t, LastModifiedDate=t, SystemModstamp=t)
        if "IsDeleted" in rec:
            rec["IsDeleted"] = False
        for k in ("CreatedById", "LastModifiedById"):
            if k in rec:
                rec[k] = self.user_id or rid
        self.records[obj][rid] = rec
        self._lower_ids[rid.lower()] = rid
        return rid

    def add_user(self, username: str, last: str, first: str | None = None, email: str | None = None) -> str:
        name = f"{last} {first}" if first else last
        return self._insert("User", {"Username": username, "LastName": last, "FirstName": first, "Name": name,
                                     "Email": email or username, "Alias": username[:8], "IsActive": True})

    def create(self, obj: str, body: dict, *, now: int | None = None) -> str:
        o = self.schema[obj]
        if not o.createable:
            raise SFError(400, "INVALID_TYPE_FOR_OPERATION", f"entity type {obj} does not support insert")
        if any(k.lower() == "id" for k in body if k != "attributes"):
            raise SFError(400, "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: Id. Please check the "
                          "security settings of this field and verify that it is read/write for your profile or "
                          "permission set.", ["Id"])
        values = self._convert(o, body, creating=True)
        rec = {f.name: None for f in o.fields}
        for f in o.fields:
            if f.type == "boolean" and f.createable:
                rec[f.name] = False
        if o.field("OwnerId") is not None:
            rec["OwnerId"] = self.user_id
        rec.update(values)
        missing = [f.name for f in o.fields if f.required and f.createable and rec.get(f.name) in (None, "")]
        if obj == "OpportunityLineItem" and "PricebookEntryId" not in values and "Product2Id" in values:
            pass
        elif obj == "OpportunityLineItem" and "PricebookEntryId" not in values:
            missing.append("PricebookEntryId")
        if missing:
            raise SFError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        t = self.now() if now is None else now
        self._rules(obj, rec, values, creating=True, now=t)
        self._unique(o, rec, None)
        rid = self.new_id(obj)
        rec.update(Id=rid, IsDeleted=False, CreatedDate=t, CreatedById=self.user_id, LastModifiedDate=t,
                   LastModifiedById=self.user_id, SystemModstamp=t)
        self.records[obj][rid] = rec
        self._lower_ids[rid.lower()] = rid
        self._after(obj, rec, t)
        return rid

    def update(self, obj: str, rid: str, body: dict, *, now: int | None = None) -> str:
        o = self.schema[obj]
        if not o.updateable:
            raise SFError(400, "INVALID_TYPE_FOR_OPERATION", f"entity type {obj} does not support update")
        rec = self.get_live(obj, rid)
        body = {k: v for k, v in body.items() if k.lower() != "id"}
        values = self._convert(o, body, creating=False)
        new = dict(rec)
        new.update(values)
        missing = [f.name for f in o.fields if f.required and f.name in values and new.get(f.name) in (None, "")]
        if missing:
            raise SFError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        t = self.now() if now is None else now
        self._rules(obj, new, values, creating=False, now=t, old=rec)
        self._unique(o, new, rec["Id"])
        new.update(LastModifiedDate=t, LastModifiedById=self.user_id, SystemModstamp=t)
        rec.clear()
        rec.update(new)
        self._after(obj, rec, t)
        return rec["Id"]

    def delete(self, obj: str, rid: str, *, now: int | None = None) -> None:
        o = self.schema[obj]
        rec = self.get_live(obj, rid)
        if not o.deletable:
            raise SFError(400, "DELETE_FAILED" if obj != "PricebookEntry" else "DELETE_FAILED",
                          f"Cannot delete {obj}: deactivate it instead (IsActive = false)", [])
        if obj == "Pricebook2" and rec.get("IsStandard"):
            raise SFError(400, "DELETE_FAILED", "The standard price book cannot be deleted", [])
        t = self.now() if now is None else now
        self._mark_deleted(obj, rec, t)
        # cascades
        if obj == "Account":
            for opp in [r for r in self.rows("Opportunity") if r.get("AccountId") == rec["Id"]]:
                self._mark_deleted("Opportunity", opp, t)
                self._delete_lines(opp["Id"], t)
        elif obj == "Opportunity":
            self._delete_lines(rec["Id"], t)
        elif obj == "OpportunityLineItem":
            self._rollup(rec["OpportunityId"], t)

    def _mark_deleted(self, obj: str, rec: dict, t: int) -> None:
        rec["IsDeleted"] = True
        rec["SystemModstamp"] = t
        self.deleted_log.append((obj, rec["Id"], t))

    def _delete_lines(self, opp_id: str, t: int) -> None:
        for li in [r for r in self.rows("OpportunityLineItem") if r.get("OpportunityId") == opp_id]:
            self._mark_deleted("OpportunityLineItem", li, t)

    def upsert(self, obj: str, ext_field: str, value: str, body: dict) -> tuple[str, bool]:
        o = self.schema[obj]
        f = o.field(ext_field)
        if f is None or not (f.external_id or f.name == "Id"):
            raise SFError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {ext_field}")
        body = dict(body)
        body.pop("attributes", None)
        for k in list(body):
            if k.lower() == "id" and f.name != "Id":
                raise SFError(400, "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: Id. Please "
                              "check the security settings of this field and verify that it is read/write for your "
                              "profile or permission set.", ["Id"])
            if k.lower() == f.name.lower():
                if value is not None and str(body[k]).lower() != str(value).lower():
                    raise SFError(400, "INVALID_FIELD", f"The value of the external ID field ({f.name}) in the body "
                                  "does not match the value in the URL", [f.name])
                body.pop(k)
        if value in (None, "") and f.name == "Id":
            return self.create(obj, body), True
        matches = self.find_by_external(obj, f.name, value)
        if len(matches) > 1:
            raise SFError(300, "MULTIPLE_CHOICES", "multiple records", headers={})
        if matches:
            return self.update(obj, matches[0]["Id"], body), False
        if f.name == "Id":
            raise not_found()
        return self.create(obj, {**body, f.name: value}), True

    def merge(self, obj: str, master_id: str, loser_ids: list[str], *, now: int | None = None) -> None:
        """SOAP ``merge()``: up to two losers go to the Recycle Bin with ``MasterRecordId``; their children are
        re-parented to the master (a system change: ``SystemModstamp`` only)."""
        if obj != "Account" or not self.schema[obj].merge:
            raise SFError(400, "INVALID_TYPE_FOR_OPERATION", f"merge is not supported for {obj}")
        if not 1 <= len(loser_ids) <= 2:
            raise SFError(400, "INVALID_OPERATION", "merge takes a master and one or two records to merge")
        master = self.get_live(obj, master_id)
        t = self.now() if now is None else now
        for lid in loser_ids:
            loser = self.get_live(obj, lid)
            if loser["Id"] == master["Id"]:
                raise SFError(400, "INVALID_OPERATION", "cannot merge a record with itself")
            for child, fk in (("Opportunity", "AccountId"), ("Account", "ParentId")):
                for r in self.rows(child):
                    if r.get(fk) == loser["Id"]:
                        r[fk] = master["Id"]
                        r["SystemModstamp"] = t
            loser["MasterRecordId"] = master["Id"]
            self._mark_deleted(obj, loser, t)
        master.update(LastModifiedDate=t, SystemModstamp=t)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """``allOrNone``: on an exception every record, index and log entry is restored."""
        snap = {obj: {rid: dict(rec) for rid, rec in recs.items()} for obj, recs in self.records.items()}
        lower = dict(self._lower_ids)
        log_len = len(self.deleted_log)
        try:
            yield
        except BaseException:
            self.records = snap
            self._lower_ids = lower
            del self.deleted_log[log_len:]
            raise

    # ------------------------------------------------------------------ validation
    def _convert(self, o: SObject, body: dict, *, creating: bool) -> dict:
        out: dict[str, Any] = {}
        for key, value in body.items():
            if key == "attributes":
                continue
            f = o.field(key)
            if f is None:
                ref = o.relationship(key)
                if ref is not None and isinstance(value, dict):
                    out[ref.name] = self._ref_by_external(ref, value)
                    continue
                raise SFError(400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {o.name}")
            allowed = f.createable if creating else f.updateable
            if not allowed:
                raise SFError(400, "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {f.name}. "
                              "Please check the security settings of this field and verify that it is read/write for "
                              "your profile or permission set.", [f.name])
            out[f.name] = self._value(o, f, value)
        return out

    def _ref_by_external(self, ref: Field, value: dict) -> str:
        target = ref.ref or ""
        items = [(k, v) for k, v in value.items() if k != "attributes"]
        if len(items) != 1:
            raise SFError(400, "INVALID_FIELD", f"Foreign key external ID for {ref.relationship_name} must name one field")
        (k, v), = items
        matches = self.find_by_external(target, k, str(v))
        if not matches:
            raise SFError(400, "INVALID_FIELD", f"Foreign key external ID: {v} not found for field {k} in entity {target}",
                          [ref.name])
        if len(matches) > 1:
            raise SFError(400, "INVALID_FIELD", f"Foreign key external ID: {v} matches multiple {target} records",
                          [ref.name])
        return matches[0]["Id"]

    def _value(self, o: SObject, f: Field, v: Any) -> Any:
        if v is None:
            return None
        t = f.type

        def bad(kind: str) -> SFError:
            return SFError(400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of {kind} from "
                           f"{'VALUE_STRING' if isinstance(v, str) else type(v).__name__.upper()} value {str(v)[:40]} "
                           "or request may be missing a required field", [f.name])

        if t in ("string", "textarea", "phone", "url", "email", "picklist"):
            if isinstance(v, (dict, list)):
                raise bad("string")
            s = ("true" if v else "false") if isinstance(v, bool) else str(v)
            if f.length and len(s) > f.length:
                raise SFError(400, "STRING_TOO_LONG", f"{f.label or f.name}: data value too large: {s[:40]} "
                              f"(max length={f.length})", [f.name])
            if t == "email" and s and ("@" not in s or " " in s):
                raise SFError(400, "INVALID_EMAIL_ADDRESS", f"{f.label or f.name}: invalid email address: {s[:40]}", [f.name])
            if t == "picklist" and f.restricted is False and f.picklist and f.custom and s not in f.picklist and s:
                raise SFError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                              f"{f.label or f.name}: bad value for restricted picklist field: {s}", [f.name])
            return s
        if t == "boolean":
            if isinstance(v, bool):
                return v
            if isinstance(v, str) and v.lower() in ("true", "false"):
                return v.lower() == "true"
            raise bad("boolean")
        if t in ("currency", "double", "percent", "int"):
            if isinstance(v, bool) or isinstance(v, (dict, list)):
                raise bad("double")
            try:
                d = Decimal(str(v))
            except InvalidOperation:
                raise bad("double") from None
            if not d.is_finite():
                raise bad("double")
            if t == "int":
                if d != d.to_integral_value():
                    raise bad("int")
                return int(d)
            if f.scale is not None and t in ("currency",):
                d = d.quantize(Decimal(1).scaleb(-max(f.scale, 0)), ROUND_HALF_UP) if f.scale else d.quantize(Decimal(1), ROUND_HALF_UP)
            return d
        if t == "date":
            if not isinstance(v, str):
                raise bad("date")
            try:
                return date.fromisoformat(v[:10]).isoformat() if len(v) in (10,) else date.fromisoformat(v[:10]).isoformat()
            except ValueError:
                raise bad("date") from None
        if t == "datetime":
            if not isinstance(v, str):
                raise bad("datetime")
            try:
                return parse_datetime(v)
            except ValueError:
                raise bad("datetime") from None
        if t == "reference":
            if not isinstance(v, str):
                raise bad("id")
            if v == "":
                return None
            if normalise_id(v) is None:
                raise SFError(400, "MALFORMED_ID", f"{f.label or f.name}: id value of incorrect type: {v[:40]}", [f.name])
            rid = self.resolve_id(v)
            target = self.get(f.ref or "", rid) if rid else None
            if target is None:
                raise SFError(400, "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id", [f.name])
            return target["Id"]
        return v

    def _unique(self, o: SObject, rec: dict, own_id: str | None) -> None:
        for f in o.fields:
            if not f.unique or rec.get(f.name) in (None, ""):
                continue
            key = rec[f.name] if f.case_sensitive else str(rec[f.name]).lower()
            for other in self.rows(o.name):
                if other["Id"] == own_id or other.get(f.name) is None:
                    continue
                if (other[f.name] if f.case_sensitive else str(other[f.name]).lower()) == key:
                    raise SFError(400, "DUPLICATE_VALUE", f"duplicate value found: {f.name} duplicates value on record "
                                  f"with id: {other['Id']}", [])

    def stage(self, name: str | None) -> dict | None:
        if not name:
            return None
        for s in self.rows("OpportunityStage"):
            if s["IsActive"] and (s["ApiName"] == name or s["MasterLabel"] == name):
                return s
        return None

    def _rules(self, obj: str, rec: dict, values: dict, *, creating: bool, now: int, old: dict | None = None) -> None:
        if obj == "Opportunity":
            st = self.stage(rec.get("StageName"))
            if st is None:
                raise SFError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                              f"Stage: bad value for restricted picklist field: {rec.get('StageName')}", ["StageName"])
            rec["StageName"] = st["ApiName"]
            rec["IsClosed"], rec["IsWon"] = st["IsClosed"], st["IsWon"]
            rec["ForecastCategory"], rec["ForecastCategoryName"] = st["ForecastCategory"], st["ForecastCategoryName"]
            if "Probability" not in values and (creating or (old and old.get("StageName") != rec["StageName"])):
                rec["Probability"] = st["DefaultProbability"]
            if old is not None and old.get("HasOpportunityLineItem"):
                rec["Amount"] = old.get("Amount")  # with products, Amount is the roll-up: writes are ignored
            if old is not None and values.get("Pricebook2Id", old.get("Pricebook2Id")) != old.get("Pricebook2Id") \
                    and old.get("HasOpportunityLineItem"):
                self._delete_lines(old["Id"], now)  # changing the price book deletes the lines
                rec["HasOpportunityLineItem"] = False
                rec["Amount"] = None
            if creating:
                rec["HasOpportunityLineItem"] = False
            if rec.get("Pricebook2Id"):
                pb = self.get("Pricebook2", rec["Pricebook2Id"])
                if pb is None or not pb.get("IsActive"):
                    raise SFError(400, "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: Pricebook2Id "
                                  "(price book is inactive)", ["Pricebook2Id"])
        elif obj == "OpportunityLineItem":
            self._line_rules(rec, values, creating)
        elif obj == "PricebookEntry" and creating:
            pb = self.get("Pricebook2", rec["Pricebook2Id"])
            product = self.get("Product2", rec["Product2Id"])
            if pb is None or product is None:
                raise SFError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
            std = self.get("Pricebook2", self.standard_pricebook)
            if not std.get("IsActive"):
                raise SFError(400, "STANDARD_PRICE_NOT_DEFINED", "Before creating a custom price, create a standard "
                              "price (the standard price book must be active).", [])
            for e in self.rows("PricebookEntry"):
                if e["Product2Id"] == product["Id"] and e["Pricebook2Id"] == pb["Id"]:
                    raise SFError(400, "DUPLICATE_VALUE", "This price definition already exists in this price book", [])
            if not pb.get("IsStandard") and not any(
                    e["Product2Id"] == product["Id"] and e["Pricebook2Id"] == std["Id"] for e in self.rows("PricebookEntry")):
                raise SFError(400, "STANDARD_PRICE_NOT_DEFINED", "No standard price defined for this product", [])
            rec["Name"], rec["ProductCode"] = product["Name"], product.get("ProductCode")
            if rec.get("UseStandardPrice") is None:
                rec["UseStandardPrice"] = False

    def _line_rules(self, rec: dict, values: dict, creating: bool) -> None:
        opp = self.get("Opportunity", rec["OpportunityId"])
        if opp is None:
            raise SFError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["OpportunityId"])
        if creating:
            entry = None
            if rec.get("PricebookEntryId"):
                entry = self.get("PricebookEntry", rec["PricebookEntryId"])
                if rec.get("Product2Id") and entry and entry["Product2Id"] != rec["Product2Id"]:
                    raise SFError(400, "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: Product2Id "
                                  "(product does not match the price book entry)", ["Product2Id"])
            else:
                pb = opp.get("Pricebook2Id") or self.standard_pricebook
                entry = next((e for e in self.rows("PricebookEntry")
                              if e["Product2Id"] == rec["Product2Id"] and e["Pricebook2Id"] == pb), None)
                if entry is None:
                    raise SFError(400, "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: Product2Id (no price "
                                  "book entry for this product in the opportunity's price book)", ["Product2Id"])
            if not entry.get("IsActive"):
                raise SFError(400, "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: PricebookEntryId "
                              "(pricebook entry is inactive)", ["PricebookEntryId"])
            if opp.get("Pricebook2Id") and opp["Pricebook2Id"] != entry["Pricebook2Id"]:
                raise SFError(400, "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: PricebookEntryId (pricebook "
                              "entry is in a different pricebook than the one assigned to the opportunity)",
                              ["PricebookEntryId"])
            product = self.get("Product2", entry["Product2Id"], include_deleted=True)
            rec.update(PricebookEntryId=entry["Id"], Product2Id=entry["Product2Id"], ListPrice=entry["UnitPrice"],
                       ProductCode=product.get("ProductCode"), Name=f"{opp['Name']} {product['Name']}"[:376])
            if "UnitPrice" in values and "TotalPrice" in values and values["UnitPrice"] is not None \
                    and values["TotalPrice"] is not None:
                raise SFError(400, "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: TotalPrice (you cannot "
                              "specify both unit price and total price)", ["TotalPrice"])
            if values.get("UnitPrice") is None and values.get("TotalPrice") is None:
                raise SFError(400, "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: unknown (must specify "
                              "either UnitPrice or TotalPrice)", [])
        q = rec.get("Quantity")
        if q is None or q == 0:
            raise SFError(400, "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: Quantity (quantity must be "
                          "nonzero)", ["Quantity"])
        disc = rec.get("Discount") or Decimal(0)
        if not Decimal(0) <= disc <= Decimal(100):
            raise SFError(400, "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: Discount (discount must be "
                          "between 0 and 100)", ["Discount"])
        cent = Decimal("0.01")
        if values.get("TotalPrice") is not None and values.get("UnitPrice") is None:
            rec["UnitPrice"] = (values["TotalPrice"] / q / (1 - disc / 100)).quantize(cent, ROUND_HALF_UP) \
                if disc < 100 else rec.get("UnitPrice") or Decimal(0)
            rec["TotalPrice"] = values["TotalPrice"]
            rec["Subtotal"] = (q * rec["UnitPrice"]).quantize(cent, ROUND_HALF_UP)
        else:
            rec["Subtotal"] = (q * rec["UnitPrice"]).quantize(cent, ROUND_HALF_UP)
            rec["TotalPrice"] = (rec["Subtotal"] * (1 - disc / 100)).quantize(cent, ROUND_HALF_UP)

    def _after(self, obj: str, rec: dict, t: int) -> None:
        if obj == "OpportunityLineItem":
            opp = self.get("Opportunity", rec["OpportunityId"])
            if opp is not None and not opp.get("Pricebook2Id"):
                entry = self.get("PricebookEntry", rec["PricebookEntryId"], include_deleted=True)
                opp["Pricebook2Id"] = entry["Pricebook2Id"]
            self._rollup(rec["OpportunityId"], t)
        elif obj == "Product2":
            for e in self.rows("PricebookEntry"):
                if e["Product2Id"] == rec["Id"]:
                    e["Name"], e["ProductCode"] = rec["Name"], rec.get("ProductCode")

    def _rollup(self, opp_id: str, t: int) -> None:
        opp = self.get("Opportunity", opp_id)
        if opp is None:
            return
        lines = [r for r in self.rows("OpportunityLineItem") if r.get("OpportunityId") == opp_id]
        opp["HasOpportunityLineItem"] = bool(lines)
        opp["Amount"] = sum((li["TotalPrice"] for li in lines), Decimal(0)) if lines else opp.get("Amount")
        opp["LastModifiedDate"] = opp["SystemModstamp"] = t
