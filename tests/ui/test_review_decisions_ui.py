"""A person resolves a doubtful match and a field conflict in the real Prefect UI: the ``review-decisions``
runs that ``renkei reviews open-form`` starts, one form each (choice select, value, e-mail, reason); then
customer-sync links the partner and writes the entered value to both systems.

Real pieces only: both sandboxes over HTTP, a real ``prefect server start`` with its UI, the served
deployments (``deployments.serve``), Debian's chromium driven by Playwright. Screenshots of the filled
forms go to ``test-artifacts/review-match-form.png`` and ``test-artifacts/review-conflict-form.png``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import prefect_ui  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
KEIRI = "keiri@example.co.jp"
SUZUKI = "7120001168421"

pytestmark = pytest.mark.browser


def decide_in_ui(page, ui_url: str, run_id: str, *, choice: str, value: str, reason: str, screenshot: Path,
                 description_text: str, timeout_ms: float = 30_000) -> None:
    """Open the suspended run (V1 page), Resume, pick the choice, fill value / e-mail / reason, submit."""
    page.goto(prefect_ui.flow_run_url(ui_url, run_id), wait_until="domcontentloaded", timeout=timeout_ms)
    page.get_by_role("button", name="Resume", exact=True).first.click(timeout=timeout_ms)
    dialog = page.get_by_role("dialog").filter(has=page.locator("textarea")).first
    dialog.wait_for(state="visible", timeout=timeout_ms)
    dialog.get_by_text(description_text).first.wait_for(state="visible", timeout=timeout_ms)
    # The enum is a Prefect select (a button opening a list of options), not a native <select>. In the
    # modal a mouse click on it does not open the list (3.9.1, V1); the keyboard does: focus + ArrowDown.
    prop = dialog.locator(".schema-form-property").filter(
        has=page.locator(".schema-form-property__label", has_text="判断 / Decision")).first
    control = prop.locator(".p-select-button__control").first
    option = page.get_by_role("option", name=choice, exact=True).first
    for attempt in range(3):
        control.focus()
        page.keyboard.press("ArrowDown")
        try:
            option.wait_for(state="visible", timeout=2000)
            break
        except Exception:  # noqa: BLE001 - the next attempt, then the click below fails with Playwright's message
            if attempt == 2:
                control.click(timeout=timeout_ms)
    option.click(timeout=timeout_ms)
    prefect_ui._field(dialog, "入力値 / Value", "textarea").fill(value, timeout=timeout_ms)
    prefect_ui._field(dialog, "判断者メール / Your e-mail", "textarea").fill(KEIRI, timeout=timeout_ms)
    prefect_ui._field(dialog, "理由 / Reason", "textarea").fill(reason, timeout=timeout_ms)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot))
    prefect_ui.submit_resume(page, dialog, run_id, timeout_ms / 1000)


def test_a_match_and_a_conflict_resolved_in_the_prefect_ui(hubspot_sandbox, freee_sandbox, tmp_path, monkeypatch):
    exe = prefect_ui.require_browser()
    from playwright.sync_api import sync_playwright
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from typer.testing import CliRunner

    from renkei.cli import app
    from renkei.deployments.serve import Runner
    from renkei.flows.customer_sync import customer_sync
    from renkei.prefect_server import free_port, prefect_server
    from renkei.tasks.runtime import get_runtime, reset_runtime
    from tests.flows.builders import freee_partner, hs_company

    policy = tmp_path / "policy.toml"
    policy.write_text("[ownership.fields]\nphone = { owner = \"both\" }\n", encoding="utf-8")
    env = {
        "RENKEI_HUBSPOT_BASE_URL": hubspot_sandbox.url, "RENKEI_HUBSPOT_TOKEN": hubspot_sandbox.config.token,
        "RENKEI_FREEE_BASE_URL": freee_sandbox.url, "RENKEI_FREEE_AUTH_URL": freee_sandbox.url,
        "RENKEI_FREEE_CLIENT_ID": freee_sandbox.config.client_id,
        "RENKEI_FREEE_CLIENT_SECRET": freee_sandbox.config.client_secret,
        "RENKEI_FREEE_REFRESH_TOKEN": freee_sandbox.config.refresh_token,
        "RENKEI_FREEE_COMPANY_ID": str(freee_sandbox.config.company_id),
        "RENKEI_DATABASE_URL": f"sqlite:///{tmp_path / 'renkei.db'}", "RENKEI_HOME": str(tmp_path / ".renkei"),
        "RENKEI_POLICY_FILE": str(policy),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    reset_runtime()
    with prefect_server(tmp_path / "prefect", port=free_port()) as server, \
            temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        rt = get_runtime()
        rt.crm.client.properties.ensure("companies")

        class W:  # the builders' view of the world
            pass

        w = W()
        w.rt, w.hs, w.fr = rt, (lambda: rt.crm.client), (lambda: rt.erp.client)
        a = freee_partner(w, "株式会社田中商店", code="P-TANAKA1")
        freee_partner(w, "田中商店株式会社", code="P-TANAKA2")
        c = hs_company(w, "田中商店", zip="100-0001")
        p = freee_partner(w, "鈴木電機株式会社", registration=f"T{SUZUKI}", code="P-SUZUKI")
        s = hs_company(w, "鈴木電機株式会社", renkei_corporate_number=SUZUKI, phone="03-1000-0000")
        customer_sync()
        rt.crm.client.companies.update(s, {"phone": "03-2000-0000"})
        rt.erp.client.update_partner(p, {"name": "鈴木電機株式会社", "phone": "03-3000-0000"})
        customer_sync()
        items = {r.reason_code: r for r in rt.store.list_reviews("open", flow="customer-sync")}
        match, conflict = items["AMBIGUOUS_NAME"], items["BOTH_CHANGED"]

        runner = Runner(log_path=tmp_path / "runner.log", env={"PREFECT_API_URL": server.api_url})
        runner.start(wait_for="review-decisions/review-decisions")
        try:
            runs = {}
            for item in (match, conflict):
                r = CliRunner().invoke(app, ["reviews", "open-form", str(item.id), "--json"],
                                       env={"PREFECT_API_URL": server.api_url})
                assert r.exit_code == 0, r.output
                runs[item.id] = json.loads(r.output)["run_id"]
            for run_id in runs.values():
                prefect_ui.wait_paused(run_id, timeout=90)
            with sync_playwright() as pw:
                browser = prefect_ui.launch(pw, exe)
                page = browser.new_page(viewport={"width": 1280, "height": 1100})
                page.set_default_timeout(30_000)
                try:
                    decide_in_ui(page, server.ui_url, runs[match.id], choice=f"link:{a}", value="",
                                 reason="同じ会社 (same company)", description_text="田中商店",
                                 screenshot=ARTIFACTS / "review-match-form.png")
                    decide_in_ui(page, server.ui_url, runs[conflict.id], choice="value", value="03-4000-0000",
                                 reason="顧客に確認 (confirmed)", description_text="phone",
                                 screenshot=ARTIFACTS / "review-conflict-form.png")
                except Exception:
                    page.screenshot(path=str(ARTIFACTS / "review-form-failure.png"))
                    (ARTIFACTS / "review-form-failure.html").write_text(page.content(), encoding="utf-8")
                    raise
                finally:
                    browser.close()
            for run_id in runs.values():
                final = prefect_ui.wait_final(run_id, timeout=90)
                assert final.state.is_completed(), final.state.message
        finally:
            runner.stop()

        assert rt.store.get_review(match.id).decision_data["via"] == "prefect-ui"
        customer_sync()
        assert rt.store.erp_id_for("company", c) == a
        assert rt.crm.client.companies.get(s, properties=["phone"])["properties"]["phone"] == "03-4000-0000"
        assert rt.erp.client.get_partner(p)["phone"] == "03-4000-0000"
    reset_runtime()
