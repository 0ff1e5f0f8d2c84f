"""Money Forward client against the sandbox: OAuth (authorization code, refresh rotation, expiry), paging,
limits, error shapes, and no secret in logs or errors."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from renkei.connectors.http import BadRequest, NotFound, ValidationFailed
from renkei.connectors.moneyforward.auth import (
    MemoryTokenStore,
    MoneyForwardAuth,
    RefreshTokenRejected,
    authorize_url,
    exchange_code,
)
from renkei.connectors.moneyforward.client import MoneyForwardClient
from renkei.connectors.moneyforward.testing import FAST_LIMITS, sandbox_client
from renkei.sandboxes.common import Clock, ServerThread
from renkei.sandboxes.moneyforward.spec import SPEC

SECRET = "mf-client-secret-5c1e0b"


@pytest.fixture(scope="module")
def sandbox():
    clock = Clock()
    app = SPEC.app(seed="demo", client_secret=SECRET, print_refresh_token=False, clock=clock)
    with ServerThread(app) as server:
        yield server.url, app, clock


def test_authorization_code_then_rotating_refreshes_and_no_secret_in_logs(sandbox, caplog):
    url, app, clock = sandbox
    caplog.set_level(logging.DEBUG)
    cfg = app.state.config
    # one-time setup: consent → code → token set in the store
    consent = authorize_url(url, cfg.client_id, "https://renkei.example/callback", state="s-1")
    resp = httpx.get(consent, follow_redirects=False)
    assert resp.status_code == 302
    query = parse_qs(urlparse(resp.headers["location"]).query)
    assert query["state"] == ["s-1"]
    caplog.clear()  # the code went through the user's browser; from here on only Renkei handles secrets
    store = MemoryTokenStore()
    first = exchange_code(url, cfg.client_id, SECRET, query["code"][0], "https://renkei.example/callback", store)
    assert first.generation == 1
    # a code is single use
    with pytest.raises(RefreshTokenRejected):
        exchange_code(url, cfg.client_id, SECRET, query["code"][0], "https://renkei.example/callback",
                      MemoryTokenStore())

    auth = MoneyForwardAuth(client_id=cfg.client_id, client_secret=SECRET, store=store, token_url=url + "/token")
    client = MoneyForwardClient(base_url=url + "/api/v3", auth=auth, limits=FAST_LIMITS, backoff_initial=0.01)
    try:
        assert client.get_office()["registration_code"] == "T7010705000725"
        assert auth.refresh_count == 0  # the code's access token was used as is
        # the access token expires (1 h): the next call refreshes once and stores the rotated refresh token
        clock.advance(3601 * 1000)
        client.get_office()
        assert auth.refresh_count == 1 and store.load().generation == 2
        rotated = store.load().refresh_token
        assert rotated != first.refresh_token
        # MF rotates: the first refresh token is spent
        spent = httpx.post(url + "/token", data={"grant_type": "refresh_token", "refresh_token": first.refresh_token,
                                                 "client_id": cfg.client_id, "client_secret": SECRET})
        assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"
        # a token revoked server-side (401) → refreshed once, the call succeeds
        auth.invalidate()
        assert client.get_partner(next(iter(app.state.store.partners)))["departments"]
        assert store.load().generation == 3
    finally:
        client.close()
    # a stale store (somebody burnt the token) is a clear, secret-free error
    stale = MoneyForwardAuth(client_id=cfg.client_id, client_secret=SECRET, token_url=url + "/token",
                             store=MemoryTokenStore(first))
    with pytest.raises(RefreshTokenRejected) as err:
        stale.force_refresh(first.access_token)
    tokens = [first.refresh_token, first.access_token, rotated, store.load().access_token, SECRET, query["code"][0]]
    for secret in tokens:
        assert secret not in caplog.text and secret not in str(err.value) and secret not in repr(store.load())


def test_paging_limits_and_error_shapes(sandbox):
    url, app, _ = sandbox
    client = sandbox_client(url, app)
    try:
        pages = list(client.iter_partner_pages(per_page=7))
        assert [len(p.items) for p in pages] == [7, 7, 7, 7, 7, 1]
        assert [p.next_cursor for p in pages] == [2, 3, 4, 5, 6, None] and pages[0].total == 36
        assert len({p["id"] for pg in pages for p in pg.items}) == 36
        assert all(len(p["id"]) == 22 for pg in pages for p in pg.items)
        assert client.find_partner_by_code("TK0003")["code"] == "TK0003"
        assert [p["code"] for p in client.iter_partner_pages(code="TK0001,TK0002").__next__().items] == ["TK0001",
                                                                                                         "TK0002"]
        # per_page above the documented 100 → 400 with MF's body
        with pytest.raises(ValidationFailed) as err:
            client._request("GET", "/partners", params={"per_page": 101})
        assert err.value.status == 400 and "per_page" in err.value.details["errors"]
        # validation errors name the field; nothing is created
        before = len(app.state.store.partners)
        with pytest.raises(ValidationFailed) as err:
            client.create_partner({"name": "x" * 101, "departments": [{"zip": "12-345"}]})
        assert set(err.value.details["errors"]) == {"name", "departments[0].zip"}
        assert len(app.state.store.partners) == before
        with pytest.raises(NotFound):
            client.get_billing("AAAAAAAAAAAAAAAAAAAAAA")
        with pytest.raises(BadRequest):
            client.create_item({"name": "税区分なし"})  # excise is required
        # a token with data.read only: lists answer 404 (as integrators report), writes 403
        read_only = httpx.post(url + "/_sandbox/tokens/access", json={"scope": "mfc/invoice/data.read"}).json()
        h = {"Authorization": f"Bearer {read_only['access_token']}"}
        assert httpx.get(url + "/api/v3/billings", headers=h).status_code == 404
        assert httpx.post(url + "/api/v3/items", headers=h, json={"name": "a", "excise": "ten_percent"}).status_code == 403
        assert httpx.get(url + "/api/v3/office", headers=h).status_code == 200
        # billing writes are throttled at 3/s with 429 + Retry-After: the client waits and succeeds
        dept = next(iter(app.state.store.partners.values()))["departments"][0]["id"]
        made = [client.create_billing({"department_id": dept, "billing_date": "2026-10-01", "due_date": "2026-10-31",
                                       "memo": f"renkei:t:{n}", "tag_names": [f"renkei:t:{n}"],
                                       "items": [{"name": "作業", "price": 1000, "quantity": 1,
                                                  "excise": "ten_percent"}]}) for n in range(4)]
        assert len({b["id"] for b in made}) == 4 and client.stats.rate_limited >= 1
        pdf = client.download_pdf(made[0]["id"])
        assert pdf.startswith(b"%PDF")
    finally:
        client.close()
