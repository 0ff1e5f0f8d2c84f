"""HubSpot companies and products in canonical terms (the ``CRMCompanies`` part of the contract).

Mixed into :class:`connectors.hubspot.connector.HubSpotCRM`; ``self.client`` is the :class:`HubSpotClient`.
"""

from __future__ import annotations


class HubSpotCompanyOps:
    """Companies and products: customer-sync and product-sync."""
