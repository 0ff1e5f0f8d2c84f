"""The HubSpot sandbox as a :class:`connectors.registry.SandboxSpec`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from renkei.sandboxes.hubspot.app import create_app
from renkei.sandboxes.hubspot.config import HubSpotSandboxConfig

# Won deals finance must look at in ``renkei demo``: (name, lines (item, qty, unit price, tax), discount %)
DEMO_APPROVAL_DEALS = (
    ("大型システム更新（承認デモ）", [("システム更新一式", 1, 6_500_000, "standard_10")], None),
    ("特別値引き（承認デモ）", [("業務用食品セット", 10, 8_000, "reduced_8")], 50),
)


class HubSpotSandboxSpec:
    name = "hubspot"
    default_port = 8081
    demo_options: dict[str, Any] = {}
    test_options: dict[str, Any] = {"rate_limit_per_10s": 0, "search_per_second": 0}  # limits off in tests

    def app(self, *, seed: str = "demo", **options: Any) -> FastAPI:
        return create_app(HubSpotSandboxConfig(seed=seed, **options))

    def env(self, url: str, app: FastAPI) -> dict[str, str]:
        return {"RENKEI_CRM": "hubspot", "RENKEI_HUBSPOT_BASE_URL": url,
                "RENKEI_HUBSPOT_TOKEN": app.state.config.token}

    def describe(self, url: str, app: FastAPI) -> list[str]:
        lines = [f"HubSpot sandbox: {url}  (token: {app.state.config.token})"]
        if app.state.config.webhook_url:
            lines.append(f"  delivers webhooks to {app.state.config.webhook_url} (signed with the app client secret)")
        return lines

    def seed_demo_deals(self, app: FastAPI) -> list[str]:
        """Two won deals that need finance approval (an amount over the threshold, a deep discount) on the
        first two demo companies, with their line items; returns the deal ids."""
        from renkei.sandboxes.demo_data import COMPANIES

        store = app.state.store
        company_ids = getattr(store, "demo_ids", {}).get("companies", {})
        targets = [company_ids[c.key] for c in COMPANIES if c.key in company_ids][:2]
        made = []
        for company_id, (name, lines, discount) in zip(targets, DEMO_APPROVAL_DEALS):
            amount = sum(q * p for _, q, p, _ in lines) * (100 - (discount or 0)) // 100
            deal = store.create("deals", {"dealname": name, "dealstage": "closedwon", "pipeline": "default",
                                          "amount": amount, "closedate": "2026-11-20T00:00:00.000Z"})
            store.associate("deals", deal.id, "companies", company_id, [5])  # primary company
            for item, qty, price, tax in lines:
                props: dict[str, Any] = {"name": item, "quantity": qty, "price": price, "renkei_tax_category": tax}
                if discount:
                    props["hs_discount_percentage"] = discount
                li = store.create("line_items", props)
                store.associate("line_items", li.id, "deals", deal.id, [])
            made.append(str(deal.id))
        return made


SPEC = HubSpotSandboxSpec()
