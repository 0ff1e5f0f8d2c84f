"""Use the Prefect server at ``PREFECT_API_URL``, or start a real local one (with its UI) for the
duration of a command and stop what we started.

Why not Prefect's implicit temporary server: it drops task-run records and takes 10–25 s per process
(``../shared/reference/prefect-notes.md`` §1); a real server started once is reliable and shows the UI.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class PrefectServer:
    api_url: str
    ui_url: str
    started_here: bool
    process: subprocess.Popen | None = None
    log_path: Path | None = None


def wait_healthy(api_url: str, timeout_s: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {proc.returncode}")
        try:
            r = httpx.get(f"{api_url}/health", timeout=2.0)
            if r.status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise TimeoutError(f"Prefect server at {api_url} not healthy after {timeout_s:.0f}s ({last})")


@contextmanager
def prefect_server(home: Path, *, port: int | None = None, keep: bool = False) -> Iterator[PrefectServer]:
    """Yield a usable Prefect API. Sets ``PREFECT_API_URL`` in this process (children inherit it)."""
    existing = os.environ.get("PREFECT_API_URL")
    if existing:
        wait_healthy(existing, timeout_s=30)
        yield PrefectServer(existing, existing.removesuffix("/api"), started_here=False)
        return
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_url, ui_url = f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}"
    # The UI finds its API through PREFECT_UI_API_URL (it would assume port 4200 otherwise).
    env = {**os.environ, **QUIET_ENV, "PREFECT_HOME": str(home), "PREFECT_UI_API_URL": api_url}
    env.pop("PREFECT_API_URL", None)
    log_path = home / "server.log"
    prefect_bin = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [prefect_bin, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=None if keep else _die_with_parent(os.getpid()),
    )
    if not keep:  # a server left up on purpose (demo --keep-ui) outlives us; any other dies with us
        start_watchdog(proc.pid)
    server = PrefectServer(api_url, ui_url, True, proc, log_path)
    old = {k: os.environ.get(k) for k in ("PREFECT_API_URL", "PREFECT_HOME", *QUIET_ENV)}
    try:
        wait_healthy(api_url, timeout_s=180, proc=proc)
        os.environ.update({**QUIET_ENV, "PREFECT_API_URL": api_url, "PREFECT_HOME": str(home)})
        # Prefect reads its settings when it is imported: point this process at the server too
        # (child processes get it from the environment).
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            try:
                yield server
            finally:
                _drain_prefect_workers()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if not keep:
            stop(proc)
        log.close()


# ------------------------------------------------------------------------------ dying with the parent
# A server we started must not outlive us, even when we are killed with SIGKILL (no ``finally`` runs):
#  1. Linux: the child asks the kernel for SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG). The
#     signal follows the *thread* that started the child: start servers from the main thread.
#  2. Everywhere (and for anything the server itself started in its process group): a tiny watchdog
#     process polls the parent every half second; once the parent is gone it sends SIGTERM to the
#     server's whole process group, then SIGKILL after a grace period. It exits by itself as soon as the
#     group is gone (also after a normal stop), so it leaves nothing behind either.

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int):
    """``preexec_fn`` asking the kernel to SIGTERM the child when its parent dies (Linux; ``None``
    elsewhere). libc's ``prctl`` is looked up here, in the parent: the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # the watchdog covers it

    def preexec() -> None:  # runs in the child between fork and exec: keep it minimal
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


WATCHDOG = r"""
import os, signal, sys, time
parent, group, grace = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def alive_group():
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
while alive_group():
    if os.getppid() != parent:
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            sys.exit(0)
        deadline = time.monotonic() + grace
        while alive_group() and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive_group():
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        sys.exit(0)
    time.sleep(0.5)
"""


def start_watchdog(group: int, grace_s: float = 10.0) -> subprocess.Popen | None:
    """Watch this process; stop process group ``group`` when it dies (see above)."""
    if os.name != "posix":
        return None
    try:
        return subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(group), str(grace_s)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                close_fds=True)
    except OSError:
        return None


def stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """Stop a process group we started: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout_s)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def _drain_prefect_workers(timeout: float = 5.0) -> None:
    """Send the logs and events still queued in this process before the server we started stops, so the
    last lines reach the run's log and nobody sees "Error logging to API" after a clean finish."""
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for worker in (APILogWorker, EventsWorker):
            pending = worker.drain_all(timeout=timeout)
            if hasattr(pending, "close"):  # called inside an event loop: a coroutine we cannot wait for here
                pending.close()
    except Exception:  # noqa: BLE001 - best effort: a stopping server must not fail the command
        pass
