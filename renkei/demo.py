"""``renkei demo``: the whole job on the embedded default — local sandboxes over HTTP, the SQLite state
store, a real local Prefect server with its UI and a runner for the approval deployments — with the
counts printed at the end.

What it does: runs every built flow in business order on the sandboxes' Japanese demo data, adds a few
won deals that need finance (an amount over the threshold, a deep discount), then — like finance in the
UI — approves some of the waiting approval runs and rejects one, through the same resume API, and prints
the invoices that exist in freee. ``--keep-ui`` instead leaves the approvals pending and keeps everything
up until Ctrl-C, printing the UI address to click through.
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


def _start_sandboxes(stack: ExitStack, console: Console) -> dict[str, str]:
    """Start both sandboxes on free ports; return the environment that points Renkei at them."""
    from renkei.sandboxes.common import ServerThread
    from renkei.sandboxes.freee import FreeeSandboxConfig, create_app as freee_app
    from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app as hubspot_app

    cfg = HubSpotSandboxConfig(seed="demo")
    hs = stack.enter_context(ServerThread(hubspot_app(cfg)))
    fcfg = FreeeSandboxConfig(seed="demo", refresh_token="renkei-demo-refresh-token",
                              print_refresh_token=False)
    fr = stack.enter_context(ServerThread(freee_app(fcfg)))
    console.print(f"HubSpot sandbox  {hs.url}")
    console.print(f"freee sandbox    {fr.url}")
    return {"RENKEI_HUBSPOT_BASE_URL": hs.url, "RENKEI_HUBSPOT_TOKEN": cfg.token,
            "RENKEI_FREEE_BASE_URL": fr.url, "RENKEI_FREEE_AUTH_URL": fr.url,
            "RENKEI_FREEE_CLIENT_ID": fcfg.client_id, "RENKEI_FREEE_CLIENT_SECRET": fcfg.client_secret,
            "RENKEI_FREEE_REFRESH_TOKEN": fcfg.refresh_token or "", "RENKEI_FREEE_COMPANY_ID": str(fcfg.company_id)}


def _add_exception_deals(rt: Any) -> list[str]:
    """Two won deals finance must look at, on demo customers that exist in both systems."""
    from renkei.sandboxes.demo_data import COMPANIES

    hs = rt.crm.client
    rt.crm.client.properties.ensure("deals")
    rt.crm.client.properties.ensure("line_items")
    by_name = {r["properties"].get("name"): r["id"] for r in hs.companies.iter_all(properties=["name"])}
    targets = [by_name[c.name] for c in COMPANIES if c.name in by_name][:2]
    specs = [("大型システム更新（承認デモ）", [("システム更新一式", 1, 6_500_000, "standard_10")], None),
             ("特別値引き（承認デモ）", [("業務用食品セット", 10, 8_000, "reduced_8")], 50)]
    made = []
    for company_id, (name, lines, discount) in zip(targets, specs):
        amount = sum(q * p for _, q, p, _ in lines) * (100 - (discount or 0)) // 100
        deal = hs.deals.create({"dealname": name, "dealstage": "closedwon", "pipeline": "default", "amount": amount,
                                "closedate": "2026-11-20T00:00:00.000Z"},
                               associations=[{"to": {"id": company_id}, "types": [
                                   {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}])
        for item, qty, price, tax in lines:
            props = {"name": item, "quantity": qty, "price": price, "renkei_tax_category": tax}
            if discount:
                props["hs_discount_percentage"] = discount
            hs.line_items.create(props, associations=[{"to": {"id": deal["id"]}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 20}]}])
        made.append(str(deal["id"]))
    return made


def _decide_approvals(console: Console, timeout_s: float = 120) -> list[dict]:
    """Approve all waiting approval runs but the last, reject the last — through the resume API."""
    from prefect import get_client, resume_flow_run

    from renkei.cli import pending_approvals

    deadline = time.monotonic() + 30
    runs = pending_approvals()
    while not runs and time.monotonic() < deadline:
        time.sleep(1)
        runs = pending_approvals()
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


def run_demo(*, keep_ui: bool = False, console: Console | None = None) -> int:
    console = console or Console()
    from renkei.deployments.serve import Runner
    from renkei.cli import flow_progress
    from renkei.prefect_server import prefect_server
    from renkei.settings import get_settings
    from renkei.tasks.runtime import get_runtime, reset_runtime

    started = time.monotonic()
    home = Settings().home
    with ExitStack() as stack:
        env = _start_sandboxes(stack, console)
        # The demo has its own state store and token store, so it never touches a real configuration.
        env["RENKEI_DATABASE_URL"] = f"sqlite:///{(home / 'demo' / 'renkei.db').resolve()}"
        env["RENKEI_HOME"] = str((home / "demo").resolve())
        for stale in (home / "demo" / "renkei.db", home / "demo" / "secrets" / "freee-token.json"):
            stale.unlink(missing_ok=True)  # the sandboxes start fresh, so does the demo's state
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
            if fn is None:
                table.add_row(name, f"not built yet (issue #{entry.issue}: {entry.summary})")
                continue
            if name == "order-to-invoice":
                made = _add_exception_deals(rt)
                console.print(f"added {len(made)} won deals that need finance approval")
            with flow_progress(console) as bar:  # records done, ETA; the run's progress artifact too
                bar.start(name)
                result = fn()
            table.add_row(name, str(result))
            if name == "order-to-invoice" and not keep_ui:
                for d in _decide_approvals(console):
                    table.add_row("invoice-approval", f"{d['run']}: {d['decision']} ({d.get('state', '?')})")
        console.print(table)

        invoices = rt.erp.client.list_invoices(limit=100)
        inv_table = Table(title=f"Invoices in freee ({len(invoices)})")
        for col in ("number", "partner", "billing date", "due", "total (税込)"):
            inv_table.add_column(col)
        for inv in invoices:
            inv_table.add_row(str(inv.get("invoice_number")), str(inv.get("partner_name")),
                              str(inv.get("billing_date")), str(inv.get("payment_date")),
                              f"¥{int(inv.get('total_amount') or 0):,}")
        console.print(inv_table)
        reviews = rt.store.list_reviews("open")
        console.print(f"open review items: {len(reviews)}  (renkei reviews list)")
        if keep_ui:
            console.print(f"\n[bold]Prefect UI: {server.ui_url}[/bold] — pending approvals are under Runs "
                          "(tag renkei-approval). Press Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        del runner
    console.print(f"demo finished in {time.monotonic() - started:.1f}s")
    return 0
