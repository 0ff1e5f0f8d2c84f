"""HubSpot ⇄ canonical mapping (pure, no HTTP)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from renkei.connectors.hubspot import mapping as m
from renkei.connectors.hubspot.client import Watermark, modified_property, parse_hs_datetime_ms, to_wire
from renkei.connectors.hubspot.properties import RENKEI_PROPERTIES
from renkei.domain.model import CANONICAL_MODELS, Company, PaymentTerms, TaxCategory


def rec(id_, **props):
    return {"id": str(id_), "properties": {k: v for k, v in props.items()}, "archived": False,
            "updatedAt": "2026-04-01T00:00:00Z"}


def test_company_roundtrip():
    r = rec(11, name="株式会社 山田商事", domain="yamada.example", renkei_entity_kind="corporation",
            renkei_corporate_number="9234567890123", zip="1000001", state="東京都", city="千代田区", address="1-1",
            renkei_payment_terms="0/1/0", renkei_credit_hold="true", hs_lastmodifieddate="1775000000000",
            renkei_partner_code="C-001")
    res = m.company_from_hubspot(r)
    assert res.ok, res.error
    c = res.value
    assert c.crm_id == "11" and c.address.postal_code == "100-0001" and c.credit_hold is True
    assert c.payment_terms == PaymentTerms(closing_day=0, pay_month_offset=1, pay_day=0)
    assert c.updated_at == datetime.fromtimestamp(1775000000, tz=timezone.utc)
    props = m.company_to_hubspot(c)
    assert props["name"] == "株式会社 山田商事" and props["renkei_credit_hold"] == "true"
    assert props["renkei_payment_terms"] == "0/1/0" and props["zip"] == "100-0001"
    assert props["renkei_entity_kind"] == "corporation"  # enum value, not "EntityKind.CORPORATION"
    assert all(isinstance(v, str) for v in props.values())
    assert m.company_to_hubspot(c, only=["renkei_partner_code"]) == {"renkei_partner_code": "C-001"}
    cleared = m.company_to_hubspot(Company(name="x"), clear_missing=True)
    assert cleared["domain"] == "" and cleared["name"] == "x"


def test_invalid_company_is_a_result_not_an_exception():
    res = m.company_from_hubspot(rec(12, name="", renkei_invoice_registration_number="T123"))
    assert not res.ok and res.value is None and res.source_id == "12"
    assert "name" in res.error
    res2 = m.company_from_hubspot(rec(13, name="ok", renkei_entity_kind="alien"))
    assert not res2.ok and res2.error
    res3 = m.company_from_hubspot(rec(14, name="ok\x07bell"))
    assert not res3.ok and "control character" in res3.error


def test_product_and_line_item_money_from_strings():
    p = m.product_from_hubspot(rec(5, name="保守", hs_sku="SKU-1", price="6000.00", renkei_tax_category="reduced_8"))
    assert p.ok and p.value.unit_price == 6000 and isinstance(p.value.unit_price, int)
    assert p.value.tax_category is TaxCategory.REDUCED_8
    assert m.product_to_hubspot(p.value)["price"] == "6000"
    assert m.product_to_hubspot(p.value)["renkei_tax_category"] == "reduced_8"
    bad = m.product_from_hubspot(rec(6, name="x", hs_sku="S", price="10.50"))
    assert not bad.ok and "whole" in bad.error
    li = m.line_item_from_hubspot(rec(7, name="保守", quantity="1.5", price="1000", discount="100",
                                      hs_discount_percentage="10", hs_recurring_billing_start_date="2026-04-01",
                                      hs_term_in_months="12", renkei_tax_category="standard_10"))
    assert li.ok, li.error
    v = li.value
    assert v.quantity == Decimal("1.5") and v.unit_price == 1000 and v.discount == 100
    assert v.discount_percent == Decimal("10") and v.recurring_start == date(2026, 4, 1) and v.term_months == 12
    wire = m.line_item_to_hubspot(v)
    assert wire["quantity"] == "1.5" and wire["price"] == "1000" and wire["hs_recurring_billing_start_date"] == "2026-04-01"
    assert not m.line_item_from_hubspot(rec(8, name="x", quantity="0", price="1")).ok
    assert not m.line_item_from_hubspot(rec(9, name="x", quantity="1", price="-5")).ok


def test_deal_with_lines_and_tokyo_close_date():
    # 2026-03-31T16:00Z is 2026-04-01 in Tokyo
    d = rec(21, dealname="案件", amount="120000", dealstage="closedwon", pipeline="default",
            closedate="2026-03-31T16:00:00Z", hs_lastmodifieddate="1775000000000")
    d["companies"] = ["31"]
    d["line_items"] = [rec(41, name="A", quantity="2", price="60000")]
    res = m.deal_from_hubspot(d)
    assert res.ok, res.error
    deal = res.value
    assert deal.close_date == date(2026, 4, 1) and deal.amount == 120000 and deal.company_crm_id == "31"
    assert len(deal.line_items) == 1 and deal.line_items[0].unit_price == 60000
    wire = m.deal_to_hubspot(deal)
    assert wire["closedate"] == str(int(datetime(2026, 4, 1, tzinfo=m.TOKYO).timestamp() * 1000))
    # inline associations shape
    d2 = rec(22, dealname="x", dealstage="s")
    d2["associations"] = {"companies": {"results": [{"id": "9", "type": "deal_to_company"},
                                                    {"id": "8", "type": "deal_to_company_primary"}]}}
    assert m.deal_from_hubspot(d2).value.company_crm_id == "8"
    # a bad line makes the deal a review item, naming the line
    d3 = rec(23, dealname="x", dealstage="s")
    d3["line_items"] = [rec(42, name="B", quantity="1", price="1.5")]
    r3 = m.deal_from_hubspot(d3)
    assert not r3.ok and "line_item 42" in r3.error


def test_wire_helpers():
    assert to_wire({"a": 1, "b": True, "c": None, "d": Decimal("2.50")}) == {"a": "1", "b": "true", "c": "", "d": "2.50"}
    with pytest.raises(TypeError):
        to_wire({"x": 1.5})
    assert m.as_bool("") is False and m.as_bool("TRUE") is True
    assert parse_hs_datetime_ms("2026-04-01T00:00:00.123Z") == 1775001600123
    assert parse_hs_datetime_ms("1775001600123") == 1775001600123
    assert modified_property("contacts") == "lastmodifieddate" and modified_property("deals") == "hs_lastmodifieddate"
    w = Watermark(1775001600123, 42)
    assert Watermark.decode(w.encode()) == w and Watermark.decode("17") == Watermark(17)
    assert Watermark.decode(None) is None


def test_every_renkei_property_of_the_model_is_defined():
    """Each ``renkei_*`` name the canonical model mentions for HubSpot has a property definition."""
    import re

    defined = {s.name for specs in RENKEI_PROPERTIES.values() for s in specs}
    mentioned = set()
    for model in CANONICAL_MODELS:
        for f in model.model_fields.values():
            extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
            mentioned.update(re.findall(r"renkei_[a-z_]+", str(extra.get("hubspot", ""))))
    assert mentioned <= defined, mentioned - defined
    # the request property lists include every property the mappers read
    assert "renkei_partner_code" in m.COMPANY_PROPERTIES and "hs_sku" in m.LINE_ITEM_PROPERTIES
