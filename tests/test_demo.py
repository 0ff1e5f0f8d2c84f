"""``renkei demo`` — the README's main command — runs end to end and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def _leaves_no_waiting_run(prefect_api):
    """The demo decides its invoice approvals but leaves payment approvals waiting on the session's Prefect
    server: they are deleted afterwards, so that a flow test run later on this worker (same sandbox record
    ids) never meets them."""
    from tests.flows.approvals import delete_runs, human_run_ids

    before = human_run_ids()
    yield
    delete_runs(human_run_ids() - before)


def test_demo_runs_on_the_embedded_default(prefect_api, _leaves_no_waiting_run, tmp_path: Path):
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "RENKEI_HOME": str(tmp_path / ".renkei"),
           "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "renkei.cli", "demo"], capture_output=True, text=True, env=env,
                       timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "HubSpot sandbox" in r.stdout and "freee sandbox" in r.stdout
    assert "demo finished" in r.stdout
    for flow in ("customer-sync", "order-to-invoice", "payment-writeback"):  # a progress line per flow
        assert f"progress: {flow} 100%" in r.stdout, r.stdout[-3000:]
    assert (tmp_path / ".renkei" / "demo" / "renkei.db").exists()
