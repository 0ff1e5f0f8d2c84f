"""Shared set-up for the flow benchmarks: both sandboxes on free ports, Renkei's settings pointing at
them, a throw-away state store and a Prefect API (``PREFECT_API_URL`` or a local server)."""

from __future__ import annotations

import os
import resource
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from renkei.sandboxes.common import FaultConfig, ServerThread


@contextmanager
def bench_world(*, hubspot_config: dict | None = None, freee_config: dict | None = None,
                env: dict[str, str] | None = None) -> Iterator[dict]:
    from renkei.prefect_server import prefect_server
    from renkei.sandboxes.freee import FreeeSandboxConfig, create_app as freee_app
    from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app as hubspot_app
    from renkei.tasks.runtime import get_runtime, reset_runtime

    tmp = Path(tempfile.mkdtemp(prefix="renkei-bench-"))
    with ExitStack() as stack:
        hcfg = HubSpotSandboxConfig(seed="none", faults=FaultConfig(), **(hubspot_config or {}))
        fcfg = FreeeSandboxConfig(seed="none", refresh_token="bench-refresh-token",
                                  print_refresh_token=False, faults=FaultConfig(), **(freee_config or {}))
        happ, fapp = hubspot_app(hcfg), freee_app(fcfg)
        hs = stack.enter_context(ServerThread(happ))
        fr = stack.enter_context(ServerThread(fapp))
        values = {
            "RENKEI_HUBSPOT_BASE_URL": hs.url, "RENKEI_HUBSPOT_TOKEN": hcfg.token,
            "RENKEI_FREEE_BASE_URL": fr.url, "RENKEI_FREEE_AUTH_URL": fr.url,
            "RENKEI_FREEE_CLIENT_ID": fcfg.client_id, "RENKEI_FREEE_CLIENT_SECRET": fcfg.client_secret,
            "RENKEI_FREEE_REFRESH_TOKEN": fcfg.refresh_token, "RENKEI_FREEE_COMPANY_ID": str(fcfg.company_id),
            "RENKEI_DATABASE_URL": f"sqlite:///{tmp / 'renkei.db'}", "RENKEI_HOME": str(tmp / ".renkei"),
            "PREFECT_LOGGING_LEVEL": "WARNING", **(env or {}),
        }
        os.environ.update(values)
        stack.enter_context(prefect_server(tmp / "prefect"))
        reset_runtime()
        stack.callback(reset_runtime)
        yield {"hubspot_app": happ, "freee_app": fapp, "hubspot": hs, "freee": fr, "rt": get_runtime(),
               "hubspot_config": hcfg, "freee_config": fcfg, "tmp": tmp}


def set_latency(app, ms: int) -> None:
    app.state.faults.config.latency_ms = ms


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
