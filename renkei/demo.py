"""``renkei demo``: the whole job on the embedded default — local sandboxes over HTTP, the SQLite state
store and a real local Prefect server — with counts printed at the end."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from typing import Any

from rich.console import Console
from rich.table import Table

from renkei.registry import FLOWS
from renkei.settings import Settings


def _start_sandboxes(stack: ExitStack, console: Console) -> dict[str, str]:
    """Start both sandboxes on free ports; return the environment that points Renkei at them."""
    env: dict[str, str] = {}
    try:
        from sandboxes.common import ServerThread
    except ModuleNotFoundError:
        console.print("[yellow]sandboxes not built yet[/yellow]")
        return env
    try:
        from sandboxes.hubspot import HubSpotSandboxConfig, create_app as hubspot_app

        cfg = HubSpotSandboxConfig(seed="demo")
        hs = stack.enter_context(ServerThread(hubspot_app(cfg)))
        env.update(RENKEI_HUBSPOT_BASE_URL=hs.url, RENKEI_HUBSPOT_TOKEN=cfg.token)
        console.print(f"HubSpot sandbox  {hs.url}")
    except ModuleNotFoundError:
        console.print("[yellow]HubSpot sandbox not built yet[/yellow]")
    try:
        from sandboxes.freee import FreeeSandboxConfig, create_app as freee_app

        fcfg = FreeeSandboxConfig(seed="demo", refresh_token="renkei-demo-refresh-token", iv_auto_numbering=True,
                                  print_refresh_token=False)
        fapp = freee_app(fcfg)
        fr = stack.enter_context(ServerThread(fapp))
        env.update(RENKEI_FREEE_BASE_URL=fr.url, RENKEI_FREEE_AUTH_URL=fr.url, RENKEI_FREEE_CLIENT_ID=fcfg.client_id,
                   RENKEI_FREEE_CLIENT_SECRET=fcfg.client_secret, RENKEI_FREEE_REFRESH_TOKEN=fcfg.refresh_token,
                   RENKEI_FREEE_COMPANY_ID=str(fcfg.company_id))
        console.print(f"freee sandbox    {fr.url}")
    except ModuleNotFoundError:
        console.print("[yellow]freee sandbox not built yet[/yellow]")
    return env


def run_demo(*, keep_ui: bool = False, console: Console | None = None) -> int:
    console = console or Console()
    from renkei.prefect_server import prefect_server
    from store.repo import Store

    started = time.monotonic()
    with ExitStack() as stack:
        env = _start_sandboxes(stack, console)
        home = Settings().home
        # The demo has its own state store and token store, so it never touches a real configuration.
        env.setdefault("RENKEI_DATABASE_URL", f"sqlite:///{home / 'demo' / 'renkei.db'}")
        env["RENKEI_HOME"] = str(home / "demo")
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        stack.callback(lambda: [os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
                                for k, v in old.items()])
        from renkei.settings import get_settings

        get_settings.cache_clear()
        settings = get_settings()
        Store.open(settings.database_url)
        console.print(f"state store      {settings.database_url}")
        server = stack.enter_context(prefect_server(home / "prefect", keep=keep_ui))
        console.print(f"Prefect UI       {server.ui_url}" + ("" if server.started_here else " (existing server)"))

        table = Table(title="Renkei demo")
        table.add_column("flow")
        table.add_column("result")
        for name, entry in FLOWS.items():
            fn = entry.load()
            if fn is None:
                table.add_row(name, f"not built yet (issue #{entry.issue}: {entry.summary})")
                continue
            result: Any = fn()
            table.add_row(name, str(result))
        console.print(table)
        get_settings.cache_clear()
    console.print(f"demo finished in {time.monotonic() - started:.1f}s")
    if keep_ui:
        console.print(f"Prefect UI left running at {server.ui_url} (stop it with: kill -- -{server.process.pid})"
                      if server.process else "")
    return 0
