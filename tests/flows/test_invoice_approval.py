"""Finance approval: exception deals wait as suspended runs of the served ``invoice-approval`` deployment;
approve and reject go through the same resume API the Prefect UI uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from prefect import resume_flow_run

from renkei.flows.order_to_invoice import order_to_invoice
from tests.flows.approvals import wait_final, wait_paused
from tests.flows.builders import freee_invoices, freee_partner, hs_company, hs_deal


def test_approve_and_reject_through_the_resume_api(world, runner):
    freee_partner(world, "株式会社高橋食品", registration="T1180301018771")
    company = hs_company(world, "株式会社高橋食品", renkei_corporate_number="1180301018771")
    big = hs_deal(world, "高橋食品 年間契約", company, [
        {"name": "年間保守", "quantity": 1, "price": 6_000_000, "renkei_tax_category": "standard_10"}])
    disc = hs_deal(world, "高橋食品 特別値引", company, [
        {"name": "食品セット", "quantity": 10, "price": 5000, "hs_discount_percentage": 50,
         "renkei_tax_category": "reduced_8"}], amount=25_000)

    order_to_invoice()
    runs = wait_paused(2)
    by_deal = {r.parameters["deal_id"]: r for r in runs}
    assert set(by_deal) == {big, disc}
    assert "高橋食品" in by_deal[big].name and "¥6,600,000" in by_deal[big].name  # finance recognises it
    assert freee_invoices(world) == []  # nothing invoiced while waiting

    # the CLI lists them (same API the UI reads)
    out = subprocess.run([sys.executable, "-m", "renkei.cli", "approvals", "list", "--json"], capture_output=True,
                         text=True, env=os.environ.copy(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert {r["run_id"] for r in json.loads(out.stdout)} >= {str(r.id) for r in runs}

    # a rerun of order-to-invoice does not start a second approval for the same deals
    order_to_invoice()
    assert len(wait_paused(2)) == 2

    resume_flow_run(by_deal[big].id, run_input={"approved": True, "approver": "keiri@example.co.jp",
                                                 "comment": "年間契約のため承認"})
    # the CLI submits the same input for the rejection; first without a comment (refused locally)
    bad = subprocess.run([sys.executable, "-m", "renkei.cli", "approvals", "decide", str(by_deal[disc].id),
                          "--reject", "--approver", "keiri@example.co.jp"], capture_output=True, text=True,
                         env=os.environ.copy(), timeout=120)
    assert bad.returncode == 2 and "comment" in bad.stderr
    ok = subprocess.run([sys.executable, "-m", "renkei.cli", "approvals", "decide", str(by_deal[disc].id),
                         "--reject", "--approver", "keiri@example.co.jp", "--comment", "値引率が社内規定を超えています"],
                        capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert ok.returncode == 0, ok.stderr

    approved = wait_final(by_deal[big].id)
    rejected = wait_final(by_deal[disc].id)
    assert approved.state.is_completed() and rejected.state.is_completed()

    (inv,) = freee_invoices(world)
    assert inv["total_amount"] == 6_600_000
    hs = world.hs().deals
    p_big = hs.get(big, properties=["renkei_invoice_status", "renkei_invoice_id", "renkei_invoice_comment"])["properties"]
    p_disc = hs.get(disc, properties=["renkei_invoice_status", "renkei_invoice_comment"])["properties"]
    assert p_big["renkei_invoice_status"] == "created" and p_big["renkei_invoice_id"] == str(inv["id"])
    assert p_disc["renkei_invoice_status"] == "rejected" and "値引率" in p_disc["renkei_invoice_comment"]

    events = {(e.entity_key, e.action): e for e in world.rt.store.audit_events("deal")}
    assert events[(big, "approve")].actor == "keiri@example.co.jp"
    assert events[(disc, "reject")].changes["comment"] == "値引率が社内規定を超えています"
    assert world.rt.store.ledger_entry(f"invoice:deal:{big}").result["approved_by"] == "keiri@example.co.jp"
    open_items = [r for r in world.rt.store.list_reviews("open") if r.entity == "deal"]
    assert open_items == []

    # our own write-backs bring both deals back into the next run: the rejected draft is not asked again
    order_to_invoice()
    assert [r for r in world.rt.store.list_reviews("open") if r.entity == "deal"] == []
    assert hs.get(disc, properties=["renkei_invoice_status"])["properties"]["renkei_invoice_status"] == "rejected"
    assert len(freee_invoices(world)) == 1


def test_a_reject_without_comment_is_refused_before_the_run_resumes(world, runner):
    freee_partner(world, "株式会社伊藤商会", registration="T7120001168421")
    company = hs_company(world, "株式会社伊藤商会", renkei_corporate_number="7120001168421")
    hs_deal(world, "伊藤商会 大口", company, [{"name": "機器", "quantity": 1, "price": 7_000_000}])
    order_to_invoice()
    (run,) = wait_paused(1)
    # the form's schema says a rejection needs a comment: the server refuses it and the run stays paused
    # (the UI marks the field; nothing is resumed and asked again later)
    with pytest.raises(RuntimeError, match="comment"):
        resume_flow_run(run.id, run_input={"approved": False, "approver": "keiri@example.co.jp", "comment": ""})
    (still,) = wait_paused(1)
    assert still.id == run.id and still.state.id == run.state.id
    resume_flow_run(run.id, run_input={"approved": False, "approver": "keiri@example.co.jp", "comment": "与信確認中"})
    assert wait_final(run.id).state.is_completed()
    assert freee_invoices(world) == []
