"""The receiver: ``POST /webhooks/hubspot`` (HubSpot v3 signature) and ``POST /inbound/{order|payment}``
(shared-secret HMAC), each delivery checked, recorded in the state store (replays refused), acknowledged
at once, and turned into Prefect events by a background batcher.

Per delivery: signature and timestamp (401, nothing recorded) → body shape (400) → each event classified
(a deal moving to a won stage → ``renkei.crm.deal.changed``; a deal created → the same, once the batcher
has read its stage and found it won; a company change → ``renkei.crm.company.changed``; the rest ignored)
→ one ``webhook_event`` row per key (an already-seen key is a replay: counted, not emitted) → 200 with the
counts. The batcher sends a change after a quiet spell at once and, during a burst, one batch per
``spacing`` (``batch_seconds``, or ``run_seconds / max_runs`` when larger) with one Prefect event per
change; the events of one burst share a ``renkei.batch-id`` label and carry all the burst's ids in
``payload.deal_ids`` / ``payload.company_ids``,
so the deployment trigger (``for_each: renkei.batch-id``) starts ONE run per burst with those ids.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from renkei.webhooks.emit import Emitter, prefect_event
from renkei.webhooks.inbound import validate as validate_inbound
from renkei.webhooks.ledger import DEAL_CHANGED, Ledger, Row
from renkei.webhooks.signature import MAX_AGE_SECONDS, check_hubspot_v3, check_inbound

log = logging.getLogger("renkei.webhooks")

COMPANY_CHANGED = "renkei.crm.company.changed"
INBOUND_KINDS = ("order", "payment")
INBOUND_ORDER = "renkei.inbound.order"
INBOUND_PAYMENT = "renkei.inbound.payment"
ID_FIELD = {DEAL_CHANGED: "deal_ids", COMPANY_CHANGED: "company_ids"}
COMPANY_CHANGES = {"company.creation", "company.propertyChange", "company.merge", "company.restore"}


class Batcher:
    """Background thread: pending rows → Prefect events. A change after a quiet spell goes at once; during a
    burst the changes gathered meanwhile go together, one batch per ``spacing`` (``window_s``, or
    ``run_seconds / max_runs`` when larger: each batch is one triggered run); at most ``max_ids`` distinct ids
    per event name and batch. ``screen`` drops rows found irrelevant just before emission. A failed emission
    is retried (rows stay pending in the store meanwhile, and are emitted again at the next start if the
    process dies)."""

    def __init__(self, ledger: Ledger, emitter: Emitter, *, window_s: float = 1.0, max_ids: int = 100,
                 screen: Callable[[list[Row]], list[Row]] | None = None, max_runs: int = 0,
                 run_seconds: float = 10.0):
        self.ledger, self.emitter, self.window_s, self.max_ids = ledger, emitter, window_s, max_ids
        # each send is a triggered run (one process start each), and a run beyond the deployment's
        # concurrency limit waits for Prefect's slot retry: during a burst, sends are spaced so that about
        # max_runs runs of run_seconds each are under way at a time; a change after a quiet spell goes at once
        self.max_runs, self.run_seconds = max_runs, run_seconds
        self.screen = screen  # drops rows found irrelevant just before emission (created deals not won)
        self.queue: list[Row] = []
        self.cond = threading.Condition()
        self.busy = False
        self.stopped = False
        self.thread: threading.Thread | None = None
        self.emitted = 0
        self.failures = 0
        self.last_sent = float("-inf")

    @property
    def spacing(self) -> float:
        """Seconds between two sends during a burst."""
        return max(self.window_s, self.run_seconds / self.max_runs if self.max_runs else 0.0)

    def start(self) -> None:
        if self.thread is None:
            self.submit(self.ledger.pending())  # what a previous process acknowledged but never emitted
            self.thread = threading.Thread(target=self._loop, name="renkei-webhook-batcher", daemon=True)
            self.thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        if self.thread is not None:
            self.thread.join(timeout_s)
            self.thread = None

    def submit(self, rows: list[Row]) -> None:
        rows = [r for r in rows if r.relevant]
        if rows:
            with self.cond:
                self.queue.extend(rows)
                self.cond.notify_all()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything submitted has been emitted (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while (self.queue or self.busy) and time.monotonic() < deadline:
                self.cond.notify_all()
                self.cond.wait(0.05)
            return not (self.queue or self.busy)

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.stopped:
                    self.cond.wait()
                if self.stopped and not self.queue:
                    return
                # leading edge: after a quiet window the first change goes at once (a lone won deal
                # waits for nothing); during a burst, changes gather until a window after the last send
                until = self.last_sent + self.spacing
                while (not self.stopped and time.monotonic() < until
                       and len({r.object_id for r in self.queue}) < self.max_ids):
                    self.cond.wait(max(0.0, until - time.monotonic()))
                self.last_sent = time.monotonic()
                rows, self.queue = self.queue, []
                self.busy = True
            try:
                self._emit(rows)
            except Exception as exc:  # noqa: BLE001 - keep the rows, retry after a pause
                self.failures += 1
                log.warning("emitting %d webhook events failed (%s); retrying", len(rows), type(exc).__name__)
                with self.cond:
                    self.queue = rows + self.queue
                time.sleep(min(30.0, 0.5 * 2 ** min(self.failures, 6)))
            finally:
                with self.cond:
                    self.busy = False
                    self.cond.notify_all()

    def _emit(self, rows: list[Row]) -> None:
        if self.screen is not None:
            keep = self.screen(rows)
            kept = {id(r) for r in keep}
            dropped = [r.id for r in rows if id(r) not in kept and r.id is not None]
            if dropped:
                self.ledger.mark_ignored(dropped)
            rows = keep
        groups: "OrderedDict[str, list[Row]]" = OrderedDict()
        for r in rows:
            groups.setdefault(r.event, []).append(r)
        for name, group in groups.items():
            ids = list(dict.fromkeys(r.object_id for r in group))
            for start in range(0, len(ids), self.max_ids):
                chunk = set(ids[start:start + self.max_ids])
                part = [r for r in group if r.object_id in chunk]
                batch_id = uuid.uuid4().hex
                keys = [i for i in ids if i in chunk]
                # an inbound order names a CRM deal: the burst's deals, for the order-to-invoice trigger
                deal_ids = (list(dict.fromkeys(str(r.payload["deal_id"]) for r in part if r.payload.get("deal_id")))
                            if name == INBOUND_ORDER else None)
                self.emitter.emit([_event(name, r, batch_id, keys, deal_ids=deal_ids) for r in part])
                self.ledger.mark_emitted([r.id for r in part if r.id is not None], batch_id)
                self.emitted += len(part)
                self.failures = 0


def _event(name: str, row: Row, batch_id: str, ids: list[str], *, deal_ids: list[str] | None = None) -> dict[str, Any]:
    if name.startswith("renkei.inbound."):
        resource = {"prefect.resource.id": f"{name}.{row.object_id}", "renkei.batch-id": batch_id,
                    "renkei.idempotency-key": row.object_id}
        # the body stays in the state store (webhook_event.payload): event payloads show in the Prefect UI,
        # and an order or payment notice may carry people's names and addresses
        payload = {k: v for k, v in row.payload.items() if k != "body"} | {"webhook_event_id": row.id, "keys": ids}
        if name == INBOUND_ORDER:
            payload["deal_ids"] = deal_ids if deal_ids is not None else [str(row.payload.get("deal_id", ""))]
    else:
        kind = name.split(".")[2]  # deal | company
        resource = {"prefect.resource.id": f"renkei.crm.{kind}.{row.object_id}", "renkei.batch-id": batch_id,
                    f"renkei.crm.{kind}-id": row.object_id}
        payload = {**row.payload, ID_FIELD[name]: ids}
    return prefect_event(name, resource, payload, occurred=row.occurred_at)


class Receiver:
    """Checks, records and hands over deliveries. ``won_stages()`` returns the configured won stages (None
    = unknown: every deal stage change is passed on and the flow decides). ``deal_stages(ids)`` reads the
    current stage of deals (one HubSpot batch read per burst): a ``deal.creation`` carries no stage, so a
    created deal is emitted only when this finds it in a won stage — or when the stage cannot be known
    (no reader, a failed read, no won stages known: the flow decides, as before)."""

    def __init__(self, *, ledger: Ledger, emitter: Emitter, hubspot_secret: str | None = None,
                 inbound_secret: str | None = None, won_stages: Callable[[], set[str] | None] = lambda: None,
                 deal_stages: Callable[[list[str]], dict[str, str]] | None = None,
                 public_url: str | None = None, batch_seconds: float = 1.0, max_age_s: float = MAX_AGE_SECONDS,
                 clock: Callable[[], float] = time.time, max_runs: int = 0, run_seconds: float = 10.0):
        self.ledger, self.hubspot_secret, self.inbound_secret = ledger, hubspot_secret, inbound_secret
        self.won_stages, self.public_url, self.max_age_s, self.clock = won_stages, public_url, max_age_s, clock
        self.deal_stages = deal_stages
        self.batcher = Batcher(ledger, emitter, window_s=batch_seconds, screen=self.screen_created,
                               max_runs=max_runs, run_seconds=run_seconds)
        self.stats = {"accepted": 0, "replayed": 0, "ignored": 0, "rejected": 0, "malformed": 0, "invalid": 0,
                      "created_open": 0}

    # ------------------------------------------------------------------ HubSpot

    def hubspot_uri(self, request: Request) -> str:
        if self.public_url:  # behind a proxy: the URL HubSpot called, not the one we see
            query = f"?{request.url.query}" if request.url.query else ""
            return self.public_url.rstrip("/") + request.url.path + query
        return str(request.url)

    def classify(self, e: dict[str, Any]) -> Row:
        """A HubSpot event → a row (relevant or ignored). Raises ValueError on a malformed event."""
        if not isinstance(e, dict) or "eventId" not in e or "objectId" not in e or "subscriptionType" not in e:
            raise ValueError("an event needs eventId, objectId and subscriptionType")
        kind = str(e["subscriptionType"])
        object_id = str(int(e["objectId"]))
        key = f"{e.get('portalId', '')}:{int(e['eventId'])}"
        occurred = None
        if e.get("occurredAt") is not None:
            occurred = datetime.fromtimestamp(int(e["occurredAt"]) / 1000, tz=timezone.utc)
        row = Row(source="hubspot", event_key=key, object_id=object_id, occurred_at=occurred,
                  payload={"change": kind, "hubspot_event_id": int(e["eventId"])})
        if kind == "deal.creation":
            # no stage in the event: the batcher reads it (screen_created) and drops a deal created open
            row.event = DEAL_CHANGED
        elif kind == "deal.propertyChange" and e.get("propertyName") == "dealstage":
            stage = e.get("propertyValue")
            won = self.won_stages()
            row.payload["stage"] = stage
            if won is None or stage is None or str(stage) in won:
                row.event = DEAL_CHANGED  # a deal that is not won gets no run at all
        elif kind in COMPANY_CHANGES:
            if str(e.get("propertyName") or "").startswith("renkei_"):
                return row  # Renkei's own write-back (freee ids, sync status): no new run for it
            row.event = COMPANY_CHANGED
            if e.get("propertyName"):
                row.payload["property"] = e["propertyName"]
        return row

    def screen_created(self, rows: list[Row]) -> list[Row]:
        """Just before emission: the created deals of a burst whose stage is known and not won are dropped
        (marked ``ignored`` in the store: no run for a deal created open — the stage change that wins it
        later is its own event). Unknown stays in (the flow decides; a run for a deal not won invoices
        nothing)."""
        created = [r for r in rows if r.event == DEAL_CHANGED and r.payload.get("change") == "deal.creation"]
        if not created or self.deal_stages is None:
            return rows
        won = self.won_stages()
        if won is None:
            return rows
        try:
            stages = self.deal_stages(list(dict.fromkeys(r.object_id for r in created)))
        except Exception as exc:  # noqa: BLE001 - unknown: pass them on
            log.warning("stages of %d created deals unknown (%s): passed on", len(created), type(exc).__name__)
            return rows
        keep, created_ids = [], {id(r) for r in created}
        for r in rows:
            if id(r) in created_ids and r.object_id in stages:
                r.payload["stage"] = stages[r.object_id]
                if str(stages[r.object_id]) not in won:
                    self.stats["created_open"] += 1
                    continue
            keep.append(r)
        return keep

    def hubspot(self, method: str, uri: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if not self.hubspot_secret:
            return 503, {"error": "the HubSpot client secret is not configured"}
        why = check_hubspot_v3(self.hubspot_secret, method, uri, body, headers.get("x-hubspot-signature-v3"),
                               headers.get("x-hubspot-request-timestamp"), self.clock(), self.max_age_s)
        if why:
            self.stats["rejected"] += 1
            log.warning("HubSpot webhook refused: %s", why)
            return 401, {"error": f"signature check failed: {why}"}
        try:
            events = json.loads(body)
            if not isinstance(events, list):
                raise ValueError("the body is a JSON array of events")
            rows = [self.classify(e) for e in events]
        except (ValueError, TypeError) as exc:
            self.stats["malformed"] += 1
            return 400, {"error": f"malformed body: {str(exc)[:200]}"}
        return 200, self._record(rows)

    # ------------------------------------------------------------------ generic inbound

    def inbound(self, kind: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if kind not in INBOUND_KINDS:
            return 404, {"error": f"unknown kind {kind!r} (one of {', '.join(INBOUND_KINDS)})"}
        if not self.inbound_secret:
            return 503, {"error": "the inbound webhook secret is not configured"}
        why = check_inbound(self.inbound_secret, body, headers.get("x-renkei-signature"),
                            headers.get("x-renkei-timestamp"), self.clock(), self.max_age_s)
        if why:
            self.stats["rejected"] += 1
            log.warning("inbound %s webhook refused: %s", kind, why)
            return 401, {"error": f"signature check failed: {why}"}
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("the body is a JSON object")
        except ValueError as exc:
            self.stats["malformed"] += 1
            return 400, {"error": f"malformed body: {str(exc)[:200]}"}
        key = str(headers.get("idempotency-key") or data.get("id") or "").strip()
        if not key or len(key) > 64:  # webhook_event.object_id holds it: VARCHAR(64) on PostgreSQL
            self.stats["malformed"] += 1
            return 400, {"error": "an Idempotency-Key header or an 'id' field (at most 64 characters) is required"}
        parsed, errors = validate_inbound(kind, data)
        if parsed is None:  # 422: nothing stored, nothing emitted; the reply and the log name fields, not values
            self.stats["invalid"] += 1
            log.warning("inbound %s webhook refused: invalid %s", kind, ", ".join(e["field"] for e in errors))
            return 422, {"error": "invalid body", "fields": errors}
        payload: dict[str, Any] = {"idempotency_key": key, "body": data}
        if kind == "order":
            payload["deal_id"] = parsed.deal_id  # a CRM id, no personal data: it goes into the event
        row = Row(source=f"inbound:{kind}", event_key=key, event=f"renkei.inbound.{kind}", object_id=key,
                  payload=payload)
        return 200, self._record([row])

    def _record(self, rows: list[Row]) -> dict[str, Any]:
        fresh, replays = self.ledger.record(rows)
        relevant = [r for r in fresh if r.relevant]
        self.batcher.submit(relevant)
        out = {"accepted": len(relevant), "ignored": len(fresh) - len(relevant), "replayed": replays}
        for k, v in out.items():
            self.stats[k] += v
        return out


def create_app(receiver: Receiver) -> FastAPI:
    import anyio

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        receiver.batcher.start()
        yield
        await anyio.to_thread.run_sync(receiver.batcher.stop)

    app = FastAPI(title="Renkei webhook receiver", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.receiver = receiver

    @app.post("/webhooks/hubspot")
    async def hubspot(request: Request) -> JSONResponse:
        body = await request.body()
        status, out = await anyio.to_thread.run_sync(
            receiver.hubspot, request.method, receiver.hubspot_uri(request), body, dict(request.headers))
        return JSONResponse(out, status_code=status)

    @app.post("/inbound/{kind}")
    async def inbound(kind: str, request: Request) -> JSONResponse:
        body = await request.body()
        status, out = await anyio.to_thread.run_sync(receiver.inbound, kind, body, dict(request.headers))
        return JSONResponse(out, status_code=status)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", **receiver.stats, "emitted": receiver.batcher.emitted,
                "queued": len(receiver.batcher.queue)}

    return app
