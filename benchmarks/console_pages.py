"""Benchmark of ``renkei console``: the overview page over a large reporting snapshot.

Generates (seeded) reporting facts — deals over 36 months of close dates, invoices with payments, customers
and cost records — builds the snapshot with :func:`renkei.domain.reporting.build_snapshot`, stores it
through :class:`renkei.store.reporting.ReportStore` in a throw-away SQLite state store, serves the console
with uvicorn on a free local port and times GET requests over HTTP::

    .venv/bin/python benchmarks/console_pages.py                 # 100,000 deals / 100,000 invoices / 5,000 customers
    .venv/bin/python benchmarks/console_pages.py --deals 2000 --invoices 2000 --customers 200   # a quick look

Prints, per page, the first request (it reads the snapshot from the store: the cold cost after each
reporting run) and the median / max of the next ``--repeat`` (the snapshot is cached by its id), plus peak
memory. Target: overview under 300 ms (warm; the cold first request is printed too).

:func:`time_pages` is the reusable part; :func:`overview_hook` is the same for the reporting benchmark's
``AFTER_SNAPSHOT`` hook: ``python benchmarks/reporting.py --hook console_pages:overview_hook``. (Not named
``console.py``: ``import console`` would find the package folder ``console/`` at the project root.)
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_MS = 300.0
PAGES = ("/", "/aging", "/customers", "/drift")
STAGES = (("lead", "リード", "0.1"), ("qualified", "見込み", "0.2"), ("proposal", "提案", "0.5"),
          ("negotiation", "交渉", "0.8"), ("closedwon", "受注", "1"), ("closedlost", "失注", "0"))


def facts(deals: int, invoices: int, customers: int, seed: int, as_of: date) -> dict[str, Any]:
    from renkei.domain.reporting import CostFact, CustomerFact, DealFact, InvoiceFact, PaymentFact, RateTotalFact

    rnd = random.Random(seed)
    cust = [CustomerFact(crm_id=str(10_000 + i), erp_id=str(90_000 + i), name=f"株式会社ベンチ{i:05d}",
                         sole_trader=rnd.random() < 0.05,
                         field_diffs=(("address.city", "crm"),) if rnd.random() < 0.02 else ())
            for i in range(customers)]
    start = as_of - timedelta(days=540)
    deal_facts = []
    for i in range(deals):
        stage, label, prob = STAGES[rnd.randrange(len(STAGES))]
        close = start + timedelta(days=rnd.randrange(36 * 30))
        deal_facts.append(DealFact(
            crm_id=str(1_000_000 + i), name=f"案件 {i}", amount=rnd.randrange(10, 5_000) * 1_000, pipeline="default",
            stage=stage, stage_label=label, probability=Decimal(prob), close_date=close,
            company_crm_id=cust[rnd.randrange(customers)].crm_id, won=stage == "closedwon",
            closed=stage in ("closedwon", "closedlost"), payment_status="paid" if rnd.random() < 0.5 else None))
    won = [d for d in deal_facts if d.won]
    inv_facts = []
    for i in range(invoices):
        d = won[i % len(won)] if won and rnd.random() < 0.9 else None
        c = cust[rnd.randrange(customers)]
        sub = d.amount if d and d.amount else rnd.randrange(10, 5_000) * 1_000
        tax = sub // 10
        issue = start + timedelta(days=rnd.randrange(540))
        due = issue + timedelta(days=30)
        paid = sub + tax if rnd.random() < 0.7 else (sub + tax) // 2 if rnd.random() < 0.3 else 0
        pays = (PaymentFact(f"P{i}", min(due, as_of), paid - 440, fee=440),) if paid else ()
        inv_facts.append(InvoiceFact(
            erp_id=str(5_000_000 + i), number=f"INV-{i:06d}", reference=f"renkei:deal:{d.crm_id}" if d else None,
            deal_crm_id=d.crm_id if d else None, partner_erp_id=c.erp_id, issue_date=issue, due_date=due,
            total=sub + tax, subtotal=sub, outstanding=sub + tax - paid, cancelled=rnd.random() < 0.01,
            rate_totals=(RateTotalFact("standard_10", sub, tax),), payments=pays))
    costs = [CostFact(f"C{i}", cust[rnd.randrange(customers)].erp_id, start + timedelta(days=rnd.randrange(540)),
                      rnd.randrange(1, 2_000) * 1_000) for i in range(invoices // 2)]
    return dict(deals=deal_facts, invoices=inv_facts, customers=cust, costs=costs)


def time_pages(store: Any, pages: tuple[str, ...] = PAGES, repeat: int = 10) -> dict[str, dict[str, float]]:
    """Serve the console over ``store`` on a free local port; per page: first request (cold: reads the
    snapshot) and median / max of ``repeat`` more, in milliseconds, and the page size in bytes."""
    import httpx

    from renkei.console import create_app
    from renkei.sandboxes.common import ServerThread

    out: dict[str, dict[str, float]] = {}
    with ServerThread(create_app(store, approvals=lambda: [])) as server, httpx.Client(base_url=server.url,
                                                                                      timeout=60) as client:
        for page in pages:
            t0 = time.perf_counter()
            r = client.get(page)
            first = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            runs = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                client.get(page).raise_for_status()
                runs.append((time.perf_counter() - t0) * 1000)
            out[page] = dict(first_ms=first, median_ms=statistics.median(runs), max_ms=max(runs),
                             bytes=float(len(r.content)))
            # the cold cost falls on whichever page is opened first after a reporting run: drop the cache
            server.app.state.cache._id = server.app.state.cache._items_id = None
    return out


def overview_hook(store: Any) -> dict[str, float]:
    """The overview page over ``store``'s latest snapshot, in seconds (first request and warm median)."""
    t = time_pages(store, pages=("/",), repeat=5)["/"]
    return {"console overview first request (s)": t["first_ms"] / 1000,
            "console overview median (s)": t["median_ms"] / 1000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deals", type=int, default=100_000)
    ap.add_argument("--invoices", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=20261205)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()

    from _harness import peak_rss_mb

    from renkei.domain.reporting import build_snapshot
    from renkei.store.reporting import ReportStore
    from renkei.store.repo import Store

    as_of = date(2026, 12, 5)
    t0 = time.perf_counter()
    f = facts(args.deals, args.invoices, args.customers, args.seed, as_of)
    t_facts = time.perf_counter() - t0
    t0 = time.perf_counter()
    snap = build_snapshot(deals=f["deals"], invoices=f["invoices"], costs=f["costs"], customers=f["customers"],
                          as_of=as_of, taken_at=datetime.now(timezone.utc))
    t_build = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp(prefix="renkei-console-bench-"))
    store = Store.open(f"sqlite:///{tmp / 'renkei.db'}", cached=False)
    t0 = time.perf_counter()
    ReportStore(store).save_snapshot(snap)  # the figures; search/trace records are not needed by these pages
    t_save = time.perf_counter() - t0
    print(f"data: {args.deals:,} deals, {args.invoices:,} invoices, {args.customers:,} customers "
          f"(generated {t_facts:.1f}s, snapshot built {t_build:.1f}s, stored {t_save:.1f}s): "
          f"{len(snap.months)} months, {len(snap.stages)} stage rows, {len(snap.customers):,} customers, "
          f"{len(snap.drift_items):,} drift items")
    del f
    timings = time_pages(store, repeat=args.repeat)
    ok = True
    for page, t in timings.items():
        line = (f"GET {page:<11} first {t['first_ms']:8.1f} ms   median {t['median_ms']:8.1f} ms   "
                f"max {t['max_ms']:8.1f} ms   {t['bytes'] / 1024:8.0f} KiB")
        if page == "/":
            met = t["median_ms"] < TARGET_MS
            ok = ok and met
            line += f"   target < {TARGET_MS:.0f} ms: {'met' if met else 'MISSED'}"
        print(line)
    print(f"peak memory {peak_rss_mb():.0f} MB")
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
