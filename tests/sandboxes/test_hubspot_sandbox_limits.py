"""HubSpot sandbox: rate limits (10-second rolling bucket, search per second, daily cap) with their
headers and 429 bodies, and injected faults (deterministic with a seed, no side effects, dropped
connections) — plus the shared pieces of ``sandboxes.common`` they are built on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from renkei.sandboxes.common import Clock, FaultConfig, ServerThread, SlidingWindowLimiter
from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app

TOKEN = "hs-limits-test-token"
T0 = 1_780_000_000_000
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def serve() -> Iterator[Any]:
    """Factory: start a sandbox with the given config; everything is stopped at teardown."""
    started: list[tuple[ServerThread, httpx.Client]] = []

    def start(**config: Any) -> tuple[ServerThread, httpx.Client, Any]:
        cfg = dict(token=TOKEN, seed="none", rate_limit_per_10s=0, search_per_second=0, daily_limit=0)
        cfg.update(config)
        app = create_app(HubSpotSandboxConfig(**cfg))
        server = ServerThread(app).start()
        client = httpx.Client(base_url=server.url, headers=AUTH, timeout=5)
        started.append((server, client))
        return server, client, app

    yield start
    for server, client in started:
        client.close()
        server.stop()


def test_ten_second_rolling_limit_headers_and_429(serve: Any) -> None:
    clock = Clock(frozen_ms=T0)
    _, http, _ = serve(rate_limit_per_10s=3, daily_limit=1000, clock=clock)
    remaining = []
    for _ in range(3):
        r = http.get("/crm/v3/objects/companies")
        assert r.status_code == 200
        assert r.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert r.headers["X-HubSpot-RateLimit-Daily"] == "1000"
        remaining.append(int(r.headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    r = http.post("/crm/v3/objects/companies", json={"properties": {"name": "blocked"}})
    assert r.status_code == 429
    body = r.json()
    assert body["status"] == "error" and body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert len(body["correlationId"]) == 36
    # search is exempt from the 10-second bucket
    assert http.post("/crm/v3/objects/companies/search", json={}).status_code == 200
    clock.advance(9_999)
    assert http.get("/crm/v3/objects/companies").status_code == 429
    clock.advance(1)  # the window rolls: the first three hits are now 10 s old
    r = http.get("/crm/v3/objects/companies")
    assert r.status_code == 200 and r.json()["results"] == []  # the blocked create had no effect


def test_search_per_second_limit(serve: Any) -> None:
    clock = Clock(frozen_ms=T0)
    _, http, _ = serve(search_per_second=2, rate_limit_per_10s=100, clock=clock)
    codes = [http.post("/crm/v3/objects/deals/search", json={}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = http.post("/crm/v3/objects/deals/search", json={})
    assert r.json()["policyName"] == "SECONDLY"
    ok = http.post("/crm/v3/objects/deals/search", json={})
    assert ok.status_code == 429
    assert http.get("/crm/v3/objects/deals").status_code == 200  # other calls are unaffected
    clock.advance(1_000)
    searched = http.post("/crm/v3/objects/deals/search", json={})
    assert searched.status_code == 200
    assert "X-HubSpot-RateLimit-Remaining" not in searched.headers  # HubSpot omits them on search


def test_daily_limit_resets_at_account_midnight(serve: Any) -> None:
    # 2026-05-29 23:59:59 JST
    clock = Clock(frozen_ms=1_780_066_799_000)
    _, http, app = serve(daily_limit=3, clock=clock)
    rs = [http.get("/crm/v3/owners") for _ in range(3)]
    assert [r.headers["X-HubSpot-RateLimit-Daily-Remaining"] for r in rs] == ["2", "1", "0"]
    r = http.get("/crm/v3/owners")
    assert r.status_code == 429 and r.json()["policyName"] == "DAILY"
    assert http.post("/crm/v3/objects/companies/search", json={}).status_code == 429  # search counts too
    clock.advance(1_000)  # midnight in Asia/Tokyo
    assert http.get("/crm/v3/owners").status_code == 200
    assert app.state.limits.daily_used == 1


def test_faults_are_deterministic_for_a_seed(serve: Any) -> None:
    def run(seed: int) -> list[int | str]:
        _, http, _ = serve(faults=FaultConfig(fault_rate=0.4, fault_seed=seed, kinds=("5xx", "429", "drop")))
        out: list[int | str] = []
        for _ in range(25):
            try:
                out.append(http.get("/crm/v3/objects/companies").status_code)
            except httpx.TransportError as e:
                out.append(type(e).__name__)
        return out

    a, b, c = run(7), run(7), run(8)
    assert a == b and a != c
    assert 200 in a and any(x in (500, 502, 503) for x in a) and 429 in a and "RemoteProtocolError" in a
    faults = sum(1 for x in a if x != 200)
    assert 4 <= faults <= 18


# a dropped connection reaches the client as a closed stream or, when the close races the request body, a reset
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)


def test_injected_faults_shapes_and_side_effects(serve: Any) -> None:
    server, http, app = serve(faults=FaultConfig(fault_rate=1.0, fault_seed=1, kinds=("5xx",)))
    injector = app.state.faults
    r = http.post("/crm/v3/objects/companies", json={"properties": {"name": "not written"}})
    assert r.status_code in (500, 502, 503)
    assert r.json()["status"] == "error" and r.json()["correlationId"]

    injector.config.kinds = ("429",)
    r = http.post("/crm/v3/objects/companies", json={"properties": {"name": "not written"}})
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["errorType"] == "RATE_LIMIT"

    injector.config.kinds = ("drop",)
    with pytest.raises(DROPPED):
        http.post("/crm/v3/objects/companies", json={"properties": {"name": "not written"}})

    injector.config.kinds = ("drop_after",)
    with pytest.raises(DROPPED):
        http.post("/crm/v3/objects/companies", json={"properties": {"name": "written, response lost"}})

    injector.config.kinds = ("timeout",)
    injector.config.timeout_s = 0.2
    assert http.get("/crm/v3/objects/companies").status_code == 504
    with pytest.raises(httpx.ReadTimeout):
        injector.config.timeout_s = 1.0
        http.get("/crm/v3/objects/companies", timeout=0.3)

    assert [k for k, _, _ in injector.injected] == ["5xx", "429", "drop", "drop_after", "timeout", "timeout"]
    # the admin endpoints are never faulted; only the drop_after write happened
    health = httpx.get(server.url + "/_sandbox/health").json()
    assert health["counts"]["companies"] == 1
    injector.config.fault_rate = 0.0
    names = [c["properties"]["name"] for c in http.get("/crm/v3/objects/companies").json()["results"]]
    assert names == ["written, response lost"]


def test_latency_is_added() -> None:
    import time

    app = create_app(HubSpotSandboxConfig(token=TOKEN, seed="none", rate_limit_per_10s=0, faults=FaultConfig(latency_ms=150)))
    with ServerThread(app) as server:
        t = time.perf_counter()
        assert httpx.get(server.url + "/crm/v3/owners", headers=AUTH).status_code == 200
        assert time.perf_counter() - t >= 0.15


def test_fault_config_validation() -> None:
    with pytest.raises(ValueError):
        FaultConfig(fault_rate=1.5)
    with pytest.raises(ValueError):
        FaultConfig(fault_rate=0.1, kinds=("meteor",))
    assert FaultConfig().kinds == ("5xx", "429", "timeout", "drop")


def test_sliding_window_limiter_and_clock() -> None:
    clock = Clock(frozen_ms=0)
    lim = SlidingWindowLimiter(2, 10.0, clock)
    assert lim.try_acquire("a") == (True, 1, 0.0)
    clock.advance(4_000)
    assert lim.try_acquire("a") == (True, 0, 0.0)
    ok, remaining, retry = lim.try_acquire("a")
    assert (ok, remaining) == (False, 0) and retry == pytest.approx(6.0)
    assert lim.try_acquire("b")[0] is True  # keys are independent
    clock.advance(6_000)
    assert lim.try_acquire("a") == (True, 0, 0.0)
    assert SlidingWindowLimiter(0, 1.0).try_acquire()[0] is True  # 0 = off

    c = Clock()
    frozen = c.freeze(5_000)
    assert c.now_ms() == frozen == 5_000 and c.frozen
    assert c.advance(250) == 5_250
    c.unfreeze()
    assert not c.frozen and 5_250 <= c.now_ms() < 6_250


def test_missing_scope_is_403(serve: Any) -> None:
    _, http, _ = serve(scopes=frozenset({"crm.objects.companies.read", "crm.objects.owners.read"}))
    assert http.get("/crm/v3/objects/companies").status_code == 200
    assert http.post("/crm/v3/objects/companies/search", json={}).status_code == 200  # search is a read
    assert http.get("/crm/v3/owners").status_code == 200
    r = http.post("/crm/v3/objects/companies", json={"properties": {"name": "x"}})
    assert r.status_code == 403
    body = r.json()
    assert body["category"] == "MISSING_SCOPES" and body["status"] == "error"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.companies.write"]
    assert http.get("/crm/v3/objects/deals").status_code == 403
    assert http.get("/crm/v3/properties/companies").json()["category"] == "MISSING_SCOPES"  # crm.schemas.*.read
