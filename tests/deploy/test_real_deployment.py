"""The production recipe, followed as a new engineer would: a real Prefect server, a process work pool,
``prefect deploy --all`` from the project folder (no extra variables), a process worker, the sandboxes
from ``renkei sandbox serve`` with its default flags — and every scheduled deployment's run Completed.

Everything runs as subprocesses on a throw-away ``PREFECT_HOME`` (its own server, so the session's test
server keeps no work pool or deployments). Deploy, worker and five runs take about 1-2 minutes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POOL = "renkei"  # the pool prefect.yaml names
SCHEDULED = [d["name"] for d in yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
             if d.get("schedules")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# the module fixture runs within its first test's timeout: about 2 minutes alone, more next to another
# pytest-xdist worker on 2 cores
pytestmark = pytest.mark.timeout(480)


@pytest.fixture(scope="module")
def deployed_runs(tmp_path_factory) -> Iterator[dict[str, tuple[str, str]]]:
    """name → (final state type, run name, state message + worker log tail) of one run of each scheduled
    deployment."""
    tmp = tmp_path_factory.mktemp("deploy")
    port, hs_port, fr_port = _free_port(), _free_port(), _free_port()
    api = f"http://127.0.0.1:{port}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RENKEI_"))}
    prefect_env = {**base, "PREFECT_HOME": str(tmp / "prefect-home"), "PREFECT_API_URL": api,
                   "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    procs: list[subprocess.Popen] = []
    logs = {n: tmp / f"{n}.log" for n in ("server", "sandbox", "worker")}
    try:
        procs.append(subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"],
            env=prefect_env, stdout=logs["server"].open("w"), stderr=subprocess.STDOUT, cwd=tmp))
        sandbox = subprocess.Popen(
            [sys.executable, "-u", "-m", "renkei.cli", "sandbox", "serve", "--hubspot-port", str(hs_port),
             "--freee-port", str(fr_port)],  # only the ports: every company setting at its default
            env={**base, "PYTHONUNBUFFERED": "1", "COLUMNS": "300"}, stdout=logs["sandbox"].open("w"),
            stderr=subprocess.STDOUT, cwd=tmp)
        procs.append(sandbox)
        token = _wait(lambda: (m := re.search(r"freee first refresh token: (\S+)", logs["sandbox"].read_text()))
                      and m.group(1), 60, "the sandboxes", sandbox, logs["sandbox"])

        def healthy() -> bool:
            try:
                return httpx.get(f"{api}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(healthy, 90, "the Prefect server", procs[0], logs["server"])

        def cli(*args: str) -> str:
            r = subprocess.run([str(BIN / "prefect"), "--no-prompt", *args], env=prefect_env, cwd=ROOT,
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, (args, r.stdout[-3000:], r.stderr[-3000:])
            return r.stdout

        cli("work-pool", "create", POOL, "--type", "process")
        out = cli("deploy", "--all")  # from the project folder, no RENKEI_CHECKOUT or other variable
        assert "FileNotFoundError" not in out

        from renkei.sandboxes.freee.config import DEFAULT_COMPANY_ID
        from renkei.sandboxes.hubspot import HubSpotSandboxConfig

        from prefect.client.orchestration import SyncPrefectClient
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

        with SyncPrefectClient(api) as client:
            deployments = {d.name: d for d in client.read_deployments(
                deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=["renkei"])))}
            assert set(SCHEDULED) <= set(deployments)
            for name in SCHEDULED:  # schedules come up paused until `renkei doctor` passes
                assert deployments[name].schedules and not any(s.active for s in deployments[name].schedules)
                pull = deployments[name].pull_steps
                assert pull and pull[0]["prefect.deployments.steps.set_working_directory"]["directory"] \
                    == str(ROOT.resolve())
            runs = {name: client.create_flow_run_from_deployment(deployments[name].id) for name in SCHEDULED}
            # the webhook triggers of prefect.yaml became automations running those deployments
            automations = {a.name: a for a in client.read_automations()}
            for name, events in (("order-to-invoice", {"renkei.crm.deal.changed", "renkei.inbound.order"}),
                                 ("customer-sync", {"renkei.crm.company.changed"}),
                                 ("payment-writeback", {"renkei.inbound.payment"})):
                (auto,) = [a for n, a in automations.items() if n.startswith(f"{name}__automation")]
                assert auto.enabled and auto.trigger.expect == events
                assert auto.trigger.for_each == {"renkei.batch-id"}
                assert auto.actions[0].deployment_id == deployments[name].id

        worker_env = {**prefect_env,
                      "RENKEI_HUBSPOT_BASE_URL": f"http://127.0.0.1:{hs_port}",
                      "RENKEI_HUBSPOT_TOKEN": HubSpotSandboxConfig().token,
                      "RENKEI_FREEE_BASE_URL": f"http://127.0.0.1:{fr_port}",
                      "RENKEI_FREEE_AUTH_URL": f"http://127.0.0.1:{fr_port}",
                      "RENKEI_FREEE_CLIENT_ID": "renkei-sandbox-client",
                      "RENKEI_FREEE_CLIENT_SECRET": "renkei-sandbox-secret",
                      "RENKEI_FREEE_REFRESH_TOKEN": token,
                      "RENKEI_FREEE_COMPANY_ID": str(DEFAULT_COMPANY_ID),
                      "RENKEI_DATABASE_URL": f"sqlite:///{tmp / 'renkei.db'}",
                      "RENKEI_HOME": str(tmp / ".renkei")}
        # one run at a time, as the single-worker production recipe would run them; the worker asks for the
        # next one every 2 s instead of every 10 s (the default), so the queue does not wait on the poll
        procs.append(subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process", "--limit", "1"],
            env={**worker_env, "PREFECT_WORKER_QUERY_SECONDS": "2"}, stdout=logs["worker"].open("w"),
            stderr=subprocess.STDOUT, cwd=tmp))

        def all_final():
            with SyncPrefectClient(api) as client:
                done = {n: client.read_flow_run(r.id) for n, r in runs.items()}
            return done if all(r.state and r.state.is_final() for r in done.values()) else None

        done = _wait(all_final, 240, "every run to finish", procs[-1], logs["worker"])
        tail = logs["worker"].read_text(errors="replace")[-4000:]
        # schedules stay paused while `renkei doctor` fails (here: no Renkei settings at all) …
        refused = subprocess.run([sys.executable, "-m", "renkei.cli", "schedules", "resume"], env={
            **prefect_env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120, cwd=tmp)
        assert refused.returncode == 1 and "schedules stay paused" in refused.stdout + refused.stderr, \
            refused.stdout + refused.stderr
        with SyncPrefectClient(api) as client:
            assert not any(s.active for d in client.read_deployments() for s in d.schedules or [])
        # … and once its checks pass, ops turn the schedules on
        r = subprocess.run([sys.executable, "-m", "renkei.cli", "schedules", "resume"], env={**worker_env,
                           "COLUMNS": "200"}, capture_output=True, text=True, timeout=120, cwd=tmp)
        assert r.returncode == 0, r.stdout + r.stderr
        with SyncPrefectClient(api) as client:
            active = {d.name: all(s.active for s in d.schedules) for d in client.read_deployments() if d.schedules}
        yield {"renkei schedules resume": ("COMPLETED" if active and all(active.values()) else "FAILED",
                                          "renkei schedules resume: ok", f"{active}\n{r.stdout}")} | {n: (r.state.type.value, r.name, f"{r.state.name}: {r.state.message}\n{tail}") for n, r in done.items()}
    finally:
        for p in reversed(procs):  # worker first, then sandboxes, then server
            _stop(p)


def test_renkei_schedules_resume_turns_every_schedule_on(deployed_runs):
    state, _, detail = deployed_runs["renkei schedules resume"]
    assert state == "COMPLETED", detail


@pytest.mark.parametrize("deployment", SCHEDULED)
def test_each_scheduled_deployment_completes_on_a_process_worker(deployed_runs, deployment):
    state, name, detail = deployed_runs[deployment]
    assert state == "COMPLETED", detail
    assert name.startswith(f"{deployment}: "), name  # renamed to what the run did
