"""Run reporting shared by every flow: one summary table artifact per run, audit events, review items.

A flow collects a :class:`RunReport` while it works (plain Python, cheap), may call
:func:`report_progress` after each page, then calls :func:`publish_report` once at the end (from the flow
itself, so the artifacts belong to the flow run). A run that fails publishes what it did before the
failure (:func:`report_failure`, hooked in by the flow's first report).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from datetime import datetime
from dataclasses import dataclass, field
from typing import Any, Callable

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from renkei.store.repo import Store
from renkei.tasks.events import add_reviews, emit_business_events


_MARKUP_CHARS = re.compile(r"[<>\[\]`*_#|]")


def plain_text(value: Any) -> Any:
    """A record's text as it may appear in an artifact, a run name or a log: when it carries markup
    (:func:`domain.plausibility.markup_problem`), the markup characters are blanked so nothing renders
    (``<b>株式会社X</b>`` → `` b 株式会社X /b ``); other values pass unchanged."""
    from renkei.domain.plausibility import markup_problem

    if isinstance(value, str) and markup_problem(value):
        return _MARKUP_CHARS.sub(" ", value)
    return value


@dataclass
class RunReport:
    """Counts per (side, outcome), review items and audit events of one flow run."""

    flow: str
    flow_run_id: str | None = None
    counts: Counter = field(default_factory=Counter)
    rows: list[dict[str, Any]] = field(default_factory=list)  # per-record detail rows (bounded)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    held_keys: list[str] = field(default_factory=list)  # records left to a live claim of another run
    max_rows: int = 500
    _lock: Any = field(default_factory=threading.Lock, repr=False, compare=False)
    _progress_id: Any = field(default=None, repr=False, compare=False)
    _progress_done: int = field(default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        _track(self)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def count(self, side: str, outcome: str, n: int = 1) -> None:
        if n:
            with self._lock:  # batches fan out over threads
                self.counts[(side, outcome)] += n

    def held(self, key: str) -> None:
        """A record another (live) run holds the claim of: skipped now, retried by the next run."""
        with self._lock:
            if key not in self.held_keys:
                self.held_keys.append(str(key))

    def note_held(self, what: str = "deal", shown: int = 20) -> None:
        """One note (and the ``renkei.held_by_other_run`` count) saying which records were left to
        another live run's claim — bounded to ``shown`` ids."""
        held = sorted(set(self.held_keys))
        if not held:
            return
        self.counts[("renkei", "held_by_other_run")] = len(held)
        more = f" (+{len(held) - shown} more)" if len(held) > shown else ""
        self.notes.append(f"{len(held)} {what}(s) held by another live run's claim, retried by the next run: "
                          f"{', '.join(held[:shown])}{more}")

    def row(self, **values: Any) -> None:
        with self._lock:
            if len(self.rows) < self.max_rows:
                self.rows.append({k: plain_text(v) for k, v in values.items()})

    def review(self, *, reason_code: str, entity: str, entity_key: str, message: str,
               payload: dict[str, Any] | None = None, side: str = "renkei", fingerprint: str | None = None) -> None:
        """``fingerprint``: the source record's state (see :meth:`store.repo.Store.add_review`)."""
        self.reviews.append(dict(reason_code=reason_code, entity=entity, entity_key=str(entity_key),
                                 message=message, payload=payload or {},
                                 **({"fingerprint": fingerprint} if fingerprint else {})))
        self.count(side, "review")

    def event(self, *, action: str, entity: str, entity_key: str, system: str, changes: dict[str, Any] | None = None,
              actor: str | None = None, deal_id: str | None = None) -> None:
        """An audit event; ``deal_id``: the CRM deal it belongs to (a deal's trace reads events by it)."""
        self.audit.append(dict(actor=actor or self.flow, action=action, entity=entity, entity_key=str(entity_key),
                               system=system, changes=changes or {}, flow_run_id=self.flow_run_id,
                               deal_id=str(deal_id) if deal_id else None))

    def merge(self, other: "RunReport") -> None:
        self.counts.update(other.counts)
        self.rows.extend(other.rows[: max(0, self.max_rows - len(self.rows))])
        self.reviews.extend(other.reviews)
        self.audit.extend(other.audit)
        self.notes.extend(other.notes)
        self.held_keys.extend(k for k in other.held_keys if k not in self.held_keys)

    def table(self) -> list[dict[str, Any]]:
        sides = sorted({s for s, _ in self.counts})
        outcomes = sorted({o for _, o in self.counts})
        return [{"side": s, **{o: self.counts.get((s, o), 0) for o in outcomes}} for s in sides]

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (side, outcome), n in sorted(self.counts.items()):
            out.setdefault(side, {})[outcome] = n
        return out


def run_name(flow: str, detail: str = "") -> str:
    """A run name ops recognise: flow, Asia/Tokyo time, and what it covers (``order-to-invoice 2026-11-25 09:30``)."""
    from renkei.domain.dates import TOKYO

    stamp = datetime.now(TOKYO).strftime("%Y-%m-%d %H:%M")
    return f"{flow} {stamp}" + (f" {detail}" if detail else "")


def flush(store: Store, report: RunReport) -> None:
    """Write the review items and audit events collected so far (each batch calls this after its writes)."""
    opened = add_reviews(store, report)  # the rows this batch opened (not open items reported again)
    store.audit_many(report.audit)
    emit_business_events(report.flow, report.flow_run_id, report.audit, opened)  # Prefect events (tasks/events.py)
    report.reviews.clear()
    report.audit.clear()


# ------------------------------------------------------------------------------------ run output
# What ops see of a run: its name says what happened, its artifacts are on the flow run itself
# (created from the flow's context, not from a task), amounts in yen, links to the records in each
# system, a progress artifact for long runs, and a summary also when the run fails.

_ACTIVE: dict[str, "RunReport"] = {}  # flow run id → the flow's own report (for the failure hook)
_PROGRESS_LISTENERS: list[Callable[[str, int, int | None], None]] = []

# (side, outcome) → phrase, in the order a run name lists them; per flow, then a generic fallback.
_PHRASES: dict[str, list[tuple[tuple[str, str], str]]] = {
    "order-to-invoice": [(("erp", "created"), "invoices")],
    "customer-sync": [(("crm", "created"), "new in {crm}"), (("crm", "updated"), "updated in {crm}"),
                      (("erp", "created"), "new in {erp}"), (("erp", "updated"), "updated in {erp}"),
                      (("crm", "linked"), "linked")],
    "product-sync": [(("crm", "created"), "new products"), (("crm", "updated"), "updated products")],
    "payment-writeback": [(("deposits", "auto_matched"), "deposits matched"),
                          (("erp", "payment_recorded"), "payments"), (("deposits", "unmatched"), "unmatched"),
                          (("deposits", "sent_to_approval"), "to approval")],
    "reporting": [(("crm", "deals_read"), "deals"), (("erp", "invoices_read"), "invoices"),
                  (("erp", "costs_read"), "cost records")],
    "subscription-proration": [(("erp", "proration_invoiced"), "prorations"), (("erp", "credit_note"), "credits"),
                               (("erp", "period_invoiced"), "period invoices"),
                               (("erp", "journal_posted"), "journals")],
}
_AMOUNT_KEYS = ("total", "amount", "net", "gross", "tax", "fee", "paid", "open")


class LinkSettings(BaseSettings):
    """Where a person opens a record: web app addresses (not the API) of each system.

    Defaults fit the real services; for the local sandboxes (an API base URL other than the real one)
    links go to the sandbox's own object URLs."""

    model_config = SettingsConfigDict(env_prefix="RENKEI_", env_file=None, extra="ignore")

    hubspot_base_url: str = "https://api.hubapi.com"
    hubspot_portal_id: str | None = Field(None, description="HubSpot portal (hub) id, for record links")
    hubspot_app_url: str = Field("https://app.hubspot.com", description="HubSpot web app")
    freee_base_url: str = "https://api.freee.co.jp"
    freee_company_id: int | None = None
    freee_invoice_url: str = Field("https://invoice.secure.freee.co.jp/reports/invoices/{id}",
                                   description="freee請求書 invoice page ({id} = invoice id)")
    freee_deal_url: str = Field("https://secure.freee.co.jp/deals/{id}", description="freee会計 deal (取引) page")


def record_link(system: str, kind: str, record_id: Any, settings: LinkSettings | None = None) -> str | None:
    """A URL a person can open for one record (``system`` hubspot|freee; ``kind`` deal|company|invoice)."""
    if record_id in (None, ""):
        return None
    s = settings or LinkSettings()
    rid = str(record_id)
    if system == "hubspot":
        if "api.hubapi.com" not in s.hubspot_base_url:  # a sandbox: its own object URL
            plural = {"deal": "deals", "company": "companies"}.get(kind, kind)
            return f"{s.hubspot_base_url.rstrip('/')}/crm/v3/objects/{plural}/{rid}"
        if not s.hubspot_portal_id:
            return None
        type_id = {"deal": "0-3", "company": "0-2"}.get(kind)
        return f"{s.hubspot_app_url.rstrip('/')}/contacts/{s.hubspot_portal_id}/record/{type_id}/{rid}" \
            if type_id else None
    if system == "freee":
        if "api.freee.co.jp" not in s.freee_base_url:
            company = f"?company_id={s.freee_company_id}" if s.freee_company_id else ""
            path = {"invoice": "iv/invoices", "deal": "api/1/deals", "partner": "api/1/partners"}.get(kind)
            return f"{s.freee_base_url.rstrip('/')}/{path}/{rid}{company}" if path else None
        template = {"invoice": s.freee_invoice_url, "deal": s.freee_deal_url}.get(kind)
        return template.format(id=rid) if template else None
    return None


# column → (side, kind) of the id it holds; the side's configured system makes the link (none: the plain id)
_LINK_COLUMNS = {"deal": ("crm", "deal"), "crm_id": ("crm", "company"), "company": ("crm", "company"),
                 "invoice_id": ("erp", "invoice"), "erp_deal": ("erp", "deal"), "freee_deal": ("erp", "deal")}


def display_rows(rows: list[dict[str, Any]], settings: LinkSettings | None = None) -> list[dict[str, Any]]:
    """Detail rows as a person reads them: amounts as ``¥1,234,567``, record ids as Markdown links."""
    from renkei.domain.money import format_yen

    s = settings or LinkSettings()
    names = systems()
    out = []
    for row in rows:
        shown: dict[str, Any] = {}
        for k, v in row.items():
            if isinstance(v, int) and not isinstance(v, bool) and k.lower().startswith(_AMOUNT_KEYS):
                shown[k] = format_yen(v)
            elif k in _LINK_COLUMNS and v not in (None, ""):
                side, kind = _LINK_COLUMNS[k]
                url = record_link(names[f"{side}_name"], kind, v, s)
                shown[k] = f"[{v}]({url})" if url else v
            else:
                shown[k] = v
        out.append(shown)
    return out


_PLURALS = {"invoices", "products", "deposits", "payments", "prorations", "credits", "journals"}


def systems() -> dict[str, str]:
    """The configured systems for people and for ids: ``crm`` / ``erp`` (labels, "HubSpot", "freee") and
    ``crm_name`` / ``erp_name`` (registry keys), from ``RENKEI_CRM`` / ``RENKEI_ERP`` through the registry."""
    from renkei.connectors.registry import entry
    from renkei.settings import Settings

    try:
        settings = Settings()
        crm, erp = entry("crm", settings.crm), entry("erp", settings.erp)
        return {"crm": crm.label, "erp": erp.label, "crm_name": crm.name, "erp_name": erp.name}
    except Exception:  # noqa: BLE001 - names for display: never fail a run over them
        return {"crm": "CRM", "erp": "ERP", "crm_name": "crm", "erp_name": "erp"}


def _phrase(n: int, label: str) -> str:
    if "{" in label:
        label = label.format(**systems())
    if n == 1:  # 1 invoice, 2 invoices
        label = " ".join(w[:-1] if w in _PLURALS else w for w in label.split())
    return f"{n} {label}"


def headline(report: RunReport) -> str:
    """What the run did in one line, counts only (no names, no personal data):
    ``order-to-invoice: 18 invoices, 2 to approval, 1 review``."""
    c = report.counts
    parts = [_phrase(c[key], label) for key, label in _PHRASES.get(report.flow, []) if c.get(key)]
    if not _PHRASES.get(report.flow):  # approvals and anything new: the non-zero outcomes
        parts = [f"{n} {side} {outcome}".replace("_", " ") for (side, outcome), n in sorted(c.items())
                 if n and outcome not in ("read", "unchanged", "review", "errors")][:4]
    to_approval = sum(n for (_, o), n in c.items() if o == "sent_to_approval")
    if to_approval and report.flow != "payment-writeback":
        parts.append(f"{to_approval} to approval")
    reviews = max(0, sum(n for (_, o), n in c.items() if o == "review") - to_approval)
    if reviews:
        parts.append(f"{reviews} review")
    errors = sum(n for (_, o), n in c.items() if o == "errors")
    if errors:
        parts.append(f"{errors} errors")
    if not parts:
        parts.append("nothing to do" if not any(c.values()) else "no changes")
    return f"{report.flow}: " + ", ".join(parts)


def rename_run(flow_run_id: str | None, name: str) -> None:
    """Give the flow run a name that says what happened (a naming failure never fails the run)."""
    if not flow_run_id:
        return
    try:
        from uuid import UUID

        from prefect import get_client

        with get_client(sync_client=True) as client:
            client.update_flow_run(UUID(str(flow_run_id)), name=name[:200])
    except Exception as exc:  # noqa: BLE001
        logging.getLogger(__name__).warning("could not rename flow run %s: %s", flow_run_id, exc)


def _in_flow_context() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None and TaskRunContext.get() is None


def _track(report: RunReport) -> None:
    """The first report a flow makes is the flow's own: remembered for a summary if the run fails."""
    if not report.flow_run_id or report.flow_run_id in _ACTIVE or not _in_flow_context():
        return
    from prefect.context import FlowRunContext

    _ACTIVE[report.flow_run_id] = report
    flow_obj = FlowRunContext.get().flow
    hooks = getattr(flow_obj, "on_failure_hooks", None)
    if hooks is not None and report_failure not in hooks:
        hooks.append(report_failure)


def add_progress_listener(fn: Callable[[str, int, int | None], None]) -> None:
    """In-process progress callback ``fn(flow, done, total)`` (the CLI's progress bar)."""
    _PROGRESS_LISTENERS.append(fn)


def remove_progress_listener(fn: Callable[[str, int, int | None], None]) -> None:
    if fn in _PROGRESS_LISTENERS:
        _PROGRESS_LISTENERS.remove(fn)


def _notify(flow: str, done: int, total: int | None) -> None:
    for fn in list(_PROGRESS_LISTENERS):
        try:
            fn(flow, done, total)
        except Exception:  # noqa: BLE001 - a display never fails a run
            pass


def report_progress(report: RunReport, done: int, total: int | None = None) -> None:
    """How far a long run is (records done / estimated total): a progress artifact on the flow run
    (``<flow>-progress``) and the in-process listeners. Without a known total the estimate is
    one more page of the last page's size, so the bar never shows 100 % before :func:`publish_report`."""
    step = max(1, done - report._progress_done)
    report._progress_done = done
    total = max(total or 0, done + step)
    percent = round(min(99.0, 100.0 * done / total), 1)
    try:
        from prefect.artifacts import create_progress_artifact, update_progress_artifact

        if report._progress_id is None and _in_flow_context():
            report._progress_id = create_progress_artifact(
                progress=percent, key=f"{report.flow.lower()}-progress",
                description=f"{report.flow}: records done / estimated total")
        elif report._progress_id is not None:
            update_progress_artifact(artifact_id=report._progress_id, progress=percent,
                                     description=f"{report.flow}: {done} of ~{total}")
    except Exception as exc:  # noqa: BLE001
        logging.getLogger(__name__).debug("progress artifact: %s", exc)
    _notify(report.flow, done, total)


def records_done(report: RunReport) -> int:
    """Records counted so far: every counter but the yen sums (sides named ``amount_*``)."""
    return sum(n for (side, _), n in report.counts.items() if not side.startswith("amount"))


def _finish_progress(report: RunReport) -> None:
    done = report._progress_done or sum(n for (_, o), n in report.counts.items() if o == "read") \
        or records_done(report)
    try:
        from prefect.artifacts import create_progress_artifact, update_progress_artifact

        if report._progress_id is None:
            report._progress_id = create_progress_artifact(progress=100.0, key=f"{report.flow.lower()}-progress",
                                                           description=f"{report.flow}: done")
        else:
            update_progress_artifact(artifact_id=report._progress_id, progress=100.0,
                                     description=f"{report.flow}: done")
    except Exception as exc:  # noqa: BLE001
        logging.getLogger(__name__).debug("progress artifact: %s", exc)
    _notify(report.flow, done, done)


def publish_report(report: RunReport, title: str, *, failure: str | None = None) -> dict[str, dict[str, int]]:
    """The run's output, attached to the flow run: a summary table (counts per side) with the headline
    and notes, a detail table (yen, links), the progress artifact at 100 %, and the run renamed to the
    headline. Called by the flow at its end — and by :func:`report_failure` when the run fails, then
    with the failure line and what was done before it."""
    key = report.flow.lower()
    line = headline(report)
    if failure:
        line = f"{report.flow}: FAILED after " + line.split(": ", 1)[1]
    notes = ([f"**Failed:** {failure}"] if failure else []) + report.notes
    create_table_artifact(key=key, table=report.table() or [{"side": "-", "nothing": 0}],
                          description=f"## {title}\n**{line}**\n" + "\n".join(f"- {n}" for n in notes))
    if report.rows:
        create_table_artifact(key=f"{key}-details", table=display_rows(report.rows),
                              description=f"{title}: records")
    if not failure:
        _finish_progress(report)
    if report.flow_run_id and _in_flow_context():
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        if str(ctx.flow_run.id) == report.flow_run_id:
            if report.flow in _PHRASES:  # scheduled flows: the name is the outcome
                rename_run(report.flow_run_id, line)
            elif failure:  # approval runs keep the name finance knows them by (customer, amount, deal)
                rename_run(report.flow_run_id, f"{ctx.flow_run.name} (FAILED)")
    _ACTIVE.pop(report.flow_run_id or "", None)
    return report.summary()


def report_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow ``on_failure`` hook (added by the flow's first report): publish what was done before the
    failure, with the failure line (exception type and masked message, one line)."""
    report = _ACTIVE.pop(str(flow_run.id), None)
    if report is None:
        return
    from renkei.logmask import mask_text

    message = (getattr(state, "message", None) or "failed").strip().splitlines()
    failure = mask_text(message[0] if message else "failed")[:300]
    publish_report(report, f"{report.flow} (failed)", failure=failure)


def markdown_artifact(key: str, markdown: str, description: str | None = None) -> None:
    create_markdown_artifact(key=key, markdown=markdown, description=description)
