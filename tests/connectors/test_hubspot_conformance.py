"""CRM connector conformance (Singer-SDK style): what any :class:`connectors.base.CRMConnector` must do,
run here against HubSpot on the local sandbox. A second CRM subclasses :class:`CRMConformance` and provides
the ``crm`` and ``seed_companies`` fixtures."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from renkei.connectors.base import ChangeBatch, CRMConnector, MapResult, WriteResult
from renkei.domain.model import Company, Product

pytest.importorskip("renkei.sandboxes.hubspot", reason="HubSpot sandbox not available")


class CRMConformance:
    def test_satisfies_protocol(self, crm):
        assert isinstance(crm, CRMConnector)

    def test_changes_are_batches_of_map_results_with_resumable_watermarks(self, crm, seed_companies):
        older = seed_companies(30)
        time.sleep(0.01)
        newer = seed_companies(5)
        ids = older + newer
        batches = list(crm.iter_company_changes(None))
        assert batches and all(isinstance(b, ChangeBatch) for b in batches)
        results = [r for b in batches for r in b.records]
        assert all(isinstance(r, MapResult) for r in results)
        assert Counter(r.source_id for r in results) == Counter(ids)
        assert all(r.ok and isinstance(r.value, Company) for r in results)
        # the last watermark, fed back, yields nothing older than it (records AT it may be re-read)
        again = [r.source_id for b in crm.iter_company_changes(batches[-1].watermark) for r in b.records]
        assert set(again) <= set(newer)

    def test_upsert_reports_per_input_in_order_and_never_raises_for_bad_input(self, crm):
        good = Company(name="適合テスト株式会社", partner_code="CF-1")
        bad = Company(name="キー無し商店", partner_code=None)  # no key: must come back as a per-input failure
        res = crm.upsert_companies([good, bad, Company(name="適合テスト合同会社", partner_code="CF-2")])
        assert all(isinstance(r, WriteResult) for r in res) and [r.index for r in res] == [0, 1, 2]
        assert [r.ok for r in res] == [True, False, True] and res[1].error and res[0].id and res[2].id
        again = crm.upsert_companies([good])
        assert again[0].ok and again[0].id == res[0].id and again[0].created is False

    def test_products_upsert_and_won_stages(self, crm):
        res = crm.upsert_products([Product(code="SKU-CF-1", name="保守サービス", unit_price=12000)])
        assert res[0].ok
        assert crm.won_stage_ids()


    def test_writeback_properties_are_created_on_first_use(self, crm, seed_deal):
        deal_id = seed_deal()
        res = crm.update_deal_properties({deal_id: {"renkei_invoice_id": "INV-1", "renkei_invoice_status": "issued"}})
        assert [r.ok for r in res] == [True]
        [got] = crm.get_deals([deal_id], with_line_items=False)
        assert got.ok and got.value.crm_id == deal_id
        missing = crm.update_deal_properties({"999999999": {"renkei_invoice_id": "x"}})
        assert not missing[0].ok and missing[0].error


class TestHubSpotConformance(CRMConformance):
    @pytest.fixture
    def crm(self):
        from renkei.sandboxes.common import ServerThread
        from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app

        from renkei.connectors.hubspot import HubSpotClient, HubSpotCRM

        token = "renkei-test-hubspot-token-7f3a"
        app = create_app(HubSpotSandboxConfig(token=token, seed="none", rate_limit_per_10s=0, search_per_second=0,
                                              daily_limit=0))
        with ServerThread(app) as server:
            crm = HubSpotCRM(HubSpotClient(server.url, token=token, rate_limits=None))
            crm.app = app
            yield crm

    @pytest.fixture
    def seed_companies(self, crm):
        def seed(n: int) -> list[str]:
            res = crm.client.companies.batch_create([{"name": f"適合 {i}"} for i in range(n)])
            return [r.id for r in res.results]

        return seed

    @pytest.fixture
    def seed_deal(self, crm):
        return lambda: crm.client.deals.create({"dealname": "適合案件", "dealstage": "closedwon", "pipeline": "default",
                                                "amount": "1000"})["id"]
