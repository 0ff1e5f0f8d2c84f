"""Build realistic records in the sandboxes through their real APIs (the connectors' clients)."""

from __future__ import annotations

from typing import Any, Sequence

from renkei.domain.model import Address, Company, PaymentTerms

HUBSPOT_DEFINED = "HUBSPOT_DEFINED"
_codes = 0


def hs_company(world, name: str, **props: Any) -> str:
    rec = world.hs().companies.create({"name": name, **props})
    return str(rec["id"])


def hs_deal(world, name: str, company_id: str | None, lines: Sequence[dict], *, stage: str = "closedwon",
            amount: int | None = None, pipeline: str = "default", **props: Any) -> str:
    """A deal with line items (``{"name", "quantity", "price", ...}``) associated the way HubSpot does."""
    if amount is None:
        amount = sum(int(l["price"]) * int(l.get("quantity", 1)) for l in lines)
    assoc = ([{"to": {"id": company_id}, "types": [{"associationCategory": HUBSPOT_DEFINED, "associationTypeId": 5}]}]
             if company_id else None)
    deal = world.hs().deals.create({"dealname": name, "dealstage": stage, "pipeline": pipeline, "amount": amount,
                                    "closedate": "2026-11-20T00:00:00.000Z", **props}, associations=assoc)
    deal_id = str(deal["id"])
    for line in lines:
        world.hs().line_items.create(dict(line), associations=[
            {"to": {"id": deal_id}, "types": [{"associationCategory": HUBSPOT_DEFINED, "associationTypeId": 20}]}])
    return deal_id


def move_stage(world, deal_id: str, stage: str) -> None:
    world.hs().deals.update(deal_id, {"dealstage": stage})


def freee_partner(world, name: str, *, email: str | None = "keiri@example.co.jp", registration: str | None = None,
                  code: str | None = None, **kw: Any) -> str:
    global _codes
    _codes += 1
    company = Company(name=name, billing_email=email, registration_number=registration,
                      partner_code=code or f"P{_codes:05d}",
                      payment_terms=PaymentTerms(closing_day=0, pay_month_offset=1, pay_day=0),
                      address=Address(postal_code="100-0001", prefecture="東京都", city="千代田区", street="千代田1-1"),
                      **kw)
    return str(world.rt.erp.create_partner(company).erp_id)


def freee_invoices(world) -> list[dict]:
    return world.fr().list_invoices(limit=100)
