"""Benchmark: won deal → invoice in freee latency through webhooks.

N deals (default 50) move to a won stage over ``--over`` seconds (default 60) in the HubSpot sandbox
(100 ms latency on every request, HubSpot's documented limits: 100 requests / 10 s, search 5 / s); the
sandbox delivers each change as a signed webhook about 200 ms after it happens. freee has its documented
limits (請求書 30 requests / minute, 1,500 / hour) and 100 ms latency.

``--path deployment`` (default) — the real path: a local Prefect server; the order-to-invoice deployment
with prefect.yaml's webhook trigger served by ``python -m renkei.deployments.serve --triggers-only --flows
order-to-invoice --no-approvals --warm`` (``--cold``: without ``--warm``, i.e. each run from a fresh
interpreter as Prefect starts it by default); the receiver as its own process (``python -m renkei.webhooks``,
events to the Prefect REST API); one flow-run process per triggered run; the runs' processes share freee's
pace through the state store (``RENKEI_RATE_LIMITS=shared``). Prints p50 / p95 / max, the runs and where
their time goes (change → run created, created → Pending, Pending → Running = the per-run process start,
Running → done), and the 429 responses the sandboxes sent to any process (must be 0).

``--path inprocess`` — the comparison: an in-process dispatcher mimics the trigger (one run per receiver
batch, ``--concurrency`` at a time) and runs the flow in this process: no event, no trigger, no process start.

freee's window: freee請求書's 30 per minute resets on the clock (its documented ``X-Ratelimit-Reset-Minute``
header; the sandbox counts per UTC minute), and the client counts it that way by default
(``RENKEI_FREEE_IV_WINDOW=fixed``). The worst case is a burst that starts on a minute boundary — all 50 deals
fall in one window and the 31st to 50th wait for the next minute (up to 60 − 30 × T / N = 24 s at 50 over 60 s)
— so the first change is made ``--offset`` seconds after a UTC minute boundary (default 0: the worst case).
``--iv-window rolling`` makes the client count any 60 s instead (stricter): then the k-th invoice (0-based)
cannot go before the (k−30)-th + 60 s, and the last ones wait those 24 s *plus* the latency of the deal 30
places before.

    python benchmarks/latency.py [--path deployment|inprocess] [--deals 50] [--over 60] [--customers 10]
                                 [--latency-ms 100] [--cold] [--slot-wait 2] [--poll-seconds 1]
                                 [--offset 0] [--iv-window fixed|rolling] [--json]
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import bench_world, peak_rss_mb, seed_deals, set_latency  # noqa: E402

SECRET = "bench-app-client-secret"



def watch_invoices(fstore) -> tuple[dict[int, float], threading.Event]:
    """When each invoice first appears in the freee sandbox (polled every 50 ms) until the event is set."""
    seen_at: dict[int, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            now = time.time()
            for inv_id in list(fstore.invoices):
                seen_at.setdefault(inv_id, now)
            stop.wait(0.05)

    threading.Thread(target=watch, daemon=True).start()
    return seen_at, stop


def minute_aligned(offset: float) -> float:
    """Sleep until ``offset`` seconds after the next UTC minute boundary (at least 1 s away); that moment."""
    now = time.time()
    at = (now // 60 + 1) * 60 + offset
    while at - now < 1.0:
        at += 60
    time.sleep(at - now)
    return at


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def measure_receiver(tmp: Path, requests: int = 200) -> dict[str, float]:
    """The receiver as it runs in production (``python -m renkei.webhooks``, its own process, events to the
    Prefect REST API of ``PREFECT_API_URL``): import time, start to listening, and per-request latency of
    signed one-event deliveries (new keys) measured by the sender."""
    import os
    import socket
    import subprocess

    import httpx

    from renkei.sandboxes.hubspot.webhooks import signature_v3

    imp = subprocess.run([sys.executable, "-X", "importtime", "-c", "import renkei.webhooks.config"],
                         capture_output=True, text=True, check=True)
    total_us = sum(int(line.split("|")[1]) for line in imp.stderr.splitlines()
                   if line.startswith("import time:") and line.split("|")[2].startswith(" ") and
                   not line.split("|")[2].startswith("  ") and line.split("|")[1].strip().isdigit())
    prefect_loaded = any(line.rstrip().endswith("| prefect") for line in imp.stderr.splitlines())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "RENKEI_DATABASE_URL": f"sqlite:///{tmp / 'receiver.db'}",
           "RENKEI_WEBHOOK_HUBSPOT_SECRET": SECRET, "RENKEI_WEBHOOK_WON_STAGES": "closedwon",
           "RENKEI_WEBHOOK_BATCH_SECONDS": "0.2"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "renkei.webhooks", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=10) as client:
            while True:
                try:
                    client.get(url + "/health")
                    break
                except httpx.TransportError:
                    if proc.poll() is not None or time.perf_counter() - t0 > 60:
                        raise RuntimeError("the receiver did not start")
                    time.sleep(0.02)
            started = time.perf_counter() - t0
            times = []
            for i in range(requests):
                body = json.dumps([{"eventId": 10_000 + i, "portalId": 62515, "occurredAt": int(time.time() * 1000),
                                    "subscriptionType": "deal.propertyChange", "objectId": 50_000 + i,
                                    "propertyName": "dealstage", "propertyValue": "closedwon"}]).encode()
                ts = int(time.time() * 1000)
                headers = {"X-HubSpot-Signature-v3": signature_v3(SECRET, "POST", url + "/webhooks/hubspot", body, ts),
                           "X-HubSpot-Request-Timestamp": str(ts), "Content-Type": "application/json"}
                t = time.perf_counter()
                resp = client.post(url + "/webhooks/hubspot", content=body, headers=headers)
                times.append((time.perf_counter() - t) * 1000)
                assert resp.status_code == 200 and resp.json()["accepted"] == 1, resp.text
            deadline = time.monotonic() + 30
            while True:  # every accepted change handed to the Prefect API
                health = client.get(url + "/health").json()
                if health["emitted"] >= requests or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    return {"import_ms": total_us / 1000, "prefect_imported": prefect_loaded, "ready_s": started,
            "p50_ms": statistics.median(times), "p95_ms": pct(times, 95), "max_ms": max(times),
            "emitted": health["emitted"], "requests": requests}


def run_inprocess(args: argparse.Namespace) -> None:
    """The flow runs in this process, dispatched by an in-process imitation of the trigger (no per-run
    process start): the lower bound the real path is compared with."""
    n = args.deals

    with bench_world(env={"RENKEI_FREEE_ACCOUNTING_PER_SECOND": "5", "RENKEI_FREEE_IV_WINDOW": args.iv_window}) as w:
        from renkei.flows.order_to_invoice import order_to_invoice
        from renkei.sandboxes.common import ServerThread
        from renkei.sandboxes.hubspot.webhooks import Deliverer
        from renkei.webhooks.app import Receiver, create_app
        from renkei.webhooks.emit import ListEmitter
        from renkei.webhooks.ledger import Ledger

        rx = measure_receiver(w["tmp"])
        rt, hstore, fstore = w["rt"], w["hubspot_app"].state.store, w["freee_app"].state.store
        deals = seed_deals(rt, hstore, deals=n, customers=args.customers, stage="contractsent", name="遅延", code="L",
                           series=2, width=3)
        set_latency(w["hubspot_app"], args.latency_ms)
        set_latency(w["freee_app"], args.latency_ms)

        # the dispatcher: one run per batch id, in order, one at a time (the trigger + concurrency_limit 1)
        runs: "queue.Queue[list[str]]" = queue.Queue()
        seen_batches: set[str] = set()
        lock = threading.Lock()

        def on_emit(events: list[dict]) -> None:
            for e in events:
                b = e["resource"]["renkei.batch-id"]
                with lock:
                    if b in seen_batches:
                        continue
                    seen_batches.add(b)
                runs.put(list(e["payload"]["deal_ids"]))

        won = rt.crm.won_stage_ids()
        t_imp = time.perf_counter()
        receiver = Receiver(ledger=Ledger.open(f"sqlite:///{w['tmp'] / 'renkei.db'}"),
                            emitter=ListEmitter(on_emit), hubspot_secret=SECRET, won_stages=lambda: won,
                            batch_seconds=args.batch_seconds)
        hook = ServerThread(create_app(receiver)).start()
        startup = time.perf_counter() - t_imp
        deliverer = Deliverer(hstore, hook.url + "/webhooks/hubspot", SECRET, delay_ms=200,
                              subscriptions=("deal.propertyChange:dealstage",)).start()

        # invoices as they appear in freee (first seen, polled every 50 ms)
        seen_at, stop = watch_invoices(fstore)
        changed_at: dict[str, float] = {}

        def win_deals() -> None:
            t0 = minute_aligned(args.offset)
            for d, deal_id in enumerate(deals):
                time.sleep(max(0.0, t0 + d * args.over / n - time.time()))
                changed_at[str(deal_id)] = time.time()
                hstore.update("deals", deal_id, {"dealstage": "closedwon"})

        driver = threading.Thread(target=win_deals, daemon=True)
        driver.start()
        t_start = time.time()
        run_seconds: list[float] = []

        def worker() -> None:
            while len(fstore.invoices) < n and time.time() - t_start < args.timeout:
                try:
                    ids = runs.get(timeout=0.5)
                except queue.Empty:
                    continue
                t = time.perf_counter()
                order_to_invoice(deal_ids=ids)
                run_seconds.append(time.perf_counter() - t)

        workers = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        n_runs = len(run_seconds)
        time.sleep(0.2)
        stop.set()
        deliverer.stop()
        receiver.batcher.stop()
        hook.stop()

        latencies = []
        for deal_id, t_change in changed_at.items():
            entry = rt.store.ledger_entry(f"invoice:deal:{deal_id}")
            if entry is not None and entry.external_id and int(entry.external_id) in seen_at:
                latencies.append(seen_at[int(entry.external_id)] - t_change)
        fr429 = rt.erp.client.stats.by_status.get(429, 0)
        hs429 = rt.crm.client.stats.by_status.get(429, 0)
        print(f"deals won                  {n} over {args.over:.0f} s ({args.customers} customers, "
              f"{args.latency_ms} ms latency, freee 請求書 {w['freee_config'].iv_limit_per_minute}/min); first change "
              f"{args.offset:g} s after a UTC minute; client counts freee's minute as {args.iv_window} windows")
        print("dispatch                   in-process dispatcher mimicking the prefect.yaml trigger "
              f"(one run per receiver batch, {args.concurrency} at a time, batch window {args.batch_seconds} s)")
        print(f"invoices in freee          {len(fstore.invoices)} (one per deal: {len(latencies) == n})")
        if latencies:
            print(f"stage change → invoice s   p50 {statistics.median(latencies):.1f}  p95 {pct(latencies, 95):.1f}  "
                  f"max {max(latencies):.1f}  (target p95 < 30)")
        print(f"runs                       {n_runs} (mean {statistics.mean(run_seconds or [0]):.1f} s each)")
        from renkei.webhooks.ledger import Ledger

        print(f"webhook events             {Ledger(rt.store.engine).counts()}  (taken: invoiced by a run already "
              "under way, ahead of their own queued run)")
        print(f"webhooks                   {deliverer.deliveries} POSTs, {deliverer.delivered} events, "
              f"receiver {json.dumps(receiver.stats)}")
        print(f"receiver process           import {rx['import_ms']:.0f} ms (Prefect imported: {rx['prefect_imported']}), "
              f"start → listening {rx['ready_s']:.2f} s; per delivery p50 {rx['p50_ms']:.1f} ms  "
              f"p95 {rx['p95_ms']:.1f} ms  max {rx['max_ms']:.1f} ms ({rx['requests']} signed POSTs; "
              f"{rx['emitted']} events sent to the Prefect REST API)")
        print(f"receiver in this process   {startup * 1000:.0f} ms from build to listening")
        print(f"429 responses              freee {fr429}, HubSpot {hs429}  (must be 0)")
        print(f"peak RSS                   {peak_rss_mb():.0f} MB")


def _start_receiver(tmp: Path, env: dict[str, str]) -> tuple["subprocess.Popen", str]:
    """``python -m renkei.webhooks`` in its own process, as deployed; returns it and its base URL."""
    import os
    import socket
    import subprocess

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp / "receiver.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "renkei.webhooks", "--port", str(port)],
                            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            httpx.get(url + "/health", timeout=2)
            return proc, url
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the receiver did not start (see {tmp / 'receiver.log'})")
            time.sleep(0.1)


def run_history(api_deployment: str) -> list[dict]:
    """Each run of the deployment: created, Pending, Running and final times (epoch s), its deal ids and state.
    Pending → Running is the per-run process start (spawn, import Prefect and Renkei, load the flow)."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    out = []
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(api_deployment)
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))
        for r in runs:
            states = client.read_flow_run_states(r.id)
            at = {}
            for st in sorted(states, key=lambda x: x.timestamp):
                at.setdefault(st.type.value, st.timestamp.timestamp())
            out.append({"created": r.created.timestamp(), "pending": at.get("PENDING"), "running": at.get("RUNNING"),
                        "end": at.get(r.state.type.value) if r.state and r.state.is_final() else None,
                        "state": r.state.type.value if r.state else None,
                        "deal_ids": [str(d) for d in (r.parameters.get("deal_ids") or [])]})
    return out


def wait_runs_final(api_deployment: str, timeout: float) -> float | None:
    """Wait until every run of the deployment is in a final state; when that was (None: not within timeout)."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deadline = time.time() + timeout
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(api_deployment)
        while time.time() < deadline:
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))
            if runs and all(r.state and r.state.is_final() for r in runs):
                return time.time()
            time.sleep(1.0)
    return None


def run_deployment(args: argparse.Namespace) -> None:
    """The real path: the HubSpot sandbox delivers signed webhooks to the receiver process, which sends
    Prefect events over REST; the order-to-invoice deployment's trigger (prefect.yaml's, served by
    ``python -m renkei.deployments.serve --triggers-only``) creates one run per burst, which the served
    runner starts in a process of its own."""
    import os

    from renkei.deployments.serve import Runner
    from renkei.sandboxes.hubspot.webhooks import Deliverer

    n = args.deals
    env = {"RENKEI_FREEE_ACCOUNTING_PER_SECOND": "5", "RENKEI_RATE_LIMITS": "shared",
           "RENKEI_FREEE_IV_WINDOW": args.iv_window,
           # the server's retry of a run that found the deployment's concurrency limit full (Prefect: 30 s)
           "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": str(args.slot_wait)}
    with bench_world(env=env) as w:
        tmp, rt = w["tmp"], w["rt"]
        hstore, fstore = w["hubspot_app"].state.store, w["freee_app"].state.store
        deals = seed_deals(rt, hstore, deals=n, customers=args.customers, stage="contractsent", name="遅延", code="L",
                           series=2, width=3)
        rt.erp.client.stats.by_status.clear()
        for status in (w["hubspot_status"], w["freee_status"]):
            status.clear()
        set_latency(w["hubspot_app"], args.latency_ms)
        set_latency(w["freee_app"], args.latency_ms)

        t0 = time.perf_counter()
        serve_args = ["--triggers-only", "--flows", "order-to-invoice", "--no-approvals", "--limit",
                      str(max(4, args.concurrency)), "--order-concurrency", str(args.concurrency)]
        serve_args += ["--warm"] if args.warm else []
        runner = Runner(args=serve_args,
                        env={"PREFECT_RUNNER_POLL_FREQUENCY": str(args.poll_seconds)}, log_path=tmp / "runner.log")
        runner.start(wait_for="order-to-invoice/order-to-invoice", timeout_s=240)
        runner_ready = time.perf_counter() - t0
        receiver = None
        try:
            t0 = time.perf_counter()
            receiver, hook_url = _start_receiver(tmp, {
                "RENKEI_WEBHOOK_HUBSPOT_SECRET": SECRET, "RENKEI_WEBHOOK_BATCH_SECONDS": str(args.batch_seconds),
                "RENKEI_WEBHOOK_MAX_RUNS": os.environ.get("RENKEI_WEBHOOK_MAX_RUNS", str(args.concurrency))})
            receiver_ready = time.perf_counter() - t0
            time.sleep(3.0)  # the runner's first poll and the trigger loaded by the server's triggers service
            deliverer = Deliverer(hstore, hook_url + "/webhooks/hubspot", SECRET, delay_ms=200,
                                  subscriptions=("deal.propertyChange:dealstage",)).start()
            changed_at: dict[str, float] = {}
            seen_at, stop = watch_invoices(fstore)
            t_start = minute_aligned(args.offset)
            for d, deal_id in enumerate(deals):
                time.sleep(max(0.0, t_start + d * args.over / n - time.time()))
                changed_at[str(deal_id)] = time.time()
                hstore.update("deals", deal_id, {"dealstage": "closedwon"})
            while len(fstore.invoices) < n and time.time() - t_start < args.timeout:
                time.sleep(0.2)
            done_at = time.time()
            # every requested run comes to an end (runs whose deals a run under way took find them invoiced),
            # then a quiet spell: no run started for nothing, no invoice made twice
            drained_at = wait_runs_final("order-to-invoice/order-to-invoice", timeout=args.timeout)
            time.sleep(3.0)
            stop.set()
            deliverer.stop()
            import httpx

            health = httpx.get(hook_url + "/health", timeout=5).json()
            runs = run_history("order-to-invoice/order-to-invoice")
        finally:
            if receiver is not None:
                from renkei.prefect_server import stop as stop_proc

                stop_proc(receiver)
            runner.stop()

        by_deal = {}
        for deal_id in changed_at:
            entry = rt.store.ledger_entry(f"invoice:deal:{deal_id}")
            if entry is not None and entry.external_id and int(entry.external_id) in seen_at:
                by_deal[deal_id] = seen_at[int(entry.external_id)] - changed_at[deal_id]
        latencies = list(by_deal.values())
        first_run = {}
        for r in sorted(runs, key=lambda r: r["created"]):
            for d in r["deal_ids"]:
                first_run.setdefault(d, r)
        trigger = [first_run[d]["created"] - changed_at[d] for d in changed_at if d in first_run]
        queued = [r["pending"] - r["created"] for r in runs if r["pending"]]
        start = [r["running"] - r["pending"] for r in runs if r["pending"] and r["running"]]
        work = [r["end"] - r["running"] for r in runs if r["end"] and r["running"]]
        start_share = [(first_run[d]["running"] - first_run[d]["pending"]) / by_deal[d]
                       for d in by_deal if d in first_run and first_run[d]["running"] and first_run[d]["pending"]]
        states = Counter(r["state"] for r in runs)
        invoices_per_deal = Counter(rt.store.ledger_entry(f"invoice:deal:{d}").external_id for d in changed_at
                                    if rt.store.ledger_entry(f"invoice:deal:{d}") is not None)

        def stats(xs: list[float]) -> str:
            return (f"p50 {statistics.median(xs):.1f}  p95 {pct(xs, 95):.1f}  max {max(xs):.1f}" if xs else "-")

        print("path                       deployment: receiver process → Prefect events (REST) → order-to-invoice "
              "trigger → served runner (one process per run)")
        print(f"deals won                  {n} over {args.over:.0f} s ({args.customers} customers, "
              f"{args.latency_ms} ms latency, freee 請求書 {w['freee_config'].iv_limit_per_minute}/min); first change "
              f"{args.offset:g} s after a UTC minute; client counts freee's minute as {args.iv_window} windows")
        print(f"settings                   batch window {args.batch_seconds} s, deployment concurrency "
              f"{args.concurrency}, runner poll {args.poll_seconds} s, run start {'warm' if args.warm else 'cold'}, "
              f"slot retry {args.slot_wait:g} s, receiver runs "
              f"{os.environ.get('RENKEI_WEBHOOK_MAX_RUNS', args.concurrency)} per "
              f"{os.environ.get('RENKEI_WEBHOOK_RUN_SECONDS', 4)} s, RENKEI_RATE_LIMITS=shared (SQLite store)")
        print(f"start-up                   served runner registered in {runner_ready:.1f} s, receiver listening "
              f"in {receiver_ready:.1f} s")
        print(f"invoices in freee          {len(fstore.invoices)} for {n} deals (one per deal: "
              f"{len(latencies) == n and len(fstore.invoices) == n and len(invoices_per_deal) == n}); "
              f"all in {done_at - t_start:.0f} s")
        print(f"stage change → invoice s   {stats(latencies)}  (target p95 < 30)")
        print(f"every run ended            {f'{drained_at - done_at:.0f} s after the last invoice' if drained_at else 'NOT within the timeout'}"
              f"; invoices in freee then {len(fstore.invoices)} (runs whose deals were taken by a run under way "
              f"find them invoiced)")
        per_run = statistics.mean([len(r["deal_ids"]) for r in runs] or [0])
        print(f"runs started               {len(runs)} ({dict(states)}), {per_run:.1f} deals each")
        print(f"  change → run created s   {stats(trigger)}  (delivery 0.2 s + receiver batch + event + trigger)")
        print(f"  created → Pending s      {stats(queued)}  (runner poll, deployment concurrency)")
        print(f"  Pending → Running s      {stats(start)}  (per-run process start: spawn, import, load the flow)")
        print(f"  Running → done s         {stats(work)}  (the flow's work, freee's pace included)")
        if start_share:
            print(f"process start share        {statistics.mean(start_share) * 100:.0f} % of a deal's latency on average")
        from renkei.webhooks.ledger import Ledger

        print(f"webhook events             {Ledger(rt.store.engine).counts()}  (taken: invoiced by a run already "
              "under way, ahead of their own queued run)")
        print(f"webhooks                   {deliverer.deliveries} POSTs, {deliverer.delivered} events, receiver "
              f"{json.dumps({k: v for k, v in health.items() if k != 'status'})}")
        print(f"429 responses              freee {w['freee_status'].get(429, 0)}, HubSpot "
              f"{w['hubspot_status'].get(429, 0)}  (must be 0; every process's requests counted at the sandboxes)")
        print(f"load average               {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if args.json:
            print(json.dumps({"latencies": latencies, "runs": runs}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", choices=("deployment", "inprocess"), default="deployment",
                    help="deployment: the real path (receiver process → Prefect event → trigger → served "
                         "runner, one process per run); inprocess: the flow in this process (comparison)")
    ap.add_argument("--deals", type=int, default=50)
    ap.add_argument("--over", type=float, default=60.0, help="seconds over which the deals are won")
    ap.add_argument("--customers", type=int, default=10)
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--batch-seconds", type=float, default=None,
                    help="the receiver's burst window (default: RENKEI_WEBHOOK_BATCH_SECONDS's default)")
    ap.add_argument("--concurrency", type=int, default=3,
                    help="runs at a time: the order-to-invoice deployment's concurrency limit (prefect.yaml: 3) "
                         "and the receiver's RENKEI_WEBHOOK_MAX_RUNS")
    ap.add_argument("--poll-seconds", type=int, default=1,
                    help="deployment path: PREFECT_RUNNER_POLL_FREQUENCY of the served runner")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--slot-wait", type=float, default=2.0,
                    help="deployment path: PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS of the server "
                         "(Prefect's default 30; docs/webhooks.md recommends 2 on a self-hosted server)")
    ap.add_argument("--cold", dest="warm", action="store_false",
                    help="deployment path: each run from a fresh interpreter (Prefect's default) instead of the "
                         "served runner's fork server (serve --warm)")
    ap.add_argument("--offset", type=float, default=0.0,
                    help="the first change this many seconds after a UTC minute boundary (0: the worst case for "
                         "freee's per-minute window)")
    ap.add_argument("--iv-window", choices=("fixed", "rolling"), default="fixed",
                    help="RENKEI_FREEE_IV_WINDOW: how the client counts freee請求書's minute and hour")
    ap.add_argument("--json", action="store_true", help="also print the raw latencies and run timings")
    args = ap.parse_args()
    if args.batch_seconds is None:
        from renkei.settings import Settings

        args.batch_seconds = Settings.model_fields["webhook_batch_seconds"].default
    (run_deployment if args.path == "deployment" else run_inprocess)(args)


if __name__ == "__main__":
    main()
