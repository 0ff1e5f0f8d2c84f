"""The flows ``renkei run NAME`` knows, and whether each is built yet."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class FlowEntry:
    name: str
    module: str
    function: str
    summary: str
    issue: int

    def load(self) -> Callable[..., Any] | None:
        """The flow function, or ``None`` when its module is not built yet."""
        try:
            mod = importlib.import_module(self.module)
        except ModuleNotFoundError as exc:
            if exc.name == self.module:
                return None
            raise
        return getattr(mod, self.function, None)


FLOWS: dict[str, FlowEntry] = {
    e.name: e
    for e in [
        FlowEntry("customer-sync", "renkei.flows.customer_sync", "customer_sync",
                  "customer master both ways with per-field ownership", 5),
        FlowEntry("product-sync", "renkei.flows.product_sync", "product_sync", "ERP items → CRM products", 5),
        FlowEntry("order-to-invoice", "renkei.flows.order_to_invoice", "order_to_invoice",
                  "won deals → qualified invoices, exactly once", 6),
        FlowEntry("payment-writeback", "renkei.flows.payment_writeback", "payment_writeback",
                  "bank deposits → payments (入金消込) → CRM status", 7),
        FlowEntry("subscription-proration", "renkei.flows.subscription_proration", "subscription_proration",
                  "mid-term changes → prorated charges and revenue schedule", 8),
        FlowEntry("reporting", "renkei.flows.reporting", "reporting",
                  "nightly snapshot: pipeline, invoiced, collected, aging, margins, drift", 15),
        FlowEntry("review-decisions", "renkei.flows.review_decisions", "review_decisions",
                  "decide review items in the Prefect UI (a typed form per item)", 14),
    ]
}
