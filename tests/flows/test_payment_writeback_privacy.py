"""An individual payer's name is masked wherever a person or a log sees it (issue #11, class 9): Prefect
flow-run names, review items, log records (caplog, Prefect's log table, the runner's log), artifacts, the
audit log and the state store. Only the approval form shows it to finance, who must decide."""

from __future__ import annotations

import json
import logging

from prefect import get_client, resume_flow_run
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler

from renkei.flows.order_to_invoice import order_to_invoice
from renkei.flows.payment_writeback import payment_writeback
from renkei.store.aliases import AliasStore
from tests.flows.approvals import wait_final, wait_paused
from tests.flows.builders import hs_deal
from tests.flows.test_payment_writeback import customer, deposit, freee_deal

# the person and the spellings of the name that may leak (as printed, folded, normalised to katakana)
NAME_FORMS = ("ﾆｼﾑﾗ ｹﾝｲﾁ", "ﾆｼﾑﾗｹﾝｲﾁ", "ﾆｼﾑﾗ", "ｹﾝｲﾁ", "ニシムラ", "ケンイチ")


def leaks(text: str) -> list[str]:
    return [n for n in NAME_FORMS if n in text]


RUNNER_WAITS_FOR = "payment-approval/payment-approval"  # see the runner fixture (conftest)


def test_an_individual_payer_is_masked_everywhere_but_the_approval_form(world, runner, tmp_path, caplog):
    for name in (None, "prefect", "prefect.flow_runs", "prefect.task_runs"):  # every record, to the API too
        caplog.set_level(logging.DEBUG, logger=name)
    yamada = customer(world, "株式会社山田商事", "ヤマダショウジ", "7010705000725")
    tanaka = customer(world, "田中物産株式会社", "タナカブッサン", "4011001098993")
    hs_deal(world, "山田商事 保守", yamada, [{"name": "保守", "quantity": 1, "price": 50_000}])
    hs_deal(world, "田中物産 保守", tanaka, [{"name": "保守", "quantity": 1, "price": 50_000}])
    order_to_invoice()
    (inv_y,) = [i for i in world.fr().list_invoices(limit=100) if i["partner_display_name"].startswith("株式会社山田")]

    # a private person pays ¥55,000 — two customers have an invoice of that amount: finance decides
    person = deposit(world, 55_000, "ﾆｼﾑﾗ\tｹﾝｲﾁ")  # a tab in the raw bank description, too
    broken = deposit(world, 1_000, "ﾆｼﾑﾗ ｹﾝｲﾁ\n")
    world.freee.app.state.store.wallet_txns[int(broken)].date = ""  # cannot become a deposit at all
    company = deposit(world, 7_777, "ﾐﾂﾊｼｻﾝｷﾞﾖｳ(ｶ")  # a company payer stays readable

    summary = payment_writeback()
    assert summary["deposits"]["sent_to_approval"] == 1
    (run,) = wait_paused(1)
    assert run.parameters["deposit_id"] == person and "ﾆ***" in run.name and not leaks(run.name)

    # finance sees the full name on the form (it must know who paid) and decides; the payer becomes a
    # learned alias
    resume_flow_run(run.id, run_input={"choice": inv_y["invoice_number"], "unrelated": False,
                                       "approver": "keiri@example.co.jp", "comment": "西村様 (個人) の立替"})
    assert wait_final(run.id).state.is_completed()
    assert freee_deal(world, inv_y)["status"] == "settled"

    # flow-run names
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200)
        run_ids = [r.id for r in runs]
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=run_ids)), limit=200)
        artifacts = client.read_artifacts(limit=200)
    assert [r.name for r in runs if leaks(r.name)] == []
    assert any("ﾐﾂﾊｼ" in (r.message or "") + json.dumps(r.payload, ensure_ascii=False)
               for r in world.rt.store.list_reviews(None))  # the company's name is still readable
    # review items (open and closed)
    for item in world.rt.store.list_reviews(None):
        assert leaks(item.message + json.dumps(item.payload, ensure_ascii=False) + (item.comment or "")) == [], item
    assert {r.entity_key for r in world.rt.store.list_reviews("open")} >= {broken, company}
    # log records: this process, Prefect's log table, the runner's log file
    assert [r.getMessage() for r in caplog.records if leaks(r.getMessage())] == []
    assert [lg.message for lg in logs if leaks(lg.message)] == []
    runner_log = (tmp_path / "runner.log").read_text(encoding="utf-8", errors="replace")
    assert leaks(runner_log) == []
    # artifacts, audit log, state store (plan, learned alias)
    for a in artifacts:
        assert leaks(json.dumps(a.data, ensure_ascii=False, default=str) + (a.description or "")) == [], a.key
    for e in world.rt.store.audit_events():
        assert leaks(json.dumps(e.changes, ensure_ascii=False, default=str)) == [], e.action
    (alias,) = AliasStore(world.rt.store).rows()
    assert alias.payer_name == "ﾆ***" and alias.partner_id == str(inv_y["partner_id"])
    plan = world.rt.store.get_snapshot("payment-plan", person)
    assert leaks(json.dumps(plan.fields, ensure_ascii=False)) == []
