"""`renkei stack down` leaves no process behind: a worker's flow run that left the worker's process group (a new
session) is stopped too. (`stack up` itself takes a minute — Prefect server, `prefect deploy`, three workers —
so it is exercised by benchmarks/scale_out.py, not here.)"""

from __future__ import annotations

import subprocess
import sys
import time

from renkei.deployments.stack import StackProcess, StackState, _alive, descendants, down

GRANDCHILD = ("import subprocess, sys, time; "
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], start_new_session=True); "
              "time.sleep(120)")


def test_down_stops_every_process_group_and_descendant(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", GRANDCHILD], start_new_session=True)
    deadline = time.monotonic() + 20
    while not descendants(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    kids = descendants(proc.pid)
    assert kids, "the worker-like process started its flow-run-like child"
    StackState(home=str(tmp_path), prefect_api_url="-", prefect_db="-", state_db="-", postgres="-",
               processes=[StackProcess("worker-1", proc.pid, "-")]).save(tmp_path / "stack.json")
    assert down(tmp_path, say=lambda m: None) == ["worker-1"]
    proc.wait(timeout=5)
    deadline = time.monotonic() + 5
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(k) for k in kids)
    assert not (tmp_path / "stack.json").exists()
    assert down(tmp_path, say=lambda m: None) == []
