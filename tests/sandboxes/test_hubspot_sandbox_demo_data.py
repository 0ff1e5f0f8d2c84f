"""Invariants of the shared demo dataset (``sandboxes.demo_data``) both sandboxes load."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from renkei.domain.identifiers import check_registration_number, corporate_number_is_valid
from renkei.domain.normalise import normalise_company_name, normalise_kana
from renkei.sandboxes import demo_data as demo


def test_deterministic_across_processes() -> None:
    expr = "(d.COMPANIES, d.CONTACTS, d.PRODUCTS, d.DEALS, d.FREEE_PARTNERS, d.FREEE_ITEMS, d.BANK_DEPOSITS)"
    code = f"from sandboxes import demo_data as d; print(repr({expr}))"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                         env={**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(root)}).stdout.strip()
    assert out == repr(eval(expr, {"d": demo}))


def test_companies_are_realistic_and_valid() -> None:
    assert len(demo.COMPANIES) == 40 and len({c.key for c in demo.COMPANIES}) == 40
    forms = {c.legal_form for c in demo.COMPANIES}
    assert {"株式会社", "有限会社", "合同会社", None} <= forms
    assert sum(c.sole_trader for c in demo.COMPANIES) == 2
    for c in demo.COMPANIES:
        assert re.fullmatch(r"\d{3}-\d{4}", c.postal_code), c
        assert c.prefecture in demo.PREFECTURES and c.city and c.street
        assert re.fullmatch(r"[ァ-ヶー]+", c.kana), c.kana  # full-width katakana
        assert re.fullmatch(r"0\d{1,4}-\d{1,4}-\d{4}", c.phone), c.phone
        if c.sole_trader:
            assert c.corporate_number is None
        else:
            assert corporate_number_is_valid(c.corporate_number)
            if c.registration_number:
                assert c.registration_number == "T" + c.corporate_number
        if c.registration_number:
            assert check_registration_number(c.registration_number, sole_trader=c.sole_trader).check_digit_ok
    registered = sum(1 for c in demo.COMPANIES if c.registration_number)
    assert 30 <= registered < 40  # most, not all, are 適格請求書発行事業者
    assert len({c.corporate_number for c in demo.COMPANIES if c.corporate_number}) == 38


def test_contacts_products_and_deals() -> None:
    assert len(demo.CONTACTS) == 80 and len({k.email for k in demo.CONTACTS}) == 80
    assert all(sum(1 for k in demo.CONTACTS if k.company == c.key) == 2 for c in demo.COMPANIES)
    assert 15 <= len(demo.PRODUCTS) <= 16
    assert {p.tax_category for p in demo.PRODUCTS} == {"standard_10", "reduced_8"}
    assert all(isinstance(p.unit_price, int) and p.unit_price > 0 for p in demo.PRODUCTS)
    stages = {(s.id, p.id) for p in demo.DEAL_PIPELINES for s in p.stages}
    default_stages = {s.id for s in demo.DEAL_PIPELINES[0].stages}
    assert {d.stage for d in demo.DEALS if d.pipeline == "default"} == default_stages  # every stage used
    for d in demo.DEALS:
        assert (d.stage, d.pipeline) in stages
        assert 1 <= len(d.line_items) <= 4
        assert isinstance(d.amount, int) and d.amount >= 0
    lines = [li for d in demo.DEALS for li in d.line_items]
    assert any(li.discount for li in lines) and any(li.discount_percentage for li in lines)
    assert any(li.tax_category == "reduced_8" for li in lines)
    assert {li.recurring for li in lines} >= {"monthly", "annually"}
    amendments = [li for li in lines if li.effective_date]
    assert len(amendments) >= 2 and all(li.recurring for li in amendments)
    custom = demo.DEAL_PIPELINES[1]
    assert all(s.id.isdigit() for s in custom.stages)
    assert [s.id for s in custom.stages if s.probability == "1.0"] == [demo.SUBSCRIPTION_WON_STAGE]


def test_invoice_total_rounds_once_per_rate() -> None:
    d = demo.deal("D03")  # 12 × 10,800 (8%) + 6 × 2,160 (8%) + 1,500 (10%)
    net8 = 12 * 10_800 + 6 * 2_160
    assert demo.invoice_total(d.line_items) == net8 + net8 * 8 // 100 + 1_500 + 150


def test_freee_side_partners_items_and_deposits() -> None:
    linked = [p for p in demo.FREEE_PARTNERS if p.company]
    only_freee = [p for p in demo.FREEE_PARTNERS if not p.company]
    only_hubspot = {c.key for c in demo.COMPANIES} - {p.company for p in linked}
    assert len(only_freee) == 2 and len(only_hubspot) >= 4
    assert len({p.code for p in demo.FREEE_PARTNERS}) == len(demo.FREEE_PARTNERS)
    differently_named = [p for p in linked if p.name != demo.company(p.company).name]
    assert len(differently_named) >= 6
    for p in differently_named:  # still the same company once names are normalised
        assert normalise_company_name(p.name) == normalise_company_name(demo.company(p.company).name), p.name
    assert any("㈱" in p.name for p in linked) and any("(株)" in p.name for p in linked)
    assert any(re.search(r"[ｦ-ﾟ]", p.name) for p in linked)  # half-width katakana
    assert all(p.payment_terms.label and p.email for p in linked)
    assert {i.code for i in demo.FREEE_ITEMS} < {p.code for p in demo.PRODUCTS}

    deposits = {b.key: b for b in demo.BANK_DEPOSITS}
    for b in demo.BANK_DEPOSITS:
        assert isinstance(b.amount, int) and b.amount > 0
        assert re.fullmatch(r"[ｦ-ﾟ()\- ]+", b.payer_name), b.payer_name
        if b.deals:
            expected = sum(demo.invoice_total(demo.deal(k).line_items) for k in b.deals) - b.fee
            assert b.amount == expected
            assert all(demo.deal(k).won for k in b.deals)
            company = demo.company(demo.deal(b.deals[0]).company)
            assert normalise_kana(b.payer_name) == normalise_kana(company.bank_payer_name)
    assert {b.fee for b in demo.BANK_DEPOSITS} >= {0, 110, 440, 660, 880}
    assert any(len(b.deals) == 2 for b in demo.BANK_DEPOSITS)
    assert [b.key for b in demo.BANK_DEPOSITS if not b.deals] == ["B10"]
    assert deposits["B01"].payer_name == "ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"
    assert deposits["B04"].payer_name == "ﾐﾗｲﾃﾂｸ(ｶ"
