"""Chaos machinery shared by ``benchmarks/chaos.py`` and ``tests/chaos/test_chaos_small.py``.

Two *worlds* are built from the same seed: each has its own HubSpot and freee sandboxes (the demo data plus
``deals`` generated won deals with bank deposits paying most of them), its own SQLite state store and its own
``RENKEI_HOME``; both use one Prefect API. The flows run as ``renkei run FLOW`` subprocesses, as a user
would run them.

* world **A** runs every flow once, clean;
* world **B** runs the same flows with the sandboxes' fault injection on (every kind of
  :data:`sandboxes.common.FAULT_KINDS`, including ``drop_after`` = "request processed, response lost") and
  SIGKILLs the ``renkei run`` process at seeded points: after the k-th successful freee write (the write is
  committed, the response never arrives) or just before a HubSpot deal write-back reaches the sandbox. A
  killed flow is run again until it completes.

Both worlds then get one settling pass of order-to-invoice and payment-writeback (a scheduled run would do
the same), faults are switched off, and the worlds are compared through the vendor APIs over HTTP: freee
partners, invoices, deals (with their payments), manual journals and bank lines; HubSpot companies, products
and every ``renkei_*`` deal property — by natural keys, with generated ids and timestamps left out. The
review items of each store and the approval runs and left-over run states in Prefect are compared too.

Three numbers decide: ``differences`` (rows in one world and not the other), ``duplicates`` (two freee
invoices for one reference, two equal payments on one freee deal, one partner twice, two approval runs for
one entity …) and ``lost`` (a won deal with no invoice, no open review item and no approval run).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import httpx

ROOT = Path(__file__).resolve().parents[1]
FLOW_ORDER = ("customer-sync", "product-sync", "order-to-invoice", "payment-writeback", "subscription-proration")
KILLED_FLOWS = ("order-to-invoice", "payment-writeback")
SETTLE_FLOWS = ("order-to-invoice", "payment-writeback")
APPROVAL_TAG = "renkei-approval"
WON_PROBABILITY = "1.0"

# Left out of every comparison: ids the systems assign, numbers they generate and timestamps.
VOLATILE_KEYS = frozenset({
    "id", "company_id", "update_date", "created_at", "updated_at", "createdate", "hs_createdate",
    "hs_lastmodifieddate", "hs_object_id", "lastmodifieddate", "invoice_number", "issue_date",
    "renkei_invoiced_at", "renkei_invoice_id", "renkei_invoice_number", "renkei_paid_at_ts", "ref_number",
    "txn_number", "receipt_ids", "renewals", "hs_all_owner_ids", "hs_updated_by_user_id", "hs_object_source",
    "hs_object_source_id", "hs_object_source_label", "renkei_last_synced_at", "renkei_synced_at",
    "hs_lastmodified", "deal_origin_name", "report_url", "pdf_url", "url",
})


# ------------------------------------------------------------------------------------------------ config
@dataclass
class ChaosConfig:
    seed: int = 11
    fault_rate: float = 0.1
    kills: int = 2
    """SIGKILLs per flow in KILLED_FLOWS (order-to-invoice and payment-writeback)."""
    deals: int = 60
    """Generated won deals on top of the demo data (about two thirds get a paying bank deposit)."""
    keep: bool = False
    workdir: Path | None = None
    flows: tuple[str, ...] = FLOW_ORDER
    max_attempts: int = 8
    run_timeout_s: float = 600.0
    fault_timeout_s: float = 1.0
    """How long an injected ``timeout`` fault holds the request before its 504."""
    relaxed_limits: bool = True
    """freee請求書 at 600/min and HubSpot limits off (the chaos run is about correctness, not pacing)."""
    concurrent: int = 1
    """World B starts this many ``renkei run order-to-invoice`` at once before its kill sequence."""
    postgres: str | None = None
    """A PostgreSQL server URL: each world's store is a fresh database there (default: SQLite files)."""
    log: Callable[[str], None] = print


# ------------------------------------------------------------------------------------------------ helpers
def _jst_today() -> datetime:
    return datetime.now(timezone(timedelta(hours=9)))


def generated_deals(seed: int, n: int) -> list[dict]:
    """``n`` won deals on demo customers present in both systems, with 1–3 lines each and a total unique per
    deal (so a deposit never pays two invoices of equal amount by accident). Deterministic per seed."""
    from renkei.sandboxes.demo_data import COMPANIES, FREEE_PARTNERS, PRODUCTS, DemoLineItem, invoice_total

    rng = random.Random(f"chaos-deals-{seed}")
    linked = {p.company for p in FREEE_PARTNERS if p.company}
    customers = [c for c in COMPANIES if c.key in linked]
    one_off = [p for p in PRODUCTS if not p.recurring and p.code != "SV-SHIP"]
    today = _jst_today().date()
    out = []
    for i in range(n):
        comp = customers[rng.randrange(len(customers))]
        lines = [DemoLineItem(p.code, rng.randint(1, 4)) for p in rng.sample(one_off, rng.randint(1, 2))]
        lines.append(DemoLineItem("SV-SHIP", i + 1))  # unique total per deal
        close = today - timedelta(days=rng.randint(1, 25))
        total = invoice_total(lines)
        pays = rng.random() < 0.67
        fee = rng.choice((0, 0, 440, 660)) if pays else 0
        out.append({"key": f"X{i + 1:04d}", "name": f"カオス案件 {seed}-{i + 1:04d}", "company": comp,
                    "lines": lines, "close_date": close.isoformat(), "total": total,
                    "deposit": (total - fee) if pays else None,
                    "deposit_date": (close + timedelta(days=rng.randint(3, 9))).isoformat() if pays else None})
    return out


class _Tap:
    """ASGI layer in front of a sandbox: counts successful writes and fires the kill trigger.

    It sits outside the sandbox's own fault layer, so a ``drop_after`` fault (processed, response
    swallowed) is not counted as a seen write; a kill fires when a counted write's response starts (the
    write is committed in the sandbox, the client never hears of it) or — for ``before`` triggers — when
    the request arrives (not processed)."""

    def __init__(self, app, is_write: Callable[[str, str], bool]) -> None:
        self.app = app
        self.is_write = is_write
        self.lock = threading.Lock()
        self.writes = 0
        self.trigger: tuple[str, int, Callable[[], None]] | None = None  # (when, at_count, fire)

    def arm(self, when: str, after: int, fire: Callable[[], None]) -> None:
        with self.lock:
            self.trigger = (when, self.writes + after, fire)

    def disarm(self) -> None:
        with self.lock:
            self.trigger = None

    def _maybe_fire(self, when: str, count: int) -> bool:
        with self.lock:
            trig = self.trigger
            if trig is None or trig[0] != when or count < trig[1]:
                return False
            self.trigger = None
        trig[2]()
        return True

    def __getattr__(self, name: str) -> Any:  # state, etc. of the wrapped app
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http" or not self.is_write(scope.get("method", ""), scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        with self.lock:
            pending = self.writes + 1
        if self._maybe_fire("before", pending):
            body = b'{"status":"error","message":"client killed"}'
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return

        async def counting_send(message):
            if message.get("type") == "http.response.start" and message.get("status", 500) < 400:
                with self.lock:
                    self.writes += 1
                    count = self.writes
                self._maybe_fire("after", count)
            await send(message)

        # keep ``send`` reachable for the fault layer's connection drop (it closes the transport of
        # ``send.__self__``): pass the original through when nothing is to be counted
        counting_send.__self__ = getattr(send, "__self__", None)  # type: ignore[attr-defined]
        await self.app(scope, receive, counting_send)


def _freee_write(method: str, path: str) -> bool:
    return method in ("POST", "PUT", "PATCH", "DELETE") and (path.startswith("/api/1/") or path.startswith("/iv/"))


def _hubspot_deal_write(method: str, path: str) -> bool:
    return method in ("POST", "PATCH") and (path.startswith("/crm/v3/objects/deals/batch/update")
                                            or (path.startswith("/crm/v3/objects/deals/") and method == "PATCH"))


# ------------------------------------------------------------------------------------------------ world
@dataclass
class RunRecord:
    flow: str
    attempt: int
    returncode: int
    killed: bool
    seconds: float
    kill_point: str = ""
    why: str = ""
    """A failed (not killed) run: the last line of its log — the exception or the one-line problem."""


def last_line(log: Path, limit: int = 300) -> str:
    """The last non-blank line of a run's log (a failed ``renkei run`` ends with why), shortened to ``limit``."""
    try:
        lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:limit] if lines else ""


class World:
    """One set of sandboxes + state store + working folder; flows run as ``renkei run`` subprocesses."""

    def __init__(self, name: str, cfg: ChaosConfig, root: Path, *, faults: bool) -> None:
        from renkei.sandboxes.common import FAULT_KINDS, FaultConfig, ServerThread
        from renkei.sandboxes.freee import FreeeSandboxConfig, create_app as freee_app
        from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app as hubspot_app

        self.name, self.cfg, self.dir = name, cfg, root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stack = ExitStack()
        self.faulty = faults
        self.runs: list[RunRecord] = []
        self.companion_failures: list[str] = []
        self.kills = 0
        self.started = datetime.now(timezone.utc) - timedelta(seconds=1)
        self.finished: datetime | None = None
        fault = FaultConfig(fault_rate=0.0, fault_seed=cfg.seed, kinds=FAULT_KINDS, timeout_s=cfg.fault_timeout_s)
        limits = {"rate_limit_per_10s": 0, "search_per_second": 0} if cfg.relaxed_limits else {}
        self.hcfg = HubSpotSandboxConfig(seed="demo", faults=fault, **limits)
        self.fcfg = FreeeSandboxConfig(seed="demo", refresh_token=f"chaos-{name}-refresh",
                                       print_refresh_token=False, faults=FaultConfig(
                                           fault_rate=0.0, fault_seed=cfg.seed + 1, kinds=FAULT_KINDS,
                                           timeout_s=cfg.fault_timeout_s),
                                       **({"iv_limit_per_minute": 600} if cfg.relaxed_limits else {}))
        self.happ, self.fapp = hubspot_app(self.hcfg), freee_app(self.fcfg)
        # A lost response of the OAuth refresh (the token rotates) is an account-level re-authorisation, not
        # a per-record fault: the token endpoint is left alone, every API endpoint gets faults.
        self.fapp.state.faults.exempt_paths += ("/public_api/token",)
        self.htap = _Tap(self.happ, _hubspot_deal_write)
        self.ftap = _Tap(self.fapp, _freee_write)
        self.hs = self.stack.enter_context(ServerThread(self.htap))
        self.fr = self.stack.enter_context(ServerThread(self.ftap))
        self.db_path = self.dir / "renkei.db"
        self.db_url = f"sqlite:///{self.db_path}"
        if cfg.postgres:
            self.db_url = _fresh_postgres(cfg.postgres, f"renkei_chaos_{cfg.seed}_{name.lower()}_{os.getpid()}")
        self.env = {
            "RENKEI_HUBSPOT_BASE_URL": self.hs.url, "RENKEI_HUBSPOT_TOKEN": self.hcfg.token,
            "RENKEI_FREEE_BASE_URL": self.fr.url, "RENKEI_FREEE_AUTH_URL": self.fr.url,
            "RENKEI_FREEE_CLIENT_ID": self.fcfg.client_id, "RENKEI_FREEE_CLIENT_SECRET": self.fcfg.client_secret,
            "RENKEI_FREEE_REFRESH_TOKEN": self.fcfg.refresh_token, "RENKEI_FREEE_COMPANY_ID": str(self.fcfg.company_id),
            "RENKEI_DATABASE_URL": self.db_url, "RENKEI_HOME": str(self.dir / ".renkei"),
        }
        if cfg.relaxed_limits:
            self.env.update({"RENKEI_FREEE_IV_PER_MINUTE": "600", "RENKEI_FREEE_ACCOUNTING_PER_SECOND": "20"})
        self.rng = random.Random(f"chaos-kills-{cfg.seed}-{name}")
        self.deals = generated_deals(cfg.seed, cfg.deals)
        self._seed_extra()

    # -- data ----------------------------------------------------------------------------------------
    def _seed_extra(self) -> None:
        """The generated deals (HubSpot, with lines and company) and their deposits (freee bank lines)."""
        from renkei.sandboxes.freee.models import WalletTxnCreate
        from renkei.sandboxes.freee.seed import BANK_ACCOUNT_ID

        hstore = self.happ.state.store
        by_name = {r.props.get("name"): rid for rid, r in hstore.records["companies"].items()}
        deal_ids = hstore.bulk_create("deals", [
            {"dealname": d["name"], "dealstage": "closedwon", "pipeline": "default", "amount": str(d["total"]),
             "closedate": f"{d['close_date']}T03:00:00.000Z", "deal_currency_code": "JPY"} for d in self.deals])
        line_props, pairs = [], []
        for d, did in zip(self.deals, deal_ids):
            for li in d["lines"]:
                line_props.append((li.hubspot_properties(), did))
        line_ids = hstore.bulk_create("line_items", [p for p, _ in line_props])
        hstore.bulk_associate("deals", "companies",
                              [(did, by_name[d["company"].name]) for d, did in zip(self.deals, deal_ids)], type_ids=[5])
        hstore.bulk_associate("line_items", "deals", [(lid, did) for lid, (_, did) in zip(line_ids, line_props)],
                              type_ids=[20])
        fstore = self.fapp.state.store
        for d in self.deals:
            if d["deposit"] is None:
                continue
            fstore.create_wallet_txn(WalletTxnCreate(
                company_id=self.fcfg.company_id, entry_side="income", amount=d["deposit"],
                walletable_id=BANK_ACCOUNT_ID, walletable_type="bank_account", date=d["deposit_date"],
                description=f"振込 {d['company'].bank_payer_name}"))

    def set_faults(self, on: bool) -> None:
        for app in (self.happ, self.fapp):
            inj = app.state.faults
            inj.config.fault_rate = self.cfg.fault_rate if on else 0.0

    @property
    def faults_injected(self) -> int:
        return len(self.happ.state.faults.injected) + len(self.fapp.state.faults.injected)

    def fault_kinds(self) -> Counter:
        return Counter(k for app in (self.happ, self.fapp) for k, _, _ in app.state.faults.injected)

    # -- runs ----------------------------------------------------------------------------------------
    def run_flow(self, flow: str, *, kill: tuple[str, str, int] | None = None, attempt: int = 1,
                 companions: int = 0) -> RunRecord:
        """``renkei run FLOW`` in a subprocess; ``kill=(system, when, after)`` arms a SIGKILL for it.
        ``companions`` more runs of the same flow start alongside (never killed; each must complete)."""
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1", "PREFECT_LOGGING_LEVEL": "INFO"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
        out_path = self.dir / f"{len(self.runs) + 1:02d}-{flow}.{attempt}.log"
        out = out_path.open("wb")
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "renkei.cli", "run", flow], env=env, cwd=str(ROOT),
                                stdout=out, stderr=subprocess.STDOUT)
        others = []
        for i in range(companions):
            log_path = self.dir / f"{len(self.runs) + 1:02d}-{flow}.{attempt}.companion-{i + 1}.log"
            log = log_path.open("wb")
            others.append((subprocess.Popen([sys.executable, "-m", "renkei.cli", "run", flow], env=env,
                                            cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT), log, log_path))
        killed = threading.Event()

        def fire() -> None:
            killed.set()
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        point = ""
        if kill is not None:
            system, when, after = kill
            tap = self.ftap if system == "freee" else self.htap
            tap.arm(when, after, fire)
            point = f"{system} write #{after} ({'response lost' if when == 'after' else 'not sent'})"
        try:
            rc = proc.wait(timeout=self.cfg.run_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        finally:
            self.ftap.disarm()
            self.htap.disarm()
            out.close()
        for i, (other, log, log_path) in enumerate(others):
            try:
                orc = other.wait(timeout=self.cfg.run_timeout_s)
            except subprocess.TimeoutExpired:
                other.kill()
                orc = other.wait()
            log.close()
            why = last_line(log_path) if orc != 0 else ""
            self.runs.append(RunRecord(flow, attempt, orc, False, time.monotonic() - t0, f"companion {i + 1}", why))
            said = f"{flow} #{attempt} companion {i + 1}: rc={orc}" + (f": {why}" if why else "")
            self.cfg.log(f"  [{self.name}] {said}")
            if orc != 0:
                self.companion_failures.append(said)
        rec = RunRecord(flow, attempt, rc, killed.is_set(), time.monotonic() - t0, point if killed.is_set() else "",
                        last_line(out_path) if rc != 0 and not killed.is_set() else "")
        self.runs.append(rec)
        if rec.killed:
            self.kills += 1
        return rec

    def run_until_done(self, flow: str, kills: int) -> None:
        """Run ``flow``; the first ``kills`` attempts get a seeded kill point; rerun until it completes."""
        attempt = 0
        kills_left = kills
        while attempt < self.cfg.max_attempts:
            attempt += 1
            kill = None
            if kills_left > 0:
                # alternate: a freee write whose response is lost / a HubSpot write-back never sent
                system = "freee" if (kills - kills_left) % 2 == 0 else "hubspot"
                kill = (system, "after" if system == "freee" else "before",
                        self.rng.randint(1, max(2, self.cfg.deals // 5)) if system == "freee" else 1)
            companions = (self.cfg.concurrent - 1) if (self.faulty and attempt == 1
                                                       and flow == "order-to-invoice") else 0
            rec = self.run_flow(flow, kill=kill, attempt=attempt, companions=companions)
            self.cfg.log(f"  [{self.name}] {flow} #{attempt}: rc={rec.returncode}"
                         + (f" KILLED at {rec.kill_point}" if rec.killed else "") + f" ({rec.seconds:.1f}s)"
                         + (f": {rec.why}" if rec.why else ""))
            if rec.killed:
                kills_left -= 1
                continue
            if kill is not None and kills_left > 0:
                kills_left = 0  # the flow finished before the kill point: it has nothing left to kill
            if rec.returncode == 0:
                return
        self.cfg.log(f"  [{self.name}] {flow}: no completed run in {attempt} attempts")

    def run_all(self, *, kills: int) -> None:
        for flow in self.cfg.flows:
            self.set_faults(self.faulty)
            self.run_until_done(flow, kills if (self.faulty and flow in KILLED_FLOWS) else 0)
        for flow in SETTLE_FLOWS:  # one settling pass, as the next scheduled run would be
            if flow in self.cfg.flows:
                self.set_faults(self.faulty)
                self.run_until_done(flow, 0)
        self.set_faults(False)
        self.finished = datetime.now(timezone.utc) + timedelta(seconds=1)

    def close(self) -> None:
        self.stack.close()
        if self.cfg.postgres and not self.cfg.keep:
            import sqlalchemy

            from renkei.store.db import engine_for

            engine_for.cache_clear()
            admin = sqlalchemy.create_engine(self.cfg.postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.db_url.rsplit("/", 1)[1]}" WITH (FORCE)')
            admin.dispose()

    # -- reading it back -----------------------------------------------------------------------------
    def hubspot(self) -> httpx.Client:
        return httpx.Client(base_url=self.hs.url, headers={"Authorization": f"Bearer {self.hcfg.token}"}, timeout=30)

    def freee(self) -> httpx.Client:
        token = httpx.post(f"{self.fr.url}/_sandbox/tokens/access", timeout=30).json()["access_token"]
        return httpx.Client(base_url=self.fr.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def store_rows(self, table: str) -> list[dict]:
        if self.db_url.startswith("postgresql"):
            import sqlalchemy

            eng = sqlalchemy.create_engine(self.db_url)
            try:
                with eng.connect() as conn:
                    return [dict(r._mapping) for r in conn.exec_driver_sql(f'SELECT * FROM "{table}"')]
            except sqlalchemy.exc.ProgrammingError:
                return []
            finally:
                eng.dispose()
        if not self.db_path.exists():
            return []
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(f'SELECT * FROM "{table}"')]  # noqa: S608 - our own table names
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()


def _fresh_postgres(server_url: str, name: str) -> str:
    import sqlalchemy

    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


# ------------------------------------------------------------------------------------------------ snapshot
def _get_all(client: httpx.Client, path: str, key: str, params: dict, limit: int = 100) -> list[dict]:
    out, offset = [], 0
    while True:
        r = client.get(path, params={**params, "offset": offset, "limit": limit})
        r.raise_for_status()
        rows = r.json().get(key, [])
        out += rows
        if len(rows) < limit:
            return out
        offset += limit


def _hs_all(client: httpx.Client, object_type: str, properties: list[str]) -> list[dict]:
    out, after = [], None
    while True:
        params = {"limit": 100, "properties": ",".join(properties)}
        if after:
            params["after"] = after
        r = client.get(f"/crm/v3/objects/{object_type}", params=params)
        r.raise_for_status()
        body = r.json()
        out += body.get("results", [])
        after = (body.get("paging") or {}).get("next", {}).get("after")
        if not after:
            return out


_GENERATED_NUMBER = re.compile(r"\b(INV-)[0-9-]+\b")
"""freee請求書's generated invoice numbers, which also appear in text (the income deal's line description)."""


def _norm(value: Any, maps: dict[str, dict]) -> Any:
    """Drop volatile keys recursively; replace freee ids by natural keys where we know them."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in VOLATILE_KEYS:
                continue
            if k in maps and v not in (None, ""):
                out[k] = maps[k].get(str(v), f"?{k}")
                continue
            if k.endswith("_id") or k.endswith("_ids"):
                continue
            out[k] = _norm(v, maps)
        return out
    if isinstance(value, str):
        return _GENERATED_NUMBER.sub(lambda m: m.group(1) + "#", value)
    if isinstance(value, list):
        items = [_norm(v, maps) for v in value]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True, ensure_ascii=False))
    return value


def _row(x: Any) -> str:
    return json.dumps(x, sort_keys=True, ensure_ascii=False)


def snapshot(world: World, prefect: "PrefectView | None") -> dict[str, Any]:
    """Everything compared, as ``{category: [row, …]}`` (rows are canonical JSON strings), plus the raw
    facts the duplicate and lost checks need under ``_facts``."""
    snap: dict[str, list[str]] = {}
    facts: dict[str, Any] = {}
    with world.freee() as fr:
        cid = {"company_id": world.fcfg.company_id}
        partners = _get_all(fr, "/api/1/partners", "partners", cid, 100)
        items = _get_all(fr, "/api/1/items", "items", cid, 100)
        pmap = {str(p["id"]): p.get("code") or p.get("name") for p in partners}
        imap = {str(i["id"]): i.get("code") or i.get("name") for i in items}
        maps = {"partner_id": pmap, "item_id": imap, "renkei_freee_partner_id": pmap, "renkei_freee_item_id": imap}
        invoices = []
        for inv in _get_all(fr, "/iv/invoices", "invoices", cid, 100):
            full = fr.get(f"/iv/invoices/{inv['id']}", params=cid)
            full.raise_for_status()
            invoices.append(full.json().get("invoice", inv))
        deals = _get_all(fr, "/api/1/deals", "deals", cid, 100)
        journals = _get_all(fr, "/api/1/manual_journals", "manual_journals", cid, 100)
        txns = _get_all(fr, "/api/1/wallet_txns", "wallet_txns", cid, 100)
    snap["freee.partners"] = [_row(_norm(p, maps)) for p in partners]
    snap["freee.items"] = [_row(_norm(i, maps)) for i in items]
    snap["freee.invoices"] = [_row(_norm(i, maps)) for i in invoices]
    snap["freee.deals"] = [_row(_norm({k: v for k, v in d.items() if k != "payments"}, maps)) for d in deals]
    snap["freee.payments"] = [_row({"deal": _deal_label(d, maps), **_norm(p, maps)}) for d in deals
                              for p in d.get("payments") or []]
    snap["freee.manual_journals"] = [_row(_norm(j, maps)) for j in journals]
    snap["freee.wallet_txns"] = [_row(_norm(t, maps)) for t in txns]
    facts["partners"] = partners
    facts["invoices"] = invoices
    facts["deals"] = deals
    facts["journals"] = journals

    with world.hubspot() as hs:
        props = {}
        for obj in ("companies", "deals", "products"):
            r = hs.get(f"/crm/v3/properties/{obj}")
            r.raise_for_status()
            props[obj] = sorted(p["name"] for p in r.json().get("results", []) if p["name"].startswith("renkei_"))
        companies = _hs_all(hs, "companies", ["name", "domain", "phone", *props["companies"]])
        hdeals = _hs_all(hs, "deals", ["dealname", "dealstage", "pipeline", "amount", *props["deals"]])
        products = _hs_all(hs, "products", ["name", "hs_sku", "price", *props["products"]])
        stages = {}
        r = hs.get("/crm/v3/pipelines/deals")
        r.raise_for_status()
        for p in r.json().get("results", []):
            for s in p.get("stages", []):
                stages[s["id"]] = str((s.get("metadata") or {}).get("probability", ""))
    snap["hubspot.companies"] = [_row(_norm(c["properties"], maps)) for c in companies]
    snap["hubspot.deals"] = [_row(_norm(d["properties"], maps)) for d in hdeals]
    snap["hubspot.products"] = [_row(_norm(p["properties"], maps)) for p in products]
    facts["hubspot_deals"] = hdeals
    facts["won_stages"] = {s for s, prob in stages.items() if prob in ("1.0", "1")}

    reviews = world.store_rows("review_item")
    open_reviews = [r for r in reviews if r.get("status") == "open"]
    snap["renkei.open_review_items"] = [_row({k: r.get(k) for k in ("flow", "reason_code", "entity", "entity_key")})
                                        for r in open_reviews]
    facts["open_reviews"] = open_reviews
    facts["reviews"] = reviews
    if prefect is not None:
        runs = prefect.runs_between(world.started, world.finished or datetime.now(timezone.utc))
        approvals = [r for r in runs if APPROVAL_TAG in (r["tags"] or [])]
        snap["prefect.approval_runs"] = [_row({"flow": r["flow"], "parameters": r["parameters"]}) for r in approvals]
        snap["prefect.runs_left_running"] = [_row({"flow": r["flow"]}) for r in runs
                                             if r["state"] in ("RUNNING", "PENDING") and APPROVAL_TAG not in r["tags"]]
        snap["prefect.failed_runs"] = [_row({"flow": r["flow"], "state": r["state_name"]}) for r in runs
                                       if r["state"] == "FAILED"]
        facts["approvals"] = approvals
        facts["runs"] = runs
    snap["_facts"] = facts  # type: ignore[assignment]
    return snap


def _deal_label(deal: dict, maps: dict) -> str:
    partner = maps["partner_id"].get(str(deal.get("partner_id")), "?")
    return f"{partner} {deal.get('issue_date')} ¥{deal.get('amount')}"


# ------------------------------------------------------------------------------------------------ Prefect
class PrefectView:
    """Flow runs of the shared Prefect API, read with the Prefect client."""

    def runs_between(self, start: datetime, end: datetime) -> list[dict]:
        from prefect import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterExpectedStartTime

        out = []
        with get_client(sync_client=True) as client:
            flows = {f.id: f.name for f in client.read_flows()}
            offset = 0
            while True:
                page = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    expected_start_time=FlowRunFilterExpectedStartTime(after_=start, before_=end)),
                    limit=200, offset=offset)
                for r in page:
                    out.append({"id": str(r.id), "name": r.name, "flow": flows.get(r.flow_id, str(r.flow_id)),
                                "tags": list(r.tags or []), "parameters": r.parameters or {},
                                "state": r.state.type.value if r.state else None,
                                "state_name": r.state.name if r.state else None})
                if len(page) < 200:
                    return out
                offset += 200


def register_approval_deployments() -> list:
    """The approval deployments exist (so approval runs are created) but no runner serves them: every approval
    run stays Scheduled — left pending, identically in both worlds. Returns the ids of the deployments this
    call created (those that did not exist before), for :func:`cleanup`."""
    sys.path.insert(0, str(ROOT))
    from prefect import get_client

    from renkei.deployments.serve import approval_deployments

    created = []
    with get_client(sync_client=True) as client:
        for dep in approval_deployments():
            try:
                client.read_deployment_by_name(f"{dep.flow_name}/{dep.name}")
                existed = True
            except Exception:  # noqa: BLE001 - ObjectNotFound
                existed = False
            dep_id = dep.apply()
            if not existed:
                created.append(dep_id)
    return created


def cleanup(runs: list[dict], deployments: list) -> None:
    """On a shared Prefect server: delete the worlds' approval runs still waiting (a runner started later,
    e.g. by another test, would otherwise pick them up) and the deployments we registered."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        for r in runs:
            if APPROVAL_TAG in r["tags"] and r["state"] in ("SCHEDULED", "PENDING", "PAUSED"):
                try:
                    client.delete_flow_run(r["id"])
                except Exception:  # noqa: BLE001 - already gone
                    pass
        for dep_id in deployments:
            try:
                client.delete_deployment(dep_id)
            except Exception:  # noqa: BLE001 - already gone
                pass


# ------------------------------------------------------------------------------------------------ compare
@dataclass
class ChaosResult:
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    faults: int = 0
    fault_kinds: dict[str, int] = field(default_factory=dict)
    kills: int = 0
    kills_by_flow: dict[str, int] = field(default_factory=dict)
    pii: list[str] = field(default_factory=list)
    companion_failures: list[str] = field(default_factory=list)
    workdir: Path | None = None

    @property
    def ok(self) -> bool:
        return not (self.differences or self.duplicates or self.lost)

    def line(self) -> str:
        return (f"differences={len(self.differences)} duplicates={len(self.duplicates)} lost={len(self.lost)} "
                f"faults={self.faults} kills={self.kills}")


def compare(a: dict, b: dict) -> tuple[dict[str, tuple[int, int]], list[str]]:
    counts, diffs = {}, []
    for cat in sorted(set(a) | set(b)):
        if cat.startswith("_"):
            continue
        ca, cb = Counter(a.get(cat, [])), Counter(b.get(cat, []))
        counts[cat] = (sum(ca.values()), sum(cb.values()))
        for row in sorted(set(ca) | set(cb)):
            if ca[row] != cb[row]:
                diffs.append(f"{cat}: A×{ca[row]} B×{cb[row]} {row[:400]}")
    return counts, diffs


def duplicates(world: str, snap: dict) -> list[str]:
    f = snap["_facts"]
    out = []
    refs = Counter(_first_line(i.get("memo")) for i in f["invoices"] if _first_line(i.get("memo")))
    out += [f"[{world}] {n} freee invoices for reference {ref}" for ref, n in refs.items() if n > 1]
    for key in ("name", "code"):
        c = Counter(p.get(key) for p in f["partners"] if p.get(key))
        out += [f"[{world}] partner {key} {v!r} ×{n}" for v, n in c.items() if n > 1]
    for d in f["deals"]:
        c = Counter((p.get("date"), p.get("amount"), p.get("from_walletable_type"), p.get("from_walletable_id"))
                    for p in d.get("payments") or [])
        out += [f"[{world}] freee deal {d.get('id')}: payment {k} ×{n}" for k, n in c.items() if n > 1]
    jc = Counter(_row(_norm(j, {})) for j in f["journals"])
    out += [f"[{world}] manual journal ×{n}: {k[:200]}" for k, n in jc.items() if n > 1]
    ac = Counter(_row({"flow": r["flow"], "parameters": r["parameters"]}) for r in f.get("approvals", []))
    out += [f"[{world}] approval run ×{n}: {k}" for k, n in ac.items() if n > 1]
    oc = Counter((r.get("flow"), r.get("reason_code"), r.get("entity"), r.get("entity_key")) for r in f["open_reviews"])
    out += [f"[{world}] open review item ×{n}: {k}" for k, n in oc.items() if n > 1]
    return out


def lost(world: str, snap: dict) -> list[str]:
    """Won deals with no invoice, no open review item and no approval run."""
    f = snap["_facts"]
    invoiced = set()
    for inv in f["invoices"]:
        ref = _first_line(inv.get("memo")) or ""
        m = re.match(r"renkei:deal:([^:\s]+)", ref)
        if m:
            invoiced.add(m.group(1))
    reviewed = {str(r.get("entity_key")) for r in f["open_reviews"] if r.get("entity") not in ("deposit", "company")}
    approved = {str((r["parameters"] or {}).get("deal_id")) for r in f.get("approvals", [])}
    out = []
    for d in f["hubspot_deals"]:
        p = d["properties"]
        if p.get("dealstage") not in f["won_stages"]:
            continue
        did = str(d["id"])
        if did in invoiced or did in reviewed or did in approved:
            continue
        out.append(f"[{world}] won deal {did} {p.get('dealname')!r}: no invoice, no open review item, no approval run")
    return out


def _first_line(memo: str | None) -> str | None:
    if not memo:
        return None
    return memo.splitlines()[0].strip() or None


# ------------------------------------------------------------------------------------------------ main entry
def run_chaos(cfg: ChaosConfig, *, prefect: PrefectView | None = None,
              pii_scan: Callable[[World], list[str]] | None = None, clean_up: bool = False) -> ChaosResult:
    """Run world A (clean) and world B (faults + kills) and compare them. Needs ``PREFECT_API_URL``.
    ``clean_up`` deletes the waiting approval runs and the deployments registered here afterwards (use it on
    a Prefect server shared with other work)."""
    root = Path(cfg.workdir or tempfile.mkdtemp(prefix="renkei-chaos-"))
    root.mkdir(parents=True, exist_ok=True)
    result = ChaosResult(workdir=root)
    prefect = prefect or PrefectView()
    registered = register_approval_deployments()
    snaps = {}
    try:
        _run_worlds(cfg, root, result, prefect, pii_scan, snaps)
    finally:
        if clean_up:
            cleanup([r for s in snaps.values() for r in s["_facts"].get("runs", [])], registered)
    result.counts, result.differences = compare(snaps["A"], snaps["B"])
    result.differences += [f"concurrent run failed (world A ran alone): {f}" for f in result.companion_failures]
    for name in ("A", "B"):
        result.duplicates += duplicates(name, snaps[name])
        result.lost += lost(name, snaps[name])
    return result


def _run_worlds(cfg: ChaosConfig, root: Path, result: ChaosResult, prefect: PrefectView,
                pii_scan: Callable[[World], list[str]] | None, snaps: dict) -> None:
    for name, faulty in (("A", False), ("B", True)):
        cfg.log(f"world {name}: {'fault rate ' + str(cfg.fault_rate) + ', ' + str(cfg.kills) + ' kills per flow' if faulty else 'clean'}")
        world = World(name, cfg, root, faults=faulty)
        try:
            world.run_all(kills=cfg.kills)
            snaps[name] = snapshot(world, prefect)
            (root / f"snapshot-{name}.json").write_text(json.dumps(
                {k: v for k, v in snaps[name].items() if not k.startswith("_")}, ensure_ascii=False, indent=1),
                encoding="utf-8")
            if faulty:
                result.companion_failures = list(world.companion_failures)
                result.faults = world.faults_injected
                result.fault_kinds = dict(world.fault_kinds())
                result.kills = world.kills
                result.kills_by_flow = dict(Counter(r.flow for r in world.runs if r.killed))
            if pii_scan is not None:
                result.pii += [f"[{name}] {hit}" for hit in pii_scan(world)]
        finally:
            world.close()


def report(result: ChaosResult, log: Callable[[str], None] = print, max_lines: int = 60) -> None:
    log(f"{'category':32} {'A':>6} {'B':>6}")
    for cat, (na, nb) in result.counts.items():
        log(f"{cat:32} {na:>6} {nb:>6}{'   ≠' if na != nb else ''}")
    log(f"faults by kind: {dict(sorted(result.fault_kinds.items()))}; kills by flow: {result.kills_by_flow}")
    for title, rows in (("differences", result.differences), ("duplicates", result.duplicates),
                        ("lost", result.lost), ("personal data found", result.pii)):
        if rows:
            log(f"--- {title} ({len(rows)})")
            for row in rows[:max_lines]:
                log("  " + row)
            if len(rows) > max_lines:
                log(f"  … {len(rows) - max_lines} more")
    log(result.line())

