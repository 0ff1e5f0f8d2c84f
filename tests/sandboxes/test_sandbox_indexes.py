"""The sandboxes' indexes (HubSpot: records by id and by modification date; freee: partners by name and
code) answer exactly as a scan of every record does, after creates, updates, archives and merges."""

from __future__ import annotations

import random

from renkei.sandboxes.common import Clock
from renkei.sandboxes.hubspot.store import HubSpotStore

MOD = "hs_lastmodifieddate"


def _hubspot_store(rng: random.Random) -> tuple[HubSpotStore, Clock]:
    clock = Clock(frozen_ms=1_780_000_000_000)
    store = HubSpotStore(clock)
    ids = store.bulk_create("companies", [{"name": f"Co {i:04d}", "phone": f"03-{i % 7}"} for i in range(300)],
                            timestamp_ms=clock.now_ms() - 50_000)
    for step in range(400):
        clock.advance(rng.choice([0, 0, 1, 5, 1000]))  # many equal timestamps (ties on the date)
        r = rng.random()
        live = [i for i in ids if i in store.records["companies"] and not store.records["companies"][i].archived]
        if r < 0.5:
            store.update("companies", rng.choice(live), {"phone": f"045-{step}"})
        elif r < 0.7:
            ids.append(store.create("companies", {"name": f"New {step}"}).id)
        elif r < 0.8:
            store.archive("companies", rng.choice(live))
        elif r < 0.85 and len(live) > 2:
            a, b = rng.sample(live, 2)
            ids.append(store.merge("companies", a, b).id)
    return store, clock


def _both(store: HubSpotStore, body: dict) -> tuple[dict, dict]:
    store.use_indexes = True
    fast = store.search("companies", body)
    store.use_indexes = False
    slow = store.search("companies", body)
    store.use_indexes = True
    return fast, slow


def test_hubspot_indexed_search_and_list_equal_the_scan() -> None:
    rng = random.Random(16)
    store, clock = _hubspot_store(rng)
    dates = sorted({int(r.props[MOD]) for r in store.records["companies"].values()})
    ids = sorted(int(i) for i in store.records["companies"])
    checked = 0
    for _ in range(300):
        prop = rng.choice([MOD, "hs_object_id"])
        values = dates if prop == MOD else ids
        filters = []
        for _f in range(rng.choice([0, 1, 1, 2, 3])):
            op = rng.choice(["GT", "GTE", "LT", "LTE", "EQ", "BETWEEN"])
            flt = {"propertyName": rng.choice([prop, prop, MOD, "hs_object_id"]), "operator": op,
                   "value": str(rng.choice(values) + rng.choice([-1, 0, 0, 1]))}
            if op == "BETWEEN":
                flt["highValue"] = str(int(flt["value"]) + rng.choice([0, 1, 2000, 10**9]))
            filters.append(flt)
        if rng.random() < 0.2:
            filters.append({"propertyName": "phone", "operator": "EQ", "value": f"03-{rng.randrange(7)}"})
        body = {"sorts": [{"propertyName": prop, "direction": rng.choice(["ASCENDING", "DESCENDING"])}],
                "limit": rng.choice([1, 3, 10, 100]), "after": str(rng.choice([0, 0, 2, 7])),
                "properties": ["name", "phone"]}
        if filters:
            body["filterGroups"] = [{"filters": filters}]
        if rng.random() < 0.1:
            body["query"] = "new"
        fast, slow = _both(store, body)
        assert fast == slow, body
        checked += bool(slow["results"])
    assert checked > 100  # most searches found something
    for after in [None, *rng.sample(ids, 20)]:  # list pages by id, from any cursor
        store.use_indexes = True
        fast = store.list_page("companies", limit=25, after=None if after is None else _cursor(after))
        store.use_indexes = False
        slow = store.list_page("companies", limit=25, after=None if after is None else _cursor(after))
        assert [r.id for r in fast[0]] == [r.id for r in slow[0]] and fast[1] == slow[1]
    store.use_indexes = True


def _cursor(record_id: int) -> str:
    from renkei.sandboxes.hubspot.store import encode_cursor

    return encode_cursor(record_id)


def _freee_run(indexed: bool) -> tuple[list, list]:
    from renkei.sandboxes.freee import FreeeSandboxConfig, create_app
    from renkei.sandboxes.freee.entities import Partner
    from renkei.sandboxes.freee.errors import FreeeError
    from renkei.sandboxes.freee.models import PartnerBody, PartnerUpsert

    cfg = FreeeSandboxConfig(seed="none", refresh_token="idx-refresh-token", print_refresh_token=False)
    store = create_app(cfg).state.store
    store.use_indexes = indexed
    cid = cfg.company_id
    rng = random.Random(7)
    for i in range(200):  # loaded straight into the dict, as benchmarks and seeds do
        pid = store.next_id("partner")
        store.partners[pid] = Partner(id=pid, company_id=cid, name=f"取引先{i:03d}", update_date="2026-10-01",
                                      code=f"C{i:03d}")
    outcomes, lookups = [], []
    for step in range(300):
        r = rng.random()
        name, code = f"取引先{rng.randrange(260):03d}", f"C{rng.randrange(260):03d}"
        try:
            if r < 0.3:
                outcomes.append(store.create_partner(PartnerBody(company_id=cid, name=name, code=code)).id)
            elif r < 0.6:
                pid = rng.choice(list(store.partners))
                outcomes.append(store.update_partner(pid, PartnerBody(company_id=cid, name=name, code=code)).name)
            else:
                got, created = store.upsert_partner_by_code(
                    PartnerUpsert(company_id=cid, code=code, partner={"name": name}))
                outcomes.append((got.id, created))
        except FreeeError as exc:
            outcomes.append(str(exc))
        if step % 10 == 0:
            keys = [{"name": f"取引先{k:03d}"} for k in range(0, 260, 3)] + [{"code": f"C{k:03d}"}
                                                                             for k in range(0, 260, 3)]
            lookups.append([[p.id for p in store.partners_with(cid, **key)] for key in keys])
            lookups.append(store.resolve_partner(cid, None, code, "accounting", required=False).id
                           if store.partners_with(cid, code=code) else None)
    return outcomes, lookups


def test_freee_partner_lookups_by_name_and_code_equal_the_scan() -> None:
    fast = _freee_run(indexed=True)
    slow = _freee_run(indexed=False)
    assert fast == slow
    outcomes = fast[0]
    assert any(isinstance(o, str) for o in outcomes) and any(isinstance(o, tuple) for o in outcomes)
    assert any(isinstance(o, int) for o in outcomes)
