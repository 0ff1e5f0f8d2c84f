"""The partners & items part of the ERP contract (``ERPPartnersItems``), against every registered ERP's
sandbox, through the contract only: create / read / find / update / deactivate partners in canonical
terms, upsert by partner code where the ERP has codes, incremental partner reads by date, item pages."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from renkei.connectors.base import MapResult
from renkei.domain.model import Address, Company, Product


def _tag() -> str:
    return uuid.uuid4().hex[:6].upper()


def test_partners_create_read_find_update_upsert_deactivate(erp_empty):
    erp, tag = erp_empty, _tag()
    made = erp.create_partner(Company(name=f"株式会社適合{tag}", billing_email="keiri@example.jp",
                                      partner_code=f"CR-{tag}" if erp.capabilities.partner_codes else None,
                                      address=Address(postal_code="100-0001", prefecture="東京都", city="千代田区")))
    assert isinstance(made, Company) and made.erp_id and made.name == f"株式会社適合{tag}"
    got = erp.get_partner(made.erp_id)
    assert isinstance(got, MapResult) and got.ok and got.value.erp_id == made.erp_id
    assert got.value.billing_email == "keiri@example.jp" and not got.value.archived
    found = erp.find_partner_by_name(made.name)
    assert found is not None and found.ok and found.value.erp_id == made.erp_id
    assert erp.find_partner_by_name(f"存在しない{tag}") is None

    erp.validate_partner(got.value)  # a valid canonical company passes before any write
    upd = erp.update_partner(got.value.model_copy(update={"phone": "03-5555-0000", "billing_email": None}))
    assert isinstance(upd, MapResult) and upd.ok and upd.value.phone == "03-5555-0000"
    assert upd.value.billing_email == "keiri@example.jp"  # None leaves the ERP's value as it is
    assert erp.get_partner(made.erp_id).value.phone == "03-5555-0000"

    if erp.capabilities.partner_codes:
        c = Company(name=f"合同会社コード{tag}", partner_code=f"CF-{tag}")
        first, created = erp.upsert_partner(c)
        again, created_again = erp.upsert_partner(c.model_copy(update={"phone": "03-1111-2222"}))
        assert created and not created_again and first.erp_id == again.erp_id and again.partner_code == c.partner_code

    today = datetime.now(timezone(timedelta(hours=9))).date()
    recent = {r.source_id: r for page in erp.iter_partners(today, page_size=50) for r in page}
    assert made.erp_id in recent and all(isinstance(r, MapResult) for r in recent.values())
    every = [r for page in erp.iter_partners() for r in page]
    assert made.erp_id in {r.source_id for r in every}

    erp.deactivate_partner(made.erp_id)
    gone = erp.get_partner(made.erp_id)
    assert gone.ok and gone.value.archived  # never deleted: kept, not in use
    listed = {r.source_id: r for page in erp.iter_partners() for r in page}
    assert made.erp_id in listed and listed[made.erp_id].value.archived


def test_items_in_pages(erp):
    pages = list(erp.iter_items(page_size=2))
    items = [r for page in pages for r in page]
    assert items and all(isinstance(r, MapResult) for r in items) and all(len(p) <= 2 for p in pages)
    ok = [r.value for r in items if r.ok]
    assert ok and all(isinstance(p, Product) and p.code and p.erp_id for p in ok)
    assert len({p.erp_id for p in ok}) == len(ok)
    if not erp.capabilities.item_cost:
        assert all(getattr(p, "cost_price", None) is None for p in ok)
    if not erp.capabilities.item_stock:
        assert all(getattr(p, "stock", None) is None for p in ok)


def test_validate_partner_refuses_what_the_erp_cannot_hold(erp_empty):
    odd = Company.model_construct(name="株式会社検証", entity_kind="not-a-kind", address=None, payment_terms=None,
                                  registration_number=None, partner_code=None, name_kana=None, phone=None,
                                  billing_email=None, billing_contact_name=None)
    with pytest.raises((ValueError, KeyError)):
        erp_empty.validate_partner(odd)
