"""The console in a real browser: Debian's chromium (Playwright, no browser download) opens every page of
``renkei console`` served over HTTP by uvicorn, over a state store holding known reporting snapshots
(``tests/console/snapshot_data.py``, written through ``store/reporting.py`` as the reporting flow writes
them). Checks figures on the page and in the drawn charts (Chart.js from the package's ``static/``, no
network), that no script error or Content-Security-Policy violation happens, that a hostile CRM name stays
text, sorting by a column header; screenshots every page to ``test-artifacts/console-*.png``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
import prefect_ui  # noqa: E402
import snapshot_data as sd  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.browser

PAGES = [("/", "overview"), ("/aging", "aging"), ("/customers", "customers"), ("/drift", "drift"),
         ("/queues", "queues"), ("/trace/5001", "trace"), ("/search?counterparty=中村", "search")]


def test_every_console_page_in_chromium(tmp_path, monkeypatch):
    exe = prefect_ui.require_browser()
    from playwright.sync_api import sync_playwright

    from renkei.console import create_app
    from renkei.sandboxes.common import ServerThread
    from renkei.store.repo import Store

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    store = Store.open(f"sqlite:///{tmp_path / 'renkei.db'}", cached=False)
    exp = sd.write(store)
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with ServerThread(create_app(store, approvals=lambda: [])) as server, sync_playwright() as pw:
        browser = prefect_ui.launch(pw, exe)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP",
                                    timezone_id="Asia/Tokyo")
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.on("request", lambda r: None if r.url.startswith(server.url) else problems.append(f"off-site {r.url}"))
            for path, name in PAGES:
                page.goto(server.url + path)
                page.wait_for_selector("body[data-charts-ready]", timeout=15_000)
                page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)

                if name == "overview":
                    t = exp["totals"]
                    assert page.locator("#total-pipeline-weighted").inner_text() == f"¥{t['pipeline_weighted']:,}"
                    assert page.locator("#total-invoiced").inner_text() == f"¥{t['invoiced']:,}"
                    assert page.locator("#total-collected").inner_text() == f"¥{t['collected']:,}"
                    row = page.locator("#months tr[data-month='2026-11']")
                    assert row.locator("td.collected").inner_text() == "¥1,197,340"
                    drawn = page.evaluate("""() => Chart.getChart(document.getElementById('chart-months'))
                        .data.datasets.map(d => [d.label, d.data])""")
                    by_label = {label.split(" ")[-1]: data for label, data in drawn}
                    assert by_label["Invoiced"] == [v[2] for v in exp["months"].values()]
                    assert by_label["Collected"] == [v[3] for v in exp["months"].values()]
                    assert page.evaluate("() => Chart.getChart(document.getElementById('chart-forecast'))"
                                         ".data.labels") == ["2026年12月", "2027年1月", "2027年2月", "2027年3月",
                                                             "2027年4月", "2027年5月"]
                elif name == "aging":
                    assert page.locator("#aging tr[data-bucket='31-60'] td.amount").inner_text() == "¥120,000"
                    assert page.locator("#aging-total").inner_text() == "¥175,000"
                elif name == "customers":
                    first = page.locator("#customers tbody tr").first.locator("th")
                    assert first.inner_text() == sd.HOSTILE_COMPANY  # shown as text, nothing ran
                    page.get_by_role("link", name="原価").click()  # sort by cost (largest first)
                    page.wait_for_url("**sort=cost**")
                    assert page.locator("#customers tbody tr").first.get_attribute("data-key") == "crm:101"
                    assert page.locator("#customers tbody tr").first.locator("td.cost").inner_text() == "¥400,000"
                elif name == "drift":
                    n = page.evaluate("() => Chart.getChart(document.getElementById('chart-drift')).data.datasets"
                                      ".find(d => d.label === '請求書のない受注商談').data")
                    assert n == [exp["drift_before"]["won_no_invoice"], exp["drift"]["won_no_invoice"]]
                elif name == "trace":
                    assert page.locator("#deal-amount").inner_text() == "¥1,000,000"
                    assert page.locator("#payments td.amount").inner_text() == "¥1,097,340"
                    assert page.locator("#approvers").inner_text() == sd.APPROVER
                    assert page.locator("#company-name").inner_text() == sd.HOSTILE_COMPANY
                elif name == "search":
                    assert page.locator("#hits tr[data-key='7002'] td.amount").inner_text() == "¥220,000"
                    page.locator("#hits tr[data-key='5002'] a").click()  # a hit links to its deal's trace
                    page.wait_for_url("**/trace/5002")
                    assert page.locator("#deal-amount").inner_text() == "¥2,000,001"
        finally:
            browser.close()
    assert problems == []
