"""product-sync against both sandboxes over HTTP: freee items → HubSpot products, one way."""

from __future__ import annotations

from renkei.flows.product_sync import product_sync


def _products(world) -> dict[str, dict]:
    out = {}
    n = 0
    for page in world.hs().products.scan_pages(properties=["name", "hs_sku", "renkei_product_code",
                                                           "renkei_freee_item_id", "hs_lastmodifieddate"]):
        for rec in page:
            out[rec["properties"]["hs_sku"]] = {"id": rec["id"], **rec["properties"]}
            n += 1
    assert n == len(out), "two HubSpot products share a SKU"
    return out


def test_items_become_products_by_sku_and_reruns_write_nothing(world):
    fr = world.fr()
    a = fr.create_item({"name": "保守サービス", "code": "MAINT-01"})
    fr.create_item({"name": "導入支援", "code": "SETUP-01"})
    handmade = world.hs().products.create({"name": "導入支援（手入力）", "hs_sku": "SETUP-01"})["id"]
    summary = product_sync()
    prods = _products(world)
    assert prods["SETUP-01"]["id"] == str(handmade)  # taken over in place, not duplicated
    assert prods["SETUP-01"]["name"] == "導入支援"
    assert set(prods) == {"MAINT-01", "SETUP-01"}
    assert prods["MAINT-01"]["renkei_product_code"] == "MAINT-01"
    assert prods["MAINT-01"]["renkei_freee_item_id"] == str(a["id"])
    assert summary["crm"]["created"] == 1 and summary["crm"]["adopted"] == 1

    stamp = {k: v["hs_lastmodifieddate"] for k, v in prods.items()}
    again = product_sync()
    assert {k: v["hs_lastmodifieddate"] for k, v in _products(world).items()} == stamp  # nothing written
    assert again["crm"].get("unchanged") == 2 and "updated" not in again["crm"]

    # an ERP rename flows to HubSpot; a HubSpot rename never flows back and is put right
    fr.update_item(a["id"], {"name": "保守サービス（年間）", "code": "MAINT-01"})
    world.hs().products.update(prods["SETUP-01"]["id"], {"name": "営業が変えた名前"})
    product_sync()
    prods = _products(world)
    assert prods["MAINT-01"]["name"] == "保守サービス（年間）"
    assert prods["SETUP-01"]["name"] == "導入支援"
    assert {i["name"] for i in fr.list_items(limit=100)} == {"保守サービス（年間）", "導入支援"}
    assert len(prods) == 2
