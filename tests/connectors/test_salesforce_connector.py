"""The Salesforce connector against the Salesforce sandbox over real HTTP: reads and writes in canonical
terms, the (SystemModstamp, Id) cursor across same-second ties, per-record errors of sObject Collections,
the daily-budget stop, JWT / client-credentials login with re-login on 401, and no secret in any log."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

import pytest

from renkei.connectors.base import CRMConnector
from renkei.connectors.http import BadRequest, QuotaExhausted, Unauthorized
from renkei.connectors.salesforce import SalesforceClient, SalesforceCRM, SalesforceSettings, SalesforceSetupError
from renkei.domain.model import Address, Company, Product, TaxCategory
from renkei.sandboxes.common import Clock, FaultConfig, ServerThread
from renkei.sandboxes.salesforce import SalesforceSandboxConfig, create_app
from renkei.sandboxes.salesforce.spec import SPEC

SECRET = "renkei-test-sf-secret-5d2b9e"


def serve(**options):
    config = SalesforceSandboxConfig(client_secret=SECRET, **options)
    app = create_app(config)
    server = ServerThread(app).start()
    server.app, server.config = app, config
    return server


def connector(server, **overrides) -> SalesforceCRM:
    env = {k[len("RENKEI_SALESFORCE_"):].lower(): v for k, v in SPEC.env(server.url, server.app).items()
           if k.startswith("RENKEI_SALESFORCE_")}
    return SalesforceCRM(SalesforceClient(SalesforceSettings(**{**env, **overrides}), backoff_initial=0.01))


@pytest.fixture(scope="module")
def demo():
    server = serve(seed="demo")
    yield server
    server.stop()


def test_read_and_write_paths_in_canonical_terms(demo):
    crm = connector(demo)
    assert isinstance(crm, CRMConnector) and crm.capabilities.merges and crm.capabilities.name == "salesforce"
    crm.prepare()
    assert crm.capabilities.daily_api_limit == 15000  # learnt from Sforce-Limit-Info

    companies = [r for b in crm.iter_company_changes(None) for r in b.records]
    assert len(companies) == 40 and all(r.ok and not r.value.archived for r in companies)
    duplicate = demo.app.state.store.demo_ids["accounts"]["C01-DUP"]
    yamada_record = next(r for r in companies if r.value.name == "株式会社山田商事")
    assert yamada_record.merged_ids == (duplicate,)  # merges=True: the loser's id follows the survivor
    assert [duplicate] in list(crm.iter_archived_company_ids())
    yamada = yamada_record.value
    assert yamada.address.prefecture == "東京都" and yamada.corporate_number and yamada.domain == "yamada-shoji.co.jp"

    won = crm.won_stage_ids()
    assert won == {"Closed Won"}
    stage_filter = [{"propertyName": "dealstage", "operator": "IN", "values": sorted(won)}]
    deals = [r for b in crm.iter_deal_changes(None, extra_filters=stage_filter) for r in b.records]
    assert len(deals) == 18 and all(r.ok for r in deals)
    d01 = next(r.value for r in deals if r.value.name == "山田商事 導入一式")
    assert d01.amount == sum(li.unit_price * li.quantity for li in d01.line_items) == 900_000
    assert d01.company_crm_id == yamada.crm_id and d01.line_items[0].tax_category is TaxCategory.STANDARD_10
    d10 = next(r.value for r in deals if "珈琲豆" in r.value.name)
    assert {li.tax_category for li in d10.line_items} == {TaxCategory.REDUCED_8, TaxCategory.STANDARD_10}

    # upsert by external id: created, missing key (never sent), updated
    res = crm.upsert_companies([Company(name="株式会社コネクタ", partner_code="CN-1",
                                        address=Address(street="丸の内1-1", building="連携ビル3F", prefecture="東京都")),
                                Company(name="キー無し商店")])
    assert [(r.index, r.ok, r.created) for r in res] == [(0, True, True), (1, False, None)]
    assert res[1].category == "MISSING_KEY"
    again = crm.upsert_companies([Company(name="株式会社コネクタ", partner_code="cn-1", phone="03-1111-2222")])
    assert again[0].ok and again[0].id == res[0].id and again[0].created is False
    acct = demo.app.state.store.get("Account", res[0].id)
    assert acct["BillingStreet"] == "丸の内1-1\n連携ビル3F" and acct["Phone"] == "03-1111-2222"

    # write-backs with the shared renkei_* names; bad inputs fail per input, never the batch
    deleted_opp = demo.app.state.store.demo_ids["opportunities"]["D31"]
    demo.app.state.store.delete("Opportunity", deleted_opp)
    out = crm.update_deal_properties({
        d01.crm_id: {"renkei_invoice_number": "INV-2026-0001", "renkei_invoice_status": "created",
                     "renkei_paid_amount": 990_000, "renkei_paid_at": "2026-11-30"},
        "999999999": {"renkei_invoice_id": "x"},
        d10.crm_id: {"renkei_invoice_number": "N" * 65},
        deleted_opp: {"renkei_invoice_status": "created"},
        deals[2].value.crm_id: {"renkei_no_such_field": "1"},
    })
    assert [r.ok for r in out] == [True, False, False, False, False]
    assert [r.category for r in out[1:]] == ["MALFORMED_ID", "STRING_TOO_LONG", "ENTITY_IS_DELETED", "INVALID_FIELD"]
    [got] = crm.get_deals([d01.crm_id], with_line_items=False)
    assert got.raw["Renkei_Invoice_Number__c"] == "INV-2026-0001" and got.value.line_items == []
    opp = demo.app.state.store.get("Opportunity", d01.crm_id)
    assert opp["Renkei_Paid_Amount__c"] == Decimal(990_000) and opp["Renkei_Paid_At__c"] == "2026-11-30"
    gone = crm.get_deals([deleted_opp, d01.crm_id])
    assert [g.ok for g in gone] == [False, True] and "not found" in gone[0].error

    # products: Product2 by Renkei_Item_Code__c plus the standard price
    prods = crm.upsert_products([Product(code="RK-NEW-1", name="新サービス", unit_price=12_000),
                                 Product(code="RK-TRN", name="オンサイト研修（1日）", unit_price=160_000)])
    assert [(p.ok, p.created) for p in prods] == [(True, True), (True, False)]
    prices = {e["ProductCode"]: e["UnitPrice"] for e in demo.app.state.store.rows("PricebookEntry")}
    assert prices["RK-NEW-1"] == Decimal(12_000) and prices["RK-TRN"] == Decimal(160_000)
    crm.close()


def test_cursor_never_skips_or_repeats_same_second_ties():
    clock = Clock()
    clock.freeze()
    server = serve(seed="none", clock=clock)
    try:
        store = server.app.state.store
        ids = [store.create("Account", {"Name": f"同時刻 {i}"}) for i in range(450)]  # one SystemModstamp
        crm = connector(server, query_batch_size=200, settle_timeout_seconds=0.3)
        # the org's clock stays in that second: the watermark cannot tie-break, the next read re-reads it
        fresh = list(crm.iter_company_changes(None))
        assert all(b.watermark.after_id is None for b in fresh)
        store.update("Account", ids[0], {"Phone": "03-0000-0001"})  # same second, lowest Id, after the read
        again = [r.source_id for b in crm.iter_company_changes(str(fresh[-1].watermark)) for r in b.records]
        assert sorted(again) == sorted(ids)  # nothing missed

        # a write in the same second *during* the read: the read waits for the second to end, reads it again
        # and hands the late change over with the rest; then its watermark can carry the Id
        def late_write() -> None:
            store.update("Account", ids[2], {"Phone": "03-0000-0002"})
            clock.advance(1000)

        timer = threading.Timer(0.25, late_write)
        timer.start()
        crm_wait = connector(server, query_batch_size=200, settle_timeout_seconds=5)
        settled = list(crm_wait.iter_company_changes(None))
        timer.join()
        final = {r.source_id: r for r in settled[-1].records}
        assert settled[-1].watermark.after_id and final[ids[2]].value.phone == "03-0000-0002"
        assert list(crm_wait.iter_company_changes(settled[-1].watermark)) == []

        clock.advance(5000)  # long settled: page watermarks carry the Id straight away
        batches = list(crm.iter_company_changes(None))
        assert [len(b.records) for b in batches] == [200, 200, 50] and batches[-1].exhausted
        assert sorted(r.source_id for b in batches for r in b.records) == sorted(ids)
        order = [r.source_id for b in batches for r in b.records]
        # resuming from any page's watermark continues exactly after it (ties broken by Id)
        resumed = [r.source_id for b in crm.iter_company_changes(batches[0].watermark) for r in b.records]
        assert resumed == order[200:]
        encoded = str(batches[-1].watermark)
        assert "|" in encoded and list(crm.iter_company_changes(encoded)) == []
        # later writes, a new record and an old one changed, are picked up once each
        late = store.create("Account", {"Name": "同時刻 後着"})
        clock.advance(1000)
        store.update("Account", ids[1], {"Phone": "03-0000-0000"})
        after = [r.source_id for b in crm.iter_company_changes(encoded) for r in b.records]
        assert after == [late, ids[1]]
        crm.close()
        crm_wait.close()
    finally:
        server.stop()


def test_collections_report_per_record_errors_and_all_or_none(demo):
    client = connector(demo).client
    rows = [{"Name": "一括 A", "Renkei_Partner_Code__c": "BULK-A"}, {"Name": "一括 B"},
            {"Name": "x" * 300}, {"Name": "一括 D", "Renkei_Partner_Code__c": "bulk-a"}]
    res = client.create_records("Account", rows)
    assert [r.ok for r in res] == [True, True, False, False]
    assert (res[2].category, res[3].category) == ("STRING_TOO_LONG", "DUPLICATE_VALUE")
    before = len(list(demo.app.state.store.rows("Account")))
    rolled = client.create_records("Account", [{"Name": "全か無か 1"}, {"Name": ""}], all_or_none=True)
    assert [r.category for r in rolled] == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "REQUIRED_FIELD_MISSING"]
    assert len(list(demo.app.state.store.rows("Account"))) == before
    ups = client.upsert_records("Account", "Renkei_Partner_Code__c",
                                [{"Renkei_Partner_Code__c": f"BULK-{i:03d}", "Name": f"一括 {i}"} for i in range(250)]
                                + [{"Name": "キー無し"}])
    assert len(ups) == 251 and all(r.ok and r.created for r in ups[:250]) and ups[250].category == "MISSING_ARGUMENT"
    assert client.stats.requests == 4  # one API call per collection of ≤ 200
    client.close()


def test_setup_check_daily_budget_and_auth(caplog):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    server = serve(seed="none", jwt_public_key_pem=public_pem,
                   missing_fields=("Opportunity.Renkei_Invoice_Url__c", "Account.Renkei_Partner_Code__c"))
    caplog.set_level(logging.DEBUG)
    try:
        # JWT bearer login (no secret sent); the setup check names every missing field and how to add them
        crm = connector(server, client_secret=None, private_key=private_pem)
        assert crm.client.auth.method == "jwt_bearer"
        with pytest.raises(SalesforceSetupError) as setup:
            crm.prepare()
        msg = str(setup.value)
        assert "Opportunity.Renkei_Invoice_Url__c" in msg and "Account.Renkei_Partner_Code__c" in msg
        assert "README" in msg and "Renkei_Invoice_Number__c" not in msg

        # expired session: one re-login, then the call succeeds
        tokens_before = set(server.app.state.sessions)
        server.app.state.sessions.clear()
        assert crm.won_stage_ids() == {"Closed Won"} and crm.client.auth.logins == 2
        tokens = tokens_before | set(server.app.state.sessions)

        # daily budget: stop before the cap (80 % by default) without sending
        server.app.state.daily.set_used(11_990)
        crm.client.limits()
        sent = server.app.state.daily.used()
        with pytest.raises(QuotaExhausted, match="daily API budget"):
            for _ in range(20):
                crm.won_stage_ids()
        assert server.app.state.daily.used() == 12_000 and crm.client.budget.remaining == 0 and sent == 11_991
        # the org's own cap answers 403 REQUEST_LIMIT_EXCEEDED → QuotaExhausted, not retried
        greedy = connector(server, client_secret=None, private_key=private_pem, daily_budget_share=1.0)
        server.app.state.daily.set_used(15_000)
        with pytest.raises(QuotaExhausted):
            greedy.won_stage_ids()
        assert greedy.client.stats.retries == 0
        server.app.state.daily.set_used(0)

        # a query names what it filters on (a phone here): never in a log line or an error
        fresh = connector(server, client_secret=None, private_key=private_pem)
        with pytest.raises(BadRequest) as bad:
            fresh.client.query_all("SELECT Id, Nope__c FROM Account WHERE Phone = '03-5555-1234'")
        assert "No such column 'Nope__c'" in str(bad.value) and "5555" not in str(bad.value) + repr(bad.value.details)
        assert fresh.find_company_candidates(Company(name="株式会社探索", phone="03-5555-1234")) == []

        # client credentials with a wrong secret: a clear refusal
        with pytest.raises(Unauthorized, match="invalid_client"):
            connector(server, client_secret="not-the-secret").won_stage_ids()
        tokens |= set(server.app.state.sessions)
    finally:
        server.stop()
    text = caplog.text
    assert tokens and not any(t in text for t in tokens)
    assert SECRET not in text and "not-the-secret" not in text and "PRIVATE KEY" not in text
    assert "5555" not in text and "query?q=" in text  # the query URLs were logged, without their SOQL


def test_injected_faults_are_retried_without_losing_records():
    server = serve(seed="demo", faults=FaultConfig(fault_rate=0.35, fault_seed=7, kinds=("5xx", "drop")))
    try:
        crm = connector(server, query_batch_size=200)
        crm.prepare()
        deals = [r for b in crm.iter_deal_changes(None) for r in b.records]
        assert len(deals) == 34 and all(r.ok for r in deals)  # 33 + the merged duplicate's, re-parented
        assert server.app.state.faults.injected and crm.client.stats.retries > 0
        crm.close()
    finally:
        server.stop()


def test_registry_builds_salesforce_from_its_own_settings(demo, monkeypatch):
    from renkei.connectors import registry

    entry = registry.entry("crm", "salesforce")
    spec = entry.sandbox_spec()
    assert spec is SPEC and spec.default_port == 8083
    for k, v in spec.env(demo.url, demo.app).items():
        monkeypatch.setenv(k, v)
    crm = entry.builder()(None, None, None)
    try:
        assert isinstance(crm, SalesforceCRM) and crm.client.auth.method == "client_credentials"
        assert crm.won_stage_ids() == {"Closed Won"}
    finally:
        crm.close()


def test_connection_checks_name_the_problem(demo, monkeypatch):
    from renkei.connectors.salesforce.checks import check

    for k, v in SPEC.env(demo.url, demo.app).items():
        monkeypatch.setenv(k, v)
    rows = check(None, deep=True)
    assert [(r.name, r.status) for r in rows] == [("salesforce", "ok"), ("salesforce api", "ok"),
                                                  ("salesforce fields", "ok")]
    monkeypatch.setenv("RENKEI_SALESFORCE_CLIENT_SECRET", "wrong-secret-value")
    [row] = check(None)
    assert row.failed and "invalid_client" in row.detail and "wrong-secret-value" not in row.line()
    monkeypatch.delenv("RENKEI_SALESFORCE_CLIENT_ID")
    [row] = check(None)
    assert row.failed and "RENKEI_SALESFORCE_CLIENT_ID" in row.detail


def test_metadata_package_holds_every_field_the_setup_check_wants(tmp_path):
    import xml.dom.minidom

    from renkei.connectors.salesforce.fields import RENKEI_FIELDS
    from renkei.connectors.salesforce.metadata import write_package
    from renkei.sandboxes.salesforce.schema import RENKEI_FIELDS as SANDBOX_FIELDS

    paths = write_package(tmp_path)
    fields = {f"{p.parent.parent.name}.{p.name.removesuffix('.field-meta.xml')}" for p in paths if "fields" in p.parts}
    assert fields == {f.full_name for f in RENKEI_FIELDS}
    assert fields == {f"{o}.{f.name}" for o, fs in SANDBOX_FIELDS.items() for f in fs}  # the sandbox org has them
    for p in paths:
        if p.suffix == ".xml":
            xml.dom.minidom.parse(str(p))
    perms = next(p for p in paths if "permissionsets" in p.parts).read_text(encoding="utf-8")
    assert all(f"<field>{f.full_name}</field>" in perms for f in RENKEI_FIELDS)
