"""One open review item per record and reason: a problem of the record's own data is one item whichever
flow met it; a flow's own problem stays per flow."""


def test_record_data_problem_is_one_item_across_flows(store):
    store.add_review(flow="customer-sync", reason_code="MARKUP_IN_TEXT", entity="company", entity_key="7",
                     message="name: contains HTML tag")
    store.add_review(flow="order-to-invoice", reason_code="MARKUP_IN_TEXT", entity="company", entity_key="7",
                     message="name: contains HTML tag")
    open_items = store.list_reviews("open")
    assert [(i.flow, i.reason_code, i.entity_key) for i in open_items] == [("customer-sync", "MARKUP_IN_TEXT", "7")]
    # whichever flow sees the record pass closes it
    assert store.resolve_reviews(flow="order-to-invoice", entity="company", entity_keys=["7"],
                                 reason_codes=["MARKUP_IN_TEXT"], comment="passes now") == 1
    assert store.list_reviews("open") == []


def test_flow_problems_stay_per_flow(store):
    for flow in ("order-to-invoice", "payment-writeback"):
        store.add_review(flow=flow, reason_code="CRM_WRITEBACK_FAILED", entity="deal", entity_key="9", message="x")
    assert sorted(i.flow for i in store.list_reviews("open")) == ["order-to-invoice", "payment-writeback"]
    assert store.resolve_reviews(flow="payment-writeback", entity="deal", entity_keys=["9"],
                                 reason_codes=["CRM_WRITEBACK_FAILED"], comment="written") == 1
    assert [i.flow for i in store.list_reviews("open")] == ["order-to-invoice"]
