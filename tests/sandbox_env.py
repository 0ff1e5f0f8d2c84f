"""Renkei's settings for tests that run against the local sandboxes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx


def sandbox_env(hubspot, freee, tmp: Path, *, db: Path | None = None) -> dict[str, str]:
    """Renkei's settings pointing at a HubSpot and a freee sandbox (the ``hubspot_sandbox`` /
    ``freee_sandbox`` fixtures' ``ServerThread``s), with a SQLite store (``db``, default ``tmp/renkei.db``) and ``RENKEI_HOME`` under ``tmp``."""
    return {
        "RENKEI_HUBSPOT_BASE_URL": hubspot.url,
        "RENKEI_HUBSPOT_TOKEN": hubspot.config.token,
        "RENKEI_FREEE_BASE_URL": freee.url,
        "RENKEI_FREEE_AUTH_URL": freee.url,
        "RENKEI_FREEE_CLIENT_ID": freee.config.client_id,
        "RENKEI_FREEE_CLIENT_SECRET": freee.config.client_secret,
        "RENKEI_FREEE_REFRESH_TOKEN": freee.config.refresh_token,
        "RENKEI_FREEE_COMPANY_ID": str(freee.config.company_id),
        "RENKEI_DATABASE_URL": f"sqlite:///{db or tmp / 'renkei.db'}",
        "RENKEI_HOME": str(tmp / ".renkei"),
    }


@contextmanager
def served(args: list[str], ready: Callable[[], Any], timeout: float = 60) -> Iterator[tuple[Any, Any]]:
    """``renkei sandbox serve ARGS`` in its own process group until the block ends. ``ready()`` is called
    until it stops raising ``httpx.HTTPError``; yields ``(process, what ready returned)``. After the block the
    process is stopped (SIGINT, then SIGKILL) and its output is ``process.output``."""
    proc = subprocess.Popen([sys.executable, "-m", "renkei.cli", "sandbox", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = ready()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, "sandbox did not start"
                time.sleep(0.3)
        yield proc, value
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.output = ""
