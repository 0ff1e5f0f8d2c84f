"""The reporting reads never fail on one record: a deal, invoice or cost record that cannot be read (an amount that
is no number or not whole yen, a date that does not exist, no partner, a NUL in its text) is left out of the facts
and is one open review item ``REPORT_RECORD_UNREADABLE``; when it reads again, the item is closed.

One test per system family (HubSpot + Money Forward, Salesforce + freee) on the demo sandboxes; the hostile values
are what each sandbox serves over its API (its stored record, or its rendering of it, made hostile)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from renkei.domain.model import Invoice, InvoiceLine, TaxCategory
from renkei.domain.reporting import REPORT_RECORD_UNREADABLE
from renkei.tasks.reporting import RunReport
from renkei.tasks.reporting_steps import FLOW, build_and_save, read_costs, read_customers, read_deals, read_invoices
from tests.sandbox_env import ServedSandbox, pairing_env

DAY = date(2026, 11, 30)
FAMILIES = [pytest.param(("hubspot", "moneyforward"), id="hubspot-moneyforward"),
            pytest.param(("salesforce", "freee"), id="salesforce-freee")]


@pytest.fixture(params=FAMILIES)
def family(request, prefect_api, tmp_path, monkeypatch):
    from renkei.connectors import registry
    from renkei.tasks.runtime import get_runtime, reset_runtime

    crm_name, erp_name = request.param
    with ServedSandbox(registry.entry("crm", crm_name), "demo") as crm, \
            ServedSandbox(registry.entry("erp", erp_name), "demo") as erp:
        for k, v in pairing_env(crm, erp, tmp_path).items():
            monkeypatch.setenv(k, v)
        reset_runtime()
        try:
            yield get_runtime(), crm, erp
        finally:
            reset_runtime()


def _invoices(rt, n: int) -> list[str]:
    settings = rt.erp.read_invoice_settings(as_of=DAY, numbering="manual")
    rt.erp.configure_invoices(settings, tax_rounding=settings.tax_rounding)
    partner = next(str(r.value.erp_id) for page in rt.erp.iter_partners() for r in page if r.ok and r.value.erp_id)
    made = []
    for i in range(n):
        line = InvoiceLine(description="保守", quantity=Decimal(1), unit_price=10_000 + i, amount=10_000 + i,
                           tax_category=TaxCategory.STANDARD_10)
        made.append(str(rt.erp.create_invoice(Invoice(
            reference=f"renkei:deal:unreadable-{i}", number=f"UNR-{i:04d}", partner_erp_id=partner,
            recipient_name="株式会社テスト", issue_date=DAY, transaction_date=DAY, due_date=DAY + timedelta(days=31),
            lines=[line])).erp_id))
    return made


def _open(rt) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in rt.store.list_reviews("open", flow=FLOW):
        assert r.reason_code == REPORT_RECORD_UNREADABLE
        out.setdefault(r.entity, set()).add(r.entity_key)
    return out


def _read(rt):
    report = RunReport(FLOW, "unreadable-test")
    facts = read_deals(rt, report), read_invoices(rt, report), read_costs(rt, report)
    build_and_save(rt.store, deals=facts[0], invoices=facts[1], costs=facts[2], customers=read_customers(rt, report),
                   as_of=DAY)  # the snapshot builds and stores from what was read
    return [{f.crm_id if hasattr(f, "crm_id") else f.erp_id for f in fs} for fs in facts], report


def test_an_unreadable_record_is_left_out_and_one_review_item_until_it_reads_again(family, monkeypatch):
    rt, crm, erp = family
    inv_ok, inv_amount, inv_date, inv_partner = _invoices(rt, 4)
    cs, es = crm.app.state.store, erp.app.state.store
    restore = []  # (record, field, value) to put back

    def poke(rec: dict, field: str, value) -> None:
        restore.append((rec, field, rec.get(field)))
        rec[field] = value

    # CRM: an amount that is no number, a NUL in the name
    if crm.entry.name == "hubspot":
        deals = list(cs.records["deals"].values())
        bad_amount, bad_text = deals[0], deals[1]
        poke(bad_amount.props, "amount", "１２３万円")
        poke(bad_text.props, "dealname", "案件\x00名")
        deal_keys = {str(bad_amount.id), str(bad_text.id)}
    else:
        opps = list(cs.rows("Opportunity"))
        poke(opps[0], "Amount", "１２３万円")
        poke(opps[1], "Name", "案件\x00名")
        poke(opps[2], "CloseDate", "2026-02-30")  # a day that does not exist
        deal_keys = {opps[0]["Id"], opps[1]["Id"], opps[2]["Id"]}
    # ERP: served hostile (an amount with a fraction of a yen, a day that does not exist, no partner)
    hostile_inv = {inv_amount: "amount", inv_date: "date", inv_partner: "partner"}
    if erp.entry.name == "freee":
        render_inv, render_deal = es.invoice_to_api, es.deal_to_api
        expense = next(d for d in es.deals.values() if d.type == "expense" and d.partner_id)

        def invoice_to_api(invoice, **kw):
            body = render_inv(invoice, **kw)
            what = hostile_inv.get(str(invoice.id))
            if what == "amount":
                body["total_amount"] = 11_000.5
            elif what == "date":
                body["billing_date"] = "2026-02-30"
            elif what == "partner":
                body["partner_id"] = None
            return body

        def deal_to_api(deal):
            body = render_deal(deal)
            if deal.id == expense.id:
                body["details"][0]["amount"] = "abc"
            return body

        monkeypatch.setattr(es, "invoice_to_api", invoice_to_api)
        monkeypatch.setattr(es, "deal_to_api", deal_to_api)
        cost_keys = {str(expense.id)}
    else:
        render = es.render

        def render_billing(b):
            body = render(b)
            what = hostile_inv.get(str(b["id"]))
            if what == "amount":
                body["total_price"] = "11000.5"
            elif what == "date":
                body["billing_date"] = "2026-02-30"
            elif what == "partner":
                body["partner_id"] = None
            return body

        monkeypatch.setattr(es, "render", render_billing)
        cost_keys = set()

    (deals, invoices, costs), report = _read(rt)
    assert not deals & deal_keys and deals, "the unreadable deals are left out, the others read"
    assert inv_ok in invoices and not invoices & set(hostile_inv)
    assert not costs & cost_keys
    want = {"deal": deal_keys, "invoice": set(hostile_inv), **({"cost_record": cost_keys} if cost_keys else {})}
    assert _open(rt) == want
    items = rt.store.list_reviews("open", flow=FLOW)
    assert len(items) == sum(map(len, want.values()))  # one item per record
    assert all("\x00" not in i.message and "cannot be read" in i.message for i in items)
    assert report.summary()["crm"]["deals_unreadable"] == len(deal_keys)

    _read(rt)  # read again, still unreadable: the same items, no second one
    assert _open(rt) == want and len(rt.store.list_reviews("open", flow=FLOW)) == len(items)

    # fixed at the source: everything reads, every item closes
    for rec, field, value in restore:
        rec[field] = value
    monkeypatch.undo()
    (deals, invoices, costs), _ = _read(rt)
    assert deal_keys <= deals and set(hostile_inv) <= invoices and cost_keys <= costs
    assert _open(rt) == {}
    closed = [r for r in rt.store.list_reviews("resolved", flow=FLOW)]
    assert len(closed) == len(items) and {r.comment for r in closed} == {"the record reads again"}
