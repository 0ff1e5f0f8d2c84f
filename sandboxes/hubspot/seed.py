"""Initial state of the HubSpot sandbox.

* :func:`load_account` — what every HubSpot account has: owners (users) and the deal pipelines
  (``default`` with HubSpot's stage ids + a custom pipeline with numeric stage ids).
* :func:`load_demo` — the ``renkei_*`` custom properties the demo data uses and the records of
  :mod:`sandboxes.demo_data` (companies, contacts, products, deals, line items, associations).
  Records get deterministic, increasing create/modify timestamps ending one hour before "now".
"""

from __future__ import annotations

from renkei.sandboxes import demo_data as demo

from .store import HubSpotStore

RENKEI_GROUP = {"name": "renkei", "label": "Renkei 連携", "displayOrder": 10}

_ENTITY_KIND_OPTIONS = [
    {"label": "法人", "value": "corporation", "displayOrder": 0},
    {"label": "個人事業者", "value": "sole_trader", "displayOrder": 1},
]
_TAX_OPTIONS = [
    {"label": "10%", "value": "standard_10", "displayOrder": 0},
    {"label": "8%（軽減）", "value": "reduced_8", "displayOrder": 1},
    {"label": "非課税", "value": "exempt", "displayOrder": 2},
    {"label": "不課税", "value": "non_taxable", "displayOrder": 3},
]

DEMO_PROPERTIES: dict[str, list[dict]] = {
    "companies": [
        {"name": "renkei_name_kana", "label": "フリガナ", "type": "string", "fieldType": "text"},
        {"name": "renkei_entity_kind", "label": "法人/個人", "type": "enumeration", "fieldType": "select",
         "options": _ENTITY_KIND_OPTIONS},
        {"name": "renkei_corporate_number", "label": "法人番号", "type": "string", "fieldType": "text",
         "hasUniqueValue": True},
        {"name": "renkei_invoice_registration_number", "label": "適格請求書発行事業者登録番号", "type": "string",
         "fieldType": "text"},
    ],
    "products": [
        {"name": "renkei_tax_category", "label": "税区分", "type": "enumeration", "fieldType": "select",
         "options": _TAX_OPTIONS},
    ],
    "line_items": [
        {"name": "renkei_tax_category", "label": "税区分", "type": "enumeration", "fieldType": "select",
         "options": _TAX_OPTIONS},
        {"name": "renkei_effective_date", "label": "変更適用日", "type": "date", "fieldType": "date"},
    ],
}
"""Custom properties created by the demo seed (those its records carry values for). The rest of the
``renkei_*`` set is left for the connector to create."""


def load_account(store: HubSpotStore) -> None:
    for o in demo.OWNERS:
        store.add_owner(o.email, o.first_name, o.last_name)
    for p in demo.DEAL_PIPELINES:
        store.add_pipeline("deals", p.id, p.label, [(s.id, s.label, s.probability) for s in p.stages])


def owner_id(store: HubSpotStore, owner_key: str) -> str:
    """Demo owner key (``"O1"``) → the sandbox owner id."""
    index = [o.key for o in demo.OWNERS].index(owner_key)
    return list(store.owners)[index]


def load_demo(store: HubSpotStore) -> dict[str, dict[str, str]]:
    """Load the demo dataset; returns ``{kind: {demo key: hubspot id}}`` (kinds: companies, contacts,
    products, deals, line_items — line items keyed ``"D01-1"``)."""
    ids: dict[str, dict[str, str]] = {k: {} for k in ("companies", "contacts", "products", "deals", "line_items")}
    for obj, props in DEMO_PROPERTIES.items():
        if RENKEI_GROUP["name"] not in store.groups[obj]:
            store.create_group(obj, RENKEI_GROUP)
        for p in props:
            store.create_property(obj, {**p, "groupName": RENKEI_GROUP["name"]})

    n_records = len(demo.PRODUCTS) + len(demo.COMPANIES) + len(demo.CONTACTS) + len(demo.DEALS) + sum(
        len(d.line_items) for d in demo.DEALS)
    start = store.clock.now_ms() - 3_600_000 - n_records * 1_000
    tick = iter(range(start, start + n_records * 1_000 + 1, 1_000))

    for p in demo.PRODUCTS:
        ids["products"][p.code] = store.create("products", p.hubspot_properties(), now=next(tick)).id
    for c in demo.COMPANIES:
        props = c.hubspot_properties()
        props["hubspot_owner_id"] = owner_id(store, c.owner)
        ids["companies"][c.key] = store.create("companies", props, now=next(tick)).id
    primary_contact_of: set[str] = set()
    for k in demo.CONTACTS:
        company_id = ids["companies"][k.company]
        props = k.hubspot_properties()
        props["company"] = demo.company(k.company).name
        rec = store.create("contacts", props, now=next(tick))
        ids["contacts"][k.key] = rec.id
        store.associate("contacts", rec.id, "companies", company_id, [1])  # primary company (+279)
        primary_contact_of.add(k.company)
    for d in demo.DEALS:
        props = d.hubspot_properties()
        props["hubspot_owner_id"] = owner_id(store, d.owner)
        deal = store.create("deals", props, now=next(tick))
        ids["deals"][d.key] = deal.id
        store.associate("deals", deal.id, "companies", ids["companies"][d.company], [5])  # primary (+341)
        for contact in (k for k in demo.CONTACTS if k.company == d.company and not k.billing):
            store.associate("deals", deal.id, "contacts", ids["contacts"][contact.key], [])
        for i, li in enumerate(d.line_items, start=1):
            props = li.hubspot_properties()
            props["hs_product_id"] = ids["products"][li.product_code]
            props["hs_line_item_currency_code"] = "JPY"
            props["hs_position_on_quote"] = str(i - 1)
            item = store.create("line_items", props, now=next(tick))
            ids["line_items"][f"{d.key}-{i}"] = item.id
            store.associate("line_items", item.id, "deals", deal.id, [])
    store.demo_ids = ids  # type: ignore[attr-defined]
    return ids
