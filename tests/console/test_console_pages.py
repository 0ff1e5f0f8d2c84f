"""Every console page against a state store holding known snapshots (``snapshot_data``): the figures on
the page equal the hand-computed ones yen to yen, hostile CRM text never becomes markup, personal data is
masked, and the app is read-only."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from renkei.cli import ui_link

sys.path.insert(0, str(Path(__file__).resolve().parent))
import htmltables as ht  # noqa: E402
import snapshot_data as sd  # noqa: E402

PAGES = ["/", "/aging", "/customers", "/drift", "/queues", "/trace", "/trace/5001", "/search",
         "/search?from=2026-01-01&to=2027-12-31"]


def yen(n: int) -> str:
    return f"-¥{-n:,}" if n < 0 else f"¥{n:,}"


@pytest.fixture
def client(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from renkei.console import create_app
    from renkei.store.repo import Store

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4299/api")  # links only: nothing is called
    store = Store.open(f"sqlite:///{tmp_path / 'renkei.db'}", cached=False)
    sd.write(store)
    approvals = [{"run_id": "11111111-2222-3333-4444-555555555555", "name": "invoice-approval-<b>x</b>",
                  "kind": "invoice", "amount": 5_720_000, "reasons": ["amount_over_threshold"],
                  "entity": "deal", "entity_key": "5004", "age": "2h05m", "deadline": "2026-12-08T09:00:00+09:00",
                  "url": "http://127.0.0.1:4299/runs/flow-run/11111111-2222-3333-4444-555555555555"}]
    with TestClient(create_app(store, approvals=lambda: approvals)) as c:
        yield c


def test_every_page_shows_the_snapshot_figures_escaped_masked_and_read_only(client):
    exp = sd.EXPECTED
    pages = {p: client.get(p) for p in PAGES}
    for path, r in pages.items():
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        html = r.text
        # hostile CRM text is text, never markup; no inline script at all (the CSP would refuse it anyway)
        assert "<script>alert" not in html and "<img src=x" not in html and "onerror=alert" not in html.replace(
            "onerror=alert(1)&gt;", ""), path
        assert not re.search(r"<script(?![^>]*\b(src=\"/static/|type=\"application/json\"))", html), path
        # no raw personal data: the review message's e-mail and phone, the 個人事業者's name
        assert "taro@example.co.jp" not in html and "03-1234-5678" not in html and "山田太郎" not in html, path
        assert "基準日" in html and "2026-12-05" in html

    # ------------------------------------------------------------------ overview: table, cards and chart data
    html = pages["/"].text
    months = {r["month"]: r["cells"][1:] for r in ht.rows(html, "months")}
    assert months == {m: [yen(v) for v in vals] for m, vals in exp["months"].items()}
    t = exp["totals"]
    assert ht.text(html, "total-pipeline-weighted") == yen(t["pipeline_weighted"]) == "¥1,600,001"
    assert ht.text(html, "total-pipeline-unweighted") == yen(t["pipeline_unweighted"])
    assert ht.text(html, "total-invoiced") == yen(t["invoiced"])
    assert ht.text(html, "total-collected") == yen(t["collected"])
    assert ht.text(html, "total-receivable") == yen(t["open_receivable"])
    assert ht.rows(html, "months", "tfoot")[0]["cells"][1:] == [yen(t[k]) for k in (
        "pipeline_weighted", "pipeline_unweighted", "invoiced", "collected")]
    chart = ht.chart(html, "data-months")
    assert chart["labels"] == list(exp["months"])
    series = {s["key"]: s["data"] for s in chart["series"]}
    for i, key in enumerate(("pipeline_weighted", "pipeline_unweighted", "invoiced", "collected")):
        assert series[key] == [vals[i] for vals in exp["months"].values()], key
    forecast = {r["month"]: r["cells"][1:] for r in ht.rows(html, "forecast")}
    assert forecast["2026-12"] == [yen(175_000), yen(0), yen(175_000)]  # open invoices (overdue ones now)
    assert forecast["2027-01"] == [yen(0), yen(1_000_001), yen(1_000_001)]  # 12/20 close → 翌月末払い
    assert forecast["2027-02"] == [yen(0), yen(600_000), yen(600_000)]
    assert ["default/提案", "2026年12月", "1", yen(1_000_001), yen(2_000_001)] in [
        r["cells"] for r in ht.rows(html, "stages")]

    # ------------------------------------------------------------------ aging
    html = pages["/aging"].text
    buckets = {r["bucket"]: (int(r["cells"][1]), r["cells"][2]) for r in ht.rows(html, "aging")}
    assert buckets == {k: (n, yen(a)) for k, (n, a) in exp["aging"].items()}
    assert ht.text(html, "aging-total") == yen(t["open_receivable"])
    assert [r["cells"][:2] for r in ht.rows(html, "aging-customers")] == [
        ["株式会社中村製作所", yen(120_000)], ["山***", yen(55_000)]]
    assert ht.chart(html, "data-aging")["series"][0]["data"] == [a for _, a in exp["aging"].values()]

    # ------------------------------------------------------------------ customers: figures and every sort
    html = pages["/customers"].text
    got = {r["key"]: r["cells"][1:] for r in ht.rows(html, "customers")}
    assert got == {k: [yen(v) if isinstance(v, int) else v for v in vals] for k, vals in exp["customers"].items()}
    assert [r["cells"][0] for r in ht.rows(html, "customers")] == [
        sd.HOSTILE_COMPANY, "山***", "株式会社中村製作所"]  # default: gross margin, largest first
    assert ht.text(html, "customers-sales") == yen(1_250_000)
    assert ht.text(html, "customers-margin") == yen(600_000)
    from renkei.console.app import CUSTOMER_COLUMNS

    for col, *_ in CUSTOMER_COLUMNS:
        for direction in ("asc", "desc"):
            page = client.get(f"/customers?sort={col}&dir={direction}").text
            keys = [r["key"] for r in ht.rows(page, "customers")]
            if col == "name":
                names = {"crm:101": sd.HOSTILE_COMPANY, "crm:102": "株式会社中村製作所", "crm:103": "山***"}
                want = sorted(names, key=lambda k: names[k], reverse=direction == "desc")
            else:
                idx = [c for c, *_ in CUSTOMER_COLUMNS].index(col) - 1
                val = {k: (v[idx] if isinstance(v[idx], int) else float(v[idx].rstrip("%")))
                       for k, v in exp["customers"].items()}
                want = sorted(sorted(val), key=lambda k: val[k], reverse=direction == "desc")
            assert keys == want, (col, direction)
    assert client.get("/customers?sort=__class__&dir=sideways").status_code == 200  # unknown: the default
    import renkei.console.app as console_app

    with pytest.MonkeyPatch.context() as mp:  # paging (100 rows a page; 2 here)
        mp.setattr(console_app, "PAGE_SIZE", 2)
        first = client.get("/customers?sort=sales&dir=asc").text
        assert [r["key"] for r in ht.rows(first, "customers")] == ["crm:103", "crm:102"]
        assert 'href="?sort=sales&amp;dir=asc&amp;page=2"' in first
        second = client.get("/customers?sort=sales&dir=asc&page=2").text
        assert [r["key"] for r in ht.rows(second, "customers")] == ["crm:101"]
        assert ht.text(second, "customers-sales") == yen(1_250_000)  # totals over all customers

    # ------------------------------------------------------------------ drift: trend and items
    html = pages["/drift"].text
    assert {r["kind"]: int(r["cells"][1]) for r in ht.rows(html, "drift-counts")} == exp["drift"]
    trend = ht.chart(html, "data-drift")
    assert len(trend["labels"]) == 2 and trend["money"] is False
    assert {s["key"]: s["data"] for s in trend["series"]} == {
        k: [exp["drift_before"][k], exp["drift"][k]] for k in exp["drift"]}
    items = ht.rows(html, "drift-items")
    assert sorted(r["cells"][0] for r in items) == sorted(
        ["会社と取引先の項目差異", "商談のない請求書", "商談のない請求書", "請求書のない受注商談"])
    only = ht.rows(client.get("/drift?kind=won_no_invoice").text, "drift-items")
    assert [r["cells"][1:3] for r in only] == [["5004", "—"]]

    # ------------------------------------------------------------------ queues: reviews and approvals, linked
    html = pages["/queues"].text
    (review,) = ht.rows(html, "reviews")
    assert review["cells"][3] == "deal:5004" and review["cells"][4] == yen(550_000)
    assert "t***@example.co.jp" in review["cells"][6] and "***-5678" in review["cells"][6]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f'href="{ui_link(sd.REVIEW_RUN_ID)}"' in html and "/runs/flow-run/" in ui_link("x")  # renkei.cli.ui_link
    (approval,) = ht.rows(html, "approvals")
    assert approval["cells"][:2] == ["invoice", yen(5_720_000)] and approval["cells"][5] == "2026-12-08 09:00 JST"
    assert "invoice-approval-&lt;b&gt;x&lt;/b&gt;" in html

    # ------------------------------------------------------------------ trace: deal → … → audit, with approver
    html = pages["/trace/5001"].text
    assert ht.text(html, "deal-amount") == yen(1_000_000)
    assert ht.text(html, "company-name") == sd.HOSTILE_COMPANY
    (inv,) = ht.rows(html, "invoices")
    assert inv["invoice"] == "7001" and inv["cells"][0] == "INV-1"
    assert inv["cells"][3] == f"10%: {yen(900_000)} / 税 {yen(90_000)}8%（軽減）: {yen(100_000)} / 税 {yen(8_000)}"
    assert inv["cells"][4:7] == [yen(1_000_000), yen(1_098_000), yen(0)]
    assert [r["cells"] for r in ht.rows(html, "payments")] == [
        ["P-1", "2026-11-30", yen(1_097_340), yen(660), "7001"]]
    events = ht.rows(html, "events")
    assert [e["cells"][2] for e in events] == ["invoice.created", "approval_requested", "approval.approved",
                                               "payment.matched"]
    assert f'href="{ui_link(sd.APPROVAL_RUN_ID)}"' in html  # the approval run
    assert ht.text(html, "approvers") == sd.APPROVER
    assert "t***@example.co.jp" in events[0]["cells"][5] and "taro.yamada" not in html
    assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} JST", events[0]["cells"][0])
    assert client.get("/trace?deal=5001").text.count("INV-1") == html.count("INV-1")
    missing = client.get("/trace/no-such-deal")
    assert missing.status_code == 404 and "no-such-deal" in missing.text

    # ------------------------------------------------------------------ search: date, amount, counterparty
    def hits(query: str) -> list[tuple[str, str]]:
        r = client.get("/search?" + query)
        assert r.status_code == 200, query
        return sorted((h["kind"], h["key"]) for h in ht.rows(r.text, "hits") if "kind" in h)

    assert hits("counterparty=中村") == [("deal", "5002"), ("deal", "5003"), ("invoice", "7002"), ("payment", "P-2")]
    assert hits("from=2026-11-01&to=2026-11-30&kind=invoice&kind=payment") == [
        ("invoice", "7003"), ("invoice", "7004"), ("payment", "P-1"), ("payment", "P-2")]
    assert hits("min=1,000,000&max=¥2,000,001&kind=deal") == [("deal", "5001"), ("deal", "5002")]
    assert hits("counterparty=山田") == []  # a 個人事業者 is not found by name
    r = client.get("/search?counterparty=中村&kind=invoice")
    (row,) = ht.rows(r.text, "hits")
    assert row["cells"][:5] == ["請求書", "2026-09-10", yen(220_000), "株式会社中村製作所", "INV-2"]
    bad = client.get("/search?min=abc&from=2026-13-01")
    assert bad.status_code == 400 and "min" in bad.text and "<table" not in bad.text.split("<main>")[1]

    # ------------------------------------------------------------------ read-only, static assets
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)("/search").status_code == 405
        assert getattr(client, method)("/").status_code == 405
    js = client.get("/static/chart.umd.min.js")
    assert js.status_code == 200 and "Chart.js v4" in js.text[:200]
    assert "MIT License" in client.get("/static/chart.js.LICENSE.md").text


def test_pages_without_a_snapshot_say_how_to_make_one(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from renkei.console import create_app
    from renkei.store.repo import Store

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    store = Store.open(f"sqlite:///{tmp_path / 'empty.db'}", cached=False)
    with TestClient(create_app(store)) as c:
        for path in ("/", "/aging", "/customers", "/drift"):
            r = c.get(path)
            assert r.status_code == 200 and "renkei run reporting" in r.text, path
        q = c.get("/queues")
        assert q.status_code == 200 and "PREFECT_API_URL" in q.text
        assert c.get("/search?counterparty=x").status_code == 200

    def broken() -> list[dict]:
        raise RuntimeError("api down")

    with TestClient(create_app(store, approvals=broken)) as c:  # the Prefect API failing: the page still works
        q = c.get("/queues")
        assert q.status_code == 200 and "Prefect API: RuntimeError" in q.text and 'id="reviews"' in q.text


def test_renkei_console_serves_the_configured_store_and_the_demo_starts_one(tmp_path):
    """``renkei console --port N --database-url URL`` serves until stopped; ``renkei demo --keep-ui`` serves
    the same app in-process (``renkei.demo._start_console``)."""
    import subprocess
    import time
    from contextlib import ExitStack

    import httpx

    from renkei.demo import _start_console
    from renkei.prefect_server import free_port
    from renkei.store.repo import Store

    url = f"sqlite:///{tmp_path / 'renkei.db'}"
    store = Store.open(url, cached=False)
    sd.write(store)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "renkei.cli", "console", "--port", str(port), "--database-url", url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, page = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert page is not None and page.status_code == 200, proc.poll()
        assert ht.text(page.text, "total-collected") == "¥1,197,340"
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}/" in out

    from tests.console.pagecheck import assert_console_shows  # what the reporting flow test can call too

    assert_console_shows(store, months=sd.EXPECTED["months"],
                         aging={k: a for k, (_, a) in sd.EXPECTED["aging"].items()})
    with pytest.raises(AssertionError):
        assert_console_shows(store, aging={**{k: a for k, (_, a) in sd.EXPECTED["aging"].items()}, "90+": 1})

    with ExitStack() as stack:
        web = _start_console(stack, store)
        assert httpx.get(web.url + "/healthz").json()["ok"] is True
        assert ht.text(httpx.get(web.url + "/aging").text, "aging-total") == "¥175,000"
