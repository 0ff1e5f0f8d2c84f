"""Run reporting shared by every flow: one summary table artifact per run, audit events, review items.

A flow collects a :class:`RunReport` while it works (plain Python, cheap), then calls
:func:`publish_report` once at the end.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import datetime
from dataclasses import dataclass, field
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from store.repo import Store
from tasks.events import add_reviews, emit_business_events


_MARKUP_CHARS = re.compile(r"[<>\[\]`*_#|]")


def plain_text(value: Any) -> Any:
    """A record's text as it may appear in an artifact, a run name or a log: when it carries markup
    (:func:`domain.plausibility.markup_problem`), the markup characters are blanked so nothing renders
    (``<b>株式会社X</b>`` → `` b 株式会社X /b ``); other values pass unchanged."""
    from domain.plausibility import markup_problem

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
               payload: dict[str, Any] | None = None, side: str = "renkei") -> None:
        self.reviews.append(dict(reason_code=reason_code, entity=entity, entity_key=str(entity_key),
                                 message=message, payload=payload or {}))
        self.count(side, "review")

    def event(self, *, action: str, entity: str, entity_key: str, system: str, changes: dict[str, Any] | None = None,
              actor: str | None = None) -> None:
        self.audit.append(dict(actor=actor or self.flow, action=action, entity=entity, entity_key=str(entity_key),
                               system=system, changes=changes or {}, flow_run_id=self.flow_run_id))

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
    from domain.dates import TOKYO

    stamp = datetime.now(TOKYO).strftime("%Y-%m-%d %H:%M")
    return f"{flow} {stamp}" + (f" {detail}" if detail else "")


def flush(store: Store, report: RunReport) -> None:
    """Write the review items and audit events collected so far (each batch calls this after its writes)."""
    opened = add_reviews(store, report)  # the rows this batch opened (not open items reported again)
    store.audit_many(report.audit)
    emit_business_events(report.flow, report.flow_run_id, report.audit, opened)  # Prefect events (tasks/events.py)
    report.reviews.clear()
    report.audit.clear()


@task(cache_policy=NO_CACHE, persist_result=False)
def publish_report(report: RunReport, title: str) -> dict[str, dict[str, int]]:
    """One table artifact (counts per side) and one detail table per run, keyed by flow name."""
    key = report.flow.lower()
    create_table_artifact(key=key, table=report.table() or [{"side": "-", "nothing": 0}],
                          description=f"## {title}\n" + "\n".join(f"- {n}" for n in report.notes))
    if report.rows:
        create_table_artifact(key=f"{key}-details", table=report.rows, description=f"{title}: records")
    return report.summary()


def markdown_artifact(key: str, markdown: str, description: str | None = None) -> None:
    create_markdown_artifact(key=key, markdown=markdown, description=description)
