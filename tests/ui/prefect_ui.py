"""Drive the Prefect UI like a finance user: open a paused flow run, click Resume, fill the approval form
and submit it. Playwright with Debian's system chromium (never ``playwright install``: no browser download).

Works with both UIs that Prefect 3.9.1 ships (checked against the real server, not mocks):

* **V1** (``/runs/flow-run/<id>``, dark theme): header button **Resume**, modal "Resume Flow Run" with the
  description Markdown, the schema form and the buttons Close / **Submit**. Its ``<label for=...>`` does not
  point at the text areas, so ``get_by_label`` finds nothing: fields are located from their title text.
* **V2** (``/v2/runs/flow-run/<id>``, light theme): **Resume** is an item of the ⋮ ("Open menu") menu; the modal
  "Provide input to resume <run>" ends with Cancel / **Resume**.

In both, the ``bool`` field is an element with ``role="switch"`` and ``aria-checked``; ``str`` fields are
``<textarea>``; a field with a default is titled "<Title> (Optional)".

Pitfalls found on the way:

* ``prefect server start --port N`` (N ≠ 4200) serves a UI that calls ``http://127.0.0.1:4200/api`` ("Can't
  connect to Server API"): set ``PREFECT_UI_API_URL=http://127.0.0.1:N/api`` in the server's environment.
* In 3.9.1 ``/`` opens the **V2** UI (``PREFECT_SERVER_UI_V2_ENABLED`` defaults to true); deep links
  ``/runs/flow-run/<id>`` (what the flow logs print) stay V1.
* V2 leaves a never-touched switch out of the input; the API then answers HTTP 200 ``{"status": "REJECT"}``
  ("'approved' is a required property"), shows a toast and keeps the modal open. ``_set_switch`` therefore
  always clicks the switch (off → on → off for a rejection).
* Wait for the exact toast "Flow run resumed": the run's own log line "... when this flow run is resumed."
  is on the same page.
* While ``sync_playwright()`` is active an asyncio loop runs in the calling thread, so Prefect's dual
  sync/async functions (``run_deployment``, ``resume_flow_run``, ...) return un-awaited coroutines; call them
  with ``_sync=True``. ``get_client(sync_client=True)`` (used here) is unaffected.
* No CJK font on a bare Debian: the Japanese description renders as boxes in screenshots (the DOM text is
  right). ``apt-get install fonts-ipafont-gothic`` (or ``fonts-noto-cjk``) fixes the screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any
from uuid import UUID

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_S = 30.0
_SUBMIT = re.compile(r"^\s*(Submit|Resume)\s*$")
RESUMED_TOAST = "Flow run resumed"  # same text in V1 and V2


# ----------------------------------------------------------------------------------------- browser
def chromium_path() -> str | None:
    """Debian's chromium (``/usr/bin/chromium``) or whatever ``chromium``/``chromium-browser`` is on PATH."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_browser() -> str:
    """The chromium executable; the test skips without one, or fails when CI requires it."""
    import pytest

    exe = chromium_path()
    if exe is None:
        if os.environ.get("RENKEI_REQUIRE_BROWSER") == "1":
            pytest.fail("RENKEI_REQUIRE_BROWSER=1 but no chromium")
        pytest.skip("no chromium (/usr/bin/chromium); apt-get install chromium")
    return exe


def launch(playwright: Any, executable_path: str | None = None) -> Any:
    """Start the system chromium headless (a Playwright ``Browser``). Raises ``RuntimeError`` when none is
    installed, and whatever Playwright raises when it cannot start it."""
    exe = executable_path or chromium_path()
    if exe is None:
        raise RuntimeError("no chromium found (/usr/bin/chromium or on PATH); apt-get install chromium")
    return playwright.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)


# ----------------------------------------------------------------------------------------- Prefect API
def _read_flow_run(flow_run_id: str | UUID):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(str(flow_run_id)))


def wait_paused(flow_run_id: str | UUID, timeout: float = 60.0, poll_s: float = 0.25):
    """Wait until the flow run is PAUSED (Paused or Suspended) and return it. Raises ``RuntimeError`` if it
    reaches a final state first and ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    run = None
    while time.monotonic() < deadline:
        run = _read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_paused():
            return run
        if run.state is not None and run.state.is_final():
            raise RuntimeError(f"flow run {flow_run_id} ended {run.state.name} before pausing: {run.state.message}")
        time.sleep(poll_s)
    state = run.state.name if run is not None and run.state is not None else None
    raise TimeoutError(f"flow run {flow_run_id} not paused after {timeout:.0f}s (state {state})")


def wait_final(flow_run_id: str | UUID, timeout: float = 60.0, poll_s: float = 0.25):
    """Wait until the flow run is in a final state (Completed, Failed, Crashed, Cancelled) and return it."""
    deadline = time.monotonic() + timeout
    run = None
    while time.monotonic() < deadline:
        run = _read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(poll_s)
    state = run.state.name if run is not None and run.state is not None else None
    raise TimeoutError(f"flow run {flow_run_id} not final after {timeout:.0f}s (state {state})")


# ----------------------------------------------------------------------------------------- UI
def flow_run_url(ui_url: str, flow_run_id: str | UUID, ui: str = "v1") -> str:
    base = ui_url.rstrip("/")
    return f"{base}/v2/runs/flow-run/{flow_run_id}" if ui == "v2" else f"{base}/runs/flow-run/{flow_run_id}"


def _xpath_literal(s: str) -> str:
    if "'" not in s:
        return f"'{s}'"
    if '"' not in s:
        return f'"{s}"'
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in s.split("'")) + ")"


def _field(dialog: Any, title: str, control: str) -> Any:
    """The ``control`` (XPath node test, e.g. ``textarea``) of the schema-form field titled ``title``: the
    nearest ancestor of the title text that contains such a control, then that control. Matches "Title" and
    "Title (Optional)" exactly, so "Approved" never matches "Approver"."""
    t = _xpath_literal(title)
    t_opt = _xpath_literal(f"{title} (Optional)")
    title_el = f"//*[not(*)][normalize-space()={t} or normalize-space()={t_opt}]"
    return dialog.locator(f"xpath=.{title_el}/ancestor::*[.//{control}][1]//{control}").first


def _is_v2(page: Any) -> bool:
    return "/v2/" in page.url


def _open_resume_modal(page: Any, timeout_ms: float) -> Any:
    if _is_v2(page):
        # V2: the Resume action lives in the header's ⋮ menu.
        page.get_by_role("button", name="Open menu").first.click(timeout=timeout_ms)
        page.get_by_role("menuitem", name="Resume", exact=True).click(timeout=timeout_ms)
    else:
        page.get_by_role("button", name="Resume", exact=True).first.click(timeout=timeout_ms)
    dialog = page.get_by_role("dialog").filter(has=page.get_by_role("switch")).first
    dialog.wait_for(state="visible", timeout=timeout_ms)
    return dialog


def _set_switch(switch: Any, on: bool, timeout_ms: float) -> None:
    """Set a ``role=switch`` to ``on``. Always *touches* it: the V2 form leaves a never-clicked switch out of
    the submitted input (the server then refuses: "'approved' is a required property"), so an "off" that is
    already off is clicked on and off again."""
    from playwright.sync_api import expect

    switch.wait_for(state="visible", timeout=timeout_ms)
    for want in (not on, on):
        value = "true" if want else "false"
        for _ in range(3):
            if switch.get_attribute("aria-checked") == value:
                break
            switch.click(timeout=timeout_ms)
            try:
                expect(switch).to_have_attribute("aria-checked", value, timeout=2000)
            except AssertionError:
                continue
        if switch.get_attribute("aria-checked") != value:
            raise AssertionError(f"could not set the approval toggle to {want}")


def approve_in_ui(
    page: Any,
    ui_url: str,
    flow_run_id: str | UUID,
    *,
    approved: bool,
    approver: str,
    comment: str,
    screenshot_path: Path | None = None,
    description_text: str | None = None,
    ui: str = "v1",
    approved_title: str = "承認 / Approve",
    approver_title: str = "承認者メール / Approver e-mail",
    comment_title: str = "コメント / Comment",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Resume a paused run through the Prefect UI with an ``ApprovalDecision``.

    Opens the flow-run page, clicks Resume, waits for the modal (and for ``description_text`` inside it, when
    given — some text of the description Markdown), sets the toggle to ``approved``, fills approver and
    comment, saves a screenshot of the filled form to ``screenshot_path`` (if given), clicks Submit (V1) /
    Resume (V2) and waits for the "Flow run resumed" toast or the modal to close.

    Raises ``AssertionError`` at once when the API refuses the input (HTTP 200 with status ``REJECT`` and the
    schema-validation reason), or after ``timeout_s`` when the modal stays open (V1 flags an empty required
    text field in the form and sends nothing). ``ui`` is ``"v1"`` (``/runs/flow-run/<id>``) or ``"v2"``.
    """
    timeout_ms = timeout_s * 1000
    page.goto(flow_run_url(ui_url, flow_run_id, ui), wait_until="domcontentloaded", timeout=timeout_ms)
    dialog = _open_resume_modal(page, timeout_ms)
    if description_text:
        dialog.get_by_text(description_text).first.wait_for(state="visible", timeout=timeout_ms)

    _set_switch(_field(dialog, approved_title, "*[@role='switch']"), approved, timeout_ms)
    _field(dialog, approver_title, "textarea").fill(approver, timeout=timeout_ms)
    _field(dialog, comment_title, "textarea").fill(comment, timeout=timeout_ms)

    if screenshot_path is not None:
        screenshot_path = Path(screenshot_path)
        screenshot_path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot_path))

    submit_resume(page, dialog, flow_run_id, timeout_s)


def submit_resume(page: Any, dialog: Any, flow_run_id: str | UUID, timeout_s: float = 30.0,
                  server_error_retries: int = 2) -> None:
    """Click the resume modal's Submit and wait for the "Flow run resumed" toast or the modal to close.

    The UI's POST /flow_runs/{id}/resume answers. A refused input is HTTP 200 with status "REJECT" and a reason
    (e.g. "'approved' is a required property") or a 4xx: the UI shows it as a toast and keeps the modal open →
    ``AssertionError`` at once. A 5xx is the Prefect server failing (its SQLite database locked on a loaded test
    machine: the UI shows "Oops. Something went wrong."): while the run is still paused, Submit is clicked
    again, as a person would, up to ``server_error_retries`` times."""
    answers: list[dict] = []

    def _on_response(response: Any) -> None:
        if response.request.method == "POST" and response.url.rstrip("/").endswith("/resume"):
            try:
                body = response.json()
            except Exception:  # noqa: BLE001 - not JSON / body gone
                body = {}
            details = body.get("details") if isinstance(body, dict) else None
            answers.append({"http": response.status,
                            "status": body.get("status") if isinstance(body, dict) else None,
                            "reason": details.get("reason") if isinstance(details, dict) else None})

    page.on("response", _on_response)
    text = ""
    try:
        submit = dialog.get_by_role("button", name=_SUBMIT).last
        submit.click(timeout=timeout_s * 1000)
        # Exact toast text: a log line on the page ("... when this flow run is resumed.") also says "resumed".
        toast = page.get_by_text(RESUMED_TOAST, exact=True).first
        deadline = time.monotonic() + timeout_s
        retries = server_error_retries
        while time.monotonic() < deadline:
            if toast.is_visible() or not dialog.is_visible():
                return
            if any(_refused(a) for a in answers):
                page.wait_for_timeout(300)  # let the UI show the reason (for the caller's failure screenshot)
                break
            if answers and answers[-1]["http"] >= 500:
                state = _read_flow_run(flow_run_id).state
                if state is not None and not state.is_paused():
                    return  # the server resumed it after all
                if retries <= 0:
                    break
                retries -= 1
                answers.append({"http": 0, "status": "RETRY", "reason": "submitted again after a server error"})
                submit.click(timeout=timeout_s * 1000)
            page.wait_for_timeout(100)
        text = dialog.inner_text() if dialog.is_visible() else ""
    finally:
        page.remove_listener("response", _on_response)
    if any(_refused(a) for a in answers):
        raise AssertionError(f"Prefect refused the input from the resume form: {answers}; modal: {text!r}")
    raise AssertionError(f"the resume modal did not close within {timeout_s:.0f}s; API answers {answers}; "
                         f"modal: {text!r}")


def _refused(answer: dict) -> bool:
    """The server refused the input (a 4xx, or a 200 that says REJECT); a 5xx is its own failure, not a refusal."""
    return 400 <= answer["http"] < 500 or (answer["http"] < 500 and answer["status"] not in (None, "ACCEPT", "RETRY"))
