"""HubSpot connector against the local HubSpot sandbox over real HTTP.

Paging, batch chunking and 207 handling, search boundary cases (a timestamp shared across a page boundary,
more than 10,000 matches, more than 10,000 records on ONE timestamp), 429 storms, injected faults (every
record still read exactly once), quota exhaustion and an invalid token.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from renkei.connectors.http import ConnectorError, NotFound, QuotaExhausted, Unauthorized
from renkei.connectors.hubspot import HubSpotClient, HubSpotCRM, Watermark
from renkei.connectors.hubspot import mapping as m

pytest.importorskip("renkei.sandboxes.hubspot", reason="HubSpot sandbox not available")

from renkei.sandboxes.common import Clock, FaultConfig, ServerThread  # noqa: E402
from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app  # noqa: E402

TOKEN = "renkei-test-hubspot-token-7f3a"
T0 = 1_775_000_000_000  # 2026-04-01T00:53:20Z


def start(**kw):
    cfg_kw = dict(token=TOKEN, seed="none", rate_limit_per_10s=0, search_per_second=0, daily_limit=0)
    cfg_kw.update(kw)
    config = HubSpotSandboxConfig(**cfg_kw)
    app = create_app(config)
    server = ServerThread(app).start()
    server.app, server.config = app, config
    return server


@pytest.fixture
def sandbox():
    server = start()
    yield server
    server.stop()


@pytest.fixture
def frozen():
    """Sandbox with a frozen clock (tests decide every record's timestamp), no rate limits."""
    clock = Clock(frozen_ms=T0)
    server = start(clock=clock)
    server.clock = clock
    yield server
    server.stop()


def client_for(server, **kw) -> HubSpotClient:
    kw.setdefault("rate_limits", None)
    kw.setdefault("max_workers", 4)
    kw.setdefault("timeout", 10)
    kw.setdefault("backoff_initial", 0.05)
    kw.setdefault("backoff_max", 0.5)
    retry_after_max = kw.pop("retry_after_max", None)
    c = HubSpotClient(server.url, token=kw.pop("token", TOKEN), **kw)
    if retry_after_max is not None:
        c.http.config.retry_after_max = retry_after_max
    return c


def create_companies(client: HubSpotClient, n: int, prefix: str = "Co", start_index: int = 0) -> list[str]:
    res = client.companies.batch_create([{"name": f"{prefix} {start_index + i:05d}"} for i in range(n)])
    assert res.ok, res.errors[:3]
    return [r.id for r in res.results]


# --------------------------------------------------------------------------------------------- basics


def test_crud_paging_and_batch_chunking(sandbox):
    c = client_for(sandbox)
    before = c.stats.requests
    ids = create_companies(c, 250)
    assert c.stats.requests - before == 3  # 100 + 100 + 50: the client chunks, the sandbox rejects > 100
    assert len(set(ids)) == 250

    pages = list(c.companies.scan_pages(properties=["name"]))
    assert [len(p) for p in pages] == [100, 100, 50]
    assert sorted(r["id"] for p in pages for r in p) == sorted(ids)

    one = c.companies.get(ids[0], properties=["name"])
    assert one["properties"]["name"] == "Co 00000"
    c.companies.update(ids[0], {"name": "Renamed", "phone": "03-0000-0000"})
    assert c.companies.get(ids[0], properties=["name"])["properties"]["name"] == "Renamed"

    read = c.companies.batch_read(ids[:150] + ["999999999"], properties=["name"])
    assert len(read) == 150

    c.companies.archive(ids[0])
    with pytest.raises(NotFound):
        c.companies.get(ids[0])
    c.companies.batch_archive(ids[1:120])
    assert sum(len(p) for p in c.companies.scan_pages()) == 130


def test_batch_207_maps_errors_to_inputs(sandbox):
    c = client_for(sandbox)
    ids = create_companies(c, 3)
    res = c.companies.batch_update([
        {"id": ids[0], "properties": {"name": "A"}},
        {"id": "987654321", "properties": {"name": "ghost"}},
        {"id": ids[2], "properties": {"name": "C"}},
    ])
    assert [r.ok for r in res.results] == [True, False, True]
    assert res.results[0].id == ids[0] and res.results[2].id == ids[2]
    assert res.results[1].error and res.results[1].index == 1

    # 205 inputs over three chunks, one bad per chunk: each error lands on its own input
    more = create_companies(c, 205, prefix="More")
    inputs = [{"id": more[i], "properties": {"name": f"n{i}"}} for i in range(205)]
    for bad in (7, 150, 204):
        inputs[bad] = {"id": f"55555{bad}", "properties": {"name": "x"}}
    res = c.companies.batch_update(inputs)
    assert [r.index for r in res.errors] == [7, 150, 204]
    assert len(res.succeeded) == 202


def test_upsert_by_renkei_property_and_property_creation(sandbox):
    c = client_for(sandbox)
    created = c.properties.ensure("companies")
    assert "renkei_partner_code" in created
    n = c.stats.requests
    assert c.properties.ensure("companies") == []  # cached: no request
    assert c.stats.requests == n
    # a fresh client finds them existing (409-safe, one GET)
    c2 = client_for(sandbox)
    assert c2.properties.ensure("companies") == []

    res = c.companies.batch_upsert([{"properties": {"renkei_partner_code": "P-1", "name": "One"}},
                                    {"properties": {"renkei_partner_code": "P-2", "name": "Two"}}],
                                   id_property="renkei_partner_code")
    assert res.ok and [r.created for r in res.results] == [True, True]
    res2 = c.companies.batch_upsert([{"properties": {"renkei_partner_code": "P-2", "name": "Two bis"}},
                                     {"properties": {"renkei_partner_code": "P-3", "name": "Three"}}],
                                    id_property="renkei_partner_code")
    assert res2.ok and [r.created for r in res2.results] == [False, True]
    assert res2.results[0].id == res.results[1].id


def test_crm_facade_deals_associations_pipelines(sandbox):
    c = client_for(sandbox)
    crm = HubSpotCRM(c)
    won = crm.won_stage_ids()
    assert "closedwon" in won and "closedlost" not in won
    probs = c.stage_probabilities()
    assert probs["closedwon"] == 1.0 and probs["closedlost"] == 0.0
    assert any(not k.isalpha() for k in won), "custom pipeline won stage (numeric id) expected"

    comp = c.companies.create({"name": "株式会社テスト"})
    deal = c.deals.create({"dealname": "案件A", "dealstage": "closedwon", "pipeline": "default", "amount": "30000"})
    lines = c.line_items.batch_create([{"name": "保守", "quantity": "1", "price": "10000"},
                                       {"name": "設定", "quantity": "2", "price": "10000"}])
    c.associate_default("deals", deal["id"], "companies", comp["id"])
    c.associate_batch_default("deals", "line_items", [(deal["id"], r.id) for r in lines.results])

    [res] = crm.get_deals([deal["id"]])
    assert res.ok, res.error
    d = res.value
    assert d.company_crm_id == comp["id"] and d.amount == 30000 and d.stage in won
    assert sorted(li.unit_price * li.quantity for li in d.line_items) == [10000, 20000]

    batches = list(crm.iter_deal_changes(None))
    assert [r.value.crm_id for b in batches for r in b.records] == [deal["id"]]
    assert len(batches[-1].records[0].value.line_items) == 2


def test_merge_gives_surviving_record(sandbox):
    c = client_for(sandbox)
    a, b = create_companies(c, 2, prefix="Merge")
    merged = c.companies.merge(a, b)
    assert merged["id"]
    with pytest.raises(NotFound):
        c.companies.get(b)


def test_invalid_token_raises_unauthorized_without_token(sandbox):
    bad = "pat-na1-renkei-test-0000"
    c = client_for(sandbox, token=bad)
    with pytest.raises(Unauthorized) as ei:
        c.companies.list_page()
    err = ei.value
    for text in (str(err), repr(err), err.message, str(err.details)):
        assert bad not in text and TOKEN not in text
    assert err.status == 401 and err.correlation_id


# --------------------------------------------------------------------------------------------- search


def read_changes(c: HubSpotClient, since=None, limit=200):
    ids, batches = [], []
    for b in c.companies.changes(since, properties=["name"], limit=limit):
        ids.extend(r["id"] for r in b.records)
        batches.append(b)
    return ids, batches


def test_changes_timestamp_shared_across_page_boundary(frozen):
    c = client_for(frozen)
    early = create_companies(c, 150, prefix="E")  # all at T0
    frozen.clock.advance(1)
    shared = create_companies(c, 120, prefix="S")  # 120 at T0+1: straddle the 200 boundary
    frozen.clock.advance(1)
    late = create_companies(c, 60, prefix="L")
    ids, batches = read_changes(c)
    assert Counter(ids) == Counter(early + shared + late)  # each exactly once
    assert [b.watermark.ts_ms for b in batches] == sorted(b.watermark.ts_ms for b in batches)
    assert batches[-1].exhausted and batches[-1].watermark == Watermark(T0 + 2)

    # resume from a mid-read watermark: nothing lost (records at the watermark are re-read, by design)
    again, _ = read_changes(c, since=batches[0].watermark)
    assert set(again) >= set(shared + late)
    # incremental run after a change
    frozen.clock.advance(5)
    c.companies.update(early[3], {"name": "changed"})
    newer, _ = read_changes(c, since=batches[-1].watermark.encode())
    assert early[3] in newer and len(newer) <= 61


def test_changes_more_than_10000_matches(frozen):
    c = client_for(frozen)
    store = frozen.app.state.store
    expected = []
    for k in range(21):  # 10,500 records on 21 timestamps (bulk-loaded: no HTTP)
        expected += store.bulk_create("companies", [{"name": f"B{k} {i}"} for i in range(500)],
                                      timestamp_ms=T0 + 1000 * k)
    ids, batches = read_changes(c)
    assert len(ids) == 10_500 and Counter(ids) == Counter(expected)


def test_changes_more_than_10000_on_one_timestamp(frozen):
    c = client_for(frozen)
    store = frozen.app.state.store
    before = create_companies(c, 30, prefix="before")  # over HTTP at T0
    # one timestamp, more than the 10,000 cap (bulk-loaded: no HTTP)
    same = store.bulk_create("companies", [{"name": f"same {i}"} for i in range(10_250)], timestamp_ms=T0 + 1)
    frozen.clock.advance(2)
    after = create_companies(c, 40, prefix="after")
    ids, batches = read_changes(c)
    assert Counter(ids) == Counter(before + same + after)
    tie = [b for b in batches if b.watermark.after_id is not None]
    assert tie and all(b.watermark.ts_ms == T0 + 1 for b in tie)
    # resuming inside the tie-breaker run continues after the id, then past the timestamp
    mid = tie[len(tie) // 2].watermark
    rest, _ = read_changes(c, since=mid.encode())
    assert set(rest) >= set(after) and len(rest) < len(same)


def test_changes_record_modified_mid_read_is_not_lost(frozen):
    c = client_for(frozen)
    ids = []
    for k in range(5):
        ids += create_companies(c, 100, prefix=f"M{k}")
        frozen.clock.advance(10)
    seen = []
    for i, b in enumerate(c.companies.changes(None, properties=["name"], limit=100)):
        seen.extend(r["id"] for r in b.records)
        if i == 1:  # modify an already-read record: offset paging would now skip one
            frozen.clock.advance(10)
            c.companies.update(ids[5], {"name": "moved"})
    assert set(seen) == set(ids)


# --------------------------------------------------------------------------------------------- limits & faults


class FastClock(Clock):
    """Sandbox clock running 20x faster than real time, so 10-second windows pass in 0.5 s."""

    def __init__(self, factor: float = 20.0):
        super().__init__()
        self._t0 = time.time()
        self._factor = factor

    def now_ms(self) -> int:
        return int((self._t0 + (time.time() - self._t0) * self._factor) * 1000)


def test_429_storm_recovers():
    server = start(rate_limit_per_10s=4, search_per_second=2, clock=FastClock())
    try:
        # the sandbox runs 20x fast, so its Retry-After values are 20x too long: cap the waits
        loader = client_for(server, rate_limits=None, max_attempts=30, retry_after_max=0.2)
        ids = create_companies(loader, 600)
        c = client_for(server, rate_limits=None, max_attempts=30, retry_after_max=0.2)
        got = []
        for page in c.companies.scan_pages():
            got += [r["id"] for r in page]

        def searcher(out):
            out += [r["id"] for b in c.companies.changes(None, limit=100) for r in b.records]

        outs = [[], [], []]
        threads = [threading.Thread(target=searcher, args=(o,)) for o in outs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == sorted(ids)
        assert all(sorted(o) == sorted(ids) for o in outs)
        assert c.stats.rate_limited > 0  # there was a storm, and we came through
    finally:
        server.stop()


def test_client_limiter_prevents_429():
    server = start(rate_limit_per_10s=20, search_per_second=3, clock=FastClock(factor=10))
    try:
        create_companies(client_for(server), 300)
        server.app.state.limits.reset()  # the loader's requests are not this client's
        # documented limits scaled to the 10x clock: 20 / 1 s, search 3 / 0.1 s; margins absorb scheduling jitter
        c = client_for(server, rate_limits={"default": (20, 1.0), "search": (3, 0.1)},
                       headroom={"default": 0.2, "search": 0.5})
        n = sum(len(p) for p in c.companies.scan_pages(limit=10))
        n2 = sum(len(b.records) for b in c.companies.changes(None, limit=20))
        assert n == n2 == 300
        assert c.stats.rate_limited == 0
    finally:
        server.stop()


def test_injected_faults_every_record_read_exactly_once():
    faults = FaultConfig(latency_ms=2, fault_rate=0.0, fault_seed=1234, kinds=("5xx", "429", "timeout", "drop"),
                         timeout_s=1.0)
    server = start(faults=faults)
    try:
        ids = create_companies(client_for(server), 700)
        server.app.state.faults.config.fault_rate = 0.25
        server.app.state.faults.reseed()
        c = client_for(server, timeout=0.4, max_attempts=12, retry_after_max=0.05)
        listed = [r["id"] for p in c.companies.scan_pages() for r in p]
        changed = [r["id"] for b in c.companies.changes(None, limit=100) for r in b.records]
        concurrent = [r["id"] for p in c.companies.read_all() for r in p]
        for got in (listed, changed, concurrent):
            assert Counter(got) == Counter(ids)
        kinds = Counter(k for k, _, _ in server.app.state.faults.injected)
        assert set(kinds) == {"5xx", "429", "timeout", "drop"}, kinds
        assert c.stats.retries >= sum(kinds.values()) - 1
    finally:
        server.stop()


def test_daily_quota_exhausted_is_not_retried():
    server = start(daily_limit=3)
    try:
        c = client_for(server)
        with pytest.raises(QuotaExhausted) as ei:
            for _ in range(5):
                c.companies.list_page()
        assert c.stats.requests == 4 and ei.value.status == 429
        assert isinstance(ei.value, ConnectorError) and not ei.value.retryable
    finally:
        server.stop()


def test_concurrent_read_all_with_rate_limits_exactly_once():
    server = start(rate_limit_per_10s=100, search_per_second=5, faults=FaultConfig(latency_ms=20))
    try:
        ids = create_companies(client_for(server), 1500)
        c = client_for(server, rate_limits="documented")
        got = [r["id"] for p in c.companies.read_all(properties=["name"]) for r in p]
        assert Counter(got) == Counter(ids)
        assert c.stats.rate_limited == 0
        kinds = c.rate_limiter.acquired
        assert kinds["default"] > 0 and kinds["search"] > 0  # both buckets used
        res = [m.company_from_hubspot(r) for p in c.companies.read_all(properties=m.COMPANY_PROPERTIES,
                                                                        use_list=False) for r in p]
        assert len(res) == 1500 and all(r.ok for r in res)
        # several search streams over id slices, with and without the list stream (no client limits: fast)
        server.app.state.limits.search.limit = server.app.state.limits.ten_secondly.limit = 0  # limits off
        fast = client_for(server)
        for use_list in (True, False):
            got = [r["id"] for p in fast.companies.read_all(search_streams=3, use_list=use_list) for r in p]
            assert Counter(got) == Counter(ids)
        # a consumer that stops early does not leave threads behind
        it = fast.companies.read_all()
        next(it)
        it.close()
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------- auth & contacts


class RotatingToken:
    """A provider whose first token is stale; ``reload()`` (called once on a 401) fetches the good one."""

    def __init__(self):
        self.value = "renkei-stale-token-0001"
        self.reloads = 0

    def __call__(self):
        return self.value

    def reload(self):
        self.reloads += 1
        self.value = TOKEN
        return True


def test_token_provider_refreshed_once_on_401(sandbox, caplog):
    caplog.set_level("DEBUG")
    provider = RotatingToken()
    c = HubSpotClient(sandbox.url, token_provider=provider, rate_limits=None)
    assert c.companies.list_page()["results"] == []
    assert provider.reloads == 1 and c.stats.by_status == {401: 1, 200: 1}
    assert TOKEN not in caplog.text and "renkei-stale-token-0001" not in caplog.text


def test_token_from_secret_block_is_lazy(monkeypatch, sandbox):
    from renkei.connectors.hubspot import token_from_secret_block

    provider = token_from_secret_block("hubspot-token")  # nothing is loaded until the first request
    loads = []

    class FakeSecret:
        @staticmethod
        def load(name):
            loads.append(name)
            return type("S", (), {"get": staticmethod(lambda: TOKEN)})()

    import prefect.blocks.system as system

    monkeypatch.setattr(system, "Secret", FakeSecret)
    c = HubSpotClient(sandbox.url, token_provider=provider, rate_limits=None)
    c.companies.list_page()
    c.companies.list_page()
    assert loads == ["hubspot-token"]  # loaded once, cached
    assert TOKEN not in repr(provider) and TOKEN not in repr(c.auth)


def test_contacts_changes_use_lastmodifieddate(frozen):
    c = client_for(frozen)
    res = c.contacts.batch_create([{"lastname": f"山田{i}", "email": f"u{i}@example.jp"} for i in range(250)])
    assert res.ok
    frozen.clock.advance(1)
    c.contacts.update(res.results[0].id, {"firstname": "太郎"})
    batches = list(c.contacts.changes(None, properties=m.CONTACT_PROPERTIES))
    ids = [r["id"] for b in batches for r in b.records]
    assert sorted(ids) == sorted(r.id for r in res.results)
    assert ids[-1] == res.results[0].id and batches[-1].watermark.ts_ms == T0 + 1
    mapped = [m.contact_from_hubspot(r) for b in batches for r in b.records]
    assert all(x.ok for x in mapped) and mapped[-1].value.first_name == "太郎"
