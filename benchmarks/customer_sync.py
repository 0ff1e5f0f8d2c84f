"""customer-sync at scale: 20,000 customers already in both systems, then 1 % of them change on each side.

    .venv/bin/python benchmarks/customer_sync.py                  # 20,000 pairs, 100 ms latency, limits on
    .venv/bin/python benchmarks/customer_sync.py --records 2000   # quicker look

Not a test. Both sandboxes run in a forked child process and the Prefect test server in another
(``prefect_test_harness`` started from a child: it imports Prefect's server application, ~60 MB that a
flow process talking to a Prefect server never holds; ``--harness-in-process`` restores the earlier set-up
for comparison), so ``peak_rss_mb`` (``ru_maxrss`` of this process, after the incremental run) is the
flow's own: Python, Prefect's client and Renkei's modules (~140 MB once the flow module is imported)
plus what the run holds (see *Memory* below). The sandboxes enforce the documented limits — HubSpot 100 requests / 10 s (Free/Starter) and 5 searches / s; freee会計
3,600 requests per rolling hour (the sandbox's model of "excessive access → 403 for 10 minutes") and a
daily cap of 3,000 (the smallest plan) — and 100 ms latency on every request. Records are bulk-loaded
through the sandboxes' stores (no HTTP). The flow runs as it does in production (``customer_sync()`` on
a local Prefect test server, the runtime built from ``RENKEI_*`` settings, the connectors' default
client-side pacing: HubSpot 100 / 11 s and 4 searches / s (10 % / 25 % headroom), freee 5 requests / s).

Data set (the honest change set)
--------------------------------
Both systems already hold the same 20,000 customers: the CRM was loaded from the ERP's export, so the
CRM-owned fields (name, phone) agree, except on 1 % of them where the phone differs (sales updated it
in HubSpot). 70 % carry the corporate number in HubSpot and the T-number in freee (matched by rule 1);
30 % have neither and match on the normalised name + phone (rule 3; the phone written differently
``03-…`` / ``03…``). HubSpot holds none of the ERP-owned billing fields yet (address, billing e-mail,
contact, payment terms, registration number, partner code).

* **Initial sync** = read both sides, match and link 20,000 pairs, write the ERP-owned fields to HubSpot
  (20,000 updates in batches of 100 = 200 requests) and the 200 CRM-owned differences to freee. freee has
  no batch partner update: every freee write is one ``PUT /partners/{id}``. That is why the data set
  does not have, say, every name written in a different legal-form notation: 20,000 freee writes are
  over every plan's daily cap (3,000 / 5,000 / 10,000) and would take days of quota — the flow would stop
  on ``QuotaExhausted`` and resume the next day, which is correct but not a benchmark.
* **Incremental sync** after 1 % change: 100 companies get a new phone in HubSpot (CRM-owned → 100 freee
  PUTs) and 100 partners a new billing e-mail in freee (ERP-owned → 1 HubSpot batch update).

Lower bound (``bound``) for the requests made
---------------------------------------------
Each system's requests can only go as fast as its limits allow, and the systems run in parallel at best,
so the bound is the slowest of the three allowances, each counted from the requests *this run made*:

* HubSpot 10-second bucket, ``D`` requests (batch updates, list pages, property reads):
  ``10 s · (⌈D / 100⌉ − 1) + latency`` (the first 100 may go at t = 0);
* HubSpot search, ``S`` requests: ``(S − 1) / 5 s + latency``;
* freee会計, ``F`` requests: freee publishes no per-second number for 会計; the connector's documented
  pacing is 5 / s (``FreeeLimits.accounting_per_s``; 3,600 / h sustained would trip the sandbox's lockout
  only beyond 3,600 requests in an hour, which no run here approaches): ``(F − 1) / 5 s + latency``.

``bound = max`` of the three; ``ratio = seconds / bound`` (target ≤ 1.25). The client keeps its headroom
under the documented limits (25 % on search), which the bound does not grant it.

How the flow reads. A first sync reads every company with the connector's concurrent full read (list
stream on the 10-second bucket + search stream, meeting in the middle), not the modification-time feed:
for 20,000 records that is ~70 list + ~50 search requests instead of 100+ searches. Its own 20,000 HubSpot
updates move ``hs_lastmodifieddate``, so it reads everything once more after writing (the *echo*; our own
writes are recognised by the timestamp the write returned and counted as unchanged before any task runs) and commits a cursor
taken just before that second read — a modification cursor cannot tell our writes from a user's, and
moving it past them unread could lose a user's edit made meanwhile. The incremental run then reads only
what changed since (proportional to the changes: printed as ``requests_per_change``). freee writes run
behind the HubSpot pages on a small thread pool paced by the client's limiter, so the 5 / s freee
allowance is used while HubSpot is read and written.

Memory
------
What a first sync holds grows with the record count only where it must: the freee partners it read (all of
them, 3,000 per request: freee has no batch read by id) wait in an unnamed temporary file
(``store.spill.RecordSpill``, unlinked as it is opened) and are read back by id when their company's page
comes; the partner index keeps match keys only (normalised name, phone, corporate number…; a candidate's
name is read back for a review item); ids linked in the run have one map entry per side (``LinkStatus``);
the stamps of our own HubSpot writes (for the echo read) go to a temporary file too. What remains per
pair is under 1 KB (the id maps and the index's match keys).

The machine matters: the sandboxes run in one child process (one event loop each; a search over 20,000
records costs them ~0.2 s of CPU) and the flow's planning is CPU-bound Python, so on a 2-CPU box shared
with other work the seconds include CPU contention the bound does not model (``timing=`` shows the phases).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HS_TOKEN = "renkei-bench-token-00000000"
REFRESH = "renkei-bench-refresh-token-0"


def corporate_number(i: int) -> str:
    from renkei.domain.identifiers import houjin_check_digit

    base = f"{(i * 7919 + 100_000_000_000) % 10**12:012d}"
    return f"{houjin_check_digit(base)}{base}"


def customer(i: int) -> dict:
    corp = corporate_number(i) if i % 10 < 7 else None
    return {"name": f"ベンチ商事{i:05d}株式会社", "phone": f"03-{1000 + i // 10000:04d}-{i % 10000:04d}",
            "corp": corp, "email": f"keiri{i}@bench{i}.co.jp", "code": f"P{i:06d}"}


# --------------------------------------------------------------------------------------------- sandboxes


def _serve(conn, n: int, latency_ms: int) -> None:
    from renkei.sandboxes.common import FaultConfig, ServerThread
    from renkei.sandboxes.freee import FreeeSandboxConfig, create_app as freee_app
    from renkei.sandboxes.freee.entities import Partner
    from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app as hubspot_app

    hcfg = HubSpotSandboxConfig(token=HS_TOKEN, seed="none", rate_limit_per_10s=100, search_per_second=5,
                                daily_limit=250_000, faults=FaultConfig(latency_ms=latency_ms))
    fcfg = FreeeSandboxConfig(seed="none", refresh_token=REFRESH, print_refresh_token=False,
                              accounting_limit_per_hour=3600, daily_cap=3000, faults=FaultConfig(latency_ms=latency_ms))
    happ, fapp = hubspot_app(hcfg), freee_app(fcfg)
    hs_store, fr_store = happ.state.store, fapp.state.store
    rng = random.Random(5)
    crm_diff = set(rng.sample([i for i in range(n) if i % 10 < 7], n // 100))  # 1 %: phone differs (→ freee)
    props = []
    for i in range(n):
        c = customer(i)
        p = {"name": c["name"], "phone": c["phone"] if i not in crm_diff else f"090-{i % 10000:04d}-0000"}
        if c["corp"]:
            p["renkei_corporate_number"] = c["corp"]
        props.append(p)
    crm_ids = hs_store.bulk_create("companies", props, timestamp_ms=hs_store.clock.now_ms() - 86_400_000)
    company_id = fcfg.company_id
    erp_ids = []
    for i in range(n):
        c = customer(i)
        pid = fr_store.next_id("partner")
        part = Partner(id=pid, company_id=company_id, name=c["name"], update_date="2026-10-01", code=c["code"],
                       org_code=1, phone=c["phone"].replace("-", ""), email=c["email"], contact_name="経理部",
                       qualified_invoice_issuer=bool(c["corp"]),
                       invoice_registration_number=f"T{c['corp']}" if c["corp"] else None)
        part.address_attributes.update({"zipcode": "100-0001", "prefecture_code": 12,
                                        "street_name1": "千代田区 千代田1-1", "street_name2": f"ビル{i % 50}F"})
        part.invoice_payment_term_attributes.update({"cutoff_day": 32, "additional_months": 1, "fixed_day": 32})
        fr_store.partners[pid] = part
        erp_ids.append(pid)
    hs = ServerThread(happ).start()
    fr = ServerThread(fapp).start()
    conn.send((hs.url, fr.url, company_id))
    while True:
        cmd = conn.recv()
        if cmd[0] == "stop":
            break
        if cmd[0] == "change":  # 1 % on each side, straight into the stores (users' edits)
            k = int(cmd[1])
            picks = rng.sample(range(n), 2 * k)
            for i in picks[:k]:
                hs_store.update("companies", crm_ids[i], {"phone": f"045-{i % 10000:04d}-1111"})
            for i in picks[k:]:
                part = fr_store.partners[erp_ids[i]]
                part.email, part.update_date = f"seikyu{i}@bench{i}.co.jp", fr_store.today()
            conn.send([crm_ids[i] for i in picks[:k]])
            continue
        if cmd[0] == "check":
            codes = {p.code for p in fr_store.partners.values()}
            conn.send({"partners": len(fr_store.partners), "distinct_codes": len(codes),
                       "companies": sum(1 for r in hs_store.records["companies"].values() if not r.archived)})
            continue
        conn.send("ok")
    hs.stop()
    fr.stop()


_PREFECT_SERVER = r"""
import sys
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness
with prefect_test_harness(server_startup_timeout=120):
    print(PREFECT_API_URL.value(), flush=True)
    sys.stdin.read()  # until the benchmark closes the pipe
"""


class PrefectServer:
    """A throw-away Prefect server (``prefect_test_harness``) run from a child process: the harness imports
    Prefect's server application (~60 MB), which a flow process talking to a Prefect server never holds."""

    def __init__(self):
        import subprocess

        self.proc = subprocess.Popen([sys.executable, "-c", _PREFECT_SERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.api_url = (self.proc.stdout.readline() if self.proc.stdout else "").strip()
        if not self.api_url:
            raise RuntimeError("Prefect test server did not start")

    def stop(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(60)
        except Exception:  # noqa: BLE001
            self.proc.kill()


class Sandboxes:
    def __init__(self, n: int, latency_ms: int):
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, n, latency_ms), daemon=True)
        self.proc.start()
        if not self.conn.poll(600):
            raise RuntimeError("sandboxes did not start")
        self.hubspot_url, self.freee_url, self.company_id = self.conn.recv()

    def command(self, *cmd):
        self.conn.send(cmd)
        return self.conn.recv()

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
        finally:
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.terminate()


# --------------------------------------------------------------------------------------------- figures


def bound_s(d: int, s: int, f: int, latency: float, per10: int = 100, search_per_s: float = 5.0,
            freee_per_s: float = 5.0) -> dict[str, float]:
    parts = {
        "hubspot_10s_bucket": (10.0 * (-(-d // per10) - 1) + latency) if d else 0.0,
        "hubspot_search": ((s - 1) / search_per_s + latency) if s else 0.0,
        "freee": ((f - 1) / freee_per_s + latency) if f else 0.0,
    }
    parts["bound"] = max(parts.values())
    return {k: round(v, 2) for k, v in parts.items()}


class Meter:
    def __init__(self, rt):
        self.rt = rt
        self.snap = self._now()

    def _now(self) -> dict[str, int]:
        hs, fr = self.rt.crm.client, self.rt.erp.client
        lim = hs.rate_limiter.acquired if hs.rate_limiter else {}
        return {"hubspot": hs.stats.requests, "hubspot_10s": lim.get("default", 0), "hubspot_search": lim.get("search", 0),
                "hubspot_429": hs.stats.rate_limited, "freee": fr.stats.requests, "freee_429_403": fr.stats.rate_limited}

    def delta(self) -> dict[str, int]:
        now = self._now()
        out = {k: now[k] - self.snap[k] for k in now}
        self.snap = now
        return out


def run_phase(label: str, meter: Meter, latency: float, changes: int | None = None) -> dict:
    from renkei.flows.customer_sync import customer_sync

    t0 = time.perf_counter()
    summary = customer_sync()
    seconds = time.perf_counter() - t0
    from renkei.flows import customer_sync as mod  # the phase timings the flow put in its report notes

    timing = getattr(mod, "LAST_TIMING", "")
    req = meter.delta()
    b = bound_s(req["hubspot_10s"], req["hubspot_search"], req["freee"], latency)
    out = {"phase": label, "seconds": round(seconds, 1), **{f"req_{k}": v for k, v in req.items()}, **b,
           "ratio": round(seconds / b["bound"], 3) if b["bound"] else None,
           "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "timing": timing,
           "summary": summary}
    if changes:
        out["requests_per_change"] = round((req["hubspot"] + req["freee"]) / changes, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--change-percent", type=float, default=1.0)
    ap.add_argument("--harness-in-process", action="store_true",
                    help="start the Prefect test server from this process, as earlier rounds did (adds the ~60 MB "
                         "of Prefect's server code to the peak memory printed)")
    args = ap.parse_args(argv)
    n, lat = args.records, args.latency_ms / 1000
    print(f"customer-sync benchmark: {n} pairs, latency {args.latency_ms} ms, HubSpot 100/10 s + 5 searches/s, "
          f"freee 3,600/h + daily cap 3,000 (pid {os.getpid()})", flush=True)
    work = Path(tempfile.mkdtemp(prefix="renkei-bench-"))
    t_load = time.perf_counter()
    sb = Sandboxes(n, args.latency_ms)
    print(f"  sandboxes loaded in {time.perf_counter() - t_load:.1f}s", flush=True)
    env = {"RENKEI_HUBSPOT_BASE_URL": sb.hubspot_url, "RENKEI_HUBSPOT_TOKEN": HS_TOKEN,
           "RENKEI_FREEE_BASE_URL": sb.freee_url, "RENKEI_FREEE_AUTH_URL": sb.freee_url,
           "RENKEI_FREEE_CLIENT_ID": "renkei-sandbox-client", "RENKEI_FREEE_CLIENT_SECRET": "renkei-sandbox-secret",
           "RENKEI_FREEE_REFRESH_TOKEN": REFRESH, "RENKEI_FREEE_COMPANY_ID": str(sb.company_id),
           "RENKEI_DATABASE_URL": f"sqlite:///{work / 'renkei.db'}", "RENKEI_HOME": str(work / ".renkei")}
    os.environ.update(env)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.pop("PREFECT_API_URL", None)
    from contextlib import nullcontext

    server = None
    if args.harness_in_process:
        from prefect.testing.utilities import prefect_test_harness

        harness = prefect_test_harness(server_startup_timeout=120)
    else:
        server = PrefectServer()
        os.environ["PREFECT_API_URL"] = server.api_url
        harness = nullcontext()
    from renkei.tasks.runtime import get_runtime, reset_runtime

    ok = True
    try:
        with harness:
            reset_runtime()
            rt = get_runtime()
            rt.crm.client.properties.ensure("companies")
            meter = Meter(rt)
            first = run_phase("initial", meter, lat)
            print("  " + "  ".join(f"{k}={v}" for k, v in first.items()), flush=True)
            k = max(1, int(n * args.change_percent / 100 / 2))
            sb.command("change", k)
            second = run_phase("incremental", meter, lat, changes=2 * k)
            print("  " + "  ".join(f"{k_}={v}" for k_, v in second.items()), flush=True)
            third = run_phase("rerun-unchanged", meter, lat)
            print("  " + "  ".join(f"{k_}={v}" for k_, v in third.items()), flush=True)
            check = sb.command("check")
            links = len(rt.store.id_map("company"))
            reviews = len(rt.store.list_reviews("open", flow="customer-sync"))
            print(f"  check: {check} id_map={links} open_reviews={reviews}", flush=True)
            ok = check["partners"] == n and check["companies"] == n and links == n and reviews == 0
            print(f"RESULT initial ratio={first['ratio']} incremental ratio={second['ratio']} "
                  f"incremental requests/change={second.get('requests_per_change')} "
                  f"peak_rss_mb={second['max_rss_mb']} (flow process; Prefect server "
                  f"{'in it' if args.harness_in_process else 'in a child process'}) "
                  f"{'OK' if ok else 'CHECK FAILED'}", flush=True)
            reset_runtime()
    finally:
        sb.stop()
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
