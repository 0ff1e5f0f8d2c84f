"""``renkei demo``: the whole job on the embedded default — local sandboxes over HTTP, the SQLite state
store, a real local Prefect server with its UI and a runner for the approval deployments — with the
counts printed at the end. ``--crm`` / ``--erp`` pick the pairing (any registered one with a sandbox;
default HubSpot + freee).

What it does: runs every built flow in business order on the sandboxes' Japanese demo data, adds a few
won deals that need finance (an amount over the threshold, a deep discount), then — like finance in the
UI — approves some of the waiting approval runs and rejects one, through the same resume API, and prints
the invoices Renkei issued in the ERP. ``--keep-ui`` instead leaves the approvals pending and keeps everything
up until Ctrl-C, printing the addresses to click through: the Prefect UI and ``renkei console`` (served
from this process over the demo's state store). Without it, the command that opens the console is printed.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from typing import Any

from rich.console import Console
from rich.table import Table

from renkei.registry import FLOWS
from renkei.settings import Settings

DEMO_APPROVER = "keiri@renkei-demo.example.jp"


def _start_sandboxes(stack: ExitStack, console: Console, crm: str, erp: str) -> tuple[dict[str, str], dict]:
    """Start the CRM's and the ERP's sandboxes (their registry ``SandboxSpec``) on free ports; return the
    environment that points Renkei at them and the apps by side."""
    from renkei.connectors.registry import entry
    from renkei.sandboxes.common import ServerThread

    env: dict[str, str] = {}
    apps: dict[str, Any] = {}
    for side, name in (("crm", crm), ("erp", erp)):
        e = entry(side, name)
        spec = e.sandbox_spec()
        app = spec.app(seed="demo", **dict(getattr(spec, "demo_options", None) or {}))
        server = stack.enter_context(ServerThread(app))
        console.print(f"{e.label + ' sandbox':<17}{server.url}", highlight=False)
        env.update(spec.env(server.url, app))
        apps[side] = (spec, app)
    return env, apps


def _add_exception_deals(crm_sandbox: tuple[Any, Any]) -> list[str]:
    """Won deals finance must look at, on demo customers that exist in both systems (the CRM sandbox's
    ``seed_demo_deals``; a sandbox without it adds none)."""
    spec, app = crm_sandbox
    seed = getattr(spec, "seed_demo_deals", None)
    return list(seed(app)) if seed is not None else []


def _issued_invoices(rt: Any) -> list[Any]:
    """The invoices Renkei issued (the state store's ledger), read back from the ERP through the contract."""
    out = []
    for entry in rt.store.ledger_entries("invoice:deal:"):
        if entry.status == "committed" and entry.external_id:
            try:
                out.append(rt.erp.get_invoice(str(entry.external_id)))
            except Exception:  # noqa: BLE001 - a display table: one unreadable invoice is left out
                continue
    return out


def _decide_approvals(console: Console, expected: int = 1, timeout_s: float = 120,
                      since: float | None = None) -> list[dict]:
    """Approve all waiting invoice-approval runs but the last, reject the last — through the resume API. Waits
    (up to 60 s) until the ``expected`` runs the order-to-invoice run started are waiting, so the outcome never
    depends on how fast each approval run reached its form. Only runs paused after ``since`` (epoch s: this
    demo's start) count: the demo's Prefect server keeps an earlier demo's runs, e.g. its payment approvals."""
    from prefect import get_client, resume_flow_run

    from renkei.cli import pending_approvals

    def waiting() -> list[dict]:
        age_max = None if since is None else time.time() - since + 1.0
        return [r for r in pending_approvals() if r["flow"] == "invoice-approval"
                and (age_max is None or (r["age_seconds"] is not None and r["age_seconds"] <= age_max))]

    deadline = time.monotonic() + 60
    runs = waiting()
    while len(runs) < max(1, expected) and time.monotonic() < deadline:
        time.sleep(1)
        runs = waiting()
    decisions = []
    for i, run in enumerate(sorted(runs, key=lambda r: r["name"])):
        reject = i == len(runs) - 1 and len(runs) > 1
        run_input = {"approved": not reject, "approver": DEMO_APPROVER,
                     "comment": "値引率が社内規定を超えているため却下" if reject else "デモ承認"}
        resume_flow_run(run["run_id"], run_input=run_input)
        decisions.append({"run": run["name"], "decision": "rejected" if reject else "approved"})
    end = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        for d, run in zip(decisions, sorted(runs, key=lambda r: r["name"])):
            while time.monotonic() < end:
                state = client.read_flow_run(run["run_id"]).state
                if state and state.is_final():
                    d["state"] = state.name
                    break
                time.sleep(1)
    return decisions


def _start_console(stack: ExitStack, store: Any) -> Any:
    """Serve ``renkei console`` over the demo's state store in this process (a daemon thread): on its usual
    port when free, else on any free one. Stopped with the demo."""
    from renkei.console import DEFAULT_HOST, DEFAULT_PORT, create_app
    from renkei.sandboxes.common import ServerThread

    app = create_app(store)
    try:
        server = ServerThread(app, host=DEFAULT_HOST, port=DEFAULT_PORT)
    except OSError:  # 8765 taken (another console): any free port
        server = ServerThread(app, host=DEFAULT_HOST, port=0)
    return stack.enter_context(server)


def _run_reporting(console: Console, table: Table) -> Any:
    """Run the reporting flow (the demo's last flow) and return its snapshot (``None`` when not built)."""
    from renkei.cli import flow_progress
    from renkei.store.reporting import ReportStore
    from renkei.tasks.runtime import get_runtime

    entry = FLOWS.get("reporting")
    fn = entry.load() if entry else None
    if fn is None:
        return None
    with flow_progress(console) as bar:
        bar.start("reporting")
        result = fn()
    table.add_row("reporting", str(result))
    return ReportStore(get_runtime().store).latest_snapshot()


def run_demo(*, crm: str = "hubspot", erp: str = "freee", keep_ui: bool = False,
             console: Console | None = None) -> int:
    console = console or Console()
    from renkei.deployments.serve import Runner
    from renkei.cli import flow_progress
    from renkei.prefect_server import prefect_server
    from renkei.settings import get_settings
    from renkei.tasks.runtime import get_runtime, reset_runtime

    started, started_at = time.monotonic(), time.time()
    home = Settings().home
    with ExitStack() as stack:
        env, sandboxes = _start_sandboxes(stack, console, crm, erp)
        # The demo has its own state store and token store, so it never touches a real configuration.
        env["RENKEI_DATABASE_URL"] = db_url = f"sqlite:///{(home / 'demo' / 'renkei.db').resolve()}"
        env["RENKEI_HOME"] = str((home / "demo").resolve())
        # the demo is several processes on one SQLite file (this one, the served runner's approval runs): they
        # share each API's pace through it, as workers do through PostgreSQL, so freee's 30 / min holds for all
        env["RENKEI_RATE_LIMITS"] = "shared"
        # the sandboxes start fresh, so does the demo's state (its store and any connector's token files)
        (home / "demo" / "renkei.db").unlink(missing_ok=True)
        for stale in (home / "demo" / "secrets").glob("*-token.json"):
            stale.unlink(missing_ok=True)
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        stack.callback(lambda: [os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
                                for k, v in old.items()])
        get_settings.cache_clear()
        reset_runtime()
        stack.callback(reset_runtime)
        server = stack.enter_context(prefect_server(home / "prefect", keep=False))
        console.print(f"Prefect UI       {server.ui_url}" + ("" if server.started_here else " (existing server)"))
        runner = stack.enter_context(Runner(log_path=(home / "demo" / "runner.log").resolve()))
        console.print(f"state store      {get_settings().database_url}")
        rt = get_runtime()

        table = Table(title="Renkei demo — flows")
        table.add_column("flow")
        table.add_column("result")
        for name, entry in FLOWS.items():
            fn = entry.load()
            if name == "reporting":  # last: after the approvals, so the snapshot shows what they invoiced
                continue
            if fn is None:
                table.add_row(name, f"not built yet (issue #{entry.issue}: {entry.summary})")
                continue
            if name == "order-to-invoice":
                made = _add_exception_deals(sandboxes["crm"])
                console.print(f"added {len(made)} won deals that need finance approval")
            with flow_progress(console) as bar:  # records done, ETA; the run's progress artifact too
                bar.start(name)
                result = fn()
            table.add_row(name, str(result))
            if name == "order-to-invoice" and not keep_ui:
                sent = (result.get("renkei") or {}).get("sent_to_approval", 0) if isinstance(result, dict) else 0
                for d in _decide_approvals(console, expected=sent or len(made), since=started_at):
                    table.add_row("invoice-approval", f"{d['run']}: {d['decision']} ({d.get('state', '?')})")
        snapshot = _run_reporting(console, table)
        console.print(table)

        invoices = _issued_invoices(rt)
        inv_table = Table(title=f"Invoices in {rt.erp.capabilities.label} ({len(invoices)})")
        for col in ("number", "partner", "billing date", "due", "total (税込)"):
            inv_table.add_column(col)
        for inv in invoices:
            inv_table.add_row(str(inv.number), str(inv.recipient_name), str(inv.issue_date), str(inv.due_date),
                              f"¥{int(inv.total or 0):,}")
        console.print(inv_table)
        reviews = rt.store.list_reviews("open")
        console.print(f"open review items: {len(reviews)}  (renkei reviews list)")
        if snapshot is not None:
            from renkei.cli_reporting import overview_table

            console.print(overview_table(snapshot))
        if keep_ui:
            web = _start_console(stack, rt.store)
            console.print(f"\n[bold]Prefect UI: {server.ui_url}[/bold] — pending approvals are under Runs "
                          "(tag renkei-approval).")
            console.print(f"[bold]Renkei console: {web.url}/[/bold] — overview, aging, profitability, drift, "
                          "queues, trace, search (read-only). Press Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        del runner
    if not keep_ui:  # the console reads the demo's own state store
        console.print(f"console          renkei console --database-url {db_url}", highlight=False, markup=False)
    console.print(f"demo finished in {time.monotonic() - started:.1f}s")
    return 0
