"""Benchmark of the reporting snapshot (domain/reporting.py + store/reporting.py).

Generates (seeded) canonical facts — deals of every stage, invoices with payments and fees, cost records,
customers with a few drifting fields — computes the snapshot and stores it with the records search and
trace read (SQLite by default), and prints seconds and peak memory::

    .venv/bin/python benchmarks/reporting.py                          # 100,000 deals / 100,000 invoices
    .venv/bin/python benchmarks/reporting.py --deals 2000 --invoices 2000 --db postgresql+psycopg2://…

Targets: snapshot (computation + store) under 60 s, peak memory under 500 MB (``ru_maxrss`` of the process:
Python, the libraries and the generated facts included).

Hook for the console: :data:`AFTER_SNAPSHOT` holds callables ``fn(store) -> dict[str, float]`` run on the
filled state store after the snapshot (e.g. timing the overview page); their figures are printed with the
others. ``python benchmarks/reporting.py --hook module:function`` registers one from the command line.
"""

from __future__ import annotations

import argparse
import importlib
import random
import resource
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from renkei.domain.reporting import (  # noqa: E402
    CostFact, CustomerFact, DealFact, InvoiceFact, PaymentFact, RateTotalFact, build_snapshot,
)

AFTER_SNAPSHOT: list[Callable[[Any], dict[str, float]]] = []
AS_OF = date(2026, 12, 5)
STAGES = (("appointmentscheduled", "Appointment Scheduled", "0.2", False),
          ("qualifiedtobuy", "Qualified", "0.4", False),
          ("presentationscheduled", "Presentation", "0.6", False), ("contractsent", "Contract Sent", "0.9", False),
          ("closedwon", "Closed Won", "1.0", True), ("closedlost", "Closed Lost", "0.0", True))


def generate(n_deals: int, n_invoices: int, n_customers: int, seed: int = 1
             ) -> tuple[list[DealFact], list[InvoiceFact], list[CostFact], list[CustomerFact]]:
    rnd = random.Random(seed)
    customers = [CustomerFact(crm_id=str(10_000 + i), erp_id=str(500_000 + i), name=f"株式会社ベンチ{i:05d}",
                              sole_trader=i % 50 == 0,
                              field_diffs=(("billing_email", "erp"),) if i % 20 == 0 else ())
                 for i in range(n_customers)]
    deals = []
    for i in range(n_deals):
        sid, label, prob, closed = STAGES[rnd.randrange(len(STAGES))]
        c = customers[rnd.randrange(n_customers)]
        deals.append(DealFact(crm_id=str(1_000_000 + i), name=f"商談{i}", amount=rnd.randrange(10, 5_000) * 1_000,
                              pipeline="Sales Pipeline", stage=sid, stage_label=label, probability=Decimal(prob),
                              close_date=AS_OF + timedelta(days=rnd.randrange(-400, 200)),
                              company_crm_id=c.crm_id, won=sid == "closedwon", closed=closed,
                              payment_status="paid" if rnd.random() < 0.4 else None))
    won = [d for d in deals if d.won] or deals
    invoices = []
    for i in range(n_invoices):
        d = won[i % len(won)] if rnd.random() < 0.95 else None
        sub = d.amount if d and d.amount and rnd.random() < 0.97 else rnd.randrange(10, 5_000) * 1_000
        tax = sub // 10
        total = sub + tax
        issue = AS_OF - timedelta(days=rnd.randrange(0, 540))
        paid = rnd.random()
        payments: tuple[PaymentFact, ...] = ()
        outstanding = total
        if paid < 0.7:
            fee = 440 if rnd.random() < 0.3 else 0
            day = issue + timedelta(days=rnd.randrange(5, 60))
            payments = (PaymentFact(f"p{i}", day, total - fee),) + ((PaymentFact(f"f{i}", day, 0, fee),) if fee else ())
            outstanding = 0
        c = customers[int(d.company_crm_id) - 10_000] if d else customers[rnd.randrange(n_customers)]
        invoices.append(InvoiceFact(erp_id=str(2_000_000 + i), number=f"INV-{i:07d}",
                                    reference=f"renkei:deal:{d.crm_id}" if d else None,
                                    deal_crm_id=d.crm_id if d else None, partner_erp_id=c.erp_id, issue_date=issue,
                                    due_date=issue + timedelta(days=30), total=total, subtotal=sub,
                                    outstanding=outstanding, rate_totals=(RateTotalFact("standard_10", sub, tax),),
                                    payments=payments))
    costs = [CostFact(erp_id=str(3_000_000 + i), partner_erp_id=customers[rnd.randrange(n_customers)].erp_id,
                      day=AS_OF - timedelta(days=rnd.randrange(0, 365)), amount=rnd.randrange(1, 500) * 1_000)
             for i in range(n_invoices // 5)]
    return deals, invoices, costs, customers


def peak_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deals", type=int, default=100_000)
    ap.add_argument("--invoices", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", default=None, help="state store URL (default: a fresh SQLite file)")
    ap.add_argument("--hook", action="append", default=[], help="module:function run on the filled store")
    args = ap.parse_args(argv)
    for spec in args.hook:
        mod, _, fn = spec.partition(":")
        AFTER_SNAPSHOT.append(getattr(importlib.import_module(mod), fn))

    from renkei.store.reporting import ReportStore
    from renkei.store.repo import Store

    t0 = time.perf_counter()
    deals, invoices, costs, customers = generate(args.deals, args.invoices, args.customers, args.seed)
    t_gen = time.perf_counter() - t0
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='renkei-bench-')}/renkei.db"
    store = Store.open(url, cached=False)

    t1 = time.perf_counter()
    snap = build_snapshot(deals=deals, invoices=invoices, costs=costs, customers=customers, as_of=AS_OF,
                          taken_at=datetime.now(timezone.utc))
    t_compute = time.perf_counter() - t1
    t2 = time.perf_counter()
    reports = ReportStore(store)
    reports.save_snapshot(snap, deals=deals, invoices=invoices, customers=customers)
    t_store = time.perf_counter() - t2
    t3 = time.perf_counter()
    figures = reports.latest_snapshot(drift_items=False)  # what the overview page loads
    t_load = time.perf_counter() - t3
    assert figures is not None and figures.months == snap.months and figures.customers == snap.customers
    t4 = time.perf_counter()
    hits = reports.search(counterparty="ベンチ00042", min_amount=100_000)
    t_search = time.perf_counter() - t4
    t5 = time.perf_counter()
    trace = reports.trace(invoices[0].deal_crm_id or deals[0].crm_id)
    t_trace = time.perf_counter() - t5

    total = t_compute + t_store
    print(f"facts: {len(deals):,} deals, {len(invoices):,} invoices, {len(costs):,} costs, "
          f"{len(customers):,} customers (generated in {t_gen:.1f}s)")
    print(f"snapshot compute: {t_compute:.2f}s   store: {t_store:.2f}s   total: {total:.2f}s  (target < 60 s)")
    print(f"latest_snapshot(drift_items=False) load: {t_load * 1000:.0f} ms   "
          f"search: {t_search * 1000:.0f} ms ({len(hits)} hits)   trace: {t_trace * 1000:.0f} ms ({len(trace.invoices)} invoices)")
    extra: dict[str, float] = {}
    for fn in AFTER_SNAPSHOT:
        extra.update(fn(store))
    for k, v in extra.items():
        print(f"{k}: {v:.3f}")
    mb = peak_mb()
    print(f"peak memory (ru_maxrss): {mb:.0f} MB  (target < 500 MB)")
    tot = snap.totals()
    print(f"overview: invoiced ¥{tot['invoiced']:,} collected ¥{tot['collected']:,} open ¥{tot['open_receivable']:,} "
          f"drift {sum(c.count for c in snap.drift_counts):,}")
    return 0 if total < 60 and mb < 500 else 1


if __name__ == "__main__":
    raise SystemExit(main())
