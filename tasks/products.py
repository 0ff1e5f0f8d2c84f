"""Steps of ``product-sync``: freee items (品目) → HubSpot products, one way (the ERP owns products).

Key: the 品目コード, written to ``hs_sku`` and to the unique ``renkei_product_code`` (HubSpot upserts only
by a unique property; ``hs_sku`` is not one). One content hash per item of exactly the properties Renkei
sends (snapshot entity ``product``, keyed by the code): an unchanged item is not written again. A HubSpot
edit of a property the ERP holds is overwritten with the ERP's value on the next run (reported); HubSpot
never writes to freee. freee items carry neither price nor tax category (see the freee mapping), so
those are sent only when the ERP holds them; a price typed in HubSpot is left alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from renkei.connectors.base import product_drift, product_values
from renkei.domain.model import Product
from renkei.store.repo import IdConflict
from renkei.tasks.reporting import RunReport
from renkei.tasks.runtime import Runtime

FLOW = "product-sync"
ENTITY = "product"
CRM_CURSOR = "product-sync:hubspot-products"


def product_props(product: Product) -> dict[str, str]:
    """What Renkei writes for an item, canonical field → text (empty values are not sent: the ERP does
    not hold them); its hash tells whether the item changed since the last write."""
    return product_values(product)


def props_hash(props: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(sorted(props.items())), ensure_ascii=False,
                                     separators=(",", ":")).encode()).hexdigest()


def read_items(rt: Runtime, report: RunReport, page_size: int = 3000) -> list[Product]:
    """Every freee item (3,000 per request); invalid ones become review items."""
    out: list[Product] = []
    for page in rt.erp.iter_items(page_size=page_size):
        for res in page:
            report.count("erp", "read")
            if res.ok:
                out.append(res.value)
            else:
                report.review(reason_code="INVALID_ERP_ITEM", entity=ENTITY, entity_key=f"erp:{res.source_id}",
                              message=f"freee item not synced: {res.error}", side="erp")
    return out


@dataclass
class CrmView:
    """What the HubSpot product feed since the cursor says: ERP-held values edited in HubSpot
    (``drift``), products made by hand with an item's SKU but no ``renkei_product_code`` yet (``adopt``:
    code → HubSpot id, updated in place rather than duplicated by the upsert) and SKUs held by several
    such products (``ambiguous``: a person decides; the item waits)."""

    drift: set[str] = field(default_factory=set)
    adopt: dict[str, str] = field(default_factory=dict)
    ambiguous: set[str] = field(default_factory=set)
    watermark: str | None = None


def crm_view(rt: Runtime, since: str | None, items: Mapping[str, Product], report: RunReport) -> CrmView:
    view = CrmView(watermark=since)
    drift = view.drift
    for batch in rt.crm.iter_product_changes(since):
        for rec in batch.records:
            item = items.get(str(rec.code)) if rec.code else None
            if item is None:
                continue
            if not rec.keyed:
                if item.code in view.adopt and view.adopt[item.code] != rec.crm_id:
                    view.ambiguous.add(item.code)
                view.adopt[item.code] = rec.crm_id
                continue
            changed = product_drift(rec, item)
            if changed:
                drift.add(item.code)
                report.count("crm", "foreign_change")
                report.event(action="foreign_change", entity=ENTITY, entity_key=item.code, system="crm",
                             changes=changed)
        wm = batch.watermark
        view.watermark = str(wm) if wm is not None else view.watermark
    for code in view.ambiguous:
        view.adopt.pop(code, None)
        report.review(reason_code="DUPLICATE_SKU_IN_CRM", entity=ENTITY, entity_key=code,
                      message=f"several HubSpot products carry SKU {code} without renkei_product_code; merge "
                              "them or set renkei_product_code on the one to keep", side="crm")
    return view


def sync_items(rt: Runtime, items: Sequence[Product], drift: set[str], report: RunReport,
               adopt: Mapping[str, str] | None = None, ambiguous: set[str] | None = None) -> None:
    """Upsert the new and changed items (100 per request); archive the products of deactivated items."""
    adopt, ambiguous = dict(adopt or {}), set(ambiguous or ())
    items = [i for i in items if i.code not in ambiguous]
    if adopt:  # hand-made products with the item's SKU: take them over in place (no duplicate)
        mine = [i for i in items if i.code in adopt and i.active]
        res = rt.crm.update_products({adopt[i.code]: i for i in mine})
        for r in res:
            if r.ok:
                report.count("crm", "adopted")
                report.event(action="adopt", entity=ENTITY, entity_key=str(r.id), system="crm",
                             changes={"hubspot_id": r.id})
    snaps = rt.store.get_snapshots(ENTITY, [i.code for i in items])
    to_write: list[tuple[Product, dict[str, str], str]] = []
    to_archive: list[Product] = []
    for item in items:
        props = product_props(item)
        h = props_hash(props)
        snap = snaps.get(item.code)
        if not item.active:
            if snap is not None and (snap.fields or {}).get("active", True):
                to_archive.append(item)
            else:
                report.count("crm", "unchanged")
            continue
        if snap is not None and snap.erp_hash == h and (snap.fields or {}).get("active", True) \
                and item.code not in drift:
            report.count("crm", "unchanged")
            continue
        to_write.append((item, props, h))
    if to_write:
        results = rt.crm.upsert_products([i for i, _, _ in to_write])
        events = []
        for r in results:
            item, props, h = to_write[r.index]
            if not r.ok:
                report.count("crm", "errors")
                report.review(reason_code="CRM_WRITE_FAILED", entity=ENTITY, entity_key=item.code,
                              message=f"HubSpot product not written: {r.error}", side="crm")
                continue
            report.count("crm", "created" if r.created else "updated")
            rt.store.put_snapshot(ENTITY, item.code, {"crm_id": r.id, "erp_id": item.erp_id, "active": True},
                                  crm_hash=None, erp_hash=h)
            if item.erp_id and r.id:
                try:
                    rt.store.link(ENTITY, str(r.id), str(item.erp_id))
                except IdConflict as exc:
                    report.notes.append(f"product {item.code}: {exc}")
            events.append(dict(action="create" if r.created else "update", entity=ENTITY, entity_key=item.code,
                               system="crm", changes={"hubspot_id": r.id, **props}))
        for e in events:
            report.event(**e)
    for item in to_archive:
        snap = snaps[item.code]
        crm_id = (snap.fields or {}).get("crm_id")
        if crm_id:
            rt.crm.archive_products([str(crm_id)])
        rt.store.put_snapshot(ENTITY, item.code, {**(snap.fields or {}), "active": False}, erp_hash=snap.erp_hash)
        report.count("crm", "archived")
        report.event(action="archive", entity=ENTITY, entity_key=item.code, system="crm", changes={"hubspot_id": crm_id})

