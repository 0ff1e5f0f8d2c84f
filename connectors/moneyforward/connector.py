"""Money Forward クラウド請求書 as the ERP of :class:`connectors.base.ERPConnector`.

What the API offers and what it does not (``moneyforward-invoice-api.md`` §8, §11): partners with
departments, items, billings (created only through ``/invoice_template_billings``) and a billing's
``payment_status`` — read, and settable by Renkei (``PUT /billings/{id}/payment_status``). There are no
bank lines, no 消込 and no journals in the invoice API: :attr:`capabilities` says so and the flows branch
on it (see ``connectors/moneyforward/README.md`` for how deposits reach MF).

Exactly once: every billing carries Renkei's reference in ``memo`` (first line) and ``tag_names``;
:meth:`MoneyForwardERP.find_invoice_by_reference` looks it up by tag, then by number, then by scanning the
partner's billings — never by a date, so a retry on another day finds what an earlier run created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from renkei.connectors.base import ERPCapabilities, MapResult
from renkei.connectors.moneyforward.client import MoneyForwardClient
from renkei.connectors.moneyforward.money_ops import (
    CompanySettingError,
    InvoiceNumberTaken,
    InvoiceSettingMismatch,
    MoneyForwardMoneyOps,
    PartialPaymentNotSupported,
)
from renkei.connectors.moneyforward.partner_ops import MoneyForwardPartnerOps
from renkei.domain.money import Rounding

__all__ = ["CAPABILITIES", "CompanySettingError", "InvoiceNumberTaken", "InvoiceSettingMismatch", "MoneyForwardConfig",
           "MoneyForwardERP",
           "PartialPaymentNotSupported"]

CAPABILITIES = ERPCapabilities(
    name="moneyforward", label="Money Forward クラウド請求書", bank_lines=False, payment_status=True,
    record_payments=True, journals=False, partner_codes=True, departments=True, item_cost=False, item_stock=False,
    erp_numbering=True)


@dataclass
class MoneyForwardConfig:
    """Office-specific choices MF's API does not expose."""

    numbering: str = "auto"  # the office has a 採番ルール (auto) or not (manual: Renkei must send numbers)
    partner_suffix: str = "御中"
    tax_rounding: Rounding | None = None  # Renkei's policy; a billing taxed otherwise is logged and recorded
    send_number: bool = True  # send Invoice.number (configure_invoices: only when Renkei numbers)
    use_partner_code: bool = True
    page_size: int = 100


@dataclass
class MoneyForwardERP(MoneyForwardPartnerOps, MoneyForwardMoneyOps):
    """Implements :class:`connectors.base.ERPConnector` for Money Forward クラウド請求書."""

    capabilities: ClassVar[ERPCapabilities] = CAPABILITIES

    client: MoneyForwardClient
    config: MoneyForwardConfig = field(default_factory=MoneyForwardConfig)
    rejected: list[MapResult[Any]] = field(default_factory=list)
    tax_mismatches: list[str] = field(default_factory=list)  # billings whose per-rate tax differs from Renkei's
    _departments: dict[str, str] = field(default_factory=dict, repr=False)  # partner id -> billing department id

    def close(self) -> None:
        self.client.close()
