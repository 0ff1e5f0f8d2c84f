"""The chaos harness's own judgement, on hand-made snapshots: a difference, a duplicate, a lost deal and a
personal value are each found; masked forms and e-mail domains are not personal data."""

from __future__ import annotations

import json
import sqlite3

from benchmarks._chaos import _norm, compare, duplicates, lost
from benchmarks._chaos_pii import Needle, scan_sqlite, scan_texts, seeded_personal_values


def _snap(invoices=(), reviews=(), approvals=(), deals=()):
    return {"freee.invoices": [json.dumps(i, sort_keys=True) for i in invoices],
            "_facts": {"invoices": list(invoices), "partners": [], "deals": [], "journals": [],
                       "open_reviews": list(reviews), "approvals": list(approvals),
                       "hubspot_deals": list(deals), "won_stages": {"closedwon"}}}


def test_ids_and_generated_numbers_are_not_differences_but_amounts_are():
    maps = {"partner_id": {"7": "TK0001"}}
    a = _norm({"id": 1, "partner_id": 7, "invoice_number": "INV-0000003", "total_amount": 1100,
               "description": "請求書 INV-0000003", "report_url": "https://x/reports/invoices/900003"}, maps)
    b = _norm({"id": 9, "partner_id": 7, "invoice_number": "INV-0000011", "total_amount": 1100,
               "description": "請求書 INV-0000011", "report_url": "https://x/reports/invoices/900011"}, maps)
    assert a == b == {"partner_id": "TK0001", "total_amount": 1100, "description": "請求書 INV-#"}
    _, diffs = compare({"freee.invoices": [json.dumps(a)]}, {"freee.invoices": [json.dumps({**b, "total_amount": 1000})]})
    assert len(diffs) == 2  # one row only in A, one only in B


def test_two_invoices_for_one_reference_are_a_duplicate():
    inv = {"memo": "renkei:deal:42\n山田商事", "total_amount": 1100}
    assert duplicates("B", _snap(invoices=[inv, dict(inv)])) == ["[B] 2 freee invoices for reference renkei:deal:42"]
    assert duplicates("B", _snap(invoices=[inv])) == []


def test_a_won_deal_with_no_invoice_review_or_approval_is_lost():
    deals = [{"id": "1", "properties": {"dealstage": "closedwon", "dealname": "請求済"}},
             {"id": "2", "properties": {"dealstage": "closedwon", "dealname": "レビュー中"}},
             {"id": "3", "properties": {"dealstage": "closedwon", "dealname": "承認待ち"}},
             {"id": "4", "properties": {"dealstage": "closedwon", "dealname": "消えた"}},
             {"id": "5", "properties": {"dealstage": "contractsent", "dealname": "未受注"}}]
    snap = _snap(invoices=[{"memo": "renkei:deal:1"}], reviews=[{"entity_key": "2"}],
                 approvals=[{"flow": "invoice-approval", "parameters": {"deal_id": "3"}}], deals=deals)
    (only,) = lost("B", snap)
    assert "deal 4" in only


def test_personal_values_are_found_raw_escaped_or_digits_only_but_not_masked(tmp_path):
    needles = seeded_personal_values([Needle("ﾆｼﾑﾗ ｹﾝｲﾁ", "name")])
    db = tmp_path / "s.db"
    con = sqlite3.connect(db)
    con.execute("create table t (a text)")
    rows = [json.dumps({"contact": "西村 健一"}),  # stored with \\u escapes
            "payer ﾆｼﾑﾗ ｹﾝｲﾁ", "tel 0333143939", "keiri@nishimura-design.jp",
            "masked 西*** k***@nishimura-design.jp nishimura-design.jp ﾆ***", "id 10333143939"]
    con.executemany("insert into t values (?)", [(r,) for r in rows])
    con.commit()
    con.close()
    hits = "\n".join(scan_sqlite("store", db, needles))
    assert "raw name" in hits and "raw phone" in hits and "raw email" in hits
    assert scan_texts("x", [("json", rows[0])], needles), "a name inside JSON with \\u escapes must be found"
    assert scan_texts("x", [("masked", rows[4]), ("longer number", rows[5])], needles) == []


def test_a_failed_run_is_reported_with_the_last_line_of_its_log(tmp_path):
    from benchmarks._chaos import last_line

    log = tmp_path / "04-payment-writeback.1.log"
    log.write_text("Traceback (most recent call last):\n  File \"x\", line 1\n"
                   "ModuleNotFoundError: No module named 'renkei.webhooks'\n\n  \n", encoding="utf-8")
    assert last_line(log) == "ModuleNotFoundError: No module named 'renkei.webhooks'"
    assert last_line(log, limit=19) == "ModuleNotFoundError"
    assert last_line(tmp_path / "never-written.log") == ""
