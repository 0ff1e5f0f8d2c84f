"""Serve Renkei's deployments from one long-lived process (``prefect.serve``): the approval flows, which
must run from a deployment because they suspend, and — with ``--schedules`` — the scheduled flows with
the schedules and webhook triggers of ``prefect.yaml``. Production can use ``prefect deploy`` + a process worker instead.

    python -m renkei.deployments.serve [--schedules] [--limit 4]
    python -m renkei.deployments.serve --triggers-only [--flows order-to-invoice]   # webhook runs only

``--triggers-only`` serves the scheduled flows with their webhook triggers but their schedules paused (the
webhook benchmark and the end-to-end test: nothing runs unless an event asks for it); ``--flows`` limits
the scheduled flows served (comma-separated deployment names).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from prefect import serve
from prefect.schedules import Cron, Interval

TOKYO = "Asia/Tokyo"

# The webhook triggers of prefect.yaml (tests/test_prefect_yaml.py keeps both the same): one run per burst
# the receiver gathered (its events share renkei.batch-id), with the burst's ids as the parameter.
WEBHOOK_TRIGGERS: dict[str, dict] = {
    # a HubSpot deal change and a generic inbound order (Zapier / Make naming a CRM deal) take one path
    "order-to-invoice": {
        "expect": ["renkei.crm.deal.changed", "renkei.inbound.order"],
        "match": {"prefect.resource.id": ["renkei.crm.deal.*", "renkei.inbound.order.*"]},
        "for_each": ["renkei.batch-id"], "posture": "Reactive", "threshold": 1, "within": 60,
        "parameters": {"deal_ids": "{{ event.payload.deal_ids }}"}},
    "customer-sync": {
        "expect": ["renkei.crm.company.changed"], "match": {"prefect.resource.id": "renkei.crm.company.*"},
        "for_each": ["renkei.batch-id"], "posture": "Reactive", "threshold": 1, "within": 60,
        "parameters": {"company_ids": "{{ event.payload.company_ids }}"}},
    # a payment notice only brings the run forward: the flow reads the ERP's bank lines as on schedule
    "payment-writeback": {
        "expect": ["renkei.inbound.payment"], "match": {"prefect.resource.id": "renkei.inbound.payment.*"},
        "for_each": ["renkei.batch-id"], "posture": "Reactive", "threshold": 1, "within": 60},
}


# Deployments that take webhook runs side by side (prefect.yaml says why); the rest run one at a time.
CONCURRENCY = {"order-to-invoice": 3}


def webhook_triggers(name: str) -> list:
    from prefect.events import DeploymentEventTrigger

    spec = WEBHOOK_TRIGGERS.get(name)
    return [DeploymentEventTrigger(enabled=True, **spec)] if spec else []


def approval_specs() -> list[tuple]:
    """(flow, deployment options) of the approval flows."""
    from renkei.flows.invoice_approval import invoice_approval
    from renkei.flows.payment_approval import payment_approval
    from renkei.flows.proration_approval import proration_approval
    from renkei.flows.review_decisions import review_decisions

    return [(invoice_approval, dict(name="invoice-approval", tags=["renkei", "renkei-approval"])),
            (proration_approval, dict(name="proration-approval", tags=["renkei", "renkei-approval"])),
            (payment_approval, dict(name="payment-approval", tags=["renkei", "renkei-approval"])),
            (review_decisions, dict(name="review-decisions", tags=["renkei", "renkei-review"]))]


def approval_deployments() -> list:
    return [fn.to_deployment(**opts) for fn, opts in approval_specs()]


def scheduled_deployments(*, active: bool = True, only: set[str] | None = None) -> list:
    return [fn.to_deployment(**opts) for fn, opts in scheduled_specs(active=active, only=only)]


def scheduled_specs(*, active: bool = True, only: set[str] | None = None) -> list[tuple]:
    """(flow, deployment options) of the scheduled flows, with their schedules and webhook triggers."""
    from renkei.registry import FLOWS

    schedules = {
        "customer-sync": Interval(900, timezone=TOKYO, active=active),
        "product-sync": Cron("0 3 * * *", timezone=TOKYO, active=active),
        "order-to-invoice": Interval(300, timezone=TOKYO, active=active),
        "payment-writeback": Cron("0 * * * *", timezone=TOKYO, active=active),
        "subscription-proration": Cron("30 3 * * *", timezone=TOKYO, active=active),
        "reporting": Cron("0 4 * * *", timezone=TOKYO, active=active),
    }
    out = []
    for name, entry in FLOWS.items():
        if only is not None and name not in only:
            continue
        fn = entry.load()
        if fn is not None and name in schedules:  # review-decisions is served with the approval flows
            out.append((fn, dict(name=name, schedules=[schedules[name]], tags=["renkei"],
                                 concurrency_limit=CONCURRENCY.get(name, 1), triggers=webhook_triggers(name))))
    return out


class _StartMethod:
    """Stands in for the ``multiprocessing`` module inside ``prefect.flow_engine``: hands out the fork-server
    context where Prefect asks for "spawn" (everything else is the real module)."""

    def __init__(self, ctx):
        self._ctx = ctx

    def get_context(self, method: str | None = None):
        return self._ctx

    def __getattr__(self, name: str):
        import multiprocessing

        return getattr(multiprocessing, name)


def warm_start(modules: list[str]) -> bool:
    """Start each flow run from a warm fork server instead of a fresh interpreter.

    Prefect 3.9's runner starts every flow run of a served flow in a new process with the ``spawn`` method
    (``prefect.flow_engine.run_flow_in_subprocess``), which imports Prefect and Renkei again: 2 s on a quiet
    2-core machine, 8–15 s when it is busy — per run, so per webhook burst. Here the runner asks for the
    ``forkserver`` method instead, with Prefect's engine and the served flows' modules preloaded in the fork
    server (started now): a run's process is forked from it with everything imported. The run is still
    its own process (crash isolation, cancellation, exit code as before) and gets its environment from
    Prefect as with ``spawn``. Returns False (and changes nothing) where the fork server is not available or
    Prefect's engine does not look as expected."""
    import importlib
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    try:
        engine = importlib.import_module("prefect.flow_engine")
    except ImportError:
        return False
    if getattr(engine, "multiprocessing", None) is not multiprocessing or not hasattr(engine, "run_flow_in_subprocess"):
        return False
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["prefect.flow_engine", *modules])
    engine.multiprocessing = _StartMethod(ctx)
    from multiprocessing import forkserver

    forkserver.ensure_running()  # preload now, not at the first run
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", action="store_true", help="also serve the scheduled flows")
    parser.add_argument("--triggers-only", action="store_true",
                        help="serve the scheduled flows with their webhook triggers, schedules paused")
    parser.add_argument("--flows", default="", help="only these scheduled flows (comma-separated names)")
    parser.add_argument("--no-approvals", action="store_true", help="do not serve the approval flows")
    parser.add_argument("--limit", type=int, default=4, help="concurrent flow runs")
    parser.add_argument("--order-concurrency", type=int, default=None,
                        help=f"order-to-invoice's deployment concurrency limit (default {CONCURRENCY['order-to-invoice']})")
    parser.add_argument("--warm", action="store_true",
                        help="start flow runs from a fork server with Prefect and the flows imported (warm_start)")
    args = parser.parse_args(argv)
    only = {f.strip() for f in args.flows.split(",") if f.strip()} or None
    if args.order_concurrency is not None:
        CONCURRENCY["order-to-invoice"] = args.order_concurrency
    specs = [] if args.no_approvals else approval_specs()
    if args.schedules or args.triggers_only:
        specs += scheduled_specs(active=not args.triggers_only, only=only)
    if not args.warm:
        serve(*[fn.to_deployment(**opts) for fn, opts in specs], limit=args.limit, print_starting_message=False)
        return
    # warm: the flows are added to the runner itself (Runner.add_flow), so it runs each one from the flow
    # object in a child process (DirectSubprocessStarter) — which warm_start forks from a preloaded server —
    # instead of `python -m prefect.engine` loading the entrypoint anew (serve() of deployments does that)
    import asyncio

    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner as PrefectRunner

    modules = sorted({"renkei.tasks.runtime"} | {fn.fn.__module__ for fn, _ in specs})
    if not warm_start(modules):
        print("--warm: the fork server is not available here; flow runs start cold", file=sys.stderr)
    runner = PrefectRunner(limit=args.limit, pause_on_shutdown=True)
    for fn, opts in specs:
        runner.add_flow(fn, **opts)
    try:
        asyncio.run(runner.start())
    except (KeyboardInterrupt, TerminationSignal):
        pass


class Runner:
    """Start/stop ``python -m renkei.deployments.serve`` as a child process (demo and tests)."""

    def __init__(self, *, schedules: bool = False, env: dict[str, str] | None = None, log_path: Path | None = None,
                 args: list[str] | None = None):
        self.schedules, self.env, self.log_path, self.args = schedules, env, log_path, list(args or [])
        self.proc: subprocess.Popen | None = None

    def start(self, wait_for: str = "invoice-approval/invoice-approval", timeout_s: float = 90) -> "Runner":
        cmd = ([sys.executable, "-m", "renkei.deployments.serve"] + (["--schedules"] if self.schedules else [])
               + self.args)
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        env = {"PREFECT_RUNNER_POLL_FREQUENCY": "2", **os.environ, **(self.env or {})}
        self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=Path(__file__).resolve().parents[1])
        from prefect import get_client

        deadline = time.monotonic() + timeout_s
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"deployment runner exited with {self.proc.returncode}")
                try:
                    client.read_deployment_by_name(wait_for)
                    return self
                except Exception:  # noqa: BLE001 - not registered yet
                    time.sleep(0.5)
        raise TimeoutError(f"deployment {wait_for} not registered within {timeout_s}s")

    def stop(self) -> None:
        if self.proc is not None:
            from renkei.prefect_server import stop

            stop(self.proc)
            self.proc = None

    def __enter__(self) -> "Runner":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
