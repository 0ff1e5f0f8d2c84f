"""The Salesforce sandbox as a :class:`connectors.registry.SandboxSpec`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI


# Won deals finance must look at in ``renkei demo``: (name, lines (item, qty, unit price, tax), discount %)
DEMO_APPROVAL_DEALS = (
    ("大型システム更新（承認デモ）", [("システム更新一式", 1, 6_500_000, "standard_10")], None),
    ("特別値引き（承認デモ）", [("業務用食品セット", 10, 8_000, "reduced_8")], 50),
)


class SalesforceSandboxSpec:
    name = "salesforce"
    default_port = 8083
    demo_options: dict[str, Any] = {}

    def app(self, *, seed: str = "demo", **options: Any) -> "FastAPI":
        from .app import create_app
        from .config import SalesforceSandboxConfig

        return create_app(SalesforceSandboxConfig(seed=seed, **options))

    def env(self, url: str, app: "FastAPI") -> dict[str, str]:
        """Client-credentials settings against the sandbox served at ``url`` (it is both the login host and the
        instance)."""
        cfg = app.state.config
        return {
            "RENKEI_CRM": "salesforce",
            "RENKEI_SALESFORCE_LOGIN_URL": url,
            "RENKEI_SALESFORCE_CLIENT_ID": cfg.client_id,
            "RENKEI_SALESFORCE_CLIENT_SECRET": cfg.client_secret,
            "RENKEI_SALESFORCE_USERNAME": cfg.username,
            "RENKEI_SALESFORCE_API_VERSION": cfg.api_version,
        }

    def describe(self, url: str, app: "FastAPI") -> list[str]:
        cfg = app.state.config
        return [f"Salesforce sandbox: {url}  (client credentials for {cfg.client_id}, secret: "
                f"SalesforceSandboxConfig.client_secret; API v{cfg.api_version}; simple-salesforce needs https: "
                "python -m renkei.sandboxes.salesforce --tls)"]

    def seed_demo_deals(self, app: "FastAPI") -> list[str]:
        """Two won Opportunities that need finance approval (an amount over the threshold, a deep discount) on
        the first two demo Accounts, with products, standard prices and line items; returns their ids."""
        from decimal import Decimal

        from renkei.sandboxes.demo_data import COMPANIES

        store = app.state.store
        account_ids = getattr(store, "demo_ids", {}).get("accounts", {})
        targets = [account_ids[c.key] for c in COMPANIES if c.key in account_ids][:2]
        made = []
        for n, (account_id, (name, lines, discount)) in enumerate(zip(targets, DEMO_APPROVAL_DEALS), start=1):
            opp = store.create("Opportunity", {"Name": name, "AccountId": account_id, "StageName": "Prospecting",
                                               "CloseDate": "2026-11-20"})
            for i, (item, qty, price, tax) in enumerate(lines, start=1):
                code = f"DEMO-APPROVAL-{n}-{i}"
                product = store.create("Product2", {"Name": item, "ProductCode": code, "IsActive": True,
                                                    "Renkei_Item_Code__c": code, "Renkei_Tax_Category__c": tax})
                entry = store.create("PricebookEntry", {"Pricebook2Id": store.standard_pricebook,
                                                        "Product2Id": product, "UnitPrice": Decimal(price),
                                                        "IsActive": True})
                store.create("OpportunityLineItem", {
                    "OpportunityId": opp, "PricebookEntryId": entry, "Quantity": Decimal(qty),
                    "UnitPrice": Decimal(price), "Discount": Decimal(discount) if discount else None,
                    "Renkei_Tax_Category__c": tax})
            store.update("Opportunity", opp, {"StageName": "Closed Won"})  # won after its lines are in
            made.append(opp)
        return made


SPEC = SalesforceSandboxSpec()

__all__ = ["SPEC", "SalesforceSandboxSpec"]
