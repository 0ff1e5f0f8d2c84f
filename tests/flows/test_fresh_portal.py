"""A fresh HubSpot portal — none of Renkei's ``renkei_*`` properties, no ``renkei`` group — is set up by
the first run of any flow (the preflight's schema bootstrap), every flow Completes on it, and a second
run writes no property definitions at all."""

from __future__ import annotations

import pytest
from starlette.middleware.base import BaseHTTPMiddleware

from renkei.connectors.hubspot.properties import GROUP_NAME, RENKEI_PROPERTIES
from tests.flows.builders import freee_partner, hs_company, hs_deal
from tests.flows.conftest import World

from tests.sandbox_env import sandbox_env

SCHEMA_WRITE = ("POST", "PATCH", "PUT", "DELETE")


@pytest.fixture
def fresh_portal():
    """The HubSpot sandbox with an empty account (HubSpot's own properties only) that records every
    property-definition request it gets."""
    from renkei.sandboxes.common import ServerThread
    from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app

    config = HubSpotSandboxConfig(seed="none", rate_limit_per_10s=0, search_per_second=0)
    app = create_app(config)
    calls: list[tuple[str, str]] = []

    async def record(request, call_next):
        if request.url.path.startswith("/crm/v3/properties/"):
            calls.append((request.method, request.url.path))
        return await call_next(request)

    app.add_middleware(BaseHTTPMiddleware, dispatch=record)
    with ServerThread(app) as server:
        server.app, server.config, server.calls = app, config, calls
        yield server


@pytest.fixture
def fresh_world(prefect_api, fresh_portal, freee_sandbox, tmp_path, monkeypatch) -> World:
    """Like ``world`` but without ensuring any property first: the portal is as a customer hands it over."""
    from renkei.tasks.runtime import get_runtime, reset_runtime

    env = sandbox_env(fresh_portal, freee_sandbox, tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    reset_runtime()
    yield World(get_runtime(), fresh_portal, freee_sandbox, env, tmp_path)
    reset_runtime()


def _flows():
    from renkei.flows.customer_sync import customer_sync
    from renkei.flows.order_to_invoice import order_to_invoice
    from renkei.flows.payment_writeback import payment_writeback
    from renkei.flows.product_sync import product_sync
    from renkei.flows.subscription_proration import subscription_proration

    return [customer_sync, product_sync, order_to_invoice, payment_writeback, subscription_proration]


def _property_names(world: World, object_type: str) -> dict[str, str]:
    data = world.hs().request("GET", f"/crm/v3/properties/{object_type}")
    return {p["name"]: p.get("groupName") for p in data["results"]}


def test_every_flow_completes_on_a_fresh_portal_and_the_second_run_writes_no_schema(fresh_world):
    world = fresh_world
    for object_type, specs in RENKEI_PROPERTIES.items():
        assert not {s.name for s in specs} & set(_property_names(world, object_type)), "the portal is not fresh"
    world.hubspot.calls.clear()
    # work for each flow: a company only HubSpot has, a partner only freee has, an item, a won deal
    company = hs_company(world, "株式会社まっさら商事")
    freee_partner(world, "有限会社はじめて工業")
    world.fr().create_item({"name": "初期設定サービス", "code": "FRESH-01"})
    hs_deal(world, "初回受注", company, [{"name": "初期設定サービス", "quantity": 1, "price": 50_000}])

    for fn in _flows():  # the first flow creates the schema; none may fail on a missing property
        state = fn(return_state=True)
        assert state.is_completed(), f"{fn.name}: {state.type.value} {state.message}"

    for object_type, specs in RENKEI_PROPERTIES.items():
        have = _property_names(world, object_type)
        for spec in specs:
            assert have.get(spec.name) == GROUP_NAME, f"{object_type}.{spec.name} not created in its group"
    writes = [c for c in world.hubspot.calls if c[0] in SCHEMA_WRITE]
    created = [c for c in writes if c[1].count("/") == 4]  # POST /crm/v3/properties/{type}
    assert len(created) == sum(len(s) for s in RENKEI_PROPERTIES.values())  # each exactly once

    # a new process on the same portal (fresh caches): property reads only, no definition written
    from renkei.tasks.runtime import reset_runtime

    reset_runtime()
    world.hubspot.calls.clear()
    for fn in _flows():
        state = fn(return_state=True)
        assert state.is_completed(), f"{fn.name} (second run): {state.type.value} {state.message}"
    assert [c for c in world.hubspot.calls if c[0] in SCHEMA_WRITE] == []
    assert world.hubspot.calls, "the second run read the property lists"
