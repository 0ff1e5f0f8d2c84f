"""The local Prefect server started by ``renkei run`` dies with its parent, even on SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process table from /proc")


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(d))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _healthy(pid: int) -> bool:
    import httpx

    args = _cmdline(pid).split()
    port = args[args.index("--port") + 1] if "--port" in args else None
    try:
        return port is not None and httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_sigkill_of_renkei_run_takes_its_prefect_server_down(tmp_path):
    # Every API the flow would call accepts connections and never answers: the run hangs in its first
    # request, so the server is certainly up when the parent is killed.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(64)
    url = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "RENKEI_"))}
    env.update({"RENKEI_HOME": str(tmp_path / "home"), "RENKEI_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
                "RENKEI_FREEE_BASE_URL": url, "RENKEI_FREEE_AUTH_URL": url, "RENKEI_HUBSPOT_BASE_URL": url,
                "RENKEI_FREEE_COMPANY_ID": "1", "RENKEI_FREEE_CLIENT_ID": "c", "RENKEI_FREEE_CLIENT_SECRET": "s",
                "RENKEI_FREEE_REFRESH_TOKEN": "r", "RENKEI_HUBSPOT_TOKEN": "t"})
    parent = subprocess.Popen([sys.executable, "-c", "from renkei.cli import app; app()", "run", "product-sync"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and parent.poll() is None:
            kids = [p for p in _children(parent.pid) if "server start" in _cmdline(p)]
            if kids and _healthy(kids[0]):
                server = kids[0]
                break
            time.sleep(0.3)
        assert server is not None, f"no server came up (parent exit code {parent.poll()})"
        time.sleep(2)  # the flow is now waiting on the blackhole
        assert parent.poll() is None and _alive(server)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(server):
            time.sleep(0.2)
        assert not _alive(server), "the Prefect server outlived the SIGKILLed `renkei run`"
    finally:
        blackhole.close()
        if parent.poll() is None:
            parent.kill()
        if server is not None and _alive(server):
            os.kill(server, signal.SIGKILL)
