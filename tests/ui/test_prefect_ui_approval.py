"""Finance approves (and rejects) a suspended approval run by clicking through the real Prefect UI.

A real ``prefect server start`` with its UI (the session harness runs with ``PREFECT_UI_ENABLED=0``), a served
deployment of ``_approval_fixture_flow.py`` in a subprocess, Debian's chromium driven by Playwright. The approve
case uses the V1 UI (the ``/runs/flow-run/<id>`` link the flow logs), the reject case the V2 UI (``/v2/...``,
what ``/`` opens by default in Prefect 3.9.1). Screenshots of the filled forms go to ``test-artifacts/``.

Skipped when chromium or Playwright is unavailable, unless ``RENKEI_REQUIRE_BROWSER=1`` (then it fails).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ has no __init__: import the driver by path
import prefect_ui  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
FLOW_FILE = Path(__file__).resolve().parent / "_approval_fixture_flow.py"
FLOW_NAME = "renkei-ui-approval-fixture"

pytestmark = pytest.mark.browser


def _unavailable(reason: str) -> None:
    if os.environ.get("RENKEI_REQUIRE_BROWSER") == "1":
        pytest.fail(f"RENKEI_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium under Playwright; checked before any server is started so a skip costs nothing."""
    exe = prefect_ui.chromium_path()
    if exe is None:
        _unavailable("no chromium (/usr/bin/chromium or on PATH); apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"the playwright package is not importable ({exc})")
    pw = sync_playwright().start()
    try:
        try:
            b = prefect_ui.launch(pw, exe)
        except Exception as exc:  # noqa: BLE001 - any launch failure means "no usable browser"
            _unavailable(f"playwright could not launch {exe}: {str(exc).splitlines()[0]}")
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@dataclass
class Stack:
    ui_url: str
    deployment: str
    work_dir: Path
    serve_log: Path
    server_log: Path | None

    def logs(self) -> str:
        parts = []
        for p in (self.serve_log, self.server_log):
            if p is not None and p.exists():
                parts.append(f"--- {p.name} (tail)\n" + "\n".join(p.read_text(errors="replace").splitlines()[-40:]))
        return "\n".join(parts)


@pytest.fixture(scope="module")
def approval_stack(browser, tmp_path_factory) -> Iterator[Stack]:
    """A real Prefect server with UI + the fixture flow served from a subprocess (stopped before the server)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from renkei.prefect_server import free_port, prefect_server, stop

    tmp = tmp_path_factory.mktemp("ui-approval")
    port = free_port()
    with pytest.MonkeyPatch.context() as mp:
        # Our own server even when the session harness (no UI) has set PREFECT_API_URL.
        mp.delenv("PREFECT_API_URL", raising=False)
        # `prefect server start --port N` alone leaves the UI calling http://127.0.0.1:4200/api
        # ("Can't connect to Server API"): the UI's API URL comes from settings, not from --port.
        mp.setenv("PREFECT_UI_API_URL", f"http://127.0.0.1:{port}/api")
        with prefect_server(tmp / "prefect", port=port) as server, \
                temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            deployment = f"ui-approval-{uuid.uuid4().hex[:6]}"
            serve_log = tmp / "serve.log"
            env = {
                **os.environ,  # PREFECT_API_URL / PREFECT_HOME of our server (set by prefect_server)
                "PREFECT_API_URL": server.api_url,
                "PREFECT_RUNNER_POLL_FREQUENCY": "1",  # default 10 s before a (re)scheduled run starts
                "PREFECT_LOGGING_LEVEL": "INFO",  # conftest sets WARNING; we assert on the flow's INFO log
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            }
            with serve_log.open("ab") as log:
                serve = subprocess.Popen([sys.executable, str(FLOW_FILE), deployment], cwd=ROOT, env=env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            stack = Stack(server.ui_url, f"{FLOW_NAME}/{deployment}", tmp, serve_log, server.log_path)
            try:
                _wait_deployment(stack, serve)
                yield stack
            finally:
                stop(serve)


def _wait_deployment(stack: Stack, serve: subprocess.Popen, timeout_s: float = 60.0) -> None:
    from prefect import get_client

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if serve.poll() is not None:
            pytest.fail(f"the serve process exited with {serve.returncode}\n{stack.logs()}")
        try:
            with get_client(sync_client=True) as client:
                client.read_deployment_by_name(stack.deployment)
            return
        except Exception:  # noqa: BLE001 - not registered yet
            time.sleep(0.3)
    pytest.fail(f"deployment {stack.deployment} not served after {timeout_s:.0f}s\n{stack.logs()}")


def _flow_run_logs(flow_run_id) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [entry.message for entry in logs]


CASES = [
    pytest.param(True, "keiri@example.co.jp", "OK", "v1", "approval-form.png", id="approve-v1"),
    pytest.param(False, "keiri@example.co.jp", "金額が見積と違います", "v2", "approval-form-reject-v2.png",
                 id="reject-v2"),
]


@pytest.mark.parametrize(("approved", "approver", "comment", "ui", "shot"), CASES)
def test_finance_resumes_suspended_run_in_ui(approval_stack: Stack, browser, approved: bool, approver: str,
                                             comment: str, ui: str, shot: str) -> None:
    from prefect.deployments import run_deployment

    stack = approval_stack
    case = "approve" if approved else "reject"
    out = stack.work_dir / f"decision-{case}.json"
    # `_sync=True`: while sync_playwright() is active an asyncio loop runs in this thread, so Prefect's
    # dual sync/async functions would otherwise return an un-awaited coroutine.
    run = run_deployment(stack.deployment, parameters={"case": case, "out_path": str(out)}, timeout=0,
                         _sync=True)
    try:
        prefect_ui.wait_paused(run.id, timeout=45)
    except (TimeoutError, RuntimeError) as exc:
        pytest.fail(f"{exc}\n{stack.logs()}")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        prefect_ui.approve_in_ui(page, stack.ui_url, str(run.id), approved=approved, approver=approver,
                                 comment=comment, screenshot_path=ARTIFACTS / shot,
                                 description_text="請求書承認", ui=ui)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"failure-{case}-{ui}.png"))
        raise
    finally:
        context.close()

    final = prefect_ui.wait_final(run.id, timeout=45)
    assert final.state.is_completed(), f"{final.state.name}: {final.state.message}\n{stack.logs()}"
    assert json.loads(out.read_text(encoding="utf-8")) == {
        "approved": approved, "approver": approver, "comment": comment}

    deadline = time.monotonic() + 15  # the run's logs reach the API shortly after the state
    wanted = f"by {approver}: approved={approved}"
    messages = _flow_run_logs(run.id)
    while not any(wanted in m for m in messages) and time.monotonic() < deadline:
        time.sleep(0.3)
        messages = _flow_run_logs(run.id)
    assert any(wanted in m for m in messages), messages


def test_input_refused_by_the_server_keeps_the_run_paused(approval_stack: Stack, browser) -> None:
    """The driver must not report success when Prefect refuses the form (schema: a rejection without a
    comment); the run stays PAUSED and can still be resumed."""
    from prefect.deployments import run_deployment

    stack = approval_stack
    out = stack.work_dir / "decision-refused.json"
    run = run_deployment(stack.deployment, parameters={"case": "refused", "out_path": str(out)}, timeout=0,
                         _sync=True)
    prefect_ui.wait_paused(run.id, timeout=45)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        with pytest.raises(AssertionError, match="refused") as refused:
            prefect_ui.approve_in_ui(page, stack.ui_url, str(run.id), approved=False, approver="keiri@example.co.jp",
                                     comment="", screenshot_path=None, ui="v2", timeout_s=15)
        assert "comment" in str(refused.value)  # a rejection needs a comment: refused before the run resumes
    finally:
        context.close()
    assert prefect_ui.wait_paused(run.id, timeout=5).state.is_paused()
    assert not out.exists()
