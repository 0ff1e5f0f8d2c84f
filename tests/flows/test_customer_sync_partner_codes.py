"""customer-sync for a freee company without 取引先コード: partners are created once (claim + lookup by
name), never with a code; with codes on they are upserted by ``HS-<id>``."""

from __future__ import annotations

import pytest

from renkei.flows.customer_sync import customer_sync
from tests.flows.builders import hs_company


@pytest.mark.parametrize("codes", [True, False], ids=["codes_on", "codes_off"])
def test_new_companies_become_one_partner_each(world, codes):
    from renkei.tasks.invoicing import company_settings

    world.freee.app.state.store.companies[world.freee.config.company_id].use_partner_code = codes
    company_settings(world.rt, refresh=True)
    a = hs_company(world, "株式会社コード検証", renkei_billing_email="keiri@example.co.jp")
    b = hs_company(world, "有限会社コードなし", renkei_billing_email="keiri@example.co.jp")
    customer_sync()
    customer_sync()
    partners = world.fr().list_partners(limit=100)
    assert sorted(p["name"] for p in partners) == ["有限会社コードなし", "株式会社コード検証"]
    codes_seen = sorted(p.get("code") or "" for p in partners)
    assert codes_seen == (sorted([f"HS-{a}", f"HS-{b}"]) if codes else ["", ""])
    assert {world.rt.store.erp_id_for("company", c) for c in (a, b)} == {str(p["id"]) for p in partners}
    assert not [r for r in world.rt.store.list_reviews("open") if r.reason_code == "ERP_CREATE_FAILED"]


def test_codes_off_a_partner_created_before_a_crash_is_found_by_name(world):
    from renkei.tasks.customers import create_partner_once, partner_ledger_key
    from renkei.tasks.invoicing import company_settings
    from renkei.tasks.reporting import RunReport

    world.freee.app.state.store.companies[world.freee.config.company_id].use_partner_code = False
    company_settings(world.rt, refresh=True)
    crm_id = hs_company(world, "株式会社復旧テスト")
    from renkei.domain.model import Company

    c = Company(crm_id=crm_id, name="株式会社復旧テスト")
    # an attempt claimed, created the partner in freee and died before committing
    world.rt.store.claim(partner_ledger_key(crm_id), "dead-run", lease_seconds=0)
    world.fr().create_partner({"name": "株式会社復旧テスト", "org_code": 1, "country_code": "JP"})
    made, created = create_partner_once(world.rt, c, RunReport("customer-sync"))
    assert made is not None and not created  # found by name, not created again
    assert len(world.fr().list_partners(limit=100)) == 1
    assert world.rt.store.ledger_entry(partner_ledger_key(crm_id)).external_id == str(made.erp_id)
