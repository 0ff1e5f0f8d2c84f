"""HubSpot sandbox at scale: 20,000 companies loaded through the store, more than 10,000 of them on one
``hs_lastmodifieddate`` — the 10,000-result search cap and the restart recipes a connector needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from renkei.sandboxes.common import Clock, ServerThread
from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app

TOKEN = "hs-scale-test-token"
T1 = 1_780_000_000_000
T2 = T1 + 60_000
N_SHARED = 12_000  # records sharing T1
N_TOTAL = 20_000


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[httpx.Client, list[str], list[str]]]:
    app = create_app(HubSpotSandboxConfig(token=TOKEN, seed="none", rate_limit_per_10s=0, search_per_second=0,
                                          daily_limit=0, clock=Clock(frozen_ms=T2 + 60_000)))
    store = app.state.store
    shared = store.bulk_create("companies", [{"name": f"Shared {i:05d}", "numberofemployees": i % 50}
                                             for i in range(N_SHARED)], timestamp_ms=T1)
    later = store.bulk_create("companies", [{"name": f"Later {i:05d}"} for i in range(N_TOTAL - N_SHARED)],
                              timestamp_ms=T2)
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=30,
                                                   headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        yield http, shared, later


def _search(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/crm/v3/objects/companies/search", json=body)


def _since(ms: int, op: str = "GTE") -> list[dict[str, Any]]:
    return [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": op, "value": str(ms)}]}]


ASC_MODIFIED = [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
ASC_ID = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]


def test_bulk_loaded_records_are_real_records(big: Any) -> None:
    http, shared, later = big
    assert len(shared) == N_SHARED and len(later) == N_TOTAL - N_SHARED
    one = http.get(f"/crm/v3/objects/companies/{shared[5]}", params={"properties": "name,numberofemployees"}).json()
    assert one["properties"]["name"] == "Shared 00005" and one["properties"]["numberofemployees"] == "5"
    assert one["properties"]["hs_lastmodifieddate"] == "2026-05-28T20:26:40.000Z" == one["updatedAt"]
    page = http.get("/crm/v3/objects/companies", params={"limit": 100}).json()
    assert len(page["results"]) == 100 and page["paging"]["next"]["after"]


def test_search_total_and_the_10000_cap(big: Any) -> None:
    http, shared, later = big
    first = _search(http, filterGroups=_since(T1), sorts=ASC_MODIFIED, limit=200).json()
    assert first["total"] == N_TOTAL
    assert first["paging"]["next"]["after"] == "200"
    last_ok = _search(http, filterGroups=_since(T1), sorts=ASC_MODIFIED, limit=200, after="9800")
    assert last_ok.status_code == 200
    body = last_ok.json()
    assert len(body["results"]) == 200 and body["paging"]["next"]["after"] == "10000"
    # ties on hs_lastmodifieddate are ordered by id, so the 10,000th result is the 10,000th shared record
    assert body["results"][-1]["id"] == shared[9_999]
    for after, limit in (("10000", 200), ("9900", 200), ("10200", 10)):
        r = _search(http, filterGroups=_since(T1), sorts=ASC_MODIFIED, limit=limit, after=after)
        assert r.status_code == 400, r.text
        assert r.json()["category"] == "VALIDATION_ERROR"


def test_restart_from_watermark_and_tie_break_on_id(big: Any) -> None:
    http, shared, later = big
    # Restarting with GTE on the last seen timestamp cannot get past 12,000 records on ONE timestamp:
    again = _search(http, filterGroups=_since(T1), sorts=ASC_MODIFIED, limit=200).json()
    assert again["results"][0]["id"] == shared[0]
    # ... a connector must break the tie on the id inside that timestamp:
    tie = [{"filters": [
        {"propertyName": "hs_lastmodifieddate", "operator": "EQ", "value": str(T1)},
        {"propertyName": "hs_object_id", "operator": "GT", "value": shared[9_999]},
    ]}]
    rest = _search(http, filterGroups=tie, sorts=ASC_ID, limit=200).json()
    assert rest["total"] == N_SHARED - 10_000
    assert rest["results"][0]["id"] == shared[10_000]
    # ... then move the watermark past the shared timestamp
    newer = _search(http, filterGroups=_since(T1, "GT"), sorts=ASC_MODIFIED, limit=200).json()
    assert newer["total"] == N_TOTAL - N_SHARED and newer["results"][0]["id"] == later[0]
    # full scans by id (GT last id) reach every record without ever passing the cap
    tail = _search(http, filterGroups=[{"filters": [{"propertyName": "hs_object_id", "operator": "GT",
                                                      "value": later[-201]}]}], sorts=ASC_ID, limit=200).json()
    assert [r["id"] for r in tail["results"]] == later[-200:] and "paging" not in tail


def test_filters_and_sort_on_a_large_set(big: Any) -> None:
    http, shared, _ = big
    r = _search(http, filterGroups=[{"filters": [
        {"propertyName": "numberofemployees", "operator": "EQ", "value": "7"},
        {"propertyName": "name", "operator": "CONTAINS_TOKEN", "value": "shared"},
    ]}], sorts=[{"propertyName": "hs_object_id", "direction": "DESCENDING"}], limit=5).json()
    assert r["total"] == N_SHARED // 50
    assert [x["id"] for x in r["results"]] == [shared[i] for i in range(11_957, 11_700, -50)][:5]
