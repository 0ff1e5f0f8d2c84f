"""``renkei demo`` — the README's main command — runs end to end and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(600)  # about 3 minutes, its own Prefect server's start included; headroom for a loaded machine
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
