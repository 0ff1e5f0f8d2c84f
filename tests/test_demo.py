"""``renkei demo`` — the README's main command — runs end to end and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(1200)  # twice about 2–3 minutes, its own Prefect server's start included; headroom for load
def test_demo_runs_on_the_embedded_default(tmp_path: Path):
    # No PREFECT_API_URL: the demo starts (and stops) its own local Prefect server, as on a new machine. Its
    # runs, logs, artifacts and the payment approvals it leaves waiting stay off the Prefect test server that
    # the other tests on this worker share (they read every run and artifact there).
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update({"RENKEI_HOME": str(tmp_path / ".renkei"), "COLUMNS": "200"})
    r = subprocess.run([sys.executable, "-m", "renkei.cli", "demo"], capture_output=True, text=True, env=env,
                       timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "HubSpot sandbox" in r.stdout and "freee sandbox" in r.stdout
    assert "Prefect UI" in r.stdout and "(existing server)" not in r.stdout
    assert "demo finished" in r.stdout
    assert "renkei console --database-url sqlite:///" in r.stdout  # how to open the console on the demo's data
    for flow in ("customer-sync", "order-to-invoice", "payment-writeback", "reporting"):  # a progress line per flow
        assert f"progress: {flow} 100%" in r.stdout, r.stdout[-3000:]
    assert (tmp_path / ".renkei" / "demo" / "renkei.db").exists()
    assert "経営サマリー" in r.stdout and "合計" in r.stdout and "粗利" in r.stdout  # reporting's overview, last
    # its processes (this one, the served approval runs) share freee's 30 / min: not one 429 (上限（30回）)
    assert "上限" not in r.stdout + r.stderr and "status=429" not in r.stdout + r.stderr

    # again in the same home, as a user would: the demo's Prefect server still holds the first demo's runs (the
    # payment approvals it left waiting), and only this demo's invoice approvals are decided
    again = subprocess.run([sys.executable, "-m", "renkei.cli", "demo"], capture_output=True, text=True, env=env,
                           timeout=900, cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "demo finished" in again.stdout and "approved (Completed)" in again.stdout
    assert "rejected (Completed)" in again.stdout
