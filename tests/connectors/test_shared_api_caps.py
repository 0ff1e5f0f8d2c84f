"""Every API's cap shared by every worker: HubSpot's daily cap counted client-side in the state store (two
processes stop at the cap together, before the sandbox refuses), the Salesforce org's rolling-24-hour budget
read from ``Sforce-Limit-Info`` and shared (a worker that never saw a response stops too), and ``renkei setup``
creating the rows."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from renkei.connectors.http import QuotaExhausted
from renkei.sandboxes.common import ServerThread
from renkei.store.repo import Store
from tests.spawned import SPAWN, run_spawned

CAP = 40


def _hubspot_worker(db_url: str, base_url: str, token: str, home: str, start_at: float, out) -> None:
    from renkei.connectors.hubspot.factory import build
    from renkei.settings import Settings

    settings = Settings(database_url=db_url, rate_limits="shared", hubspot_base_url=base_url, hubspot_token=token,
                        hubspot_daily_cap=CAP, home=home)
    crm = build(settings, Store.open(db_url, run_migrations=False), None)
    time.sleep(max(0.0, start_at - time.time()))
    sent, stopped = 0, None
    try:
        for _ in range(CAP + 5):
            crm.client.request("GET", "/crm/v3/objects/companies", params={"limit": 1})
            sent += 1
    except QuotaExhausted as exc:
        stopped = str(exc) if exc.system == "hubspot" else f"not tagged hubspot: {exc.system}"
    out.put((sent, stopped, crm.client.stats.rate_limited))


def test_two_processes_share_hubspot_daily_cap_and_stop_at_it_together(pg_url, tmp_path):
    from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app
    from renkei.settings import Settings
    from renkei.setup import setup_rate_limits

    Store.open(pg_url, cached=False)  # migrations, once
    config = HubSpotSandboxConfig(seed="none", rate_limit_per_10s=0, search_per_second=0, daily_limit=CAP)
    app = create_app(config)
    with ServerThread(app) as server:
        settings = Settings(database_url=pg_url, rate_limits="shared", hubspot_base_url=server.url,
                            hubspot_token=config.token, hubspot_daily_cap=CAP, home=tmp_path)
        rows = {name: outcome for _, name, outcome in setup_rate_limits(settings)}  # renkei setup
        daily = next(n for n in rows if n.startswith("hubspot:") and n.endswith(":daily"))
        assert rows[daily] == "created"

        out = SPAWN.Queue()
        start_at = time.time() + 3.0  # both children import and connect first
        results = run_spawned(_hubspot_worker, [(pg_url, server.url, config.token, str(tmp_path), start_at, out)] * 2,
                              out)
        # both stopped on the shared count (QuotaExhausted, the clean-stop path), together exactly at the cap
        assert all(stopped and "cap reached" in stopped for _, stopped, _ in results), results
        assert sum(sent for sent, _, _ in results) == CAP
        assert all(sent > 0 for sent, _, _ in results)  # each took part of the day's allowance
        # the sandbox counted exactly the cap and never had to refuse (no 429 DAILY)
        assert app.state.limits.daily_used == CAP
        assert sum(r for _, _, r in results) == 0
        with Store.open(pg_url, run_migrations=False, cached=False).engine.connect() as conn:
            used = conn.execute(text("SELECT used FROM rate_bucket WHERE name = :n"), {"n": daily}).scalar()
        assert used == CAP
        assert {o for _, n, o in setup_rate_limits(settings) if n.startswith("hubspot:")} == {"exists"}

        # the next day other apps of the account use most of it: HubSpot's X-HubSpot-RateLimit-Daily-Remaining
        # raises the shared count, so Renkei takes only what is left — still no 429
        from renkei.connectors.hubspot.factory import build

        with Store.open(pg_url, run_migrations=False, cached=False).engine.begin() as conn:
            conn.execute(text("UPDATE rate_bucket SET window_start = 0 WHERE name = :n"), {"n": daily})
        app.state.limits.daily_used = CAP - 5  # the other apps' requests
        crm = build(settings, Store.open(pg_url, run_migrations=False, cached=False), None)
        sent = 0
        with pytest.raises(QuotaExhausted):
            for _ in range(CAP):
                crm.client.request("GET", "/crm/v3/objects/companies", params={"limit": 1})
                sent += 1
        assert sent == 5 and app.state.limits.daily_used == CAP and crm.client.stats.rate_limited == 0
        crm.client.close()


def test_salesforce_org_budget_is_shared_and_probed_again(pg_url, tmp_path, monkeypatch):
    from renkei.connectors.salesforce import SalesforceClient, SalesforceSettings
    from renkei.connectors.salesforce.factory import salesforce_limiter_factory, salesforce_rate_scope
    from renkei.sandboxes.salesforce import SalesforceSandboxConfig, create_app
    from renkei.sandboxes.salesforce.spec import SPEC
    from renkei.settings import Settings
    from renkei.setup import setup_rate_limits

    store = Store.open(pg_url, cached=False)
    app = create_app(SalesforceSandboxConfig(seed="none", daily_limit=15_000))
    with ServerThread(app) as server:
        env = SPEC.env(server.url, app)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        sf = SalesforceSettings()
        settings = Settings(database_url=pg_url, rate_limits="shared", crm="salesforce", home=tmp_path)
        rows = {name: outcome for _, name, outcome in setup_rate_limits(settings)}
        bucket = f"{salesforce_rate_scope(sf)}:daily"
        assert rows[bucket] == "created"

        def worker() -> SalesforceClient:  # its own engine: another worker
            return SalesforceClient(sf, limiter_factory=salesforce_limiter_factory(
                settings, Store.open(pg_url, run_migrations=False, cached=False), sf))

        a, b = worker(), worker()
        app.state.daily.set_used(11_980)  # other integrations used most of the day; Renkei stops at 80 %: 12,000
        a.get("limits")  # a learns the org's usage from Sforce-Limit-Info and shares it
        assert app.state.daily.used() == 11_981
        sent = {"a": 0, "b": 0}
        stopped: dict[str, QuotaExhausted] = {}
        for _ in range(30):  # b never saw a response before: it counts what a reported and a's requests
            for name, client in (("a", a), ("b", b)):
                if name in stopped:
                    continue
                try:
                    client.get("sobjects")
                    sent[name] += 1
                except QuotaExhausted as exc:
                    stopped[name] = exc
        assert set(stopped) == {"a", "b"}, sent
        assert app.state.daily.used() == 12_000  # stopped exactly at the share, never refused by the org
        assert sent["a"] > 0 and sent["b"] > 0 and sum(sent.values()) == 19
        assert "daily API budget" in str(stopped["b"]) and stopped["b"].retry_after > 900
        assert a.stats.by_status.get(403, 0) == b.stats.by_status.get(403, 0) == 0

        # a third worker starting now stops before sending anything
        c = worker()
        with pytest.raises(QuotaExhausted):
            c.get("sobjects")
        assert app.state.daily.used() == 12_000

        # an hour later the usage has fallen (rolling 24 h): one probe request learns it, then work goes on
        app.state.daily.set_used(5_000)
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE rate_bucket SET window_start = window_start - 3600 WHERE name = :n"),
                         {"n": bucket})
        c.get("sobjects")
        b.get("sobjects")
        assert app.state.daily.used() == 5_002
        for client in (a, b, c):
            client.close()
