"""The ``renkei`` command line (typer + rich)."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from renkei.registry import FLOWS
from renkei.settings import get_settings

app = typer.Typer(help="Renkei (連携): CRM ⇄ ERP integration flows on Prefect.", no_args_is_help=True,
                  add_completion=False)
sandbox_app = typer.Typer(help="Local sandboxes of the registered CRMs and ERPs.", no_args_is_help=True)
reviews_app = typer.Typer(help="Review items: records that need a person.", no_args_is_help=True)
approvals_app = typer.Typer(help="Finance approvals: paused approval runs in Prefect.", no_args_is_help=True)
db_app = typer.Typer(help="State store.", no_args_is_help=True)
schedules_app = typer.Typer(help="Schedules of the Renkei deployments (created paused by prefect deploy).",
                            no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(reviews_app, name="reviews")
app.add_typer(approvals_app, name="approvals")
app.add_typer(db_app, name="db")
app.add_typer(schedules_app, name="schedules")
webhooks_app = typer.Typer(help="Webhook receiver: HubSpot and signed inbound webhooks → Prefect events.",
                           no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
console = Console()
err = Console(stderr=True)

APPROVAL_TAG = "renkei-approval"


@app.callback()
def _installed_as_in_source() -> None:
    # Every command: an install whose renkei.<folder> mapping misses a folder or points into another checkout
    # (a stale or foreign editable install) is one line with the fix here, not a failure deep inside a run.
    from renkei.layout import install_line

    line = install_line()
    if line is not None:
        err.print(f"✗ {line}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def one_line_errors(fn):
    """Known configuration errors (renkei.doctor.explain) print one line with their fix, exit 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            from renkei.doctor import explain

            known = explain(exc)
            if known is None:
                raise
            err.print(f"✗ {known.line()}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    return wrapper


@webhooks_app.command("serve")
@one_line_errors
def webhooks_serve(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8090, help="port to listen on"),
) -> None:
    """Serve POST /webhooks/hubspot and POST /inbound/{order,payment} until Ctrl-C (docs/webhooks.md).
    Secrets: RENKEI_WEBHOOK_HUBSPOT_SECRET, RENKEI_WEBHOOK_INBOUND_SECRET (or the credentials block);
    events go to PREFECT_API_URL."""
    from renkei.webhooks.config import serve

    console.print(f"webhook receiver: http://{host}:{port}/webhooks/hubspot, /inbound/order, /inbound/payment")
    serve(host, port)


def _store():
    from renkei.store.repo import Store

    return Store.open(get_settings().database_url)


# --------------------------------------------------------------------------------------------- sandbox
def _pairing(crm: str, erp: str) -> tuple[str, str]:
    """``--crm`` / ``--erp`` checked against the registry (exit 2 naming the known ones)."""
    from renkei.connectors.registry import entry

    out = []
    for side, name in (("crm", crm), ("erp", erp)):
        try:
            out.append(entry(side, name.strip().lower()).name)
        except LookupError as exc:
            err.print(str(exc).replace(f"RENKEI_{side.upper()}=", f"--{side} "))
            raise typer.Exit(2)
    return out[0], out[1]


def _serve_spec(side: str, name: str, port: int, host: str, seed: str, faults: Any) -> tuple[Any, int]:
    """A registered connector's sandbox through its ``SandboxSpec``; prints where it is and what to set."""
    from renkei.connectors.registry import entry

    e = entry(side, name)
    try:
        spec = e.sandbox_spec()
    except ImportError as exc:
        err.print(f"the {e.label} sandbox cannot be loaded ({exc})")
        raise typer.Exit(2)
    try:
        app_ = spec.app(seed=seed, faults=faults)
    except TypeError:  # a sandbox without fault injection
        app_ = spec.app(seed=seed)
    port = port or spec.default_port
    url = f"http://{host}:{port}"
    describe = getattr(spec, "describe", None)
    for line in (describe(url, app_) if describe else [f"{e.label} sandbox: {url}"]):
        console.print(line, highlight=False)
    for key, value in spec.env(url, app_).items():
        shown = "******" if any(w in key for w in ("TOKEN", "SECRET", "KEY")) else value
        console.print(f"  {key}={shown}", highlight=False)
    return app_, port


@sandbox_app.command("serve")
def sandbox_serve(
    crm: str = typer.Option("hubspot", "--crm", help="CRM sandbox to serve (connectors/registry.py)"),
    erp: str = typer.Option("freee", "--erp", help="ERP sandbox to serve (connectors/registry.py)"),
    crm_port: int = typer.Option(0, help="port of a non-HubSpot CRM sandbox (0 = its default)"),
    erp_port: int = typer.Option(0, help="port of a non-freee ERP sandbox (0 = its default)"),
    hubspot_port: Optional[int] = typer.Option(8081, help="port of the HubSpot sandbox (0 = off)"),
    freee_port: Optional[int] = typer.Option(8082, help="port of the freee sandbox (API and OAuth; 0 = off)"),
    host: str = typer.Option("127.0.0.1", help="interface to bind"),
    seed: str = typer.Option("demo", help="demo | none"),
    hubspot_token: str = typer.Option("renkei-sandbox-token", help="Bearer token the HubSpot sandbox accepts"),
    hubspot_rate_limit: int = typer.Option(100, help="HubSpot requests per 10 s (0 = off)"),
    hubspot_search_rate: int = typer.Option(5, help="HubSpot search requests per second (0 = off)"),
    webhook_url: Optional[str] = typer.Option(
        None, help="HubSpot sandbox: deliver each deal/company change to this URL (e.g. "
                   "http://127.0.0.1:8090/webhooks/hubspot), signed v3; env RENKEI_SANDBOX_WEBHOOK_URL",
        envvar="RENKEI_SANDBOX_WEBHOOK_URL"),
    webhook_secret: str = typer.Option(
        "renkei-sandbox-app-secret", help="HubSpot sandbox app client secret that signs the webhooks "
                                          "(= RENKEI_WEBHOOK_HUBSPOT_SECRET of the receiver)",
        envvar="RENKEI_SANDBOX_WEBHOOK_SECRET"),
    webhook_delay_ms: int = typer.Option(200, help="HubSpot sandbox: delay between a change and its webhook"),
    freee_client_id: str = typer.Option("renkei-sandbox-client", help="freee OAuth client id"),
    freee_client_secret: str = typer.Option("renkei-sandbox-secret", help="freee OAuth client secret"),
    freee_refresh_token: Optional[str] = typer.Option(None, help="first freee refresh token (printed when generated)"),
    freee_token_ttl: int = typer.Option(21600, help="freee access-token lifetime, seconds"),
    freee_iv_per_minute: int = typer.Option(30, help="freee請求書 requests per minute"),
    freee_daily_cap: int = typer.Option(0, help="freee requests per company per day (0 = off)"),
    latency_ms: int = typer.Option(0, help="latency added to every request"),
    fault_rate: float = typer.Option(0.0, help="probability of an injected fault per request"),
    fault_seed: Optional[int] = typer.Option(None, help="seed for deterministic faults"),
    fault_kinds: str = typer.Option("5xx,429,timeout,drop",
                                    help="comma-separated fault kinds: 5xx, 429, timeout, drop, drop_after "
                                         "(request processed, response lost) — 'all' for every kind"),
    invoice_numbering: str = typer.Option("manual", help="freee company 採番の設定: manual (手動採番) | auto (自動採番); "
                                                         "set the policy's [invoice_numbering] mode to match"),
    partner_codes: str = typer.Option("on", help="freee company 取引先コード: on | off"),
    tax_rounding: str = typer.Option("floor", help="freee company 端数処理: floor (切り捨て) | ceil (切り上げ) | "
                                                   "half_up (四捨五入)"),
) -> None:
    """Serve the local sandboxes of a pairing until Ctrl-C (HubSpot + freee by default; the --hubspot-* and
    --freee-* options tune those two)."""
    from renkei.sandboxes.common import FAULT_KINDS, FaultConfig, serve_forever

    kinds = FAULT_KINDS if fault_kinds.strip() == "all" else tuple(k.strip() for k in fault_kinds.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise typer.BadParameter(f"unknown fault kind(s) {', '.join(unknown)}; known: {', '.join(FAULT_KINDS)}",
                                 param_hint="--fault-kinds")
    faults = FaultConfig(latency_ms=latency_ms, fault_rate=fault_rate, fault_seed=fault_seed, kinds=kinds)
    crm, erp = _pairing(crm, erp)
    apps = []
    if crm != "hubspot":
        apps.append(_serve_spec("crm", crm, crm_port, host, seed, faults))
    elif hubspot_port:
        from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app as hubspot_app

        apps.append((hubspot_app(HubSpotSandboxConfig(token=hubspot_token, seed=seed,
                                                      rate_limit_per_10s=hubspot_rate_limit,
                                                      search_per_second=hubspot_search_rate, faults=faults,
                                                      webhook_url=webhook_url, webhook_client_secret=webhook_secret,
                                                      webhook_delay_ms=webhook_delay_ms)),
                     hubspot_port))
        console.print(f"HubSpot sandbox: http://{host}:{hubspot_port}  (token: {hubspot_token})")
        if webhook_url:
            console.print(f"  delivers webhooks to {webhook_url}", highlight=False)
    if erp != "freee":
        apps.append(_serve_spec("erp", erp, erp_port, host, seed, faults))
    elif freee_port:
        from renkei.sandboxes.freee import FreeeSandboxConfig, create_app as freee_app

        fractions = {"floor": 0, "ceil": 1, "half_up": 2}
        if invoice_numbering not in ("manual", "auto") or partner_codes not in ("on", "off") \
                or tax_rounding not in fractions:
            err.print("--invoice-numbering is manual|auto, --partner-codes on|off, --tax-rounding floor|ceil|half_up")
            raise typer.Exit(2)
        freee = freee_app(FreeeSandboxConfig(client_id=freee_client_id, client_secret=freee_client_secret,
                                             refresh_token=freee_refresh_token, access_token_ttl_s=freee_token_ttl,
                                             seed=seed, iv_limit_per_minute=freee_iv_per_minute,
                                             daily_cap=freee_daily_cap, faults=faults,
                                             iv_auto_numbering=invoice_numbering == "auto",
                                             use_partner_code=partner_codes == "on",
                                             tax_fraction=fractions[tax_rounding]))
        apps.append((freee, freee_port))
        console.print(f"freee sandbox:   http://{host}:{freee_port}  (API and OAuth base URL)")
        console.print(f"freee company:   採番 {invoice_numbering} (policy [invoice_numbering] mode = "
                      f"\"{invoice_numbering}\"), 取引先コード {partner_codes}, 端数処理 {tax_rounding}")
        token = getattr(freee.state, "initial_refresh_token", None) or freee_refresh_token
        if token:
            console.print(f"freee first refresh token: {token}")
    if not apps:
        err.print("nothing to serve: both ports are 0")
        raise typer.Exit(2)
    serve_forever(apps, host=host)


# --------------------------------------------------------------------------------------------- run / demo
@app.command("run")
@one_line_errors
def run(
    flow: str = typer.Argument(..., help=f"one of: {', '.join(FLOWS)}"),
    param: list[str] = typer.Option([], "--param", "-p", help="flow parameter KEY=VALUE (JSON values allowed)"),
) -> None:
    """Run one flow now, on the Prefect server at PREFECT_API_URL or a local one started for the run."""
    entry = FLOWS.get(flow)
    if entry is None:
        err.print(f"[red]unknown flow {flow!r}[/red]; known: {', '.join(FLOWS)}")
        raise typer.Exit(2)
    fn = entry.load()
    if fn is None:
        err.print(f"[yellow]flow {flow!r} is not built yet[/yellow] ({entry.summary}; issue #{entry.issue}).")
        raise typer.Exit(3)
    params = {}
    for p in param:
        key, _, raw = p.partition("=")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    from renkei.prefect_server import prefect_server
    from renkei.tasks.preflight import check_connections

    settings = get_settings()
    check_connections(settings)  # a wrong setting is one line now, not a failed run after a server start
    with prefect_server(settings.home / "prefect"), flow_progress(console) as bar:
        bar.start(flow)
        result = fn(**params)
    console.print(result)


class flow_progress:
    """A rich progress bar (records, rate, ETA) fed by the flows' progress reports in this process
    (:func:`tasks.reporting.report_progress`; the same numbers are the run's progress artifact), and one
    plain ``progress:`` line per flow when it ends, so logs and pipes show it too."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.console = console
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("records"), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True)
        self.tasks: dict[str, int] = {}
        self.last: dict[str, tuple[int, int | None]] = {}

    def start(self, flow: str) -> None:
        if flow not in self.tasks:
            self.tasks[flow] = self.progress.add_task(flow, total=None)

    def __call__(self, flow: str, done: int, total: int | None) -> None:
        self.start(flow)
        self.progress.update(self.tasks[flow], completed=done, total=total)
        self.last[flow] = (done, total)

    def end(self, flow: str) -> None:
        if flow in self.tasks:
            self.progress.remove_task(self.tasks.pop(flow))
        done, total = self.last.pop(flow, (0, None))
        percent = 100 if total is not None and done >= total else int(100 * done / total) if total else 0
        self.console.print(f"progress: {flow} {percent}% ({done} records)")

    def __enter__(self) -> "flow_progress":
        from renkei.tasks.reporting import add_progress_listener

        add_progress_listener(self)
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        from renkei.tasks.reporting import remove_progress_listener

        remove_progress_listener(self)
        self.progress.stop()
        for flow in list(self.tasks):
            self.end(flow)


# --------------------------------------------------------------------------------------------- schedules
def set_schedules_active(active: bool, deployment: str | None = None) -> list[dict]:
    """Turn the schedules of the Renkei deployments (tag ``renkei``) on or off; returns what changed.
    Used after ``renkei doctor`` passes: ``prefect deploy`` creates them paused (prefect.yaml)."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    changed = []
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(deployment_filter=DeploymentFilter(
            tags=DeploymentFilterTags(all_=["renkei"])))
        for dep in deployments:
            if deployment and dep.name != deployment:
                continue
            for sched in dep.schedules or []:
                if sched.active != active:
                    client.update_deployment_schedule(dep.id, sched.id, active=active)
                changed.append({"deployment": dep.name, "schedule": str(sched.schedule), "active": active})
    return changed


def _schedules_command(active: bool, deployment: str | None) -> None:
    _require_api()
    rows = set_schedules_active(active, deployment)
    if not rows:
        err.print("no Renkei deployment with a schedule found (run `prefect deploy --all` first)")
        raise typer.Exit(1)
    table = Table(title="Schedules " + ("resumed" if active else "paused"))
    for c in ("deployment", "schedule", "active"):
        table.add_column(c)
    for r in rows:
        table.add_row(r["deployment"], r["schedule"], str(r["active"]))
    console.print(table)


@schedules_app.command("resume")
def schedules_resume(deployment: Optional[str] = typer.Option(None, help="only this deployment"),
                     skip_checks: bool = typer.Option(False, "--skip-checks",
                                                      help="resume without running `renkei doctor` first")) -> None:
    """Turn the schedules on — only when `renkei doctor` passes (its checks run first)."""
    if not skip_checks:
        from renkei.doctor import Settings, render, run_checks

        checks = run_checks(Settings())
        if any(c.failed for c in checks):
            render(checks, err)
            err.print("✗ schedules stay paused: fix the failures above (`renkei doctor`), then resume again")
            raise typer.Exit(1)
    _schedules_command(True, deployment)


@schedules_app.command("pause")
def schedules_pause(deployment: Optional[str] = typer.Option(None, help="only this deployment")) -> None:
    """Turn the schedules off (e.g. while a connection is being fixed)."""
    _schedules_command(False, deployment)


@app.command("demo")
@one_line_errors
def demo(
    keep_ui: bool = typer.Option(False, "--keep-ui", help="leave the Prefect server and pending approvals up"),
    crm: str = typer.Option("hubspot", "--crm", help="CRM of the pairing (connectors/registry.py)"),
    erp: str = typer.Option("freee", "--erp", help="ERP of the pairing (connectors/registry.py)"),
) -> None:
    """End-to-end demo on the embedded default: local sandboxes, SQLite, a local Prefect server."""
    from renkei.demo import run_demo
    from renkei.doctor import check_home_writable

    crm, erp = _pairing(crm, erp)
    check_home_writable(get_settings().home)

    raise typer.Exit(run_demo(crm=crm, erp=erp, keep_ui=keep_ui, console=console))


@app.command("doctor")
@one_line_errors
def doctor(
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    work_pool: Optional[str] = typer.Option(None, help="work pool to look for (default: the one in prefect.yaml)"),
    no_prefect: bool = typer.Option(False, "--no-prefect", help="skip the Prefect API, work pool and deployments"),
) -> None:
    """Check every connection and setting; print the fix for each failure (exit 1 on any)."""
    from renkei.doctor import doctor_command

    raise typer.Exit(doctor_command(as_json, work_pool, no_prefect))


@app.command("console")
@one_line_errors
def console_command(
    host: str = typer.Option("127.0.0.1", help="interface to bind (the console is read-only; keep it local)"),
    port: int = typer.Option(8765, help="port to serve on"),
    database_url: Optional[str] = typer.Option(None, "--database-url",
                                               help="state store to read (default: RENKEI_DATABASE_URL)"),
) -> None:
    """Local read-only web console: overview, aging, profitability, drift, queues, deal trace, search."""
    from renkei.console.app import serve
    from renkei.settings import redact_url

    url = database_url or get_settings().database_url
    console.print(f"Renkei console  http://{host}:{port}/   (state store {redact_url(url)}; Ctrl-C to stop)",
                  highlight=False, markup=False)
    serve(host, port, database_url=url)


# --------------------------------------------------------------------------------------------- reviews
_AMOUNT_KEYS = ("total", "amount", "net")


def review_row(r) -> dict:
    """One review item as both doors show it: kind, amount (¥), age and Asia/Tokyo times; full ids."""
    from datetime import datetime, timezone

    from renkei.domain.dates import stored_in_tokyo
    from renkei.domain.decisions import kind_of, options

    def jst(t):
        return None if t is None else stored_in_tokyo(t).isoformat(timespec="seconds")

    created = stored_in_tokyo(r.created_at)
    p = r.payload or {}
    decision = dict(r.decision_data) if r.decision_data else None
    if decision and decision.get("value") is not None:
        from renkei.store.repo import mask_changes

        field = (decision.get("effect") or {}).get("field") or "value"  # an entered personal value: masked
        decision["value"] = mask_changes({field: decision["value"]})[field]
    amount = next((p[k] for k in _AMOUNT_KEYS if isinstance(p.get(k), int) and not isinstance(p.get(k), bool)), None)
    return {"id": r.id, "kind": kind_of(r.flow, r.reason_code, r.entity, p), "flow": r.flow,
            "reason_code": r.reason_code, "entity": r.entity, "entity_key": r.entity_key, "message": r.message,
            "amount_yen": amount, "status": r.status, "created_at": jst(r.created_at),
            "age_hours": round((datetime.now(timezone.utc) - created).total_seconds() / 3600, 1),
            "decided_by": r.decided_by, "decided_at": jst(r.decided_at), "decision": r.decision,
            "comment": r.comment, "decision_data": decision, "applied_at": jst(r.applied_at),
            "choices": [{"choice": o.choice, "label": o.label} for o in options(r.flow, r.reason_code, r.entity, p)],
            "payload": p, "flow_run_id": r.flow_run_id}


def _age_hours(hours: float) -> str:
    return f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.0f}d"


@reviews_app.command("list")
def reviews_list(
    as_json: bool = typer.Option(False, "--json", help="machine-readable output (full ids, everything)"),
    status: str = typer.Option("open", help="open | resolved | dismissed | approved | rejected | all"),
    flow: Optional[str] = typer.Option(None, help="only this flow"),
) -> None:
    """List review items (kind, reason, amount, age; times in Asia/Tokyo)."""
    from renkei.domain.money import format_yen

    rows = [review_row(r) for r in _store().list_reviews(None if status == "all" else status, flow)]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    from rich.cells import cell_len

    wide = console.width >= 110  # narrow terminals: one line per item, the creation time left to --json
    cells = [{"id": str(r["id"]), "kind": r["kind"], "reason": r["reason_code"],
              "record": f"{r['entity']}:{r['entity_key']}",
              "amount": format_yen(r["amount_yen"]) if r["amount_yen"] is not None else "",
              "age": _age_hours(r["age_hours"]), "created (JST)": (r["created_at"] or "")[:16].replace("T", " "),
              "message": " ".join(str(r["message"]).split())} for r in rows]
    cols = ["id", "kind", "reason", "record", "amount", "age", *(["created (JST)"] if wide else []), "message"]
    caps = {"reason": 24, "record": 28}
    widths = {c: min(caps.get(c, 99), max([cell_len(c)] + [cell_len(x[c]) for x in cells])) for c in cols[:-1]}
    room = console.width - sum(widths.values()) - 3 * len(cols) - 1  # borders and padding
    for c in ("record", "reason"):  # very narrow: the long columns give way first
        if room < 16:
            give = min(widths[c] - 8, 16 - room)
            widths[c] -= max(give, 0)
            room += max(give, 0)
    widths["message"] = max(room, 10)
    table = Table(title=f"Review items ({status})", expand=False)
    for c in cols:
        table.add_column(c, no_wrap=True, overflow="ellipsis", width=widths[c],
                         justify="right" if c == "amount" else "left")
    for x in cells:
        table.add_row(*(x[c] for c in cols))
    console.print(table if rows else "No review items.")


@reviews_app.command("show")
def reviews_show(
    review_id: int = typer.Argument(..., help="the review item id"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """One review item: what it is about, its choices (candidates / field values), and its history."""
    from renkei.domain.dates import stored_in_tokyo

    store = _store()
    item = store.get_review(review_id)
    if item is None:
        err.print(f"no review item {review_id}")
        raise typer.Exit(1)
    row = review_row(item)
    row["history"] = [{"at": stored_in_tokyo(e.at).isoformat(timespec="seconds"), "actor": e.actor, "action": e.action, "changes": e.changes}
                      for e in store.review_history(review_id)]
    if as_json:
        typer.echo(json.dumps(row, ensure_ascii=False, indent=2, default=str))
        return
    p = row["payload"]
    console.print(f"[bold]Review {row['id']}[/bold] · {row['kind']} · {row['reason_code']} · {row['status']}",
                  highlight=False)
    console.print(f"{row['flow']} · {row['entity']}:{row['entity_key']} · created {row['created_at']} (JST)",
                  markup=False, highlight=False)
    console.print(row["message"], markup=False, highlight=False)
    if p.get("candidates"):
        t = Table(title="Candidates / 候補")
        for c in ("id", "name", "reasons", "score"):
            t.add_column(c, overflow="fold")
        for c in p["candidates"]:
            t.add_row(str(c.get("id")), str(c.get("name")), ", ".join(c.get("reasons") or []), str(c.get("score")))
        console.print(t)
    if row["kind"] == "conflict":
        from renkei.domain.decisions import shown_value

        console.print(f"field {p.get('field')}: CRM {shown_value(p.get('crm'))} · ERP {shown_value(p.get('erp'))} · "
                      f"base {shown_value(p.get('base'))}", markup=False, highlight=False)
    if row["choices"] and row["status"] == "open":
        console.print("Choices / 選択肢:", highlight=False)
        for c in row["choices"]:
            console.print(f"  --choice {c['choice']:<16} {c['label']}", markup=False, highlight=False)
    if row["decision"]:
        console.print(f"decided: {row['decision']} by {row['decided_by']} at {row['decided_at']} (JST) — "
                      f"{row['comment'] or ''}; applied: {row['applied_at'] or 'not yet (next run)'}",
                      markup=False, highlight=False)
    for h in row["history"]:
        console.print(f"  {h['at']}  {h['actor']}  {h['action']}  {json.dumps(h['changes'], ensure_ascii=False)}",
                      markup=False, highlight=False)


@reviews_app.command("resolve")
def reviews_resolve(
    review_id: int = typer.Argument(..., help="the review item id"),
    choice: str = typer.Option(..., "--choice", help="see `renkei reviews show ID` (link:<id> | create | ignore | "
                                                     "crm | erp | value | retry | dismiss | acknowledge)"),
    value: Optional[str] = typer.Option(None, "--value", help="the value to enter (choice value) or the candidate "
                                                               "id (choice link)"),
    by: str = typer.Option(..., "--by", help="your e-mail"),
    reason: str = typer.Option("", "--reason", help="why (required to dismiss or ignore)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Decide a review item; the owning flow carries the decision out on its next run, once."""
    from renkei.domain.decisions import DecisionRefused

    try:
        item = _store().record_decision(review_id, choice=choice, by=by, reason=reason, value=value, via="cli")
    except KeyError:
        err.print(f"no review item {review_id}")
        raise typer.Exit(1) from None
    except DecisionRefused as exc:
        if as_json:
            typer.echo(json.dumps({"id": review_id, "refused": str(exc)}, ensure_ascii=False))
        err.print(f"refused: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    row = review_row(item)
    if as_json:
        typer.echo(json.dumps(row, ensure_ascii=False, indent=2, default=str))
        return
    when = "applied" if item.applied_at else "applied by the next run of " + item.flow.replace("*", "the owning flow")
    console.print(f"review {item.id}: {item.decision} by {item.decided_by} ({item.status}; {when})",
                  markup=False, highlight=False)


@reviews_app.command("open-form")
def reviews_open_form(
    review_id: list[int] = typer.Argument(..., help="one review item id, or several of one kind"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Start the review-decisions run: a paused Prefect run whose form decides the item(s) in the UI."""
    _require_api()
    from prefect.deployments import run_deployment

    try:
        run = run_deployment("review-decisions/review-decisions", parameters={"review_ids": list(review_id)},
                             timeout=0, tags=["renkei-review"])
    except Exception as exc:  # noqa: BLE001 - shown to the user
        err.print(f"could not start the review-decisions run ({type(exc).__name__}: {exc}); is the "
                  "deployment served (python -m renkei.deployments.serve / prefect deploy)?",
                  markup=False, highlight=False)
        raise typer.Exit(1) from None
    url = os.environ.get("PREFECT_UI_URL") or os.environ.get("PREFECT_API_URL", "").removesuffix("/api")
    link = f"{url.rstrip('/')}/runs/flow-run/{run.id}"
    if as_json:
        typer.echo(json.dumps({"run_id": str(run.id), "url": link, "review_ids": list(review_id)}))
        return
    console.print(f"form opened for review {', '.join(map(str, review_id))}: {link}", markup=False, highlight=False)


# --------------------------------------------------------------------------------------------- approvals
def _require_api() -> None:
    if not os.environ.get("PREFECT_API_URL"):
        err.print("PREFECT_API_URL is not set: approvals live on a running Prefect server "
                  "(e.g. the one `renkei demo --keep-ui` prints).")
        raise typer.Exit(2)


APPROVAL_KINDS = {"invoice-approval": "invoice", "payment-approval": "payment", "proration-approval": "proration"}
TOKYO = "Asia/Tokyo"


def _tokyo(dt) -> str | None:
    from zoneinfo import ZoneInfo

    if dt is None:
        return None
    return dt.astimezone(ZoneInfo(TOKYO)).isoformat(timespec="seconds")


def _age(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def ui_link(run_id: str) -> str:
    from prefect.settings import get_current_settings

    ui = get_current_settings().ui_url or (os.environ.get("PREFECT_API_URL", "").removesuffix("/").removesuffix("/api"))
    return f"{str(ui).rstrip('/')}/runs/flow-run/{run_id}"


def _approval_row(client, run, flows: dict) -> dict:
    """Everything finance needs about one waiting approval run (times in Asia/Tokyo)."""
    from datetime import datetime, timezone

    from renkei.tasks.approval_form import SUMMARY_KEY

    flow_name = flows.get(run.flow_id) or client.read_flow(run.flow_id).name
    summary: dict = {}
    try:
        from prefect.input.actions import read_flow_run_input

        summary = read_flow_run_input(SUMMARY_KEY, flow_run_id=run.id) or {}
    except Exception:  # noqa: BLE001 - a run started before summaries existed
        summary = {}
    state = run.state
    since = state.timestamp if state else None
    deadline = state.state_details.pause_timeout if state and state.state_details else None
    now = datetime.now(timezone.utc)
    amount = summary.get("amount")
    return {"run_id": str(run.id), "name": run.name, "flow": flow_name,
            "kind": summary.get("kind") or APPROVAL_KINDS.get(flow_name, flow_name),
            "state": run.state_name, "amount": amount,
            "amount_yen": f"¥{amount:,}" if isinstance(amount, int) else None,
            "reasons": list(summary.get("reasons") or []),
            "entity": summary.get("entity"), "entity_key": summary.get("entity_key"),
            "paused_since": _tokyo(since), "age_seconds": int((now - since).total_seconds()) if since else None,
            "age": _age((now - since).total_seconds()) if since else None,
            "deadline": _tokyo(deadline), "url": ui_link(str(run.id)), "parameters": run.parameters,
            "summary": summary}


def pending_approvals() -> list[dict]:
    from prefect import get_client
    from prefect.client.schemas.filters import (FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType,
                                                FlowRunFilterTags)

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["PAUSED"])),
            tags=FlowRunFilterTags(all_=[APPROVAL_TAG])))
        flows = {f.id: f.name for f in client.read_flows()} if runs else {}
        rows = [_approval_row(client, r, flows) for r in runs]
    return sorted(rows, key=lambda r: r["paused_since"] or "")


def _approvals_table(rows: list[dict], width: int) -> Table:
    """Columns by terminal width. Run ids are never cut: a wide terminal shows them (and the links) in the
    table; a narrow one numbers the rows and lists the full ids and links below (:func:`_approval_refs`)."""
    wide = width >= 150
    table = Table(title="承認待ち / Pending approvals (Asia/Tokyo)", expand=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("amount ¥", justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold", ratio=1)
    table.add_column("age", no_wrap=True)
    table.add_column("deadline", no_wrap=True)
    if wide:
        table.add_column("run id", no_wrap=True, min_width=36)
        table.add_column("link", overflow="fold", ratio=1)
    for i, r in enumerate(rows, 1):
        deadline = (r["deadline"] or "-")[:16].replace("T", " ")
        cells = [str(i), r["kind"], r["amount_yen"] or "-", ", ".join(r["reasons"]) or "-", r["age"] or "-", deadline]
        if wide:
            cells += [r["run_id"], r["url"]]
        table.add_row(*cells)
    return table


def _approval_refs(rows: list[dict]) -> list[str]:
    return [f"#{i} {r['run_id']}  {r['name']}\n   {r['url']}" for i, r in enumerate(rows, 1)]


@approvals_app.command("list")
def approvals_list(as_json: bool = typer.Option(False, "--json", help="machine-readable output (all fields)")) -> None:
    """Approval runs waiting for a decision: kind, amount, reason, age, deadline, link (Asia/Tokyo times)."""
    _require_api()
    rows = pending_approvals()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if not rows:
        console.print("No pending approvals.")
        return
    console.print(_approvals_table(rows, console.width))
    if console.width < 150:
        for line in _approval_refs(rows):
            console.print(line, soft_wrap=True, highlight=False, markup=False)


def _read_run(run_id: str):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        return run, client.read_flow(run.flow_id).name


@approvals_app.command("show")
def approvals_show(run_id: str = typer.Argument(..., help="the approval flow run id"),
                   as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """One approval run: what is asked (the draft as shown on the form), amount, reasons, deadline, link."""
    _require_api()
    from prefect import get_client
    from prefect.input.actions import read_flow_run_input

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
            row = _approval_row(client, run, {})
    except Exception as exc:  # noqa: BLE001 - shown to the user
        err.print(f"[red]no approval run {run_id}:[/red] {exc}")
        raise typer.Exit(1) from None
    keyset = run.state.state_details.run_input_keyset if run.state and run.state.state_details else None
    row["description"] = read_flow_run_input(keyset["description"], flow_run_id=run.id) if keyset else None
    if as_json:
        typer.echo(json.dumps(row, ensure_ascii=False, indent=2, default=str))
        return
    from rich.markdown import Markdown

    for label, key in (("kind", "kind"), ("state", "state"), ("amount", "amount_yen"), ("reasons", "reasons"),
                       ("waiting since", "paused_since"), ("age", "age"), ("deadline", "deadline"),
                       ("run id", "run_id"), ("link", "url")):
        value = ", ".join(row[key]) if isinstance(row[key], list) else row[key]
        console.print(f"{label:>13}: {value if value not in (None, '') else '-'}", highlight=False, markup=False,
                      soft_wrap=True)
    if row["description"]:
        console.print(Markdown(row["description"]))


@approvals_app.command("decide")
def approvals_decide(
    run_id: str = typer.Argument(..., help="the paused flow run id"),
    approve: bool = typer.Option(None, "--approve/--reject",
                                 help="approve or reject (payment: reject = not a customer payment)"),
    approver: str = typer.Option(..., "--approver", help="your e-mail"),
    comment: str = typer.Option("", "--comment", help="required to reject"),
    choice: str = typer.Option("", "--choice", help="payment approvals: option letter or invoice number(s); "
                                                    "default A (the first option shown)"),
) -> None:
    """Submit the same input the UI form submits, through the same resume API — for every approval kind."""
    from pydantic import ValidationError

    from renkei.tasks.payment_approval_steps import PaymentDecision
    from renkei.tasks.approval_form import REJECT_NEEDS_COMMENT, ApprovalDecision

    def refuse(problem: str) -> None:
        err.print(f"[red]invalid decision:[/red] {problem}")
        raise typer.Exit(2)

    if approve is None:
        refuse("say --approve or --reject")
    if not approve and not comment.strip():
        refuse(REJECT_NEEDS_COMMENT)
    try:
        ApprovalDecision(approved=approve, approver=approver.strip(), comment=comment)
    except ValidationError as exc:
        refuse("approver must be an e-mail address" if "approver" in str(exc) else exc.errors()[0]["msg"])
    _require_api()
    try:
        run, flow_name = _read_run(run_id)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        err.print(f"[red]no approval run {run_id}:[/red] {exc}")
        raise typer.Exit(1) from None
    kind = APPROVAL_KINDS.get(flow_name)
    if kind is None:
        err.print(f"[red]{run_id} is a {flow_name} run, not an approval[/red]")
        raise typer.Exit(2)
    if kind == "payment":
        run_input = PaymentDecision(choice="" if not approve else (choice.strip() or "A"), unrelated=not approve,
                                    approver=approver.strip(), comment=comment).model_dump()
    else:
        run_input = ApprovalDecision(approved=approve, approver=approver.strip(), comment=comment).model_dump()
    from prefect import resume_flow_run

    try:
        resume_flow_run(run_id, run_input=run_input)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        err.print(f"[red]could not resume {run_id}:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{'approved' if approve else 'rejected'} ({kind}): {run_id} by {approver.strip()} — "
                  f"the run checks the approver's authority; see `renkei approvals show {run_id}`",
                  highlight=False, markup=False, soft_wrap=True)


# --------------------------------------------------------------------------------------------- misc
@db_app.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Migrate the state store to the newest schema."""
    from renkei.settings import redact_url
    from renkei.store.db import migrate

    url = get_settings().database_url
    migrate(url)
    console.print(f"state store at head: {redact_url(url)}")


from renkei.setup import setup_command  # noqa: E402  (credentials block + alert automations)

app.command("setup")(setup_command)


def connector_settings(settings: Any) -> dict[str, dict[str, object]]:
    """The configured connectors' own settings (``SETTINGS`` next to their ``factory.build``; prefix
    ``RENKEI_<NAME>_``), secrets shown only as set / not set."""
    from pydantic import SecretStr

    from renkei.connectors.registry import entry

    out: dict[str, dict[str, object]] = {}
    for side in ("crm", "erp"):
        e = entry(side, getattr(settings, side))
        try:
            cls = e.settings_class()
        except ImportError:
            continue
        if cls is None:
            continue
        try:
            own = cls()
        except Exception as exc:  # noqa: BLE001 - shown, not raised: `renkei doctor` says what to fix
            out[e.name] = {"error": str(exc).splitlines()[0]}
            continue
        shown: dict[str, object] = {}
        for name in type(own).model_fields:
            value = getattr(own, name)
            if isinstance(value, SecretStr):
                shown[name] = "****** (set)"
            elif value is None and any(w in name for w in ("token", "secret", "password", "key")):
                shown[name] = "(not set)"
            else:
                shown[name] = value if isinstance(value, (int, float, bool, type(None))) else str(value)
        out[e.name] = shown
    return out


@app.command("config")
def config() -> None:
    """Effective settings (secrets hidden), the configured connectors' own settings and the policy file."""
    settings = get_settings()
    shown = settings.safe_dict()
    own = connector_settings(settings)
    if own:
        shown["connectors"] = own
    console.print_json(json.dumps(shown, default=str, ensure_ascii=False))


@app.command("docs")
def docs(check: bool = typer.Option(False, "--check", help="exit 1 when docs/data-dictionary.md is stale")) -> None:
    """Regenerate docs/data-dictionary.md from the canonical model."""
    from renkei.datadict import DATA_DICTIONARY_PATH, render

    text = render()
    if check:
        current = DATA_DICTIONARY_PATH.read_text(encoding="utf-8") if DATA_DICTIONARY_PATH.exists() else ""
        if current != text:
            err.print("docs/data-dictionary.md is out of date: run `renkei docs`")
            raise typer.Exit(1)
        console.print("data dictionary is up to date")
        return
    DATA_DICTIONARY_PATH.write_text(text, encoding="utf-8")
    console.print(f"wrote {DATA_DICTIONARY_PATH}")


from renkei.cli_reporting import register as _register_reporting  # noqa: E402

_register_reporting(app, console, err)  # renkei trace, renkei search


# --------------------------------------------------------------------------------------------- stack
stack_app = typer.Typer(help="The scale-out stack on this machine: Prefect server and state store on PostgreSQL, "
                             "sandboxes, process workers (docs/scale-out.md)", no_args_is_help=True)
app.add_typer(stack_app, name="stack")


def _stack_home(home: Optional[Path]) -> Path:
    from renkei.settings import Settings

    return home or Settings().home / "stack"


@stack_app.command("up")
def stack_up(
    postgres: str = typer.Option(None, help="admin URL of the PostgreSQL server (default "
                                            "RENKEI_STACK_POSTGRES_URL or the .ci/postgres.sh server)"),
    workers: int = typer.Option(3, help="process workers on the work pool"),
    prefect_port: int = typer.Option(4300, help="port of the Prefect server"),
    sandboxes: bool = typer.Option(True, help="start the HubSpot and freee sandboxes (off: the RENKEI_* APIs of "
                                              "this shell)"),
    webhooks: bool = typer.Option(False, help="also start `renkei webhooks serve` when this installation has it"),
    deploy: bool = typer.Option(True, help="run `prefect deploy --all` (prefect.yaml) on the new server"),
    home: Optional[Path] = typer.Option(None, help="stack folder (default RENKEI_HOME/stack)"),
) -> None:
    """Start the stack in the background; `renkei stack down` stops all of it."""
    from renkei.deployments.stack import DEFAULT_POSTGRES, up

    url = postgres or os.environ.get("RENKEI_STACK_POSTGRES_URL") or DEFAULT_POSTGRES
    try:
        st = up(home=_stack_home(home), postgres=url, workers=workers, prefect_port=prefect_port,
                sandboxes=sandboxes, webhooks=webhooks, deploy=deploy, say=lambda m: console.print(m, highlight=False))
    except Exception as exc:  # noqa: BLE001 - one line; what was started is stopped again
        err.print(f"stack up failed: {type(exc).__name__}: {str(exc)[:600]}")
        raise typer.Exit(1) from None
    console.print("environment of the workers (use it in this shell for renkei commands):", highlight=False)
    for k, v in sorted(st.env.items()):
        console.print(f"  export {k}={v}", highlight=False, soft_wrap=True)


@stack_app.command("down")
def stack_down(drop: bool = typer.Option(False, help="also drop the stack's two databases"),
               home: Optional[Path] = typer.Option(None, help="stack folder (default RENKEI_HOME/stack)")) -> None:
    """Stop every process of the stack (and anything they started)."""
    from renkei.deployments.stack import down

    down(_stack_home(home), drop=drop, say=lambda m: console.print(m, highlight=False))


@stack_app.command("status")
def stack_status(home: Optional[Path] = typer.Option(None, help="stack folder (default RENKEI_HOME/stack)")) -> None:
    """What runs, and whether it answers."""
    from renkei.deployments.stack import status

    rows = status(_stack_home(home))
    if not rows:
        console.print("no stack is up")
        return
    table = Table("process", "pid", "alive", "healthy", "log")
    for r in rows:
        table.add_row(r["name"], str(r["pid"]), str(r["alive"]), "-" if r["healthy"] is None else str(r["healthy"]),
                      r["log"])
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
