"""Benchmark: three process workers run order-to-invoice, payment-writeback and customer-sync at once.

The scale-out stack of ``renkei stack up`` (deployments/stack.py) with the sandboxes in this process: a
Prefect server on PostgreSQL, the state store on PostgreSQL, three process workers on the ``renkei`` pool,
all sharing the API pace through the state store (``RENKEI_RATE_LIMITS=shared``). The sandboxes enforce
HubSpot's documented limits (100 / 10 s, search 5 / s) and freee請求書's per-minute limit (raised to
``--iv-per-minute``, 600 by default as in benchmarks/order_to_invoice.py: at the real 30 / minute 3,000
invoices alone take 100 minutes); every response they give is counted.

Seeded: ``--companies`` customers present on both sides (customer-sync links and compares them all), and
``--deals`` won deals with one line each on ``--customers`` of them (order-to-invoice makes one freee invoice
each; those customers are linked already, as by an earlier customer-sync), a tenth of them with a bank deposit
(payment-writeback). The three deployments are run
at the same moment; the benchmark waits for all three.

Prints: duplicates (freee invoices per deal, partners per customer, HubSpot companies per name — must be 0),
429 responses from each sandbox (must be 0: the client keeps under the documented pace), the requests of
each rate-limit bucket and the time its pace alone needs (the bound is the largest; freee請求書's minute
resets on the clock, so its time is counted in UTC minutes from its first request: the first minute's
allowance at once, then one minute's worth at each boundary), the wall time and its ratio to the bound.

Every 429 is printed with its time, path and User-Agent; the requests are counted by User-Agent, and HubSpot's
against the slots of the shared limiter's day bucket (which every request takes: a request sent beside the
limiter shows as a difference).

    python benchmarks/scale_out.py [--deals 3000] [--companies 20000] [--scale 0.1] [--postgres URL] [--log FILE]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.customer_sync import HS_TOKEN, REFRESH, customer  # noqa: E402


def fixed_window_need(requests: int, per_window: int, window_s: float, first_at: float) -> float:
    """Seconds from the first request until the last can go when at most ``per_window`` fit in each clock-aligned
    window: the first window's allowance at once, then one window's worth at each following boundary."""
    windows = -(-requests // per_window)  # windows the requests fill
    first_end = (first_at // window_s + 1) * window_s
    return 0.0 if windows <= 1 else first_end - first_at + (windows - 2) * window_s


class Tap:
    """ASGI layer counting a sandbox's responses by status and by rate-limit bucket."""

    def __init__(self, app, classify):
        self.app, self.classify = app, classify
        self.status: Counter = Counter()
        self.buckets: Counter = Counter()
        self.state = app.state
        self.t0 = time.monotonic()
        self.agents: Counter = Counter()  # requests by User-Agent: Renkei's clients vs anything sent beside them
        self.limited: list[tuple[float, str, str, str]] = []  # every 429: (s since start, method, path, agent)
        self.log: list[tuple] | None = None  # every response, with --log
        self.first_at: dict[str, float] = {}  # epoch time of each bucket's first counted request

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        bucket = self.classify(scope["method"], scope["path"])
        arrived = time.monotonic() - self.t0
        ua = dict(scope.get("headers") or []).get(b"user-agent", b"").decode()

        async def send_counted(message):
            if message["type"] == "http.response.start":
                self.status[message["status"]] += 1
                self.agents[ua] += 1
                if message["status"] == 429:
                    self.limited.append((arrived, scope["method"], scope["path"], ua))
                if self.log is not None:
                    self.log.append((round(arrived, 3), scope["method"], scope["path"], ua, message["status"]))
                if message["status"] < 400 or message["status"] == 429:
                    self.buckets[bucket] += 1
                    self.first_at.setdefault(bucket, time.time())
            await send(message)

        return await self.app(scope, receive, send_counted)


def hubspot_bucket(method: str, path: str) -> str:
    return "hubspot search" if path.endswith("/search") else "hubspot 10s"


def freee_bucket(method: str, path: str) -> str:
    if "/iv/" in path or path.endswith("/iv"):
        return "freee iv"
    return "freee token" if "token" in path else "freee accounting"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deals", type=int, default=3000)
    ap.add_argument("--companies", type=int, default=20000)
    ap.add_argument("--customers", type=int, default=300, help="companies the deals belong to")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply deals, companies and customers (0.1 to develop)")
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--iv-per-minute", type=int, default=600)
    ap.add_argument("--accounting-per-second", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--postgres", default=os.environ.get("RENKEI_STACK_POSTGRES_URL",
                                                         "postgresql+psycopg2://postgres@127.0.0.1:55432/postgres"))
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--log", help="write every sandbox response here (tab-separated: sandbox, seconds, method, "
                                  "path, User-Agent, status)")
    args = ap.parse_args()
    n_deals = max(1, int(args.deals * args.scale))
    n_comp = max(1, int(args.companies * args.scale))
    n_cust = max(1, min(n_comp, int(args.customers * max(args.scale, 0.1))))
    iv = args.iv_per_minute

    from renkei.deployments import stack
    from renkei.prefect_server import free_port
    from renkei.sandboxes.common import FaultConfig, ServerThread
    from renkei.sandboxes.freee import FreeeSandboxConfig, create_app as freee_app
    from renkei.sandboxes.freee.entities import Partner
    from renkei.sandboxes.freee.models import WalletTxnCreate
    from renkei.sandboxes.freee.seed import BANK_ACCOUNT_ID
    from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app as hubspot_app

    t_seed = time.monotonic()
    hcfg = HubSpotSandboxConfig(token=HS_TOKEN, seed="none", rate_limit_per_10s=100, search_per_second=5,
                                daily_limit=1_000_000, faults=FaultConfig(latency_ms=args.latency_ms))
    fcfg = FreeeSandboxConfig(seed="demo", refresh_token=REFRESH, print_refresh_token=False,
                              accounting_limit_per_hour=int(args.accounting_per_second * 3600),
                              iv_limit_per_minute=iv, iv_limit_per_hour=iv * 60,
                              faults=FaultConfig(latency_ms=args.latency_ms))
    happ, fapp = hubspot_app(hcfg), freee_app(fcfg)
    hs_store, fr_store = happ.state.store, fapp.state.store
    # customers on both sides (the same names, codes, corporate numbers)
    crm_ids = hs_store.bulk_create("companies", [
        {"name": c["name"], "phone": c["phone"], **({"renkei_corporate_number": c["corp"]} if c["corp"] else {})}
        for c in map(customer, range(n_comp))], timestamp_ms=hs_store.clock.now_ms() - 86_400_000)
    erp_ids = []
    for i in range(n_comp):
        c = customer(i)
        pid = fr_store.next_id("partner")
        erp_ids.append(pid)
        part = Partner(id=pid, company_id=fcfg.company_id, name=c["name"], update_date="2026-10-01", code=c["code"],
                       org_code=1, phone=c["phone"].replace("-", ""), email=c["email"], contact_name="経理部",
                       qualified_invoice_issuer=bool(c["corp"]),
                       invoice_registration_number=f"T{c['corp']}" if c["corp"] else None)
        part.invoice_payment_term_attributes.update({"cutoff_day": 32, "additional_months": 1, "fixed_day": 32})
        fr_store.partners[pid] = part
    # won deals, one line each, a unique total each; deals on companies with a corporate number
    cust = [i for i in range(n_comp) if customer(i)["corp"]][:n_cust]
    deal_ids = hs_store.bulk_create("deals", [
        {"dealname": f"スケール案件 {d:05d}", "dealstage": "closedwon", "pipeline": "default",
         "amount": str(10000 + d), "closedate": "2026-11-20T03:00:00.000Z", "deal_currency_code": "JPY"}
        for d in range(n_deals)])
    line_ids = hs_store.bulk_create("line_items", [
        {"name": "スケール品目", "quantity": 1, "price": 10000 + d, "renkei_tax_category": "standard_10"}
        for d in range(n_deals)])
    hs_store.bulk_associate("deals", "companies", [(deal_ids[d], crm_ids[cust[d % len(cust)]]) for d in range(n_deals)],
                            type_ids=[5])
    hs_store.bulk_associate("line_items", "deals", list(zip(line_ids, deal_ids)), type_ids=[20])
    for d in range(0, n_deals, 10):  # a tenth are paid: the total with 10 % tax, floor
        fr_store.create_wallet_txn(WalletTxnCreate(
            company_id=fcfg.company_id, entry_side="income", amount=(10000 + d) * 110 // 100,
            walletable_id=BANK_ACCOUNT_ID, walletable_type="bank_account", date="2026-11-25",
            description=f"振込 ベンチ{d}"))
    htap, ftap = Tap(happ, hubspot_bucket), Tap(fapp, freee_bucket)
    if args.log:
        htap.log, ftap.log = [], []
    hs, fr = ServerThread(htap).start(), ServerThread(ftap).start()
    print(f"seeded {n_comp} companies on both sides, {n_deals} won deals on {len(cust)} of them, "
          f"{len(range(0, n_deals, 10))} deposits in {time.monotonic() - t_seed:.1f}s", flush=True)

    home = Path(tempfile.mkdtemp(prefix="renkei-scale-"))
    extra = {"RENKEI_HUBSPOT_BASE_URL": hs.url, "RENKEI_HUBSPOT_TOKEN": HS_TOKEN,
             "RENKEI_FREEE_BASE_URL": fr.url, "RENKEI_FREEE_AUTH_URL": fr.url,
             "RENKEI_FREEE_CLIENT_ID": fcfg.client_id, "RENKEI_FREEE_CLIENT_SECRET": fcfg.client_secret,
             "RENKEI_FREEE_REFRESH_TOKEN": REFRESH, "RENKEI_FREEE_COMPANY_ID": str(fcfg.company_id),
             "RENKEI_FREEE_IV_PER_MINUTE": str(iv), "RENKEI_FREEE_IV_PER_HOUR": str(iv * 60),
             "RENKEI_FREEE_ACCOUNTING_PER_SECOND": str(args.accounting_per_second),
             "PREFECT_LOGGING_LEVEL": "WARNING"}
    t_up = time.monotonic()
    st = stack.up(home=home, postgres=args.postgres, workers=args.workers, prefect_port=free_port(),
                  sandboxes=False, prefix=f"renkei_scale_{os.getpid()}", extra_env=extra,
                  say=lambda m: print("  " + m, flush=True))
    print(f"stack up in {time.monotonic() - t_up:.0f}s", flush=True)
    try:
        # the deals' customers were linked by an earlier customer-sync (as in production: order-to-invoice parks
        # a deal whose company has no freee partner yet, and retries it next run)
        from renkei.store.repo import Store

        state = Store.open(stack._db_url(args.postgres, st.state_db), cached=False)
        for i in cust:
            state.link("company", str(crm_ids[i]), str(erp_ids[i]))
        state.engine.dispose()
        result = run_three(st.prefect_api_url, args.timeout)
        result["reviews"] = review_counts(stack._db_url(args.postgres, st.state_db))
        result["limiter"] = limiter_rows(stack._db_url(args.postgres, st.state_db))
    finally:
        stack.down(home, drop=True, say=lambda m: print("  " + m, flush=True))
        hs.stop() if hasattr(hs, "stop") else None
        fr.stop() if hasattr(fr, "stop") else None
    report(result, htap, ftap, fr_store, hs_store, n_deals, iv, args)
    if args.log:
        with open(args.log, "w") as f:
            for name, tap in (("hubspot", htap), ("freee", ftap)):
                for row in sorted(tap.log or []):
                    f.write("\t".join(map(str, (name, *row))) + "\n")


def run_three(api_url: str, timeout: float) -> dict:
    os.environ["PREFECT_API_URL"] = api_url
    from prefect.deployments import run_deployment
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    names = ["order-to-invoice/order-to-invoice", "payment-writeback/payment-writeback",
             "customer-sync/customer-sync"]
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        t0 = time.monotonic()
        runs = {n: run_deployment(n, timeout=0) for n in names}
        started: dict[str, float] = {}
        done: dict[str, tuple[str, float, str | None]] = {}
        with get_client(sync_client=True) as c:
            while len(done) < len(runs) and time.monotonic() - t0 < timeout:
                for n, r in runs.items():
                    if n in done:
                        continue
                    fr = c.read_flow_run(r.id)
                    if n not in started and fr.state and (fr.state.is_running() or fr.state.is_final()):
                        started[n] = time.monotonic() - t0
                    if fr.state and fr.state.is_final():
                        done[n] = (fr.state.name, time.monotonic() - t0, fr.state.message)
                        print(f"  {n.split('/')[0]}: {fr.state.name} after {done[n][1]:.0f}s "
                              f"(worker started it after {(fr.start_time - fr.expected_start_time).total_seconds():.0f}s)"
                              if fr.start_time and fr.expected_start_time else f"  {n}: {fr.state.name}", flush=True)
                time.sleep(1.0)
        wall = time.monotonic() - t0
    return {"done": done, "wall": wall, "first_start": min(started.values(), default=0.0)}


def review_counts(url: str) -> dict:
    import sqlalchemy

    eng = sqlalchemy.create_engine(url)
    with eng.connect() as c:
        rows = c.exec_driver_sql("SELECT flow, reason_code, count(*) FROM review_item GROUP BY flow, reason_code").all()
    eng.dispose()
    return {f"{f}:{r}": n for f, r, n in rows}


def limiter_rows(url: str) -> dict:
    import sqlalchemy

    eng = sqlalchemy.create_engine(url)
    with eng.connect() as c:
        rows = c.exec_driver_sql("SELECT name, acquired_total, penalised_total FROM rate_bucket ORDER BY name").all()
        gens = c.exec_driver_sql("SELECT name, generation FROM credential").all()
    eng.dispose()
    return {**{n: (a, p) for n, a, p in rows}, **{f"credential {n} generation": g for n, g in gens}}


def report(result: dict, htap: Tap, ftap: Tap, fr_store, hs_store, n_deals: int, iv: int, args) -> None:
    inv = Counter((i.partner_id, i.amount_including_tax) for i in fr_store.invoices.values())
    dup_invoices = sum(c - 1 for c in inv.values() if c > 1)
    partners = Counter(p.name for p in fr_store.partners.values())
    dup_partners = sum(c - 1 for c in partners.values() if c > 1)
    names = Counter(r.props.get("name") for r in hs_store.records["companies"].values())
    dup_companies = sum(c - 1 for c in names.values() if c > 1)
    pace = {"hubspot 10s": 100 / 10.0, "hubspot search": 5 / 1.0, "freee iv": iv / 60.0,
            "freee accounting": args.accounting_per_second}
    print()
    print("flows: " + ", ".join(f"{n.split('/')[0]} {s} ({t:.0f}s)" for n, (s, t, _) in result["done"].items()))
    print(f"invoices created: {len(fr_store.invoices)} for {n_deals} deals")
    print(f"review items: {result.get('reviews')}")
    auth = getattr(ftap.state, "auth", None)
    print(f"freee token refreshes seen by the sandbox: {getattr(auth, 'refresh_count', '?')} "
          "(three workers share one rotated token through the state store)")
    print(f"shared limiter (acquired, 429-penalised): {result.get('limiter')}")
    for n, (s, t, msg) in result["done"].items():
        if msg:
            print(f"  {n.split('/')[0]}: {msg[:300]}")
    print(f"duplicates: invoices {dup_invoices}, freee partners {dup_partners}, HubSpot companies {dup_companies}")
    print(f"429 responses: HubSpot {htap.status.get(429, 0)}, freee {ftap.status.get(429, 0)}  "
          f"(HubSpot statuses {dict(htap.status)}, freee {dict(ftap.status)})")
    daily = [v[0] for k, v in (result.get("limiter") or {}).items() if k.startswith("hubspot:") and k.endswith(":daily")]
    if daily:
        print(f"HubSpot requests answered {sum(htap.status.values())}, slots the shared limiter gave {daily[0]} "
              "(every request takes a slot of the day: more requests than slots = requests beside the limiter)")
    for name, tap in (("HubSpot", htap), ("freee", ftap)):
        print(f"{name} requests by User-Agent: {dict(tap.agents)}")
        for t, method, path, ua in tap.limited:
            print(f"  429 at {t:.1f}s: {method} {path} ({ua})")
    bound = 0.0
    for b in ("hubspot 10s", "hubspot search", "freee iv", "freee accounting"):
        reqs = htap.buckets.get(b, 0) + ftap.buckets.get(b, 0)
        need = reqs / pace[b]
        how = f"at {pace[b]:.1f}/s"
        if b == "freee iv" and reqs and "freee iv" in ftap.first_at:
            # freee請求書's minute resets on the clock (the sandbox counts per UTC minute, the client's default
            # fixed windows too): from the first request, its minute's allowance at once, then a minute's worth
            # at each following UTC minute — the earliest the last request could go
            per_min = round(pace[b] * 60)
            need = fixed_window_need(reqs, per_min, 60.0, ftap.first_at[b])
            how = f"at {per_min}/UTC minute"
        bound = max(bound, need)
        print(f"  {b:17s} {reqs:7d} requests {how:>17s} → {need:7.1f}s")
    wall = result["wall"]
    running = wall - result["first_start"]
    print(f"wall {wall:.1f}s from the three runs' creation to the last one finished, of which "
          f"{result['first_start']:.1f}s before a worker had started the first; bound {bound:.1f}s; "
          f"ratio {wall / bound if bound else math.nan:.2f}x overall, {running / bound if bound else math.nan:.2f}x "
          f"from the first start (target 1.2x)")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
