"""HubSpot deals, line items and deal write-backs in canonical terms (the ``CRMDeals`` part of the contract).

Mixed into :class:`connectors.hubspot.connector.HubSpotCRM`; ``self.client`` is the :class:`HubSpotClient`.
"""

from __future__ import annotations


class HubSpotDealOps:
    """Deals: order-to-invoice, payment-writeback, subscription-proration."""
