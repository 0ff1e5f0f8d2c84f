"""What ops see of a run: the run renamed to what it did, artifacts on the flow run itself (not a task),
amounts in yen, links to the records, a progress artifact that reaches 100 — and a summary when it fails."""

from __future__ import annotations

from uuid import UUID

from renkei.flows.order_to_invoice import order_to_invoice
from renkei.tasks.reporting import RunReport, add_progress_listener, display_rows, headline, remove_progress_listener
from tests.flows.builders import freee_partner, hs_company, hs_deal


def _artifacts(flow_run_id) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(str(flow_run_id))])))


def _run_name(flow_run_id) -> str:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(str(flow_run_id))).name


def _won_deal(world, name: str, price: int) -> str:
    freee_partner(world, "出力確認株式会社", registration="T4011001098993")
    company = hs_company(world, "出力確認株式会社", renkei_corporate_number="4011001098993")
    return hs_deal(world, name, company, [{"name": "導入支援", "quantity": 1, "price": price}])


def test_run_is_named_after_what_it_did_with_yen_links_and_progress_on_the_flow_run(world):
    deal = _won_deal(world, "出力確認 導入", 1_234_560)
    seen: list[tuple[str, int, int | None]] = []
    listener = lambda flow, done, total: seen.append((flow, done, total))  # noqa: E731
    add_progress_listener(listener)
    try:
        state = order_to_invoice(return_state=True)
    finally:
        remove_progress_listener(listener)
    assert state.is_completed()
    run_id = state.state_details.flow_run_id
    assert _run_name(run_id) == "order-to-invoice: 1 invoice"

    arts = {a.key: a for a in _artifacts(run_id)}
    assert {"order-to-invoice", "order-to-invoice-details", "order-to-invoice-progress"} <= set(arts)
    assert all(a.task_run_id is None for a in arts.values())  # the run's own, not a task's
    assert "order-to-invoice: 1 invoice" in arts["order-to-invoice"].description
    (row,) = arts["order-to-invoice-details"].data if isinstance(arts["order-to-invoice-details"].data, list) \
        else __import__("json").loads(arts["order-to-invoice-details"].data)
    assert row["total"] == "¥1,358,016"  # 1,234,560 + 10 %
    assert row["deal"] == f"[{deal}]({world.env['RENKEI_HUBSPOT_BASE_URL']}/crm/v3/objects/deals/{deal})"
    assert row["invoice_id"].startswith("[") and f"{world.env['RENKEI_FREEE_BASE_URL']}/iv/invoices/" in row["invoice_id"]
    assert float(arts["order-to-invoice-progress"].data) == 100.0
    assert seen and seen[-1][0] == "order-to-invoice" and seen[-1][1] == seen[-1][2]  # the bar ends full


def test_a_failed_run_publishes_what_it_did_before_the_failure(world, monkeypatch):
    deal = _won_deal(world, "出力確認 失敗", 50_000)
    monkeypatch.setenv("RENKEI_TEST_CRASH_AFTER_INVOICE", deal)
    state = order_to_invoice(lease_seconds=1, return_state=True)
    assert state.is_failed()
    run_id = state.state_details.flow_run_id
    assert _run_name(run_id).startswith("order-to-invoice: FAILED after ")
    summary = {a.key: a for a in _artifacts(run_id)}["order-to-invoice"]
    assert summary.task_run_id is None and "**Failed:**" in summary.description


def test_headline_phrasing_counts_only():
    r = RunReport("order-to-invoice")
    r.count("erp", "created", 18)
    r.count("renkei", "review", 3)  # two of them went to approval
    r.count("renkei", "sent_to_approval", 2)
    assert headline(r) == "order-to-invoice: 18 invoices, 2 to approval, 1 review"
    assert headline(RunReport("product-sync")) == "product-sync: nothing to do"
    approval = RunReport("invoice-approval")
    approval.count("erp", "created")
    assert headline(approval) == "invoice-approval: 1 erp created"


def test_display_rows_format_yen_and_leave_other_values():
    from renkei.tasks.reporting import LinkSettings

    s = LinkSettings(hubspot_portal_id="123", hubspot_base_url="https://api.hubapi.com",
                     freee_base_url="https://api.freee.co.jp")
    (row,) = display_rows([{"deal": "9", "total": 1234567, "net": -1200, "invoice": "INV-1", "invoice_id": "77"}], s)
    assert row == {"deal": "[9](https://app.hubspot.com/contacts/123/record/0-3/9)", "total": "¥1,234,567",
                   "net": "-¥1,200", "invoice": "INV-1",
                   "invoice_id": "[77](https://invoice.secure.freee.co.jp/reports/invoices/77)"}


def test_renkei_run_shows_progress_and_the_run_reaches_100(world):
    """`renkei run` in a subprocess: a progress line in its output, the run's progress artifact at 100."""
    import os
    import subprocess
    import sys

    _won_deal(world, "出力確認 CLI", 80_000)
    env = {**os.environ, **world.env, "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "renkei.cli", "run", "order-to-invoice"], capture_output=True,
                       text=True, env=env, timeout=300, cwd=world.tmp)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "progress: order-to-invoice 100%" in r.stdout, r.stdout[-3000:]

    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        (latest,) = client.read_latest_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["order-to-invoice-progress"])))
        run = client.read_flow_run(latest.flow_run_id)
    assert float(latest.data) == 100.0
    assert run.name == "order-to-invoice: 1 invoice"


def test_progress_counts_records_not_yen():
    from renkei.tasks.reporting import RunReport, records_done

    report = RunReport("payment-writeback")
    report.count("deposits", "auto_matched", 3)
    report.count("amount_yen", "applied", 2_649_750)
    assert records_done(report) == 3
