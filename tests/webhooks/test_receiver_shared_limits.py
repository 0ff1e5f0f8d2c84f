"""The webhook receiver's batch read of created deals' stages takes its slots in the workers' shared HubSpot
buckets (``RENKEI_RATE_LIMITS=shared``): the same rows a worker's client counts in, the daily cap included —
used up, the read is not sent and the stage is unknown (the receiver passes the event on)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import SecretStr

from renkei.connectors.http import QuotaExhausted
from renkei.store.repo import Store


def test_created_deals_stage_read_takes_shared_hubspot_slots(tmp_path, hubspot_sandbox):
    from renkei.connectors.hubspot.factory import build, hubspot_rate_scope
    from renkei.settings import Settings
    from renkei.webhooks.config import DealStages

    url = f"sqlite:///{tmp_path / 'renkei.db'}"
    store = Store.open(url, cached=False)
    token = hubspot_sandbox.config.token
    settings = Settings(database_url=url, rate_limits="shared", hubspot_base_url=hubspot_sandbox.url,
                        hubspot_token=token, hubspot_daily_cap=3, home=tmp_path)
    deals = hubspot_sandbox.app.state.store
    won = deals.create("deals", {"dealname": "即受注", "dealstage": "closedwon", "pipeline": "default"}).id
    open_ = deals.create("deals", {"dealname": "見込み", "dealstage": "appointmentscheduled",
                                   "pipeline": "default"}).id

    reader = DealStages(settings)
    assert reader([won, open_]) == {won: "closedwon", open_: "appointmentscheduled"}
    worker = build(settings, store, None)  # a worker's HubSpot client: the same account, the same rows
    worker.client.request("GET", "/crm/v3/objects/deals", params={"limit": 1})
    scope = hubspot_rate_scope(settings)
    rows = worker.client.rate_limiter.state()
    assert rows[f"{scope}:default"]["acquired_total"] == 2 and rows[f"{scope}:daily"]["used"] == 2
    reader([won])
    with pytest.raises(QuotaExhausted):  # the day's cap used up between them: not sent
        reader([open_])
    assert worker.client.rate_limiter.state()[f"{scope}:default"]["acquired_total"] == 3

    # without shared limits (a SQLite store of one process): the receiver reads as before, no rows
    local = DealStages(SimpleNamespace(hubspot_base_url=hubspot_sandbox.url, hubspot_token=SecretStr(token),
                                       rate_limits="local", database_url=url))
    assert local([won]) == {won: "closedwon"}
    assert worker.client.rate_limiter.state()[f"{scope}:default"]["acquired_total"] == 3
    worker.client.close()
