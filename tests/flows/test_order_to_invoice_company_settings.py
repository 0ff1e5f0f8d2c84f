"""order-to-invoice against each freee company configuration a customer can have: 採番 (manual / auto)
× 取引先コード (on / off), 端数処理 × 内税/外税, and the configuration Renkei cannot serve."""

from __future__ import annotations

import re

import pytest

from renkei.flows.order_to_invoice import order_to_invoice
from tests.flows.builders import freee_invoices, hs_company, hs_deal
from tests.flows.conftest import write_policy


def _configure(world, monkeypatch, *, numbering: str = "manual", codes: bool = True, fraction: int = 0,
               policy: str = ""):
    """Set the sandbox company's settings and the policy; return the fresh runtime."""
    from renkei.tasks.runtime import get_runtime

    store = world.freee.app.state.store
    world.freee.config.iv_auto_numbering = numbering == "auto"
    company = store.companies[world.freee.config.company_id]
    company.use_partner_code, company.tax_fraction = codes, fraction
    write_policy(world.tmp, f'[invoice_numbering]\nmode = "{numbering}"\n' + policy, monkeypatch)
    rt = get_runtime()
    for object_type in ("companies", "deals", "line_items"):
        rt.crm.client.properties.ensure(object_type)
    world.rt = rt
    return rt


def _company(world, name: str) -> str:
    return hs_company(world, name, renkei_billing_email="keiri@example.co.jp")


def _open_reviews(rt, code: str) -> list:
    return [r for r in rt.store.list_reviews("open") if r.reason_code == code]


@pytest.mark.parametrize("codes", [True, False], ids=["codes_on", "codes_off"])
@pytest.mark.parametrize("numbering", ["manual", "auto"])
def test_each_company_variant_invoices_each_deal_once(world, monkeypatch, numbering, codes):
    rt = _configure(world, monkeypatch, numbering=numbering, codes=codes)
    a, b = _company(world, "株式会社青葉工業"), _company(world, "合同会社みどり企画")
    deals = [hs_deal(world, "青葉 保守", a, [{"name": "保守", "quantity": 1, "price": 30000}]),
             hs_deal(world, "青葉 追加", a, [{"name": "追加作業", "quantity": 2, "price": 5000}]),
             hs_deal(world, "みどり 導入", b, [{"name": "導入支援", "quantity": 1, "price": 80000}])]

    summary = order_to_invoice(start_approvals=False)
    assert summary["erp"]["created"] == 5, summary  # 2 partners + 3 invoices

    invoices = freee_invoices(world)
    assert len(invoices) == 3  # exactly one invoice per deal
    partners = rt.erp.client.list_partners(limit=100)
    assert len(partners) == 2  # one partner per company, created once
    if codes:
        assert sorted(p["code"] for p in partners) == sorted([f"HS-{a}", f"HS-{b}"])
    else:
        assert all(p.get("code") in (None, "") for p in partners)
    numbers = sorted(i["invoice_number"] for i in invoices)
    if numbering == "manual":
        assert all(re.fullmatch(r"INV-\d{6}-\d{5}", n) for n in numbers), numbers
        assert [int(n[-5:]) for n in numbers] == [1, 2, 3]  # gapless
    for deal in deals:
        props = rt.crm.client.deals.get(deal, properties=["renkei_invoice_number"])["properties"]
        assert props["renkei_invoice_number"] in numbers

    order_to_invoice(start_approvals=False)  # rerun: nothing new
    assert len(freee_invoices(world)) == 3 and len(rt.erp.client.list_partners(limit=100)) == 2
    assert not _open_reviews(rt, "FREEE_NUMBERING_MISMATCH")


def test_manual_numbers_survive_a_crash_before_and_after_the_create_call(world, monkeypatch):
    import time

    from renkei.tasks.invoicing import SimulatedCrash

    rt = _configure(world, monkeypatch, numbering="manual")
    c = _company(world, "株式会社北斗商会")
    first = hs_deal(world, "北斗 1", c, [{"name": "作業A", "quantity": 1, "price": 10000}])

    # 1) the process dies after the number was reserved, before freee was called
    real = rt.erp.create_invoice
    def dies(invoice):
        raise SimulatedCrash("died before the create call")
    monkeypatch.setattr(rt.erp, "create_invoice", dies)
    assert order_to_invoice(lease_seconds=1, start_approvals=False, return_state=True).is_failed()
    entry = rt.store.ledger_entry(f"invoice:deal:{first}")
    reserved = entry.result["invoice_number"]
    assert entry.result["sent"]["number"] == reserved and reserved.endswith("-00001")
    monkeypatch.setattr(rt.erp, "create_invoice", real)
    time.sleep(1.5)
    order_to_invoice(lease_seconds=1, start_approvals=False)
    (inv,) = freee_invoices(world)
    assert inv["invoice_number"] == reserved  # the reserved number, reused

    # 2) the process dies after freee created the invoice, before the ledger commit
    second = hs_deal(world, "北斗 2", c, [{"name": "作業B", "quantity": 1, "price": 20000}])
    monkeypatch.setenv("RENKEI_TEST_CRASH_AFTER_INVOICE", second)
    assert order_to_invoice(lease_seconds=1, start_approvals=False, return_state=True).is_failed()
    monkeypatch.delenv("RENKEI_TEST_CRASH_AFTER_INVOICE")
    time.sleep(1.5)
    order_to_invoice(lease_seconds=1, start_approvals=False)
    third = hs_deal(world, "北斗 3", c, [{"name": "作業C", "quantity": 1, "price": 30000}])
    order_to_invoice(start_approvals=False)
    numbers = sorted(i["invoice_number"] for i in freee_invoices(world))
    assert [int(n[-5:]) for n in numbers] == [1, 2, 3]  # one invoice per deal, no gap, nothing doubled
    assert rt.store.ledger_entry(f"invoice:deal:{third}").status == "committed"


def test_a_number_taken_in_freee_is_skipped_never_doubled(world, monkeypatch):
    from renkei.domain.dates import today_tokyo

    rt = _configure(world, monkeypatch, numbering="manual")
    c = _company(world, "株式会社南風")
    deal = hs_deal(world, "南風 1", c, [{"name": "作業", "quantity": 1, "price": 10000}])
    order_to_invoice(start_approvals=False)  # creates the partner and invoice 00001
    partner_id = rt.store.erp_id_for("company", c)
    d = today_tokyo()
    taken = f"INV-{d.year:04d}{d.month:02d}-00002"
    rt.erp.client.create_invoice({"billing_date": d.isoformat(), "tax_entry_method": "out", "tax_fraction": "omit",
                                  "withholding_tax_entry_method": "out", "partner_title": "御中",
                                  "partner_id": int(partner_id), "invoice_number": taken,
                                  "lines": [{"description": "手入力", "quantity": 1, "unit_price": "100", "tax_rate": 10}]})
    second = hs_deal(world, "南風 2", c, [{"name": "作業2", "quantity": 1, "price": 20000}])
    order_to_invoice(start_approvals=False)
    (item,) = _open_reviews(rt, "INVOICE_NUMBER_TAKEN")
    assert item.entity_key == second
    order_to_invoice(start_approvals=False)  # the next run takes the next number
    ours = [i for i in freee_invoices(world) if i["invoice_number"] != taken]
    assert len(ours) == 2 and sorted(int(i["invoice_number"][-5:]) for i in ours) == [1, 3]
    assert not _open_reviews(rt, "INVOICE_NUMBER_TAKEN")
    assert deal


def test_numbering_the_company_does_not_use_is_one_review_item_not_a_failed_run(world, monkeypatch):
    rt = _configure(world, monkeypatch, numbering="manual")
    world.freee.config.iv_auto_numbering = True  # freee numbers automatically; the policy says manual
    c = _company(world, "株式会社東雲")
    for n in range(3):
        hs_deal(world, f"東雲 {n}", c, [{"name": "作業", "quantity": 1, "price": 1000 * (n + 1)}])
    state = order_to_invoice(start_approvals=False, return_state=True)
    assert state.is_completed()
    assert freee_invoices(world) == []
    (item,) = _open_reviews(rt, "FREEE_NUMBERING_MISMATCH")
    assert item.entity == "freee-company" and '[invoice_numbering] mode = "auto"' in item.message

    rt = _configure(world, monkeypatch, numbering="auto")  # the fix the item names
    order_to_invoice(start_approvals=False)
    assert len(freee_invoices(world)) == 3
    assert not _open_reviews(rt, "FREEE_NUMBERING_MISMATCH")


# 10%: 1,235 and 8% (reduced): 555 — tax per rate: 外税 123.5 / 44.4, 内税 112.27 / 41.11
EXPECTED_TAX = {("floor", "exclusive"): 167, ("ceil", "exclusive"): 169, ("half_up", "exclusive"): 168,
                ("floor", "inclusive"): 153, ("ceil", "inclusive"): 155, ("half_up", "inclusive"): 153}


@pytest.mark.parametrize("entry", ["exclusive", "inclusive"])
@pytest.mark.parametrize("rounding", ["floor", "ceil", "half_up"])
def test_totals_agree_with_freee_for_each_rounding_and_entry_method(world, monkeypatch, rounding, entry):
    fraction = {"floor": 0, "ceil": 1, "half_up": 2}[rounding]
    # the company's 端数処理 wins over [tax] rounding (which says something else on purpose)
    other = "ceil" if rounding == "floor" else "floor"
    rt = _configure(world, monkeypatch, fraction=fraction,
                    policy=f'[tax]\nrounding = "{other}"\nentry_method = "{entry}"\n')
    c = _company(world, "株式会社端数")
    hs_deal(world, "端数 1", c, [
        {"name": "サービス", "quantity": 1, "price": 1235, "renkei_tax_category": "standard_10"},
        {"name": "食品", "quantity": 1, "price": 555, "renkei_tax_category": "reduced_8"}])
    summary = order_to_invoice(start_approvals=False)
    assert summary["erp"]["created"] == 2, summary  # partner + invoice
    (inv,) = freee_invoices(world)
    full = rt.erp.client.get_invoice(inv["id"])
    tax = EXPECTED_TAX[(rounding, entry)]
    assert full["amount_tax"] == tax
    assert full["total_amount"] == (1235 + 555 + tax if entry == "exclusive" else 1235 + 555)
    assert not _open_reviews(rt, "ERP_TOTALS_MISMATCH")  # Renkei's per-rate totals are freee's
