"""freee partners (取引先) and items (品目) in canonical terms (the ``ERPPartnersItems`` part of the contract).

Mixed into :class:`connectors.freee.connector.FreeeConnector`; ``self.client`` is the :class:`FreeeClient`.
"""

from __future__ import annotations


class FreeePartnerOps:
    """Partners and items: customer-sync and product-sync."""
