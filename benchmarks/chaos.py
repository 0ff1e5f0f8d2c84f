"""Chaos run: the same seed twice — world A clean, world B with 10% injected faults of every kind (5xx, 429,
timeout, dropped connection, request processed but response lost) and SIGKILLs of ``renkei run`` during
order-to-invoice and payment-writeback, rerun until done — then both compared through the vendor APIs.

    python benchmarks/chaos.py [--seed 11] [--fault-rate 0.1] [--kills 2] [--deals 60] [--keep]
                               [--concurrent 3] [--postgres postgresql+psycopg2://postgres@127.0.0.1:55432/x]

Prints the row counts per category, every difference, duplicate and lost item, what the personal-data scan
found, and ``differences=0 duplicates=0 lost=0 faults=<n> kills=<n>``; exits 1 on any difference, duplicate,
lost item or personal data found. Machinery: ``benchmarks/_chaos.py``; personal-data scan:
``benchmarks/_chaos_pii.py``. Uses ``PREFECT_API_URL`` when set, else starts a local Prefect server.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._chaos import ChaosConfig, report, run_chaos  # noqa: E402
from benchmarks._chaos_pii import scan_world  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--fault-rate", type=float, default=0.1)
    ap.add_argument("--kills", type=int, default=2, help="SIGKILLs per killed flow (order-to-invoice, payment-writeback)")
    ap.add_argument("--deals", type=int, default=60, help="generated won deals on top of the demo data")
    ap.add_argument("--keep", action="store_true", help="keep the working folder (stores, logs, Prefect home)")
    ap.add_argument("--strict-limits", action="store_true", help="keep the sandboxes' real rate limits")
    ap.add_argument("--concurrent", type=int, default=1,
                    help="world B's first order-to-invoice attempt is this many runs at once (one is killed)")
    ap.add_argument("--postgres", metavar="URL", default=None,
                    help="state stores on this PostgreSQL server (a fresh database per world) instead of SQLite")
    args = ap.parse_args(argv)
    from renkei.layout import install_line

    if (line := install_line()) is not None:  # every run would fail the same way: say it once, run nothing
        print(f"✗ {line}", file=sys.stderr)
        return 2
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    work = Path(tempfile.mkdtemp(prefix="renkei-chaos-"))
    cfg = ChaosConfig(seed=args.seed, fault_rate=args.fault_rate, kills=args.kills, deals=args.deals, keep=args.keep,
                      workdir=work / "worlds", relaxed_limits=not args.strict_limits,
                      concurrent=args.concurrent, postgres=args.postgres,
                      log=lambda s: print(s, flush=True))
    from renkei.prefect_server import prefect_server

    t0 = time.monotonic()
    try:
        with prefect_server(work / "prefect") as server:
            prefect_db = work / "prefect" / "prefect.db" if server.started_here else None
            result = run_chaos(cfg, pii_scan=lambda w: scan_world(w, prefect_db=prefect_db))
        report(result)
        print(f"wall seconds {time.monotonic() - t0:.0f}; working folder {work}"
              + ("" if args.keep else " (removed)"))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if result.ok and not result.pii else 1


if __name__ == "__main__":
    raise SystemExit(main())
