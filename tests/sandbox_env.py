"""Renkei's settings for tests that run against the local sandboxes: the HubSpot + freee pair
(:func:`sandbox_env`) or any registered connector's sandbox through its ``SandboxSpec``
(:class:`ServedSandbox`, :func:`pairing_env`, :func:`pairing_params`)."""

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


class ServedSandbox:
    """One registered connector's sandbox (its ``SandboxSpec``) served over HTTP on a free port, as a context
    manager: ``entry``, ``spec``, ``app``, ``url``, ``env`` (the ``RENKEI_*`` settings ``SandboxSpec.env``
    hands out) and ``tmp`` (a folder that lives as long as the server)."""

    def __init__(self, entry: Any, seed: str = "demo", *, fast: bool = True, **options: Any) -> None:
        """``fast``: with the spec's ``test_options`` (rate limits off or high)."""
        from renkei.sandboxes.common import ServerThread

        self.entry, self.spec = entry, entry.sandbox_spec()
        if fast:
            options = {**dict(getattr(self.spec, "test_options", None) or {}), **options}
        self.app = self.spec.app(seed=seed, **options)
        self.server = ServerThread(self.app)

    def __enter__(self) -> "ServedSandbox":
        import tempfile

        self._tmp = tempfile.TemporaryDirectory(prefix=f"sandbox-{self.entry.name}-")
        self.tmp = Path(self._tmp.name)
        self.server.__enter__()
        self.url = self.server.url
        self.env = self.spec.env(self.url, self.app)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)
        self._tmp.cleanup()


def pairing_env(crm: ServedSandbox, erp: ServedSandbox, tmp: Path, *, db: Path | None = None) -> dict[str, str]:
    """Renkei's settings for a (CRM, ERP) pairing of served sandboxes, with a SQLite store (``db``, default
    ``tmp/renkei.db``) and ``RENKEI_HOME`` under ``tmp``."""
    return {**crm.env, **erp.env, "RENKEI_CRM": crm.entry.name, "RENKEI_ERP": erp.entry.name,
            "RENKEI_DATABASE_URL": f"sqlite:///{db or tmp / 'renkei.db'}", "RENKEI_HOME": str(tmp / ".renkei")}


def importable(entry: Any) -> bool:
    """The connector and its sandbox load (a connector being built in parallel may not yet)."""
    try:
        entry.builder(), entry.sandbox_spec()
    except ImportError:
        return False
    return True


def pairing_params() -> list[Any]:
    """``pytest.param((crm, erp), id="crm-erp")`` for every registered pairing, HubSpot + freee first."""
    import pytest

    from renkei.connectors import registry

    # every pairing runs: a connector that does not build fails the test, it is never skipped
    return [pytest.param((crm, erp), id=f"{crm}-{erp}") for crm, erp in registry.pairings()]


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
