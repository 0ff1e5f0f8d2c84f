"""freee invoices, deposits, payments and journals in canonical terms (the ``ERPMoney`` part of the contract).

Mixed into :class:`connectors.freee.connector.FreeeConnector`; ``self.client`` is the :class:`FreeeClient`.
"""

from __future__ import annotations


class FreeeMoneyOps:
    """Invoices, payments, deposits, journals: order-to-invoice, payment-writeback, subscription-proration."""
