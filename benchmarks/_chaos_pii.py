"""Personal-data scan: no raw phone number, e-mail address or individual's name from the seeded data may appear
in the state store (every table), the Prefect database (flow-run names and parameters, task runs, logs,
artifacts — via the API, and the server's SQLite file when we know it) or the captured logs.

E-mail domains alone and masked forms (``山***``, ``k***@example.jp``) do not match: the needles are the full
raw values (and their obvious spellings: names with and without a space, phone numbers with and without
hyphens). Hits are reported with the value masked, never in the clear.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

__all__ = ["Needle", "seeded_personal_values", "scan_sqlite", "scan_texts", "scan_prefect_api", "scan_world",
           "prefect_db_path", "mask"]


@dataclass(frozen=True)
class Needle:
    value: str
    kind: str  # "email" | "phone" | "name"


def mask(value: str) -> str:
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return value[:1] + "***"


def _name_forms(full: str) -> set[str]:
    parts = [p for p in re.split(r"[\s\u3000]+", full.strip()) if p]
    if len(parts) < 2:
        return {full} if len(full) >= 3 else set()
    return {" ".join(parts), "".join(parts), "\u3000".join(parts)}


def _phone_forms(phone: str) -> set[str]:
    digits = re.sub(r"\D", "", phone)
    return {phone, digits} if len(digits) >= 9 else {phone}


def seeded_personal_values(extra: Iterable[Needle] = ()) -> list[Needle]:
    """The personal values the sandboxes are seeded with: contacts' and owners' names and e-mail addresses,
    every phone number, the billing e-mails and contact names of the freee partners, and the sole traders'
    owners (their names, readings and the bank payer names their transfers carry)."""
    from renkei.sandboxes.demo_data import COMPANIES, CONTACTS, FREEE_PARTNERS, OWNERS, bank_payer_name

    out: set[Needle] = set()
    for c in CONTACTS:
        out.add(Needle(c.email, "email"))
        out |= {Needle(p, "phone") for p in _phone_forms(c.phone)}
        out |= {Needle(n, "name") for n in _name_forms(f"{c.last_name} {c.first_name}")}
    for o in OWNERS:
        out.add(Needle(o.email, "email"))
        out |= {Needle(n, "name") for n in _name_forms(f"{o.last_name} {o.first_name}")}
    for co in COMPANIES:
        out |= {Needle(p, "phone") for p in _phone_forms(co.phone)}
        out.add(Needle(co.billing_email, "email"))
        if co.sole_trader and co.representative:
            out |= {Needle(n, "name") for n in _name_forms(co.representative)}
            if co.representative_kana:
                out |= {Needle(n, "name") for n in _name_forms(co.representative_kana)}
                out |= {Needle(n, "name") for n in _name_forms(bank_payer_name(co.representative_kana))}
    for p in FREEE_PARTNERS:
        if p.email:
            out.add(Needle(p.email, "email"))
        if p.phone:
            out |= {Needle(x, "phone") for x in _phone_forms(p.phone)}
        if p.contact_name:
            out |= {Needle(n, "name") for n in _name_forms(p.contact_name)}
    out |= set(extra)
    return sorted(out, key=lambda n: (n.kind, n.value))


class _Matcher:
    def __init__(self, needles: list[Needle]) -> None:
        self.needles = needles
        self.by_value = {n.value: n for n in needles}
        self.rx = re.compile("|".join(re.escape(v) for v in sorted(self.by_value, key=len, reverse=True)))

    def find(self, text: str) -> list[Needle]:
        found = []
        for m in self.rx.finditer(text):
            v = m.group(0)
            n = self.by_value[v]
            if n.kind == "phone" and v.isdigit():
                # digits only: not when part of a longer number (ids, amounts)
                s, e = m.start(), m.end()
                if (s > 0 and text[s - 1].isdigit()) or (e < len(text) and text[e].isdigit()):
                    continue
            if n.kind == "email":
                s = m.start()
                if s > 0 and (text[s - 1].isalnum() or text[s - 1] in "._%+-"):
                    continue  # a longer local part (another address)
            found.append(n)
        return found


_ESCAPE = re.compile(r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})|\\u([0-9a-fA-F]{4})")


def _unescape(text: str) -> str:
    """``\\uXXXX`` escapes (and surrogate pairs) → the characters they stand for."""
    def sub(m: re.Match) -> str:
        if m.group(3):
            return chr(int(m.group(3), 16))
        hi, lo = int(m.group(1), 16), int(m.group(2), 16)
        return chr(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))

    return _ESCAPE.sub(sub, text)


def scan_texts(where: str, texts: Iterable[tuple[str, Any]], needles: list[Needle]) -> list[str]:
    """``texts`` = ``(location, value)``; returns one line per (location, needle) hit, values masked."""
    matcher = _Matcher(needles)
    hits: dict[tuple[str, str], list[Needle]] = {}
    for loc, value in texts:
        if value is None:
            continue
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False, default=str)
        if "\\u" in value:  # JSON stored with ASCII escapes (\u592a\u7530): scan the decoded text too
            value = _unescape(value)
        for n in matcher.find(value):
            hits.setdefault((loc, n.kind), []).append(n)
    out = []
    for (loc, kind), found in sorted(hits.items()):
        distinct = sorted({n.value for n in found})
        out.append(f"{where}: {loc}: {len(found)} raw {kind} value(s), {len(distinct)} distinct "
                   f"(e.g. {', '.join(mask(v) for v in distinct[:3])})")
    return out


def scan_sqlite(where: str, path: Path, needles: list[Needle], *, skip_tables: Iterable[str] = ()) -> list[str]:
    """Every text/blob column of every table of one SQLite file."""
    path = Path(path)
    if not path.exists():
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    skip = set(skip_tables)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]

        def rows():
            for t in tables:
                if t in skip or t.startswith("sqlite_"):
                    continue
                cur = con.execute(f'SELECT * FROM "{t}"')  # noqa: S608 - names from sqlite_master
                cols = [d[0] for d in cur.description]
                for row in cur:
                    for col, v in zip(cols, row):
                        if isinstance(v, (str, bytes)):
                            yield f"{t}.{col}", v

        return scan_texts(where, rows(), needles)
    finally:
        con.close()


def scan_postgres(where: str, url: str, needles: list[Needle]) -> list[str]:
    """Every text/json column of every table of the store's PostgreSQL database."""
    import sqlalchemy

    eng = sqlalchemy.create_engine(url)
    try:
        with eng.connect() as conn:
            tables = [r[0] for r in conn.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
            texts = []
            for t in tables:
                res = conn.exec_driver_sql(f'SELECT * FROM "{t}"')  # noqa: S608 - names from the catalogue
                cols = list(res.keys())
                for row in res:
                    texts += [(f"{t}.{c}", v) for c, v in zip(cols, row) if isinstance(v, (str, bytes, dict, list))]
        return scan_texts(where, texts, needles)
    finally:
        eng.dispose()


def prefect_db_path() -> Path | None:
    """The SQLite file of the Prefect server this process talks to, when it is a local one we can read."""
    try:
        from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, PREFECT_HOME

        url = PREFECT_API_DATABASE_CONNECTION_URL.value()
        if not url:
            candidate = Path(PREFECT_HOME.value()) / "prefect.db"
            return candidate if candidate.exists() else None
        if url.startswith("sqlite"):
            p = Path(url.split(":///", 1)[1].split("?", 1)[0])
            return p if p.exists() else None
    except Exception:  # noqa: BLE001 - unknown layout: the API scan still runs
        return None
    return None


def scan_prefect_api(start: datetime, end: datetime, needles: list[Needle]) -> list[str]:
    """Flow runs started in the window: names, parameters, state messages; their task runs, logs, artifacts."""
    from prefect import get_client
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter,
                                                FlowRunFilterExpectedStartTime, FlowRunFilterId, LogFilter,
                                                LogFilterFlowRunId)

    texts: list[tuple[str, Any]] = []
    with get_client(sync_client=True) as client:
        runs, offset = [], 0
        while True:
            page = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                expected_start_time=FlowRunFilterExpectedStartTime(after_=start, before_=end)), limit=200, offset=offset)
            runs += page
            if len(page) < 200:
                break
            offset += 200
        ids = [r.id for r in runs]
        for r in runs:
            texts += [("flow_run.name", r.name), ("flow_run.parameters", r.parameters),
                      ("flow_run.state_message", r.state.message if r.state else None)]
        for i in range(0, len(ids), 50):
            chunk = ids[i:i + 50]
            for t in client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=200):
                texts += [("task_run.name", t.name), ("task_run.state_message", t.state.message if t.state else None)]
            off = 0
            while True:
                logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=chunk)),
                                        limit=200, offset=off)
                texts += [("log.message", lg.message) for lg in logs]
                if len(logs) < 200:
                    break
                off += 200
            for a in client.read_artifacts(artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=chunk)), limit=200):
                texts += [("artifact.data", a.data), ("artifact.description", a.description)]
    return scan_texts("prefect api", texts, needles)


def scan_world(world, *, prefect_db: Path | None = None, extra: Iterable[Needle] = (),
               api: bool = True) -> list[str]:
    """State store, captured logs of the world's runs, the Prefect API for its runs and the Prefect file."""
    needles = seeded_personal_values(extra)
    if world.db_url.startswith("postgresql"):
        hits = scan_postgres("state store", world.db_url, needles)
    else:
        hits = scan_sqlite("state store", world.db_path, needles)
    hits += scan_texts("captured logs", ((p.name, p.read_bytes()) for p in sorted(world.dir.glob("*.log"))), needles)
    if api and world.started is not None:
        from datetime import timezone

        hits += scan_prefect_api(world.started, world.finished or datetime.now(timezone.utc), needles)
    if prefect_db is not None:
        hits += scan_sqlite("prefect db", prefect_db, needles)
    return hits
