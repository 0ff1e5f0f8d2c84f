"""Steps of ``customer-sync`` (HubSpot company ⇄ freee partner 取引先), composed by :mod:`flows.customer_sync`.

Vocabulary
----------
*pair*
    A HubSpot company and the freee partner it is linked to in the ID map (entity ``company``).
*flat record*
    A side's synced fields as ``{dotted path: JSON value}`` (:func:`side_fields`). A path the side does
    not carry is absent (freee has no 法人番号, domain, owner or 与信停止 field), so the merge never
    compares or writes it there.
*snapshot*
    One :class:`~store.models.BaseSnapshot` row per pair, keyed by the **freee partner id** (stable across
    HubSpot merges, which give the survivor a new id)::

        {"crm": {...base...}, "erp": {...base...},      # the 3-way merge base, per side
         "seen": {"crm": {...}, "erp": {...}}}           # what each side held after the last sync

    plus ``crm_hash`` / ``erp_hash`` = :func:`domain.hashing.content_hash` of the *seen* records. A side
    whose freshly read record hashes to the stored value has not changed; a pair with both sides unchanged
    is skipped without planning. ``seen`` also stands in for a side that did not change this run, so an
    incremental run reads only what changed (freee has no batch read; one GET per record would cost one
    request per change on freee's tight limit).

Per batch (one Prefect task per page, never per record): pair up, hash-skip, plan the merge with the
policy (:func:`domain.ownership.plan_merge`), validate the records about to be written (the canonical
model checks the registration-number check digit, postal code, required name), write HubSpot in batches
of 100 and freee per record (no batch partner API) on a small thread pool (the client's rate limiter
paces every thread), then store the base from the records *as re-read after the write* and report what
the systems did not persist. Every problem with one record is a review item with a reason code; the
batch goes on.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from collections.abc import KeysView
from typing import Any, Iterable, Iterator, Mapping, Sequence

from pydantic import ValidationError
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from renkei.connectors.base import CompanyRecord, CompanyUpdate, MapResult
from renkei.connectors.http import ConnectorError, QuotaExhausted, TransientError
from renkei.domain.hashing import content_hash
from renkei.domain.matching import MatchIndex, MatchKind, match_batch
from renkei.domain.model import Company
from renkei.domain.ownership import (MISSING, ChangeAction, MergePlan, PolicyTable, Resolution, apply_updates, get_path,
                              plan_merge)
from renkei.domain.normalise import mask_personal, safe_text
from renkei.domain.ownership import is_protected, reveal_protected
from renkei.store.db import session_scope
from renkei.store.models import BaseSnapshot, IdMap, utcnow
from renkei.store.repo import RECORD_DATA_REASONS, is_personal_path, personal_key, protect_personal, upsert_snapshots
from renkei.tasks.invoicing import company_settings
from renkei.tasks.customers import (PLAUSIBILITY_REASONS, display_name, flat_findings, partner_code_for, plausible_company,
                             review_findings)
from renkei.tasks.customers import create_partner_once
from renkei.tasks.reporting import RunReport
from renkei.tasks.runtime import Runtime

FLOW = "customer-sync"
ENTITY = "company"
CRM_CURSOR = "customer-sync:hubspot-companies"
ERP_CURSOR = "customer-sync:freee-partners"
JST = timezone(timedelta(hours=9))

# Fields freee's partner API does not have (the canonical model's freee="corporate_number" is not a
# freee partner attribute: freee derives nothing from it; the T-number carries it for corporations).
ERP_NOT_CARRIED = frozenset({"corporate_number", "domain", "sales_owner", "credit_hold"})
# Handled by the delete/merge rules (sync policy), never by the field merge.
NOT_MERGED = frozenset({"archived"})
MATCH_REASONS = ("AMBIGUOUS_CORPORATE_NUMBER", "CONFLICTING_SIGNALS", "AMBIGUOUS_NAME", "SHARED_DOMAIN", "NAME_ONLY",
                 "FUZZY_NAME", "SAME_PHONE", "TARGET_ALREADY_MAPPED", "DUPLICATE_IN_BATCH", "TARGET_ARCHIVED",
                 "DUPLICATE_SOURCE_IN_BATCH")
OWN_CODE_PREFIX = partner_code_for("")  # 取引先コード of the partners Renkei creates (HS-<company id>)
FREEE_WRITE_WORKERS = 4
MAX_PAGES_IN_FLIGHT = 1  # deferred page writes queued behind the planning (full reads; each holds a page's plans)


# ---------------------------------------------------------------------------------------------------
# policy and records


def policy_table(rt: Runtime) -> PolicyTable:
    """The ownership table from the policy config's ``[ownership]`` section."""
    return PolicyTable.from_dict(rt.policy.ownership.model_dump(exclude_none=True))


def merge_paths(policy: PolicyTable) -> tuple[str, ...]:
    return tuple(p for p in policy.paths if p.split(".")[0] not in NOT_MERGED)


def side_fields(company: Company, side: str, paths: Sequence[str]) -> dict[str, Any]:
    """The synced fields ``side`` carries, as a flat ``{path: JSON value}``."""
    rec = company.model_dump(mode="json")
    out: dict[str, Any] = {}
    for p in paths:
        if side == "erp" and p.split(".")[0] in ERP_NOT_CARRIED:
            continue
        v = get_path(rec, p)
        if v is not MISSING:
            out[p] = v
    return out


def company_from_fields(fields: Mapping[str, Any], **ids: Any) -> Company:
    """A canonical company from a flat record (raises ``ValidationError`` when invalid)."""
    nested = apply_updates({}, dict(fields))
    return Company.model_validate({**nested, **{k: v for k, v in ids.items() if v is not None}})


def fhash(fields: Mapping[str, Any], paths: Sequence[str], key: bytes | None = None) -> str:
    """Content hash of a side's record as kept at rest (personal values as keyed hashes), so a record
    read now and the same record standing in from the snapshot hash equal."""
    return content_hash(protect_personal(dict(fields), key if key is not None else personal_key()), paths)


def has_protected(rec: Mapping[str, Any] | None) -> bool:
    return bool(rec) and any(is_protected(v) for v in rec.values())


def reveal(rec: Mapping[str, Any] | None, candidates: Sequence[Mapping[str, Any] | None], key: bytes
           ) -> dict[str, Any] | None:
    """``rec`` with each keyed hash replaced by the value read this run it stands for (if any)."""
    if rec is None or not has_protected(rec):
        return rec if rec is None else dict(rec)
    return {p: (reveal_protected(p, v, [c.get(p, MISSING) for c in candidates if c], key) if is_protected(v) else v)
            for p, v in rec.items()}


def reveal_base(base: dict[str, dict[str, Any]] | None, crm: Mapping[str, Any], erp: Mapping[str, Any], key: bytes
                ) -> dict[str, dict[str, Any]] | None:
    """A stored base (personal values hashed) made comparable with the records read now: a hash equal to
    the current value's becomes that value (unchanged since the base); another hash stays, unequal to
    anything — "changed since the base". Plain (older) bases are used as they are."""
    if base is None:
        return None
    return {side: reveal(base.get(side) or {}, [crm, erp], key) or {} for side in ("crm", "erp")}


def shown(path: str, value: Any) -> str:
    """A field value as a person or log may see it: personal values masked, markup escaped."""
    if value is None or value is MISSING:
        return "None"
    if is_personal_path(path):
        return "(hidden)" if is_protected(value) else mask_personal(str(value))
    return safe_text(value)


def _errors(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ())) or 'record'}: {e.get('msg')}"
                         for e in exc.errors())
    return f"{type(exc).__name__}: {exc}"


def today_jst() -> str:
    return datetime.now(JST).date().isoformat()


# ---------------------------------------------------------------------------------------------------
# run state


_STUB = "__released__"  # marks a partner index record whose full record was let go (SyncState.done_erp)
_RELEASED_RECORD: dict[str, Any] = {_STUB: True, "erp_id": None, "partner_code": None, "archived": False}
_RELEASED: MapResult[dict] = MapResult(None, None, "released")  # erp_changed value of a handled partner


# PartnerRecords flags: a member read this run (a valid record / one that failed validation, never let go of),
# one let go of; a record held for the index only (and one of those let go of)
_HELD, _HELD_INVALID, _LET_GO, _EXTRA, _EXTRA_LET_GO = 0, 3, 1, 2, 4


def _status_of(links: dict[str, str], given: Mapping[str, str] | None) -> "LinkStatus":
    out = LinkStatus(links)
    for k, v in (given or {}).items():
        out[k] = v
    return out
_MEMBER = frozenset({_HELD, _HELD_INVALID, _LET_GO})


class PartnerRecords:
    """freee partner records of one run by partner id (``SyncState.erp_changed``, the partner index's records).

    The ids stay in memory (membership, read order, which were let go of, see :meth:`SyncState.done_erp`);
    the records wait in a :class:`~store.spill.RecordSpill` (an unnamed temporary file) and are read back
    by id when a page needs them: a first sync reads every partner (100,000 × ~900 bytes) long before their
    companies come by. *Members* are the partners read this run (``in``, ``len``, iteration); records
    added with :meth:`add_extra` (partners created this run, for the index) are found by :meth:`record`
    only. :meth:`get` answers as the plain ``dict[str, MapResult]`` it replaces did."""

    def __init__(self, results: Iterable[MapResult[dict]] = ()) -> None:
        self._ids: dict[str, int] = {}
        self._members = 0
        self._spill: Any = None
        self.extend(results)

    def _store(self) -> Any:
        if self._spill is None:
            from renkei.store.spill import RecordSpill

            self._spill = RecordSpill()
        return self._spill

    def extend(self, results: Iterable[MapResult[dict]]) -> None:
        rows = []
        for r in results:
            key = str(r.source_id)
            if self._ids.get(key, _EXTRA) not in _MEMBER:
                self._members += 1
            self._ids[key] = _HELD if r.ok else _HELD_INVALID
            rows.append((key, (r.source_id, r.value, r.error)))
        if rows:
            self._store().put_many(rows)

    def add_extra(self, erp_id: str, record: dict[str, Any]) -> None:
        if erp_id not in self._ids:
            self._ids[erp_id] = _EXTRA
            self._store().put(erp_id, (erp_id, record, None))

    def __contains__(self, erp_id: object) -> bool:
        return self._ids.get(erp_id, _EXTRA) in _MEMBER  # type: ignore[call-overload]

    def __len__(self) -> int:
        return self._members

    def __iter__(self) -> Iterator[str]:
        return (k for k, v in self._ids.items() if v in _MEMBER)

    def _result(self, key: str, row: Any) -> MapResult[dict]:
        source_id, value, error = row
        if value is not None and value.get("erp_id") == key:
            value["erp_id"] = key  # one id object shared with the index and the id maps
        return MapResult(key if source_id == key else source_id, value, error)

    def get(self, erp_id: str, default: Any = None) -> MapResult[dict] | Any:
        flag = self._ids.get(erp_id, _EXTRA)
        if flag not in _MEMBER:
            return default
        if flag == _LET_GO:
            return _RELEASED
        row = self._store().get(erp_id)
        return self._result(erp_id, row) if row is not None else default

    def get_many(self, erp_ids: Iterable[str]) -> dict[str, MapResult[dict]]:
        """Members among ``erp_ids`` → their result (:meth:`get`), read back in one query per 500."""
        keys = [k for k in dict.fromkeys(erp_ids) if k in self]
        held = [k for k in keys if self._ids[k] != _LET_GO]
        rows = self._store().get_many(held) if held else {}
        return {k: (self._result(k, rows[k]) if k in rows else _RELEASED) for k in keys
                if k in rows or self._ids[k] == _LET_GO}

    def items(self, chunk: int = 500) -> Iterator[tuple[str, MapResult[dict]]]:
        """Members in read order, read back ``chunk`` at a time."""
        keys = list(self)
        for i in range(0, len(keys), chunk):
            got = self.get_many(keys[i:i + chunk])
            for k in keys[i:i + chunk]:
                if k in got:
                    yield k, got[k]

    def values(self) -> Iterator[MapResult[dict]]:
        return (v for _k, v in self.items())

    def pop(self, erp_id: str, default: Any = None) -> Any:
        """No longer a member; the index still finds its record (as it kept its own copy before)."""
        got = self.get(erp_id, default)
        flag = self._ids.get(erp_id, _EXTRA)
        if flag in _MEMBER:
            self._members -= 1
            self._ids[erp_id] = _EXTRA_LET_GO if flag == _LET_GO else _EXTRA
        return got

    def let_go(self, erp_id: str) -> bool:
        """A member handled already: :meth:`get` returns ``_RELEASED`` and :meth:`record` a stub from now on."""
        if self._ids.get(erp_id) == _HELD:
            self._ids[erp_id] = _LET_GO  # its row stays in the file (deleting would cost CPU, not memory)
            return True
        return False

    def stored(self, erp_id: str) -> dict[str, Any] | None:
        """The record as read, even once let go of (review candidates show the partner's name)."""
        if erp_id not in self._ids:
            return None
        row = self._store().get(erp_id)
        return row[1] if row is not None else None

    def record(self, erp_id: str) -> dict[str, Any] | None:
        """The partner record (a member's or an extra one), the stub once let go of, else None."""
        return self.records([erp_id]).get(erp_id)

    def records(self, erp_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = [k for k in dict.fromkeys(erp_ids) if k in self._ids]
        gone = (_LET_GO, _EXTRA_LET_GO)
        rows = self._store().get_many([k for k in keys if self._ids[k] not in gone]) if keys else {}
        out: dict[str, dict[str, Any]] = {}
        for k in keys:
            if self._ids[k] in gone:
                out[k] = _RELEASED_RECORD
            elif k in rows:
                res = self._result(k, rows[k])
                if res.ok:
                    out[k] = res.value  # type: ignore[assignment]
        return out

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None


class WrittenStamps:
    """crm id → the modification stamp our own write returned (:func:`own_echoes` recognises our writes
    coming back). A first sync writes every company: kept in a :class:`~store.spill.RecordSpill`, not in
    memory."""

    def __init__(self) -> None:
        self._spill: Any = None
        self._n = 0

    def put_many(self, items: Sequence[tuple[str, Any]]) -> None:
        if not items:
            return
        if self._spill is None:
            from renkei.store.spill import RecordSpill

            self._spill = RecordSpill(cache_kib=512)
        self._spill.put_many([(str(k), _stamp(v)) for k, v in items])
        self._n += len(items)  # an upper bound (a company written twice counts twice): only 0 matters

    def __setitem__(self, crm_id: str, version: Any) -> None:
        self.put_many([(crm_id, version)])

    def get_many(self, crm_ids: Iterable[str]) -> dict[str, int | str]:
        return self._spill.get_many([str(c) for c in crm_ids]) if self._spill is not None else {}

    def get(self, crm_id: str, default: Any = None) -> Any:
        return self._spill.get(str(crm_id), default) if self._spill is not None else default

    def __len__(self) -> int:
        return self._n

    def clear(self) -> None:
        if self._spill is not None:
            self._spill.close()
        self._spill, self._n = None, 0


class LinkStatus(dict):
    """id → id-map status for every id-map row of one side (``SyncState.status`` / ``erp_status``). An
    *active* link is not stored: it is a key of ``links`` (``crm_to_erp`` / ``erp_to_crm``), so 100,000
    linked pairs cost no second map. Any other status is stored, as is "active" for an id no longer in
    ``links`` (:meth:`pin` before removing it from ``links`` without a new status)."""

    __slots__ = ("links",)

    def __init__(self, links: dict[str, str]) -> None:
        super().__init__()
        self.links = links

    def __setitem__(self, key: str, status: str) -> None:
        if status == "active" and key in self.links:
            dict.pop(self, key, None)
        else:
            dict.__setitem__(self, key, sys.intern(status))

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        got = dict.get(self, key)
        if got is not None:
            return got
        return "active" if key in self.links else default

    def __getitem__(self, key: str) -> str:
        got = self.get(key)
        if got is None:
            raise KeyError(key)
        return got

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.links

    def __iter__(self) -> Iterator[str]:
        yield from dict.__iter__(self)
        yield from (k for k in self.links if not dict.__contains__(self, k))

    def __len__(self) -> int:
        return dict.__len__(self) + sum(1 for k in self.links if not dict.__contains__(self, k))

    def keys(self) -> KeysView[str]:  # type: ignore[override]
        return KeysView(self)  # live, and "in" asks __contains__

    def items(self) -> Iterator[tuple[str, str]]:  # type: ignore[override]
        return ((k, self[k]) for k in self)

    def pin(self, key: str) -> None:
        """Keep the current status of ``key`` (about to leave ``links`` without a new one)."""
        got = self.get(key)
        if got is not None:
            dict.__setitem__(self, key, got)


@dataclass
class SyncState:
    """What one run knows beyond the current batch (built once per run, shared by its tasks)."""

    policy: PolicyTable
    paths: tuple[str, ...]
    crm_to_erp: dict[str, str] = field(default_factory=dict)  # active links
    erp_to_crm: dict[str, str] = field(default_factory=dict)
    status: LinkStatus = None  # type: ignore[assignment]  # crm id → id-map status (every row; see LinkStatus)
    erp_status: LinkStatus = None  # type: ignore[assignment]
    erp_changed: PartnerRecords = field(default_factory=PartnerRecords)  # this run's freee read
    erp_full: bool = False  # erp_changed holds every partner
    erp_done: set[str] = field(default_factory=set)  # partners handled by a CRM page already
    index: MatchIndex | None = None  # match keys only: its records are in index_records
    index_records: PartnerRecords | None = None  # erp_changed after a full freee read, else a read of its own
    held_erp: set[str] = field(default_factory=set)  # partners that are candidates of an open match review
    held_crm: set[str] = field(default_factory=set)
    resolutions: dict[str, list[Resolution]] = field(default_factory=dict)  # by erp id
    resolution_items: dict[str, list[int]] = field(default_factory=dict)  # erp id → decided conflict review ids
    decisions: list[Any] = field(default_factory=list)  # decided match / retry items to carry out this run
    decided_links: list[tuple[str, str]] = field(default_factory=list)  # pairs linked by a recent decision
    crash: str | None = None
    linked_at_start: frozenset[str] = frozenset()  # partners linked before this run's freee read
    invalid_open: dict[str, int] = field(default_factory=dict)  # entity key → open INVALID_* review id
    plausibility_open: dict[str, list[int]] = field(default_factory=dict)  # crm id → open EMAIL_INVALID / MARKUP_*
    written_ts: WrittenStamps = field(default_factory=WrittenStamps)  # crm id → hs_lastmodifieddate of our write
    by_code: dict[str, int] = field(default_factory=dict)  # our partner code (HS-…) → position in the index
    erp_writer: ThreadPoolExecutor | None = None  # set: writes run behind the pages (full reads)
    crm_writer: ThreadPoolExecutor | None = None
    pending_pages: list[Any] = field(default_factory=list)  # futures of deferred page writes (in order)
    pending: list[Any] = field(default_factory=list)  # futures of deferred freee writes
    deferred: RunReport | None = None  # what deferred writes report (guarded by lock)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not isinstance(self.status, LinkStatus):
            self.status = _status_of(self.crm_to_erp, self.status)
        if not isinstance(self.erp_status, LinkStatus):
            self.erp_status = _status_of(self.erp_to_crm, self.erp_status)

    def start_writer(self, report: RunReport, workers: int = FREEE_WRITE_WORKERS) -> None:
        self.erp_writer = ThreadPoolExecutor(workers, thread_name_prefix="freee-write")
        self.crm_writer = ThreadPoolExecutor(1, thread_name_prefix="hubspot-write")
        self.deferred = RunReport(report.flow, report.flow_run_id)

    def wait_pages(self) -> None:
        """Wait for the deferred HubSpot page writes (they also queue the freee writes)."""
        for f in list(self.pending_pages):
            f.result()

    def drain(self) -> RunReport | None:
        """Wait for every deferred freee write; re-raise the first failure (the run fails, the rerun
        re-plans those pairs: no snapshot was stored for them)."""
        if self.erp_writer is None:
            return None
        try:
            errors = []
            for f in self.pending_pages:  # these queue the freee writes: wait for them first
                exc = f.exception()
                if exc is not None:
                    errors.append(exc)
            for f in list(self.pending):
                exc = f.exception()
                if exc is not None:
                    errors.append(exc)
            if errors:
                raise errors[0]
            return self.deferred
        finally:
            if self.crm_writer is not None:
                self.crm_writer.shutdown(wait=True)
            self.erp_writer.shutdown(wait=True)
            self.erp_writer, self.crm_writer, self.pending, self.pending_pages = None, None, [], []

    @classmethod
    def load(cls, rt: Runtime) -> "SyncState":
        policy = policy_table(rt)
        st = cls(policy, merge_paths(policy), crash=os.environ.get("RENKEI_TEST_CRASH_CUSTOMER_SYNC"))
        with Session(rt.store.engine) as s:  # plain tuples: 20,000 ORM rows are slow and big
            rows = s.exec(select(IdMap.crm_id, IdMap.erp_id, IdMap.status).where(IdMap.entity == ENTITY)).all()
        for crm_id, erp_id, status in rows:
            if status == "active":  # the link first: an active status is then not stored again (LinkStatus)
                st.crm_to_erp[crm_id] = erp_id
                st.erp_to_crm[erp_id] = crm_id
            st.status[crm_id] = status
            st.erp_status[erp_id] = status
        # items about a company's own data are shared with order-to-invoice (one item per record and reason)
        shared = [i for i in rt.store.list_reviews("open") if i.flow != FLOW and i.reason_code in RECORD_DATA_REASONS]
        recent = datetime.now(timezone.utc) - timedelta(days=7)
        for item in [*rt.store.list_reviews(status=None, flow=FLOW), *shared]:
            p = item.payload or {}
            if item.status == "open" and item.reason_code in ("INVALID_CRM_COMPANY", "INVALID_ERP_PARTNER"):
                st.invalid_open[item.entity_key] = int(item.id)
            if item.status == "open" and item.reason_code in PLAUSIBILITY_REASONS:
                st.plausibility_open.setdefault(item.entity_key, []).append(int(item.id))
            if item.status in ("open", "dismissed") and item.reason_code in MATCH_REASONS:
                # a dismissed ("ignore") match keeps its candidates out of matching; its source record is
                # matched again only when it changes (the same record state stays dismissed)
                side = p.get("source_side")
                for c in p.get("candidates") or []:
                    (st.held_erp if side == "crm" else st.held_crm).add(str(c.get("id")))
                if item.status == "open":
                    (st.held_crm if side == "crm" else st.held_erp).add(str(p.get("source_id") or item.entity_key))
            if item.status == "resolved" and item.decision == "link" and item.applied_at is not None \
                    and item.applied_at.replace(tzinfo=timezone.utc if item.applied_at.tzinfo is None else
                                                item.applied_at.tzinfo) > recent:
                link = ((item.decision_data or {}).get("effect") or {}).get("link") or {}
                if link and st.crm_to_erp.get(str(link.get("crm_id"))) == str(link.get("erp_id")):
                    st.decided_links.append((str(link["crm_id"]), str(link["erp_id"])))
            elif item.status in ("resolved", "approved") and p.get("field") and item.applied_at is None \
                    and item.decision in ("crm", "erp", "value"):
                # a decided conflict, applied once: marked applied when the pair is recorded with it
                chosen = (item.decision_data or {}).get("value") if item.decision == "value" else p.get(item.decision)
                st.resolutions.setdefault(str(p.get("erp_id")), []).append(
                    Resolution(p["field"], p.get("crm"), p.get("erp"), chosen))
                st.resolution_items.setdefault(str(p.get("erp_id")), []).append(int(item.id))
        if st.decided_links:  # linked by a decision, but a run stopped before the pair was first synced
            have = load_snapshots(rt, [e for _c, e in st.decided_links])
            st.decided_links = [(c, e) for c, e in st.decided_links if e not in have]
        st.decisions = [i for i in rt.store.pending_decisions(FLOW, entity=ENTITY)
                        if (i.decision_data or {}).get("kind") in ("match", "invalid")
                        and (i.decision_data or {}).get("effect", {}).get("apply")]
        st.linked_at_start = frozenset(st.erp_to_crm)
        return st

    def done_erp(self, erp_id: str) -> None:
        """A partner handled by a CRM page: the pair now holds its own copy of the record, so once the
        partner index exists the run lets go of the read record (most of a first sync's memory with
        20,000 partners). The index keeps the partner's match keys and a stub (id, code, archived)."""
        self.erp_done.add(erp_id)
        if self.index is None:  # the index is built from erp_changed: keep every record until then
            return
        # from now on erp_changed answers _RELEASED and, when the index was built from erp_changed, the
        # index's record is a stub: the partner is linked now, so neither its code (our own partner found
        # again by code needs an unlinked one) nor its record is looked at again
        self.erp_changed.let_go(erp_id)

    def close(self) -> None:
        """The run is over: the records it held out of memory are let go of."""
        for recs in (self.erp_changed, self.index_records):
            if recs is not None:
                recs.close()
        self.written_ts.clear()

    def link(self, crm_id: str, erp_id: str) -> None:
        self.crm_to_erp[crm_id], self.erp_to_crm[erp_id] = erp_id, crm_id
        self.status[crm_id] = self.erp_status[erp_id] = "active"
        if self.index is not None:
            if isinstance(self.index.mapped_ids, set):
                self.index.mapped_ids.add(erp_id)  # (a live view of erp_status has it already)
            self.index.unclaim(erp_id)  # a mapped target is refused before any claim is looked at


# ---------------------------------------------------------------------------------------------------
# bulk store helpers (one transaction per batch: 20,000 pairs must not mean 20,000 commits)


def put_snapshots(rt: Runtime, rows: Sequence[tuple[str, dict[str, Any], str, str]]) -> None:
    """``(erp_id, fields, crm_hash, erp_hash)`` rows, upserted in one transaction (``INSERT … ON CONFLICT``:
    a concurrent run writing the same pair never collides). Personal values are kept only as keyed
    hashes (:func:`store.repo.protect_personal`): all the 3-way merge needs of them is equality."""
    if not rows:
        return
    key = personal_key()
    upsert_snapshots(rt.store.engine, ENTITY, [(k, protect_personal(f, key), ch, eh) for k, f, ch, eh in rows])


def link_many(rt: Runtime, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Insert ID-map rows in one transaction; on a clash fall back to :meth:`Store.link` per pair.
    Returns the pairs that are linked afterwards."""
    if not pairs:
        return []
    try:
        now = utcnow()
        with session_scope(rt.store.engine) as s:
            s.execute(insert(IdMap.__table__), [dict(entity=ENTITY, crm_id=c, erp_id=e, status="active",
                                                     created_at=now, updated_at=now) for c, e in pairs])
        return list(pairs)
    except IntegrityError:
        out = []
        for crm_id, erp_id in pairs:
            try:
                rt.store.link(ENTITY, crm_id, erp_id)
                out.append((crm_id, erp_id))
            except Exception:  # noqa: BLE001 - IdConflict: the caller reports it
                pass
        return out


def flush_fast(rt: Runtime, report: RunReport) -> None:
    """:func:`tasks.reporting.flush` with the audit events written by one SQL core insert (a large sync
    has tens of thousands; personal values masked as the store does)."""
    from renkei.store.models import AuditEvent
    from renkei.store.repo import mask_changes
    from renkei.tasks.reporting import flush

    if report.audit:
        now = utcnow()
        rows = [dict(at=now, flow_run_id=e.get("flow_run_id"), actor=e["actor"], action=e["action"],
                     system=e.get("system", "renkei"), entity=e["entity"], entity_key=e["entity_key"],
                     changes=mask_changes(e.get("changes") or {})) for e in report.audit]
        with session_scope(rt.store.engine) as s:
            s.execute(insert(AuditEvent.__table__), rows)
        report.audit.clear()
    flush(rt.store, report)


def load_snapshots(rt: Runtime, erp_ids: Iterable[str]) -> dict[str, BaseSnapshot]:
    ids = list(dict.fromkeys(erp_ids))
    out: dict[str, BaseSnapshot] = {}
    with Session(rt.store.engine) as s:
        for i in range(0, len(ids), 500):
            out.update({b.key: b for b in s.exec(select(BaseSnapshot).where(
                BaseSnapshot.entity == ENTITY, col(BaseSnapshot.key).in_(ids[i:i + 500])))})
    return out


# ---------------------------------------------------------------------------------------------------
# reading


def erp_record(company: Company, paths: Sequence[str]) -> dict[str, Any]:
    """A freee partner as kept during a run: its flat synced fields plus ``erp_id`` and ``archived``
    (a plain dict is a third of a pydantic model's memory; matching reads either)."""
    return {**side_fields(company, "erp", paths), "erp_id": str(company.erp_id), "archived": company.archived}


def erp_flat(rec: Mapping[str, Any]) -> dict[str, Any] | None:
    if _STUB in rec:  # released (SyncState.done_erp): not read again here
        return None
    return {k: v for k, v in rec.items() if k not in ("erp_id", "archived")}


def read_partners(rt: Runtime, since_date: str | None, paths: Sequence[str], page_size: int = 3000
                  ) -> PartnerRecords:
    """freee partners updated on or after ``since_date`` (JST date; ``None`` = every partner), 3,000 per
    request (freee's maximum page), validated, kept as :func:`erp_record` dicts out of memory
    (:class:`PartnerRecords`: each page is put away as it arrives)."""
    out = PartnerRecords()
    for page in rt.erp.iter_partners(since_date, page_size=page_size):
        results = []
        for n, res in enumerate(page):
            value = erp_record(res.value, paths) if res.ok else None
            results.append(MapResult(value["erp_id"] if value is not None else res.source_id, value, res.error))
            page[n] = None  # the model and the raw partner go now, not with the whole page
        page = None  # type: ignore[assignment]  # before the next page is read
        out.extend(results)
        results = None  # type: ignore[assignment]
    return out


def crm_probe(rt: Runtime) -> Any:
    """The CRM's watermark now (its own clock): a full read started after this probe sees every record
    modified at or before it, so it is a safe cursor for that read."""
    return rt.crm.company_watermark_now()


def full_partner_index(rt: Runtime, state: SyncState, report: RunReport) -> MatchIndex:
    """Index over every freee partner (built at most once per run). It keeps the match keys only; the
    records are in ``state.index_records`` (``erp_changed`` after a full read, else a read of its own)."""
    if state.index is None:
        if state.erp_full:
            records = state.erp_changed
        else:
            records = read_partners(rt, None, state.paths)
            report.count("erp", "read", len(records))
        # mapped ids: the live keys of erp_status (every partner with an id-map row, linked ones included)
        index = MatchIndex((), id_field="erp_id", source_id_field="crm_id", mapped_ids=state.erp_status.keys(),
                           keep_records=False, record_of=records.stored)
        by_code: dict[str, int] = {}
        for _key, res in records.items():
            if not res.ok:
                continue
            rec = res.value
            index.add(rec)
            code = rec.get("partner_code")
            if code and str(code).startswith(OWN_CODE_PREFIX):  # only our own codes are ever looked up
                by_code[str(code)] = len(index) - 1
        state.index_records, state.index, state.by_code = records, index, by_code
    return state.index


# ---------------------------------------------------------------------------------------------------
# pairs


@dataclass
class Pair:
    crm_id: str
    erp_id: str
    crm: dict[str, Any] | None = None  # flat records as read this run (None = not read)
    erp: dict[str, Any] | None = None
    first: bool = False  # just linked or created: no base yet


def _fetch_crm(rt: Runtime, ids: Sequence[str], paths: Sequence[str], report: RunReport) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for res in rt.crm.get_companies(list(ids)):
        if res.ok:
            out[str(res.source_id)] = side_fields(res.value, "crm", paths)
        else:
            report.review(reason_code="INVALID_CRM_COMPANY", entity=ENTITY, entity_key=str(res.source_id),
                          message=f"HubSpot company cannot be read: {res.error}", side="crm",
                          fingerprint=f"hubspot:{res.version}" if getattr(res, "version", None) else None)
    return out


def _fetch_erp(rt: Runtime, ids: Sequence[str], paths: Sequence[str], report: RunReport) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for erp_id in ids:
        try:
            res = rt.erp.get_partner(erp_id)
        except ConnectorError as exc:
            if isinstance(exc, (TransientError, QuotaExhausted)):
                raise
            report.review(reason_code="PARTNER_NOT_FOUND", entity=ENTITY, entity_key=erp_id,
                          message=f"freee partner {erp_id} cannot be read: {exc}", side="erp")
            continue
        if res.ok:
            out[erp_id] = side_fields(res.value, "erp", paths)
        else:
            report.review(reason_code="INVALID_ERP_PARTNER", entity=ENTITY, entity_key=erp_id,
                          message=f"freee partner cannot be read: {res.error}", side="erp")
    return out


@dataclass
class _Work:
    pair: Pair
    plan: MergePlan
    crm_before: dict[str, Any]
    erp_before: dict[str, Any]
    crm_hash: str = ""
    erp_hash: str = ""
    crm_update: CompanyUpdate | None = None  # the CRM write (canonical paths)
    erp_company: Company | None = None  # the partner as it will be written (ERP-carried fields)
    crm_after: dict[str, Any] | None = None
    erp_after: dict[str, Any] | None = None
    failed: bool = False


def sync_pairs(rt: Runtime, state: SyncState, pairs: Sequence[Pair], report: RunReport) -> None:
    """Merge, validate, write and record a batch of linked pairs (see the module docstring)."""
    if not pairs:
        return
    paths = state.paths
    snaps = load_snapshots(rt, [p.erp_id for p in pairs])
    # fill the sides that were not read this run: from what was seen last time, else from the API
    need_crm = [p.crm_id for p in pairs if p.crm is None and not _seen(snaps.get(p.erp_id), "crm")]
    need_erp = [p.erp_id for p in pairs if p.erp is None and not _seen(snaps.get(p.erp_id), "erp")]
    fetched_crm = _fetch_crm(rt, need_crm, paths, report) if need_crm else {}
    fetched_erp = _fetch_erp(rt, need_erp, paths, report) if need_erp else {}

    key = personal_key()
    todo: list[tuple[Pair, BaseSnapshot | None, dict, dict, str, str]] = []
    for p in pairs:
        snap = snaps.get(p.erp_id)
        crm = p.crm if p.crm is not None else (_seen(snap, "crm") or fetched_crm.get(p.crm_id))
        erp = p.erp if p.erp is not None else (_seen(snap, "erp") or fetched_erp.get(p.erp_id))
        if crm is None or erp is None:
            report.count("renkei", "errors")
            continue
        ch, eh = fhash(crm, paths, key), fhash(erp, paths, key)
        pending = any(r.applies_to(crm.get(r.field), erp.get(r.field)) and not _same_chosen(r, crm, erp)
                      for r in _revealed(state.resolutions.get(p.erp_id, ()), crm, erp, key))
        if snap is not None and not p.first and not pending and snap.crm_hash == ch and snap.erp_hash == eh:
            report.count("crm", "unchanged")
            report.count("erp", "unchanged")
            _decisions_applied(rt, state, p.erp_id, "in_effect")  # a re-run after the write: nothing left to do
            continue
        todo.append((p, snap, crm, erp, ch, eh))

    def plan_of(p: Pair, snap: BaseSnapshot | None, crm: dict, erp: dict) -> tuple[dict, dict, MergePlan]:
        # A side standing in from the snapshot keeps personal values only as keyed hashes: they become
        # the values read this run that they equal (the other side's, typically).
        crm, erp = reveal(crm, [erp], key), reveal(erp, [crm], key)
        base = None if (snap is None or p.first) else reveal_base(
            {"crm": snap.fields.get("crm") or {}, "erp": snap.fields.get("erp") or {}}, crm, erp, key)
        return crm, erp, plan_merge(base, crm, erp, state.policy,
                                    resolutions=_revealed(state.resolutions.get(p.erp_id, ()), crm, erp, key))

    planned = [(p, snap, *plan_of(p, snap, crm, erp), ch, eh) for p, snap, crm, erp, ch, eh in todo]
    # A hash that stands for a value nobody read this run must never be written or shown as a value:
    # when such a pair has anything to do, read that side for real (one batch / one GET) and plan again.
    real_crm = [p.crm_id for p, _s, crm, _e, plan, *_ in planned if has_protected(crm) and _copies_hash(plan)]
    real_erp = [p.erp_id for p, _s, _c, erp, plan, *_ in planned
                if has_protected(erp) and (_copies_hash(plan) or _write_needs_erp(erp, plan))]
    if real_crm or real_erp:
        got_crm = _fetch_crm(rt, real_crm, paths, report) if real_crm else {}
        got_erp = _fetch_erp(rt, real_erp, paths, report) if real_erp else {}
        again = []
        for p, snap, crm, erp, plan, ch, eh in planned:
            if p.crm_id in real_crm or p.erp_id in real_erp:
                crm = got_crm.get(p.crm_id, crm) if p.crm_id in real_crm else crm
                erp = got_erp.get(p.erp_id, erp) if p.erp_id in real_erp else erp
                crm, erp, plan = plan_of(p, snap, crm, erp)
                if _copies_hash(plan) or (has_protected(erp) and _write_needs_erp(erp, plan)):
                    report.count("renkei", "errors")  # the side could not be read: the next run retries
                    continue
            again.append((p, snap, crm, erp, plan, ch, eh))
        planned = again

    work: list[_Work] = []
    for p, snap, crm, erp, plan, ch, eh in planned:
        w = _Work(p, plan, crm, erp, ch, eh)
        _report_plan(w, report)
        _prepare_writes(w, report, state, rt)
        work.append(w)

    if state.crash == "after_plan":
        raise RuntimeError("RENKEI_TEST_CRASH_CUSTOMER_SYNC=after_plan")
    erp_work = [w for w in work if w.erp_company is not None and not w.failed]
    if state.erp_writer is not None and state.crm_writer is not None and not state.crash:
        # Full reads: the writes run behind the pages (the next page is planned meanwhile). HubSpot
        # first (batches of 100, one writer thread), then each freee PUT is queued (5 / s) and every
        # pair is recorded once its writes have landed. The run waits for all of it before any cursor.
        waiting = [f for f in state.pending_pages if not f.done()]
        if len(waiting) >= MAX_PAGES_IN_FLIGHT:  # back-pressure: memory stays bounded if writes lag
            waiting[0].result()
        state.pending_pages.append(state.crm_writer.submit(_deferred_page, rt, state, work, erp_work))
        return
    _write_erp(rt, erp_work, paths, report)
    if state.crash == "after_erp_writes":
        raise RuntimeError("RENKEI_TEST_CRASH_CUSTOMER_SYNC=after_erp_writes")
    _write_crm(rt, [w for w in work if w.crm_update is not None and not w.failed], paths, report, state)
    _record(rt, state, work, report)


def _deferred_page(rt: Runtime, state: SyncState, work: Sequence[_Work], erp_work: Sequence[_Work]) -> None:
    local = RunReport(FLOW, state.deferred.flow_run_id if state.deferred else None)
    _write_crm(rt, [w for w in work if w.crm_update is not None and not w.failed], state.paths, local, state)
    assert state.erp_writer is not None
    for w in erp_work:
        if not w.failed:
            state.pending.append(state.erp_writer.submit(_deferred_erp_write, rt, state, w))
    queued = {id(w) for w in erp_work}
    _record(rt, state, [w for w in work if id(w) not in queued], local)
    flush_fast(rt, local)  # audit events and review items now: a first sync has 20,000 of them
    with state.lock:
        assert state.deferred is not None
        state.deferred.merge(local)


def _deferred_erp_write(rt: Runtime, state: SyncState, w: _Work) -> None:
    local = RunReport(FLOW, state.deferred.flow_run_id if state.deferred else None)
    _write_erp(rt, [w], state.paths, local, pool=False)
    _record(rt, state, [w], local)
    flush_fast(rt, local)
    with state.lock:
        assert state.deferred is not None
        state.deferred.merge(local)


def _record(rt: Runtime, state: SyncState, work: Sequence[_Work], report: RunReport) -> None:
    """Store the new base (from the records as re-read after the writes) of each pair written or planned."""
    paths = state.paths
    rows = []
    for w in work:
        if w.failed:
            continue
        crm_after = w.crm_after if w.crm_after is not None else w.crm_before
        erp_after = w.erp_after if w.erp_after is not None else w.erp_before
        for side, path, planned, actual in w.plan.unpersisted(crm_after, erp_after):
            report.count(side, "not_persisted")
            report.row(crm_id=w.pair.crm_id, erp_id=w.pair.erp_id, outcome="WRITE_NOT_PERSISTED", side=side,
                       field=path, planned=shown(path, planned), actual=shown(path, actual))
        base = w.plan.base_from(crm_after, erp_after)
        fields_ = {"crm": base["crm"], "erp": base["erp"], "seen": {"crm": crm_after, "erp": erp_after}}
        rows.append((w.pair.erp_id, fields_,
                     w.crm_hash if crm_after is w.crm_before and w.crm_hash else fhash(crm_after, paths),
                     w.erp_hash if erp_after is w.erp_before and w.erp_hash else fhash(erp_after, paths)))
        if not w.plan.has_writes and not w.plan.conflicts:
            report.count("crm", "unchanged")
            report.count("erp", "unchanged")
    put_snapshots(rt, rows)
    for w in work:  # decided conflicts of the pairs recorded now: carried out (a crash before re-applies: idempotent)
        if not w.failed:
            _decisions_applied(rt, state, w.pair.erp_id,
                               "applied" if w.plan.applied_resolutions else "not_applicable")


def _decisions_applied(rt: Runtime, state: SyncState, erp_id: str, outcome: str) -> None:
    with state.lock:
        ids = state.resolution_items.pop(erp_id, None)
    if ids:
        rt.store.mark_applied(ids, actor=FLOW, outcome=outcome, details={"erp_id": erp_id})


def _copies_hash(plan: MergePlan) -> bool:
    """The plan would write or show a keyed hash as if it were a value."""
    return (any(is_protected(v) for v in (*plan.updates_to_crm.values(), *plan.updates_to_erp.values()))
            or any(is_protected(c.crm) or is_protected(c.erp) for c in plan.conflicts))


def _group(path: str) -> str:
    return path.split(".", 1)[0]


def _write_needs_erp(erp: Mapping[str, Any], plan: MergePlan) -> bool:
    """A freee write keeps the fields it does not send (``PUT /partners/{id}`` sends what is set; nested
    attributes are merged), so a partner standing in from the snapshot can be written without reading it
    first, unless an updated field shares its group (``address``) with a value known only as a keyed hash:
    that group is sent whole and would need the real value. Hashed groups left alone are not sent."""
    if not plan.updates_to_erp:
        return False
    hidden = {_group(p) for p, v in erp.items() if is_protected(v) and p not in plan.updates_to_erp}
    return any(_group(p) in hidden for p in plan.updates_to_erp)


def _erp_write_fields(erp_before: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """The partner as it will be written: every group holding a keyed hash (a personal value not read
    this run, see :func:`_write_needs_erp`) is left out, so freee keeps its value."""
    after = {**erp_before, **updates}
    hidden = {_group(p) for p, v in after.items() if is_protected(v)}
    if not hidden:
        return after
    return {p: v for p, v in after.items() if _group(p) not in hidden}


def _revealed(resolutions: Sequence[Resolution], crm: Mapping[str, Any], erp: Mapping[str, Any], key: bytes
              ) -> list[Resolution]:
    """Decisions on personal fields are recorded with keyed hashes (the review payload): use the values
    read now when they are the ones decided on (else the decision no longer applies)."""
    out = []
    for r in resolutions:
        if not (is_protected(r.crm_value) or is_protected(r.erp_value) or is_protected(r.chosen)):
            out.append(r)
            continue
        now_crm, now_erp = crm.get(r.field, MISSING), erp.get(r.field, MISSING)
        cv = reveal_protected(r.field, r.crm_value, [now_crm], key)
        ev = reveal_protected(r.field, r.erp_value, [now_erp], key)
        chosen = cv if r.chosen == r.crm_value else ev if r.chosen == r.erp_value else r.chosen
        if is_protected(chosen):
            continue  # the decided value is no longer on either side: the decision does not apply
        out.append(Resolution(r.field, cv, ev, chosen))
    return out


def _same_chosen(r: Resolution, crm: Mapping[str, Any], erp: Mapping[str, Any]) -> bool:
    from renkei.domain.ownership import same

    return same(r.field, crm.get(r.field), r.chosen) and same(r.field, erp.get(r.field), r.chosen)


def _seen(snap: BaseSnapshot | None, side: str) -> dict[str, Any] | None:
    if snap is None:
        return None
    seen = (snap.fields or {}).get("seen") or {}
    return seen.get(side)


def _report_plan(w: _Work, report: RunReport) -> None:
    """Foreign changes as rows and audit events, conflicts as review items. Personal values are masked
    where a person or a log sees them and kept as keyed hashes in the review payload (a decision on
    them is applied by comparing hashes, see :func:`_revealed`); markup is escaped."""
    p = w.pair
    key = personal_key()
    for fc in w.plan.foreign_changes:
        if fc.action is ChangeAction.KEPT:
            continue
        report.count(fc.side, "foreign_change")
        report.row(crm_id=p.crm_id, erp_id=p.erp_id, outcome=f"{fc.reason}:{fc.action.value}", side=fc.side,
                   field=fc.field, crm=shown(fc.field, fc.crm), erp=shown(fc.field, fc.erp))
        personal = is_personal_path(fc.field)
        report.event(action="foreign_change", entity=ENTITY, entity_key=p.crm_id, system=fc.side,
                     changes={"field": fc.field, "owner": fc.owner, "action": fc.action.value, "reason": fc.reason,
                              "crm": shown(fc.field, fc.crm) if personal else fc.crm,
                              "erp": shown(fc.field, fc.erp) if personal else fc.erp})
    for c in w.plan.conflicts:
        report.count("renkei", "conflicts")
        kept = (lambda v: protect_personal({c.field: v}, key)[c.field]) if is_personal_path(c.field) else (lambda v: v)
        report.review(reason_code=c.reason, entity=ENTITY, entity_key=f"{p.crm_id}/{p.erp_id}:{c.key}",
                      message=f"{c.field}: HubSpot {shown(c.field, c.crm)} vs freee {shown(c.field, c.erp)} "
                              f"(base {shown(c.field, c.base)}) — choose 'crm' or 'erp' as the decision",
                      payload={"field": c.field, "crm": kept(c.crm), "erp": kept(c.erp), "base": kept(c.base),
                               "crm_id": p.crm_id, "erp_id": p.erp_id, "owner": c.owner.value})
    for r in w.plan.applied_resolutions:
        report.event(action="resolution_applied", entity=ENTITY, entity_key=p.crm_id, system="renkei",
                     changes={"field": r.field,
                              "chosen": shown(r.field, r.chosen) if is_personal_path(r.field) else r.chosen})


def _plausible_updates(rt: Runtime | None, state: SyncState | None, w: _Work, report: RunReport) -> None:
    """HubSpot values about to be copied into freee pass :mod:`domain.plausibility` (see
    :mod:`tasks.customers`): a finding in the name holds every freee update of the pair, another finding
    drops that field; one review item per reason code. A company whose HubSpot text is clean again gets
    its open plausibility items closed."""
    if rt is None:
        return
    rules = rt.policy.plausibility.rules()
    p = w.pair
    findings = flat_findings(w.plan.updates_to_erp, rules) if w.plan.updates_to_erp else []
    if findings:
        held = any(f.field == "name" for f in findings)
        review_findings(report, p.crm_id, findings, held=held)
        report.count("erp", "held_implausible")
        if held:
            w.plan.updates_to_erp.clear()
        else:
            for f in findings:
                w.plan.updates_to_erp.pop(f.field, None)
        return
    open_ids = state.plausibility_open.get(p.crm_id) if state is not None else None
    if open_ids:
        carried = {k: v for k, v in w.crm_before.items() if k.split(".")[0] not in ERP_NOT_CARRIED}
        if not flat_findings({**carried, **w.plan.updates_to_crm}, rules):
            rt.store.resolve_reviews(flow=FLOW, entity=ENTITY, entity_keys=[p.crm_id],
                                     reason_codes=PLAUSIBILITY_REASONS,
                                     comment="the HubSpot text passes the plausibility rules now")
            state.plausibility_open.pop(p.crm_id, None)


def _prepare_writes(w: _Work, report: RunReport, state: SyncState | None = None, rt: Runtime | None = None) -> None:
    """Validate the records as they will be after the writes; build the request bodies."""
    p = w.pair
    _plausible_updates(rt, state, w, report)
    try:
        if w.plan.updates_to_crm:  # the CRM gets only the updated fields: hashes elsewhere stay out
            after = {k: v for k, v in {**w.crm_before, **w.plan.updates_to_crm}.items() if not is_protected(v)}
            company = company_from_fields(after, crm_id=p.crm_id, erp_id=p.erp_id)
            w.crm_update = CompanyUpdate(p.crm_id, company, frozenset(w.plan.updates_to_crm))
        if p.first:  # the cross-system id on the company (as Celigo's "NetSuite Id"), once
            if w.crm_update is None:
                w.crm_update = CompanyUpdate(p.crm_id, Company.model_construct(
                    crm_id=p.crm_id, erp_id=p.erp_id, name=str(w.crm_before.get("name") or "")),
                                             frozenset({"erp_id"}))
            else:
                w.crm_update.fields = w.crm_update.fields | {"erp_id"}
        if w.plan.updates_to_erp:
            company = company_from_fields(_erp_write_fields(w.erp_before, w.plan.updates_to_erp), erp_id=p.erp_id)
            if rt is not None:
                rt.erp.validate_partner(company)  # what the ERP cannot hold is refused before any write
            w.erp_company = company
    except (ValidationError, ValueError) as exc:
        w.failed = True
        report.review(reason_code="INVALID_FOR_WRITE", entity=ENTITY, entity_key=p.crm_id,
                      message=f"not written, the record would be invalid: {_errors(exc)}",
                      payload={"crm_id": p.crm_id, "erp_id": p.erp_id, "to_crm": w.plan.updates_to_crm,
                               "to_erp": w.plan.updates_to_erp})


def _write_erp(rt: Runtime, work: Sequence[_Work], paths: Sequence[str], report: RunReport, pool: bool = True) -> None:
    """freee has no batch partner update: one PUT per partner, a few in flight (the client's limiter
    paces all threads together)."""
    if not work:
        return

    def put(w: _Work) -> tuple[_Work, Any]:
        try:
            return w, rt.erp.update_partner(w.erp_company)
        except (TransientError, QuotaExhausted):
            raise
        except ConnectorError as exc:
            return w, exc

    if len(work) == 1 or not pool:
        results = [put(w) for w in work]
    else:
        with ThreadPoolExecutor(min(FREEE_WRITE_WORKERS, len(work)), thread_name_prefix="freee-write") as pool:
            results = list(pool.map(put, work))
    for w, out in results:
        if isinstance(out, ConnectorError):
            w.failed = True
            report.count("erp", "errors")
            report.review(reason_code="ERP_WRITE_FAILED", entity=ENTITY, entity_key=w.pair.crm_id,
                          message=f"freee partner {w.pair.erp_id} not updated: {out}",
                          payload={"erp_id": w.pair.erp_id, "updates": w.plan.updates_to_erp}, side="erp")
            continue
        res = out
        w.erp_after = side_fields(res.value, "erp", paths) if res.ok else {**w.erp_before, **w.plan.updates_to_erp}
        report.count("erp", "updated")
        report.event(action="update", entity=ENTITY, entity_key=w.pair.crm_id, system="erp",
                     changes={"erp_id": w.pair.erp_id, **w.plan.updates_to_erp})


def _write_crm(rt: Runtime, work: Sequence[_Work], paths: Sequence[str], report: RunReport,
               state: SyncState | None = None) -> None:
    """HubSpot batch update, 100 per request; the response's properties are the re-read record."""
    if not work:
        return
    results = rt.crm.update_companies([w.crm_update for w in work])
    seen: set[str] = set()
    stamps: list[tuple[str, Any]] = []
    for r in results:
        w = work[r.index] if r.index is not None and r.index < len(work) else None
        if w is None:
            continue
        seen.add(w.pair.crm_id)
        if not r.ok:
            w.failed = True
            report.count("crm", "errors")
            report.review(reason_code="CRM_WRITE_FAILED", entity=ENTITY, entity_key=w.pair.crm_id,
                          message=f"HubSpot company not updated: {r.error}",
                          payload={"updates": w.plan.updates_to_crm}, side="crm")
            continue
        after = {**w.crm_before, **w.plan.updates_to_crm}
        echo = r.value
        if echo is not None and state is not None and echo.version:
            stamps.append((w.pair.crm_id, echo.version))
        if echo is not None and echo.company is not None:
            echoed = side_fields(echo.company, "crm", paths)
            for path in w.plan.updates_to_crm:
                if path in echo.fields and path in echoed:
                    after[path] = echoed[path]
        w.crm_after = after
        report.count("crm", "updated")
        report.event(action="update", entity=ENTITY, entity_key=w.pair.crm_id, system="crm",
                     changes=dict(w.plan.updates_to_crm))
    if state is not None:
        state.written_ts.put_many(stamps)
    for w in work:
        if w.pair.crm_id not in seen:
            w.failed = True
            report.count("crm", "errors")


# ---------------------------------------------------------------------------------------------------
# a page of HubSpot changes


def _review_match(report: RunReport, source_side: str, source_id: str, name: str, result: Any,
                  record: Company | None = None) -> None:
    other = "freee partner" if source_side == "crm" else "HubSpot company"
    report.review(reason_code=str(result.reason or "DOUBTFUL_MATCH"), entity=ENTITY,
                  entity_key=f"{source_side}:{source_id}",
                  message=f"{name}: {result.reason} — link it to one of the candidates or create a new {other}",
                  payload={"source_side": source_side, "source_id": source_id, "name": name,
                           "notes": list(result.notes),
                           "candidates": [{"id": c.target_id, "name": safe_text(c.name), "reasons": list(c.reasons),
                                           "score": c.score} for c in result.candidates]},
                  side=source_side, fingerprint=content_hash(record) if record is not None else None)


def resolve_invalid(rt: Runtime, state: SyncState, key: str) -> None:
    """A record that was invalid reads fine now: its review item is closed (it is synced below)."""
    rid = state.invalid_open.pop(key, None)
    if rid is not None:
        rt.store.decide_review(rid, decision="resolved", decided_by=FLOW, comment="the record is valid now",
                               status="resolved")


def handle_merges(rt: Runtime, state: SyncState, company: Company, merged: Sequence[str], report: RunReport) -> None:
    """A CRM merge (capability ``merges``): the survivor lists the merged-away ids. The ID-map row
    follows the survivor (preferring the partner whose id or code the survivor carries); every other
    partner that loses its company stays in the ERP and is handled per ``sync.on_crm_delete``."""
    old = [m for m in merged if m != company.crm_id and state.crm_to_erp.get(m)]
    if not old:
        return
    survivor = str(company.crm_id)
    keep: str | None = None
    if survivor not in state.crm_to_erp:
        prefer = [m for m in old if state.crm_to_erp[m] in (company.erp_id, None)
                  or (company.partner_code and company.partner_code == partner_code_for(m))]
        keep = (prefer or old)[0]
        erp_id = state.crm_to_erp.pop(keep)
        rt.store.relink_crm(ENTITY, keep, survivor)
        state.crm_to_erp[survivor], state.erp_to_crm[erp_id] = erp_id, survivor
        state.status[survivor], state.status[keep] = "active", "merged"
        report.count("renkei", "relinked")
        report.event(action="relink", entity=ENTITY, entity_key=survivor, system="renkei",
                     changes={"merged_from": keep, "erp_id": erp_id})
    for m in old:
        if m == keep:
            continue
        erp_id = state.crm_to_erp.pop(m)
        state.erp_status.pin(erp_id)  # the partner's own id-map status stays as it was
        state.erp_to_crm.pop(erp_id, None)
        rt.store.set_link_status(ENTITY, m, "merged")
        state.status[m] = "merged"
        crm_gone(rt, state, m, erp_id, "CRM_MERGED", f"HubSpot company {m} was merged into {survivor}", report)


def crm_gone(rt: Runtime, state: SyncState, crm_id: str, erp_id: str, reason: str, message: str,
             report: RunReport) -> None:
    """A linked company archived or merged away in HubSpot: ``sync.on_crm_delete`` decides (default: a
    review item; never a deletion in accounting)."""
    mode = rt.policy.sync.on_crm_delete
    report.event(action=reason.lower(), entity=ENTITY, entity_key=crm_id, system="crm", changes={"erp_id": erp_id})
    if mode == "ignore":
        return
    if mode == "deactivate":
        try:
            rt.erp.deactivate_partner(erp_id)
            report.count("erp", "deactivated")
            report.event(action="deactivate", entity=ENTITY, entity_key=crm_id, system="erp",
                         changes={"erp_id": erp_id})
            return
        except ConnectorError as exc:
            if isinstance(exc, (TransientError, QuotaExhausted)):
                raise
            message += f"; deactivating the partner failed: {exc}"
    report.review(reason_code=reason, entity=ENTITY, entity_key=crm_id,
                  message=f"{message}; freee partner {erp_id} was left as it is — deactivate or relink it",
                  payload={"crm_id": crm_id, "erp_id": erp_id}, side="crm")


def own_echo(state: SyncState, res: CompanyRecord) -> bool:
    """Is this record our own write coming back, nothing changed since (same modification stamp)?"""
    ts = res.version
    return bool(ts) and state.written_ts.get(str(res.source_id)) == _stamp(ts)


def own_echoes(state: SyncState, records: Sequence[CompanyRecord]) -> set[str]:
    """The ids among ``records`` that are our own writes coming back (:func:`own_echo`, one look-up)."""
    if not len(state.written_ts):
        return set()
    stamps = state.written_ts.get_many(str(r.source_id) for r in records if r.version)
    return {str(r.source_id) for r in records
            if r.version and str(r.source_id) in stamps and stamps[str(r.source_id)] == _stamp(r.version)}


def _stamp(version: Any) -> int | str:
    """A modification stamp as kept in ``written_ts``: a millisecond number as an int (half a string's
    memory, 100,000 of them in a first sync), anything else as its text."""
    s = str(version)
    return int(s) if s.isdigit() and s[0] != "0" and len(s) < 19 else s


def sync_crm_records(rt: Runtime, state: SyncState, records: Sequence[CompanyRecord], report: RunReport) -> None:
    """One page of changed CRM companies."""
    paths = state.paths
    pairs: list[Pair] = []
    unmatched: list[tuple[Company, dict]] = []
    linked = (state.crm_to_erp.get(str(r.value.crm_id)) for r in records if r.ok and r.value is not None)
    erp_read = state.erp_changed.get_many(e for e in linked if e is not None and e not in state.erp_done)
    echoes = own_echoes(state, records)
    for res in records:
        ts = res.version
        if str(res.source_id) in echoes:
            report.count("crm", "unchanged")  # our own write coming back, nothing changed since
            continue
        if not res.ok:
            report.review(reason_code="INVALID_CRM_COMPANY", entity=ENTITY, entity_key=str(res.source_id),
                          message=f"HubSpot company not synced: {res.error}", side="crm",
                          fingerprint=f"hubspot:{ts}" if ts else None)  # a changed company: a new item
            continue
        company = res.value
        crm_id = str(company.crm_id)
        resolve_invalid(rt, state, crm_id)
        handle_merges(rt, state, company, res.merged_ids, report)
        if company.archived:
            continue
        flat = side_fields(company, "crm", paths)
        erp_id = state.crm_to_erp.get(crm_id)
        if erp_id is not None:
            got = None  # handled already: what was seen stands in
            if erp_id not in state.erp_done:  # read back above with the page's others (or now, after a merge)
                got = erp_read[erp_id] if erp_id in erp_read else state.erp_changed.get(erp_id)
            erp_now = erp_flat(got.value) if got is not None and got.ok else None
            if got is not None:
                state.done_erp(erp_id)
                if got.ok and got.value["archived"]:
                    erp_deactivated(rt, state, crm_id, erp_id, report)
                    continue
            pairs.append(Pair(crm_id, erp_id, flat, erp_now))
        elif state.status.get(crm_id) in (None, "active"):
            if crm_id in state.held_crm:
                report.count("crm", "awaiting_review")
                continue
            unmatched.append((company, flat))
    pairs.extend(match_crm_companies(rt, state, unmatched, report))
    sync_pairs(rt, state, pairs, report)


def match_crm_companies(rt: Runtime, state: SyncState, unmatched: Sequence[tuple[Company, dict]],
                        report: RunReport) -> list[Pair]:
    """Companies without a partner: our own deterministic partner (a crash between create and link) →
    link; else the matching rules: LINK, CREATE (upsert by 取引先コード ``HS-<id>``) or REVIEW."""
    if not unmatched:
        return []
    index = full_partner_index(rt, state, report)
    by_code = state.by_code  # built with the index (a released partner's record is a stub: linked already)
    out: list[Pair] = []
    to_link: list[tuple[str, str]] = []
    rest: list[tuple[Company, dict]] = []
    records = state.index_records
    assert records is not None
    own = {str(c.crm_id): by_code.get(partner_code_for(str(c.crm_id))) for c, _f in unmatched}
    found = records.records(index.keys[i].id for i in own.values() if i is not None)  # type: ignore[misc]
    for company, flat in unmatched:
        i = own[str(company.crm_id)]
        target = found.get(index.keys[i].id) if i is not None else None  # type: ignore[arg-type]
        if target is not None and _STUB not in target and str(target["erp_id"]) not in state.erp_to_crm:
            to_link.append((str(company.crm_id), str(target["erp_id"])))
            out.append(Pair(str(company.crm_id), str(target["erp_id"]), flat, erp_flat(target), first=True))
        else:
            rest.append((company, flat))
    results = match_batch([c for c, _ in rest], index) if rest else []
    targets = records.records(str(r.target) for r in results if r.kind is MatchKind.LINK)
    creates: list[tuple[Company, dict]] = []
    for (company, flat), result in zip(rest, results):
        crm_id = str(company.crm_id)
        if result.kind is MatchKind.LINK:
            erp_id = str(result.target)
            target = targets[erp_id]
            to_link.append((crm_id, erp_id))
            out.append(Pair(crm_id, erp_id, flat, erp_flat(target), first=True))
            report.event(action="link", entity=ENTITY, entity_key=crm_id, system="renkei",
                         changes={"erp_id": erp_id, "rule": result.rule.value})
        elif result.kind is MatchKind.CREATE:
            creates.append((company, flat))
        else:
            for c in result.candidates:
                state.held_erp.add(c.target_id)
            state.held_crm.add(crm_id)
            _review_match(report, "crm", crm_id, display_name(company), result, company)
    linked = link_many(rt, to_link)
    for crm_id, erp_id in linked:
        state.link(crm_id, erp_id)
        state.done_erp(erp_id)
    report.count("erp", "linked", len(linked))
    out = [p for p in out if (p.crm_id, p.erp_id) in set(linked)]
    for company, flat in creates:
        pair = create_partner(rt, state, company, flat, report)
        if pair is not None:
            out.append(pair)
    return out


def create_partner(rt: Runtime, state: SyncState, company: Company, flat: dict, report: RunReport) -> Pair | None:
    crm_id = str(company.crm_id)
    checked = plausible_company(rt, company, report)  # implausible text never reaches freee
    if checked is None:
        report.count("erp", "held_implausible")
        return None
    if checked is company and state.plausibility_open.pop(crm_id, None):
        rt.store.resolve_reviews(flow=FLOW, entity=ENTITY, entity_keys=[crm_id], reason_codes=PLAUSIBILITY_REASONS,
                                 comment="the HubSpot text passes the plausibility rules now")
    company = checked
    code = company.partner_code or partner_code_for(crm_id)
    try:
        if company_settings(rt).use_partner_code:
            made, _created = rt.erp.upsert_partner(company.model_copy(update={"partner_code": code}))
        else:  # 取引先コード off: claim + lookup by name, never a code (tasks.customers)
            made, _created = create_partner_once(rt, company, report)
            if made is None:
                return None
    except ValueError as exc:
        report.review(reason_code="INVALID_FOR_WRITE", entity=ENTITY, entity_key=crm_id,
                      message=f"{display_name(company)}: cannot be created in freee: {exc}", side="erp")
        return None
    except ConnectorError as exc:
        if isinstance(exc, (TransientError, QuotaExhausted)):
            raise
        report.count("erp", "errors")
        report.review(reason_code="ERP_CREATE_FAILED", entity=ENTITY, entity_key=crm_id,
                      message=f"{display_name(company)}: freee refused the new partner: {exc}", side="erp")
        return None
    erp_id = str(made.erp_id)
    got = rt.store.link_or_adopt(ENTITY, crm_id, erp_id)  # a concurrent run may have linked it first
    if got is None:
        report.review(reason_code="PARTNER_LINKED_ELSEWHERE", entity=ENTITY, entity_key=crm_id,
                      message=f"freee partner {erp_id} is already linked to another HubSpot company",
                      payload={"erp_id": erp_id}, side="erp")
        return None
    if got != erp_id:
        report.count("erp", "adopted")
        state.link(crm_id, got)
        return Pair(crm_id, got, flat, None, first=True)
    state.link(crm_id, erp_id)
    state.erp_done.add(erp_id)
    if state.index is not None and erp_id not in state.index.by_id:
        rec = erp_record(made, state.paths)
        state.index.add(rec)
        if state.index_records is not None:
            state.index_records.add_extra(erp_id, rec)
        if made.partner_code:
            state.by_code[str(made.partner_code)] = state.index.by_id[erp_id]
    report.count("erp", "created")
    report.event(action="create", entity=ENTITY, entity_key=crm_id, system="erp",
                 changes={"erp_id": erp_id, "partner_code": code, "name": display_name(company)})
    return Pair(crm_id, erp_id, flat, side_fields(made, "erp", state.paths), first=True)


def erp_deactivated(rt: Runtime, state: SyncState, crm_id: str, erp_id: str, report: RunReport) -> None:
    """A linked partner deactivated in freee: reported (``sync.on_erp_delete``), the pair stops syncing."""
    if rt.policy.sync.on_erp_delete == "report":
        report.review(reason_code="PARTNER_DEACTIVATED", entity=ENTITY, entity_key=crm_id,
                      message=f"freee partner {erp_id} was deactivated; HubSpot company {crm_id} is no longer synced",
                      payload={"crm_id": crm_id, "erp_id": erp_id}, side="erp")
    rt.store.set_link_status(ENTITY, crm_id, "erp_inactive")
    state.crm_to_erp.pop(crm_id, None)
    state.erp_to_crm.pop(erp_id, None)
    state.status[crm_id] = state.erp_status[erp_id] = "erp_inactive"
    report.event(action="erp_deactivated", entity=ENTITY, entity_key=crm_id, system="erp", changes={"erp_id": erp_id})


# ---------------------------------------------------------------------------------------------------
# freee changes no HubSpot page covered


def sync_erp_records(rt: Runtime, state: SyncState, results: Sequence[MapResult[dict]], report: RunReport) -> None:
    pairs: list[Pair] = []
    unmatched: list[Company] = []
    for res in results:
        if not res.ok:
            report.review(reason_code="INVALID_ERP_PARTNER", entity=ENTITY, entity_key=f"erp:{res.source_id}",
                          message=f"freee partner not synced: {res.error}", side="erp")
            continue
        rec = res.value
        erp_id = str(rec["erp_id"])
        resolve_invalid(rt, state, f"erp:{erp_id}")
        crm_id = state.erp_to_crm.get(erp_id)
        if crm_id is not None:
            if rec["archived"]:
                erp_deactivated(rt, state, crm_id, erp_id, report)
                continue
            pairs.append(Pair(crm_id, erp_id, None, erp_flat(rec)))
        elif state.erp_status.get(erp_id) == "erp_inactive" and not rec["archived"]:
            continue  # reactivation: a person relinks it (the review item says so)
        elif erp_id not in state.erp_status and not rec["archived"]:
            if erp_id in state.held_erp:
                report.count("erp", "awaiting_review")
                continue
            unmatched.append(company_from_fields(erp_flat(rec), erp_id=erp_id))
    pairs.extend(match_erp_partners(rt, state, unmatched, report))
    sync_pairs(rt, state, pairs, report)


def match_erp_partners(rt: Runtime, state: SyncState, partners: Sequence[Company], report: RunReport) -> list[Pair]:
    """Partners without a company: candidates come from one HubSpot search per partner (corporate /
    registration number, partner code, name, phone), then the same matching rules: LINK, CREATE (upsert
    by ``renkei_freee_partner_id``, idempotent) or REVIEW."""
    if not partners:
        return []
    paths = state.paths
    cands: dict[str, Company] = {}
    for p in partners:
        for res in rt.crm.find_company_candidates(p, limit=50):
            if res.ok:
                cands[str(res.source_id)] = res.value
    index = MatchIndex(list(cands.values()), id_field="crm_id", source_id_field="erp_id",
                       mapped_ids=set(state.status))
    out: list[Pair] = []
    creates: list[Company] = []
    to_link: list[tuple[str, str]] = []
    for p, result in zip(partners, match_batch(list(partners), index)):
        erp_id = str(p.erp_id)
        if result.kind is MatchKind.LINK:
            crm_id = str(result.target)
            if crm_id in state.held_crm:
                report.count("erp", "awaiting_review")
                continue
            to_link.append((crm_id, erp_id))
            out.append(Pair(crm_id, erp_id, side_fields(cands[crm_id], "crm", paths),
                            side_fields(p, "erp", paths), first=True))
        elif result.kind is MatchKind.CREATE:
            creates.append(p)
        else:
            state.held_erp.add(erp_id)
            _review_match(report, "erp", erp_id, display_name(p), result, p)
    linked = link_many(rt, to_link)
    for crm_id, erp_id in linked:
        state.link(crm_id, erp_id)
    report.count("crm", "linked", len(linked))
    out = [pr for pr in out if (pr.crm_id, pr.erp_id) in set(linked)]
    if creates:
        out.extend(create_companies(rt, state, creates, report))
    return out


def create_companies(rt: Runtime, state: SyncState, partners: Sequence[Company], report: RunReport) -> list[Pair]:
    ok = list(partners)
    results = rt.crm.upsert_companies(ok, key="erp_id")  # by the partner id: a retry finds the same company
    out: list[Pair] = []
    for r in results:
        p = ok[r.index]
        if not r.ok:
            report.count("crm", "errors")
            report.review(reason_code="CRM_CREATE_FAILED", entity=ENTITY, entity_key=f"erp:{p.erp_id}",
                          message=f"{display_name(p)}: HubSpot refused the new company: {r.error}", side="crm")
            continue
        crm_id = str(r.id)
        if rt.store.link_or_adopt(ENTITY, crm_id, str(p.erp_id)) != str(p.erp_id):  # a concurrent run won
            report.review(reason_code="PARTNER_LINKED_ELSEWHERE", entity=ENTITY, entity_key=f"erp:{p.erp_id}",
                          message=f"HubSpot company {crm_id} or freee partner {p.erp_id} is linked elsewhere already",
                          payload={"crm_id": crm_id, "erp_id": str(p.erp_id)}, side="crm")
            continue
        state.link(crm_id, str(p.erp_id))
        report.count("crm", "created")
        report.event(action="create", entity=ENTITY, entity_key=crm_id, system="crm",
                     changes={"erp_id": p.erp_id, "name": display_name(p)})
        crm_flat = side_fields(r.value, "crm", state.paths) if r.value is not None else None
        out.append(Pair(crm_id, str(p.erp_id), crm_flat, side_fields(p, "erp", state.paths), first=True))
    return out


# ---------------------------------------------------------------------------------------------------
# deletes


def resolution_pairs(state: SyncState) -> list[Pair]:
    """Pairs with a decided conflict: processed every run (a decision changes neither system, so no
    change feed would bring them), hash-skipped unless the decision still has to be applied."""
    return [Pair(state.erp_to_crm[e], e) for e in state.resolutions if e in state.erp_to_crm]


def check_crm_archived(rt: Runtime, state: SyncState, report: RunReport) -> None:
    """Linked companies archived in HubSpot (search never returns archived records, so the archived list
    is read: one request per 100 archived companies, independent of the live total)."""
    for page in rt.crm.iter_archived_company_ids():
        for crm_id in page:
            crm_id = str(crm_id)
            erp_id = state.crm_to_erp.get(crm_id)
            if erp_id is None:
                continue
            rt.store.set_link_status(ENTITY, crm_id, "archived")
            state.crm_to_erp.pop(crm_id, None)
            state.erp_status.pin(erp_id)  # the partner's own id-map status stays as it was
            state.erp_to_crm.pop(erp_id, None)
            state.status[crm_id] = "archived"
            crm_gone(rt, state, crm_id, erp_id, "CRM_ARCHIVED", f"HubSpot company {crm_id} was archived", report)


def check_erp_deleted(rt: Runtime, state: SyncState, report: RunReport) -> None:
    """After a full freee read: linked partners that no longer exist are reported."""
    if not state.erp_full:
        return
    for erp_id, crm_id in list(state.erp_to_crm.items()):
        if erp_id in state.erp_changed or erp_id not in state.linked_at_start:
            continue
        if rt.policy.sync.on_erp_delete == "report":
            report.review(reason_code="PARTNER_DELETED", entity=ENTITY, entity_key=crm_id,
                          message=f"freee partner {erp_id} no longer exists; HubSpot company {crm_id} is not synced",
                          payload={"crm_id": crm_id, "erp_id": erp_id}, side="erp")
        rt.store.set_link_status(ENTITY, crm_id, "erp_deleted")
        state.crm_to_erp.pop(crm_id, None)
        state.erp_to_crm.pop(erp_id, None)
        state.status[crm_id] = state.erp_status[erp_id] = "erp_deleted"


# ---------------------------------------------------------------------------------------------------
# decisions people took on review items (domain.decisions), carried out once


def apply_review_decisions(rt: Runtime, state: SyncState, report: RunReport) -> None:
    """Decided match and invalid-record items (``renkei reviews resolve`` or the Prefect form), each
    carried out once: *link* writes the ID-map pair and the decision's applied mark in one transaction,
    then syncs the pair; *create* creates the record on the other side (idempotent: by 取引先コード /
    the partner id, or the create claim) and then marks the decision; *retry* reads the record again and
    syncs it (a problem still there opens a new item). A crash between an effect and its mark re-applies
    it on the next run, which finds the effect done."""
    from renkei.store.repo import IdConflict

    pairs: list[Pair] = []
    for crm_id, erp_id in state.decided_links:  # linked before a crash, never synced: synced now
        if state.crm_to_erp.get(crm_id) == erp_id:
            state.done_erp(erp_id)
            pairs.append(Pair(crm_id, erp_id, None, None, first=True))
    for item in state.decisions:
        d = item.decision_data or {}
        eff = d.get("effect") or {}
        details = {"review_id": item.id, "choice": d.get("choice"), "by": d.get("by")}
        if "link" in eff:
            crm_id, erp_id = str(eff["link"]["crm_id"]), str(eff["link"]["erp_id"])
            try:
                outcome = rt.store.link_decided(ENTITY, crm_id, erp_id, int(item.id), actor=FLOW)
            except IdConflict as exc:
                rt.store.mark_applied([item.id], actor=FLOW, outcome="refused", details={**details, "why": str(exc)})
                report.review(reason_code="PARTNER_LINKED_ELSEWHERE", entity=ENTITY, entity_key=crm_id,
                              message=f"review {item.id} chose freee partner {erp_id}, but {exc}",
                              payload={"crm_id": crm_id, "erp_id": erp_id, "review_id": item.id}, side="renkei")
                continue
            got = state.erp_changed.get(erp_id) if erp_id not in state.erp_done else None
            erp_now = erp_flat(got.value) if got is not None and got.ok and got.value is not None else None
            state.link(crm_id, erp_id)
            state.held_crm.discard(crm_id)
            state.held_erp.discard(erp_id)
            state.done_erp(erp_id)
            report.count("erp", "linked")
            report.event(action="link", entity=ENTITY, entity_key=crm_id, system="renkei",
                         changes={"erp_id": erp_id, "rule": "review_decision", **details, "outcome": outcome})
            pairs.append(Pair(crm_id, erp_id, None, erp_now, first=True))
        elif "create" in eff:
            _apply_create(rt, state, item, eff["create"], details, report, pairs)
        elif "retry" in eff:
            _apply_retry(rt, state, item, details, report)
    if pairs:
        sync_pairs(rt, state, pairs, report)


def _apply_create(rt: Runtime, state: SyncState, item: Any, eff: Mapping[str, Any], details: dict[str, Any],
                  report: RunReport, pairs: list[Pair]) -> None:
    source = str(eff["source_id"])
    if eff.get("from") == "crm":
        if source in state.crm_to_erp:  # created before a crash: nothing left but the mark
            rt.store.mark_applied([item.id], actor=FLOW, outcome="applied",
                                  details={**details, "erp_id": state.crm_to_erp[source], "outcome": "already"})
            return
        got = [r for r in rt.crm.get_companies([source]) if r.ok]
        if not got:
            rt.store.mark_applied([item.id], actor=FLOW, outcome="failed",
                                  details={**details, "why": "the HubSpot company cannot be read"})
            return
        company = got[0].value
        state.held_crm.discard(source)
        pair = create_partner(rt, state, company, side_fields(company, "crm", state.paths), report)
        if pair is None:  # refused (a review item says why): the decision was carried out, the record failed
            rt.store.mark_applied([item.id], actor=FLOW, outcome="failed", details=details)
            return
        rt.store.mark_applied([item.id], actor=FLOW, details={**details, "erp_id": pair.erp_id})
        pairs.append(pair)
        return
    erp_id = source
    if erp_id in state.erp_to_crm:
        rt.store.mark_applied([item.id], actor=FLOW, outcome="applied",
                              details={**details, "crm_id": state.erp_to_crm[erp_id], "outcome": "already"})
        return
    try:
        res = rt.erp.get_partner(erp_id)
    except ConnectorError as exc:
        if isinstance(exc, (TransientError, QuotaExhausted)):
            raise
        res = MapResult(erp_id, None, str(exc))
    if not res.ok:
        rt.store.mark_applied([item.id], actor=FLOW, outcome="failed",
                              details={**details, "why": f"the freee partner cannot be read: {res.error}"})
        return
    state.held_erp.discard(erp_id)
    made = create_companies(rt, state, [res.value], report)
    rt.store.mark_applied([item.id], actor=FLOW, outcome="applied" if made else "failed",
                          details={**details, **({"crm_id": made[0].crm_id} if made else {})})
    state.done_erp(erp_id)
    pairs.extend(made)


def _apply_retry(rt: Runtime, state: SyncState, item: Any, details: dict[str, Any], report: RunReport) -> None:
    key = str(item.entity_key)
    if key.startswith("erp:") or item.reason_code == "INVALID_ERP_PARTNER":
        erp_id = key.removeprefix("erp:")
        try:
            res = rt.erp.get_partner(erp_id)
            got = MapResult(erp_id, erp_record(res.value, state.paths), None) if res.ok else \
                MapResult(erp_id, None, res.error)
        except ConnectorError as exc:
            if isinstance(exc, (TransientError, QuotaExhausted)):
                raise
            got = MapResult(erp_id, None, str(exc))
        state.erp_changed.pop(erp_id, None)
        sync_erp_records(rt, state, [got], report)
        state.erp_done.add(erp_id)
    else:
        crm_id = key.split("/")[0]
        records = rt.crm.get_companies([crm_id])
        if records:
            sync_crm_records(rt, state, records, report)
        else:
            report.review(reason_code="INVALID_CRM_COMPANY", entity=ENTITY, entity_key=crm_id,
                          message=f"HubSpot company {crm_id} cannot be read", side="crm")
    rt.store.mark_applied([item.id], actor=FLOW, details={**details, "retried": key})
