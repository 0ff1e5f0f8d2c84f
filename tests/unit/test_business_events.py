"""Business facts → Prefect events (tasks/events.py): names, resources that name the deal/invoice, no personal
data; which review rows count as opened; the token store the runtime picks."""

from __future__ import annotations

from renkei.tasks.events import INVOICE_CREATED, PAYMENT_APPLIED, REVIEW_OPENED, add_reviews, business_events


def test_invoice_created_and_payment_applied_name_their_records():
    audit = [
        dict(actor="order-to-invoice", action="create", entity="invoice", entity_key="D-101", system="erp",
             changes={"invoice_id": 5501, "number": "INV-2026-0042", "total": 110000, "reference": "hubspot-deal-D-101"}),
        dict(actor="cfo@example.com", action="payment", entity="invoice", entity_key="5501", system="erp",
             changes={"deal_id": 9001, "payment_id": 77, "amount": 110000, "date": "2026-12-01", "deposit_id": "dep-3"}),
        dict(actor="customer-sync", action="update", entity="company", entity_key="C-1", system="erp",
             changes={"phone": "03-1234-5678"}),
    ]
    events = business_events("order-to-invoice", "run-1", audit, [])
    assert [e["event"] for e in events] == [INVOICE_CREATED, PAYMENT_APPLIED]  # a company update is no business fact
    inv, pay = events
    assert inv["resource"]["prefect.resource.id"] == "freee.invoice.5501"
    assert inv["resource"]["renkei.deal.id"] == "D-101" and inv["resource"]["renkei.invoice.number"] == "INV-2026-0042"
    assert inv["related"] == [{"prefect.resource.id": "hubspot.deal.D-101", "prefect.resource.role": "deal"}]
    assert inv["payload"]["total"] == 110000 and isinstance(inv["payload"]["total"], int)
    assert pay["resource"]["prefect.resource.id"] == "freee.payment.77"
    assert pay["resource"]["renkei.invoice.id"] == "5501" and pay["payload"] == {"amount": 110000, "date": "2026-12-01"}
    assert all(isinstance(v, str) for e in events for v in e["resource"].values())  # labels must be strings
    assert "03-1234" not in repr(events)


def test_only_reviews_this_batch_opened_become_events(tmp_path):
    from renkei.store.repo import Store
    from renkei.tasks.reporting import RunReport

    store = Store.open(f"sqlite:///{tmp_path / 'r.db'}", cached=False)
    report = RunReport(flow="customer-sync", flow_run_id="run-1")
    report.review(reason_code="EMAIL_INVALID", entity="company", entity_key="C-1", message="taro@example.com bad")
    opened = add_reviews(store, report)
    assert len(opened) == 1
    again = add_reviews(store, report)  # the same open item reported again at once
    assert again == []
    (ev,) = business_events("customer-sync", "run-1", [], opened)
    assert ev["event"] == REVIEW_OPENED and ev["resource"]["renkei.flow-run.id"] == "run-1"
    assert ev["resource"]["renkei.reason-code"] == "EMAIL_INVALID" and "taro" not in repr(ev)


def test_runtime_token_store_is_the_state_store_and_adopts_a_token_file(tmp_path, monkeypatch):
    from renkei.connectors.freee.auth import DbTokenStore, FileTokenStore, TokenSet
    from renkei.settings import Settings
    from renkei.store.repo import Store
    from renkei.connectors.freee.factory import freee_token_store

    settings = Settings(home=tmp_path, freee_company_id=7, data_key="k" * 32,
                        database_url=f"sqlite:///{tmp_path / 'r.db'}")
    FileTokenStore(settings.token_store_path).save(TokenSet(refresh_token="rt-file", generation=3))
    store = Store.open(settings.database_url, cached=False)
    ts = freee_token_store(settings, store)
    assert isinstance(ts, DbTokenStore) and ts.name == "freee:7"
    assert ts.load().generation == 3  # read from the file until the first rotation lands in the database
    assert isinstance(freee_token_store(settings.model_copy(update={"token_store": "file"}), store), FileTokenStore)
