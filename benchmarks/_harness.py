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


class StatusTap:
    """ASGI layer counting a sandbox's responses by status (``.status``): what every client of the sandbox
    got, whichever process it runs in."""

    def __init__(self, app):
        from collections import Counter

        self.app, self.status, self.state = app, Counter(), app.state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def counted(message):
            if message["type"] == "http.response.start":
                self.status[message["status"]] += 1
            await send(message)

        return await self.app(scope, receive, counted)


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
        htap, ftap = StatusTap(happ), StatusTap(fapp)
        hs = stack.enter_context(ServerThread(htap))
        fr = stack.enter_context(ServerThread(ftap))
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
               "hubspot_config": hcfg, "freee_config": fcfg, "tmp": tmp,
               "hubspot_status": htap.status, "freee_status": ftap.status}


def set_latency(app, ms: int) -> None:
    app.state.faults.config.latency_ms = ms


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def corporate_number(i: int, series: int = 1) -> str:
    """A valid 法人番号 (check digit) for benchmark customer ``i``; ``series`` keeps benchmarks apart."""
    from renkei.domain.identifiers import houjin_check_digit

    base = f"{series * 100000000000 + i:012d}"
    return f"{houjin_check_digit(base)}{base}"


def seed_deals(rt, hstore, *, deals: int, customers: int, stage: str, name: str, code: str, series: int,
               width: int) -> list[str]:
    """``customers`` partners in the ERP and companies in the HubSpot sandbox (same corporate number, so the
    first deal of each links them) and ``deals`` deals of three lines (¥36,000 + tax, one line at 8 %) in
    ``stage``; returns the deal ids."""
    from renkei.domain.model import Company, PaymentTerms

    for object_type in ("companies", "deals", "line_items"):
        rt.crm.client.properties.ensure(object_type)
    for i in range(customers):
        cn = corporate_number(i, series)
        rt.erp.upsert_partner(Company(name=f"株式会社{name}{i:0{width}d}", partner_code=f"{code}{i:05d}",
                                      corporate_number=cn, registration_number=f"T{cn}",
                                      billing_email=f"keiri{i}@bench.example.jp", payment_terms=PaymentTerms()))
    companies = hstore.bulk_create("companies", [
        {"name": f"株式会社{name}{i:0{width}d}", "renkei_corporate_number": corporate_number(i, series)}
        for i in range(customers)])
    ids = hstore.bulk_create("deals", [
        {"dealname": f"{name}案件 {d:05d}", "dealstage": stage, "pipeline": "default",
         "amount": 3 * 12000, "closedate": "2026-11-20T00:00:00.000Z"} for d in range(deals)])
    lines = hstore.bulk_create("line_items", [
        {"name": f"品目{j}", "quantity": 2, "price": 6000,
         "renkei_tax_category": "reduced_8" if j == 2 else "standard_10"} for d in range(deals) for j in range(3)])
    hstore.bulk_associate("deals", "companies", [(ids[d], companies[d % customers]) for d in range(deals)],
                          type_ids=[5])
    hstore.bulk_associate("line_items", "deals", [(lines[3 * d + j], ids[d]) for d in range(deals) for j in range(3)],
                          type_ids=[20])
    return ids
