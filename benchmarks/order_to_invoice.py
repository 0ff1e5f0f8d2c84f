"""Benchmark: 1,000 won deals with 3 lines each through order-to-invoice's clean path.

Sandboxes with 100 ms latency on every request, HubSpot's documented limits (100 requests / 10 s,
search 5 / s) and freee請求書 raised to 600 / minute (at the real 30 / minute the limit alone decides).
Prints invoices per minute, the bound the limits allow, the ratio, and the share of wall time spent in
Prefect's own orchestration (wall time minus the time inside the flow's task bodies).

Bound: invoice creation is the binding step. Under a limit of L requests per 60 s window the k-th
request (0-based) cannot start before ⌊k / L⌋ × 60 s, so N invoices need at least ⌊(N−1)/L⌋ × 60 s plus
one request's latency. The other calls (HubSpot search pages, batch reads and write-backs, freee partner
reads) run under their own limits; their bounds are printed too and the largest bound is the bound.

    python benchmarks/order_to_invoice.py [--deals 1000] [--customers 100] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import bench_world, peak_rss_mb, seed_deals, set_latency  # noqa: E402



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deals", type=int, default=1000)
    ap.add_argument("--customers", type=int, default=100)
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--iv-per-minute", type=int, default=600)
    args = ap.parse_args()
    n, iv = args.deals, args.iv_per_minute

    with bench_world(freee_config={"iv_limit_per_minute": iv, "iv_limit_per_hour": max(1500, 2 * n)},
                     env={"RENKEI_FREEE_IV_PER_MINUTE": str(iv), "RENKEI_FREEE_IV_PER_HOUR": str(max(1500, 2 * n)),
                          "RENKEI_FREEE_ACCOUNTING_PER_SECOND": "10"}) as w:
        rt = w["rt"]
        hstore = w["hubspot_app"].state.store
        # customers on both sides (same corporate number → linked by the first deal of each)
        seed_deals(rt, hstore, deals=n, customers=args.customers, stage="closedwon", name="ベンチ", code="B",
                   series=1, width=4)
        set_latency(w["hubspot_app"], args.latency_ms)
        set_latency(w["freee_app"], args.latency_ms)
        hs0, fr0 = rt.crm.client.stats.requests, rt.erp.client.stats.requests

        # time spent inside the flow's task bodies (everything else is Prefect's orchestration)
        import renkei.flows.order_to_invoice as o2i
        import renkei.tasks.order_to_invoice_steps as o2i_steps

        inside = {"s": 0.0}
        real_process, real_iter = o2i_steps.process_deals, rt.crm.iter_deal_changes

        def timed(fn):
            @functools.wraps(fn)
            def wrapper(*a, **kw):
                t = time.perf_counter()
                try:
                    return fn(*a, **kw)
                finally:
                    inside["s"] += time.perf_counter() - t
            return wrapper

        def timed_iter(*a, **kw):  # the flow reads pages in its body: count that as our code too
            it = real_iter(*a, **kw)
            while True:
                t = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    inside["s"] += time.perf_counter() - t
                    return
                inside["s"] += time.perf_counter() - t
                yield batch

        o2i_steps.process_deals = timed(real_process)
        rt.crm.iter_deal_changes = timed_iter
        t0 = time.perf_counter()
        summary = o2i.order_to_invoice()
        wall = time.perf_counter() - t0

        created = summary.get("erp", {}).get("created", 0)
        hs_req, fr_req = rt.crm.client.stats.requests - hs0, rt.erp.client.stats.requests - fr0
        lat = args.latency_ms / 1000
        iv_bound = ((created - 1) // iv) * 60 + lat if created else 0.0
        hs_bound = math.ceil(hs_req / 100) * 10 if hs_req > 100 else hs_req * lat
        fr_other = fr_req - created
        acc_bound = fr_other / 10
        bound = max(iv_bound, hs_bound, acc_bound)
        print(f"deals won                 {n} ({3 * n} lines, {args.customers} customers)")
        print(f"invoices created          {created}")
        print(f"wall seconds              {wall:.1f}")
        print(f"invoices per minute       {created / wall * 60:.0f}")
        print(f"requests                  HubSpot {hs_req}, freee {fr_req} ({created} 請求書 creates)")
        print(f"bound (s)                 {bound:.1f}  [請求書 {iv_bound:.1f} at {iv}/min; HubSpot {hs_bound:.1f} "
              f"at 100/10 s; freee会計 {acc_bound:.1f} at 10/s]")
        print(f"bound invoices per minute {created / bound * 60:.0f}" if bound else "")
        print(f"ratio                     {wall / bound:.2f}  (target ≤ 1.3)")
        print(f"Prefect overhead share    {(wall - inside['s']) / wall:.1%}  "
              f"({wall - inside['s']:.1f} s of {wall:.1f} s outside task bodies)")
        print(f"peak RSS                  {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
