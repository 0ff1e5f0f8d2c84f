"""What any CRM connector must do (the checks of the former ``test_hubspot_conformance.py``, now over every
registered CRM): change batches of map results with resumable watermarks, batch upserts with per-input results
in order, product upserts, won stages, write-backs on deals. Contract only; state is arranged through contract
writes or read from the sandbox's demo seed. One fixture per test (``crm`` seeded, ``crm_empty`` empty)."""

from __future__ import annotations

import time
import uuid
from collections import Counter

from renkei.connectors.base import ChangeBatch, MapResult, WriteResult
from renkei.domain.model import Company, Deal, Product


def _companies(crm, n: int, tag: str) -> list[str]:
    res = crm.upsert_companies([Company(name=f"適合テスト{tag}{i}株式会社", partner_code=f"CF-{tag}-{i}")
                                for i in range(n)])
    assert all(r.ok and r.id for r in res), [r.error for r in res if not r.ok]
    return [str(r.id) for r in res]


def test_company_changes_are_batches_of_map_results_with_resumable_watermarks(crm_empty):
    crm_empty.prepare()
    tag = uuid.uuid4().hex[:6]
    older = _companies(crm_empty, 30, tag + "a")
    time.sleep(0.01)
    newer = _companies(crm_empty, 5, tag + "b")
    batches = list(crm_empty.iter_company_changes(None))
    assert batches and all(isinstance(b, ChangeBatch) for b in batches)
    results = [r for b in batches for r in b.records]
    assert all(isinstance(r, MapResult) for r in results)
    seen = Counter(str(r.source_id) for r in results)
    assert all(seen[i] == 1 for i in older + newer), "every changed company exactly once"
    assert all(r.ok and isinstance(r.value, Company) for r in results if str(r.source_id) in older + newer)
    # the last watermark, fed back, yields nothing older than it (records AT it may be re-read)
    again = {str(r.source_id) for b in crm_empty.iter_company_changes(batches[-1].watermark) for r in b.records}
    assert again <= set(newer)

def test_upsert_reports_per_input_in_order_and_never_raises_for_bad_input(crm_empty):
    crm_empty.prepare()
    tag = uuid.uuid4().hex[:6]
    good = Company(name="適合テスト株式会社", partner_code=f"CF-{tag}-1")
    bad = Company(name="キー無し商店", partner_code=None)  # no key: must come back as a per-input failure
    res = crm_empty.upsert_companies([good, bad, Company(name="適合テスト合同会社", partner_code=f"CF-{tag}-2")])
    assert all(isinstance(r, WriteResult) for r in res) and [r.index for r in res] == [0, 1, 2]
    assert [r.ok for r in res] == [True, False, True] and res[1].error and res[0].id and res[2].id
    again = crm_empty.upsert_companies([good])
    assert again[0].ok and again[0].id == res[0].id and again[0].created is False


def test_products_upsert_and_won_stages(crm):
    res = crm.upsert_products([Product(code=f"SKU-CF-{uuid.uuid4().hex[:6]}", name="保守サービス", unit_price=12000)])
    assert [r.ok for r in res] == [True] and isinstance(res[0], WriteResult)
    won = crm.won_stage_ids()
    assert won and all(isinstance(s, str) for s in won)


def test_deal_changes_read_back_and_write_backs(crm):
    """The demo seed's deals come as map results; one is read back by id; canonical ``renkei_*`` write-back
    keys land (fields created on first use); an unknown deal is a per-input failure, not an exception."""
    crm.prepare()
    results = [r for b in crm.iter_deal_changes(None) for r in b.records]
    assert results and all(isinstance(r, MapResult) for r in results)
    deals = [r.value for r in results if r.ok]
    assert deals and all(isinstance(d, Deal) for d in deals)
    deal_id = deals[0].crm_id
    res = crm.update_deal_properties({deal_id: {"renkei_invoice_id": "INV-CF-1", "renkei_invoice_status": "issued"}})
    assert [r.ok for r in res] == [True]
    [got] = crm.get_deals([deal_id], with_line_items=False)
    assert got.ok and got.value.crm_id == deal_id
    missing = crm.update_deal_properties({"999999999": {"renkei_invoice_id": "x"}})
    assert len(missing) == 1 and not missing[0].ok and missing[0].error
