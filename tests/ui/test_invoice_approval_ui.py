"""Finance approves an invoice the way they would: in the Prefect UI, on the paused ``invoice-approval``
run that order-to-invoice started; then the invoice is in freee and the HubSpot deal shows it.

Real pieces only: both sandboxes over HTTP, a real ``prefect server start`` with its UI, the served
deployments (``deployments.serve``), Debian's chromium driven by Playwright. A screenshot of the filled
form is saved to ``test-artifacts/invoice-approval-form.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import prefect_ui  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.browser


def test_finance_approves_in_the_prefect_ui(hubspot_sandbox, freee_sandbox, tmp_path, monkeypatch):
    exe = prefect_ui.require_browser()
    from playwright.sync_api import sync_playwright
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from renkei.deployments.serve import Runner
    from renkei.flows.order_to_invoice import order_to_invoice
    from renkei.prefect_server import free_port, prefect_server
    from renkei.tasks.runtime import get_runtime, reset_runtime
    from tests.flows.builders import freee_invoices, freee_partner, hs_company, hs_deal

    env = {
        "RENKEI_HUBSPOT_BASE_URL": hubspot_sandbox.url, "RENKEI_HUBSPOT_TOKEN": hubspot_sandbox.config.token,
        "RENKEI_FREEE_BASE_URL": freee_sandbox.url, "RENKEI_FREEE_AUTH_URL": freee_sandbox.url,
        "RENKEI_FREEE_CLIENT_ID": freee_sandbox.config.client_id,
        "RENKEI_FREEE_CLIENT_SECRET": freee_sandbox.config.client_secret,
        "RENKEI_FREEE_REFRESH_TOKEN": freee_sandbox.config.refresh_token,
        "RENKEI_FREEE_COMPANY_ID": str(freee_sandbox.config.company_id),
        "RENKEI_DATABASE_URL": f"sqlite:///{tmp_path / 'renkei.db'}", "RENKEI_HOME": str(tmp_path / ".renkei"),
        "RENKEI_POLICY_FILE": str(tmp_path / "policy.toml"),
    }
    # the approver is a finance manager (the packaged [authority] names placeholder addresses only)
    (tmp_path / "policy.toml").write_text(
        '[authority]\nroles = { finance_manager = ["keiri@nakamura-demo.co.jp"] }\n', encoding="utf-8")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    reset_runtime()
    port = free_port()
    with prefect_server(tmp_path / "prefect", port=port) as server, \
            temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        rt = get_runtime()
        for object_type in ("companies", "deals", "line_items"):
            rt.crm.client.properties.ensure(object_type)

        class W:  # the builders' view of the world
            pass

        w = W()
        w.rt, w.hs, w.fr = rt, (lambda: rt.crm.client), (lambda: rt.erp.client)
        freee_partner(w, "株式会社中村製作所", registration="T7010705000725")
        company = hs_company(w, "株式会社中村製作所", renkei_corporate_number="7010705000725")
        deal = hs_deal(w, "中村製作所 設備更新", company, [
            {"name": "製造装置", "quantity": 1, "price": 5_500_000, "renkei_tax_category": "standard_10"},
            {"name": "弁当（研修用）", "quantity": 20, "price": 1_000, "renkei_tax_category": "reduced_8"}])

        with Runner(log_path=tmp_path / "runner.log", env={"PREFECT_API_URL": server.api_url}):
            order_to_invoice()
            from tests.flows.approvals import wait_final, wait_paused

            (run,) = wait_paused(1)
            assert run.parameters["deal_id"] == deal
            with sync_playwright() as pw:
                browser = prefect_ui.launch(pw, exe)
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.set_default_timeout(30_000)
                try:
                    prefect_ui.approve_in_ui(page, server.ui_url, str(run.id), approved=True,
                                             approver="keiri@nakamura-demo.co.jp", comment="設備更新のため承認",
                                             screenshot_path=ARTIFACTS / "invoice-approval-form.png",
                                             description_text="中村製作所")
                except Exception:
                    page.screenshot(path=str(ARTIFACTS / "invoice-approval-failure.png"))
                    raise
                finally:
                    browser.close()
            final = wait_final(run.id, timeout=90)
            assert final.state.is_completed(), final.state.message

        (inv,) = freee_invoices(w)
        # 10%: 5,500,000 → 550,000; 8% (reduced): 20,000 → 1,600; total 6,071,600
        assert inv["total_amount"] == 6_071_600
        props = rt.crm.client.deals.get(deal, properties=["renkei_invoice_status", "renkei_invoice_number",
                                                          "renkei_invoice_comment"])["properties"]
        assert props["renkei_invoice_status"] == "created"
        assert props["renkei_invoice_number"] == inv["invoice_number"]
        assert "keiri@nakamura-demo.co.jp" in props["renkei_invoice_comment"]
    reset_runtime()
