"""HubSpot contract tests on recorded traffic (vcrpy).

Default: **replay** the cassettes in ``tests/connectors/cassettes/hubspot/`` (no network, no server).
``RENKEI_VCR_RECORD=1``: re-record against the local sandbox (started here). ``RENKEI_VCR_RECORD=hubspot``
with ``RENKEI_HUBSPOT_TOKEN`` set: re-record against a real HubSpot developer test account (see
``connectors/hubspot/README.md``). Every recording passes through :func:`scrub_request` /
:func:`scrub_response`: the Authorization header is dropped, every host is rewritten to
``https://api.hubapi.com`` and any token is redacted from bodies and headers;
``test_cassettes_no_secrets.py`` double-checks the files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

vcr = pytest.importorskip("vcr")

from renkei.connectors.http import BadRequest, Unauthorized, redact  # noqa: E402
from renkei.connectors.hubspot import HubSpotClient  # noqa: E402
from renkei.connectors.hubspot import mapping as m  # noqa: E402

CASSETTES = Path(__file__).parent / "cassettes" / "hubspot"
CANONICAL = "https://api.hubapi.com"
SANDBOX_TOKEN = "renkei-vcr-sandbox-token-5c1d"
MODE = os.environ.get("RENKEI_VCR_RECORD", "").strip().lower()
RECORDING = MODE not in ("", "0", "false", "no")
REAL = MODE == "hubspot"
_SECRETS: set[str] = {SANDBOX_TOKEN}


def scrub_request(request):
    parts = urlsplit(request.uri)
    canon = urlsplit(CANONICAL)
    request.uri = urlunsplit((canon.scheme, canon.netloc, parts.path, redact(parts.query, tuple(_SECRETS)), ""))
    for h in list(request.headers):
        if h.lower() in ("authorization", "cookie", "x-api-key", "host"):
            del request.headers[h]
    if request.body:
        body = request.body.decode("utf-8", "replace") if isinstance(request.body, bytes) else request.body
        request.body = redact(body, tuple(_SECRETS)).encode("utf-8")
    return request


def scrub_response(response):
    headers = response.get("headers", {})
    for h in list(headers):
        if h.lower() in ("set-cookie", "cookie", "authorization", "date", "cf-ray", "server", "report-to", "nel"):
            del headers[h]
        else:
            headers[h] = [redact(v, tuple(_SECRETS)) for v in headers[h]]
    body = response.get("body", {}).get("string")
    if body:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        response["body"]["string"] = redact(text, tuple(_SECRETS)).encode("utf-8")
    return response


def make_vcr():
    return vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode="all" if RECORDING else "none",
        match_on=["method", "scheme", "host", "port", "path", "query", "body"],
        filter_headers=["authorization"],
        before_record_request=scrub_request,
        before_record_response=scrub_response,
        decode_compressed_response=True,
        serializer="yaml",
    )


@pytest.fixture
def target():
    """(base_url, token) to talk to: sandbox or real HubSpot when recording, the canonical host on replay."""
    if not RECORDING:
        yield CANONICAL, "replay-placeholder-token"
        return
    if REAL:
        token = os.environ.get("RENKEI_HUBSPOT_TOKEN")
        if not token:
            pytest.skip("RENKEI_VCR_RECORD=hubspot needs RENKEI_HUBSPOT_TOKEN (a developer test account)")
        _SECRETS.add(token)
        yield os.environ.get("RENKEI_HUBSPOT_BASE_URL", CANONICAL), token
        return
    from renkei.sandboxes.common import ServerThread
    from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app

    app = create_app(HubSpotSandboxConfig(token=SANDBOX_TOKEN, seed="none", rate_limit_per_10s=0,
                                          search_per_second=0, daily_limit=0))
    with ServerThread(app) as server:
        yield server.url, SANDBOX_TOKEN


def client(base_url: str, token: str) -> HubSpotClient:
    return HubSpotClient(base_url, token=token, rate_limits=None if not REAL else "documented", max_workers=1,
                         backoff_initial=0.01 if not REAL else 0.5, timeout=30)


def cassette(name: str):
    path = CASSETTES / f"{name}.yaml"
    if not RECORDING and not path.exists():
        pytest.skip(f"cassette {name}.yaml not recorded (RENKEI_VCR_RECORD=1)")
    return make_vcr().use_cassette(f"{name}.yaml")


def test_contract_companies(target):
    base, token = target
    with cassette("companies"):
        c = client(base, token)
        c.properties.ensure("companies")
        names = ["Renkei Contract 株式会社 A", "Renkei Contract 株式会社 B", "Renkei Contract 株式会社 C"]
        created = c.companies.batch_create([{"name": n, "renkei_partner_code": f"RC-{i}"} for i, n in enumerate(names)])
        assert created.ok and len({r.id for r in created.results}) == 3
        ids = [r.id for r in created.results]

        one = c.companies.get(ids[0], properties=["name", "renkei_partner_code"])
        assert one["properties"]["name"] == names[0] and one["id"] == ids[0]
        assert isinstance(one["properties"]["renkei_partner_code"], str)

        pages = []
        for page in c.companies.scan_pages(properties=["name"], limit=2):
            pages.append(page)
            if len(pages) == 2:
                break
        assert len(pages[0]) == 2

        upd = c.companies.batch_update([{"id": ids[1], "properties": {"phone": "03-1234-5678"}},
                                        {"id": "1", "properties": {"phone": "x"}}])
        assert [r.ok for r in upd.results] == [True, False] and upd.results[1].error

        ups = c.companies.batch_upsert([{"properties": {"renkei_partner_code": "RC-2", "name": names[2] + " 改"}},
                                        {"properties": {"renkei_partner_code": "RC-9", "name": "Renkei Contract D"}}],
                                       id_property="renkei_partner_code")
        assert ups.ok and [r.created for r in ups.results] == [False, True]
        assert ups.results[0].id == ids[2]
        ids.append(ups.results[1].id)

        found = []
        for _ in range(30):  # search is eventually consistent on real HubSpot
            found = c.companies.search(filter_groups=[{"filters": [
                {"propertyName": "renkei_partner_code", "operator": "EQ", "value": "RC-0"}]}],
                properties=m.COMPANY_PROPERTIES)["results"]
            if found or not RECORDING:
                break
            time.sleep(1)
        assert [r["id"] for r in found] == [ids[0]]
        res = m.company_from_hubspot(found[0])
        assert res.ok and res.value.partner_code == "RC-0" and res.value.updated_at is not None

        with pytest.raises(BadRequest):
            c.companies.search(limit=200, after=9_900)  # past the 10,000 cap
        c.companies.batch_archive(ids)


def test_contract_deals_pipelines_associations(target):
    base, token = target
    with cassette("deals"):
        c = client(base, token)
        won = c.won_stage_ids()
        assert won and all(c.stage_probabilities()[s] == 1.0 for s in won)
        stage = "closedwon" if "closedwon" in won else sorted(won)[0]
        comp = c.companies.create({"name": "Renkei Contract 商事"})
        deal = c.deals.create({"dealname": "Renkei Contract 案件", "dealstage": stage, "pipeline": "default",
                               "amount": "33000"})
        lines = c.line_items.batch_create([{"name": "保守", "quantity": "1", "price": "10000"},
                                           {"name": "設定", "quantity": "2", "price": "11500"}])
        c.associate_default("deals", deal["id"], "companies", comp["id"])
        c.associate_batch_default("deals", "line_items", [(deal["id"], r.id) for r in lines.results])
        [full] = c.read_deals_with_associations([deal["id"]], properties=m.DEAL_PROPERTIES,
                                                line_item_properties=m.LINE_ITEM_PROPERTIES)
        res = m.deal_from_hubspot(full)
        assert res.ok, res.error
        assert res.value.company_crm_id == comp["id"] and res.value.amount == 33000
        assert sorted(li.unit_price for li in res.value.line_items) == [10000, 11500]
        c.deals.archive(deal["id"])
        c.companies.archive(comp["id"])


def test_contract_unauthorized(target):
    base, _ = target
    bad = "pat-na1-renkei-test-0000"
    _SECRETS.add(bad)
    with cassette("unauthorized"):
        c = client(base, bad)
        with pytest.raises(Unauthorized) as ei:
            c.companies.list_page(limit=1)
    assert bad not in str(ei.value) and bad not in repr(ei.value)
    assert ei.value.status == 401
