"""freee as the ERP of :class:`connectors.base.ERPConnector`: canonical models in, canonical models out.

:class:`FreeeConnector` wraps a :class:`~connectors.freee.client.FreeeClient` and the mappers of
:mod:`connectors.freee.mapping`. Reads return :class:`~connectors.base.MapResult` so an invalid freee
record becomes a review item rather than an exception; writes raise typed errors from
:mod:`connectors.http` (``QuotaExhausted`` → stop the run cleanly, commit, resume next run).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from renkei.connectors.base import ChangeBatch, ERPCapabilities, MapResult
from renkei.connectors.canonical_money import CompanySettingError, InvoiceNumberTaken
from renkei.connectors.freee.money_ops import FreeeMoneyOps
from renkei.connectors.freee.partner_ops import FreeePartnerOps
from renkei.connectors.freee.client import FreeeClient
from renkei.connectors.http import BadRequest, PermanentError
from renkei.connectors.freee.mapping import (
    FreeeMappingError,
    company_to_partner,
    deal_to_payments,
    invoice_to_iv_invoice,
    item_to_product,
    iv_invoice_to_invoice,
    partner_to_company,
    payment_to_deal_payment,
    wallet_txn_to_deposit,
)
from renkei.domain.model import BankDeposit, Company, Invoice, Payment, Product
from renkei.domain.money import Rounding

log = logging.getLogger("renkei.connectors.freee")

__all__ = ["CompanySettingError", "CompanySettings", "FreeeConnector", "FreeeConnectorConfig", "InvoiceNumberTaken",
           "read_company_settings"]

_FRACTION = {0: Rounding.FLOOR, 1: Rounding.CEIL, 2: Rounding.HALF_UP}  # 切り捨て / 切り上げ / 四捨五入
_FRACTION_JA = {Rounding.FLOOR: "切り捨て", Rounding.CEIL: "切り上げ", Rounding.HALF_UP: "四捨五入"}
_TAX_ACCOUNT = {0: "税込経理", 1: "旧税抜経理", 2: "税抜経理"}


@dataclass(frozen=True)
class CompanySettings:
    """The freee company's settings that shape what Renkei sends (``read_company_settings``).

    ``use_partner_code`` (取引先コード), ``tax_rounding`` (端数処理 of the fiscal year of ``as_of``:
    ``tax_fraction`` 0 切り捨て / 1 切り上げ / 2 四捨五入), ``amount_fraction`` (same codes),
    ``tax_account_method`` (0 税込経理, 1 旧税抜経理, 2 税抜経理) come from ``GET /api/1/companies/{id}``;
    ``invoice_numbering`` (``auto`` 自動採番 | ``manual`` 手動採番) is not exposed by freee's API and
    comes from the policy (``[invoice_numbering] mode``)."""

    company_id: int
    use_partner_code: bool
    tax_rounding: Rounding
    amount_fraction: Rounding
    tax_account_method: int
    invoice_numbering: str = "manual"
    numbering_source: str = "policy [invoice_numbering] mode"
    registration_number: str | None = None  # 適格請求書発行事業者登録番号 (``invoice_registration_number``)

    def rows(self) -> list[tuple[str, str, str]]:
        """(setting, value, source) for a table (``renkei doctor``)."""
        api = f"freee GET /api/1/companies/{self.company_id}"
        return [
            ("取引先コード (partner codes)", "on" if self.use_partner_code else "off", api),
            ("端数処理 (tax rounding)", f"{self.tax_rounding.value} ({_FRACTION_JA.get(self.tax_rounding, '')})", api),
            ("経理方式 (tax accounting)", _TAX_ACCOUNT.get(self.tax_account_method, str(self.tax_account_method)), api),
            ("採番の設定 (invoice numbering)",
             "auto (自動採番)" if self.invoice_numbering == "auto" else "manual (手動採番)", self.numbering_source),
        ]


def read_company_settings(client: FreeeClient, *, as_of: date | None = None,
                          invoice_numbering: str = "manual") -> CompanySettings:
    """``GET /api/1/companies/{id}`` → :class:`CompanySettings` (the fiscal year containing ``as_of``,
    else the latest one)."""
    raw = client.get_company()
    years = [y for y in raw.get("fiscal_years") or [] if isinstance(y, dict)]
    year: dict[str, Any] = {}
    if years:
        year = years[-1]
        if as_of is not None:
            for y in years:
                if str(y.get("start_date") or "") <= as_of.isoformat() <= str(y.get("end_date") or "9999"):
                    year = y
    try:
        tax_rounding = _FRACTION[int(year.get("tax_fraction", 0) or 0)]
        amount_fraction = _FRACTION[int(raw.get("amount_fraction", 0) or 0)]
    except (KeyError, TypeError, ValueError):
        raise CompanySettingError(f"freee company {client.company_id}: unknown 端数処理 "
                                  f"(tax_fraction={year.get('tax_fraction')!r}, "
                                  f"amount_fraction={raw.get('amount_fraction')!r})") from None
    return CompanySettings(
        company_id=int(raw.get("id") or client.company_id), use_partner_code=bool(raw.get("use_partner_code")),
        tax_rounding=tax_rounding, amount_fraction=amount_fraction,
        tax_account_method=int(year.get("tax_account_method", 2) or 0), invoice_numbering=invoice_numbering,
        registration_number=raw.get("invoice_registration_number") or None)


def _numbering_error(exc: BadRequest, sent_number: bool) -> PermanentError | None:
    """freee's 400 about ``invoice_number`` → the typed error, else ``None``."""
    text = f"{exc.message} {exc.details or ''}"
    if "invoice_number" not in text and "請求書番号" not in text:
        return None
    if "既に" in text or "重複" in text:
        return InvoiceNumberTaken(exc.message, status=exc.status, category=exc.category,
                                  correlation_id=exc.correlation_id)
    if ("必須" in text and not sent_number) or ("指定できません" in text and sent_number):
        if sent_number:
            fix = ("the freee company numbers invoices automatically (自動採番): set [invoice_numbering] "
                   "mode = \"auto\" in the policy, or switch freee請求書 採番の設定 to manual")
        else:
            fix = ("the freee company numbers invoices by hand (手動採番): set [invoice_numbering] "
                   "mode = \"manual\" in the policy, or switch freee請求書 採番の設定 to 自動採番")
        return CompanySettingError(f"{fix} (freee said: {exc.message})", status=exc.status,
                                   category=exc.category, correlation_id=exc.correlation_id)
    return None


@dataclass
class FreeeConnectorConfig:
    """Company-specific choices (read them from freee once: ``client.get_company()``)."""

    use_partner_code: bool = True  # 取引先コード enabled in the company
    tax_fraction: Rounding = Rounding.FLOOR  # freee請求書 tax_fraction for new invoices
    partner_title: str = "御中"
    template_id: int | None = None
    send_invoice_number: bool = False  # True only when the company does not use 自動採番
    deposit_walletable_id: int | None = None  # bank account deposits arrive on
    deposit_walletable_type: str = "bank_account"
    page_size: int = 100


@dataclass
class FreeeConnector(FreeePartnerOps, FreeeMoneyOps):
    """Implements :class:`connectors.base.ERPConnector` for freee会計 + freee請求書."""

    client: FreeeClient
    config: FreeeConnectorConfig = field(default_factory=FreeeConnectorConfig)
    rejected: list[MapResult[Any]] = field(default_factory=list)  # invalid records seen by iterators

    capabilities: ClassVar[ERPCapabilities] = ERPCapabilities(
        name="freee", label="freee", bank_lines=True, payment_status=True, record_payments=True, journals=True,
        partner_codes=True, departments=False, item_cost=False, item_stock=False, erp_numbering=True,
        cost_records=True)

    def close(self) -> None:
        self.client.close()

    # -- invoices -----------------------------------------------------------------------------------

    def _invoice(self, raw: dict) -> Invoice:
        res = iv_invoice_to_invoice(raw)
        if not res.ok:
            raise FreeeMappingError(res.error or "invalid invoice")
        return res.value  # type: ignore[return-value]

    def find_invoice_by_reference(self, reference: str, *, partner_erp_id: str | None = None,
                                  issue_date: date | None = None, around: date | None = None) -> Invoice | None:
        """Look the reference up (``memo`` first line). freee cannot filter on memo, so the scan is
        narrowed by partner and billing date:

        * ``issue_date`` — only invoices billed on exactly that date (the caller is sure of it);
        * ``around`` — the recovery lookup: that billing date first (cheap), then every invoice of the
          partner, all pages, whatever the date (the invoice must be found whatever today is, even if
          the billing date was edited in freee);
        * neither — every invoice of the partner (or of the company without a partner), all pages.
        """
        if issue_date is not None:
            found = self.client.find_invoice_by_reference(reference, partner_id=partner_erp_id, billing_date=issue_date)
        else:
            found = None
            if around is not None:
                found = self.client.find_invoice_by_reference(reference, partner_id=partner_erp_id, billing_date=around)
            if found is None:
                found = self.client.find_invoice_by_reference(reference, partner_id=partner_erp_id)
        return self._invoice(self.client.get_invoice(found["id"])) if found else None

    def create_invoice(self, invoice: Invoice) -> Invoice:
        """``POST /iv/invoices``. Under 手動採番 (``send_invoice_number``) the invoice must carry its
        number. A 400 about ``invoice_number`` raises :class:`CompanySettingError` (the company's 採番の設定
        is not what Renkei was told) or :class:`InvoiceNumberTaken`."""
        if self.config.send_invoice_number and not invoice.number:
            raise ValueError("the freee company numbers invoices by hand (手動採番): the invoice needs a number")
        body = invoice_to_iv_invoice(invoice, company_id=self.client.company_id,
                                     tax_fraction=self.config.tax_fraction, partner_title=self.config.partner_title,
                                     template_id=self.config.template_id,
                                     send_invoice_number=self.config.send_invoice_number)
        try:
            return self._invoice(self.client.create_invoice(body))
        except BadRequest as exc:
            typed = _numbering_error(exc, "invoice_number" in body)
            if typed is not None:
                raise typed from exc
            raise

    def get_invoice(self, erp_id: str) -> Invoice:
        return self._invoice(self.client.get_invoice(erp_id))

    # -- deposits and payments ----------------------------------------------------------------------

    def iter_deposits(self, since: date | None = None) -> Iterator[ChangeBatch[BankDeposit]]:
        """Income bank lines on or after ``since``. Every batch but the last repeats ``since`` as its
        watermark; the last carries the latest date seen (lines on that date are read again next time:
        the caller dedupes by ``erp_id``). Invalid lines go to :attr:`rejected`."""
        latest = since
        filters: dict[str, Any] = {"entry_side": "income", "start_date": since}
        if self.config.deposit_walletable_id is not None:
            filters |= {"walletable_type": self.config.deposit_walletable_type,
                        "walletable_id": self.config.deposit_walletable_id}
        def batch(page: Any) -> list[BankDeposit]:
            nonlocal latest
            deposits: list[BankDeposit] = []
            for t in page.items:
                res = wallet_txn_to_deposit(t)
                if res.ok:
                    deposits.append(res.value)  # type: ignore[arg-type]
                    if latest is None or res.value.received_on > latest:  # type: ignore[union-attr]
                        latest = res.value.received_on  # type: ignore[union-attr]
                else:
                    log.warning("freee wallet_txn %s rejected: %s", res.source_id, res.error)
                    self.rejected.append(res)
            return deposits

        pending = None  # one page of look-ahead, so the last batch can carry the final watermark
        for page in self.client.iter_wallet_txn_pages(limit=self.config.page_size, **filters):
            if pending is not None:
                yield ChangeBatch(records=pending, watermark=since, exhausted=False)
            pending = batch(page)
        yield ChangeBatch(records=pending or [], watermark=latest, exhausted=True)

    def deal_id_for_invoice(self, invoice_erp_id: str) -> int:
        inv = self.client.get_invoice(invoice_erp_id)
        if not inv.get("deal_id"):
            raise ValueError(f"freee invoice {invoice_erp_id} is not booked as a deal yet (deal_status "
                             f"{inv.get('deal_status')!r})")
        return int(inv["deal_id"])

    def record_payment(self, payment: Payment, *, deal_id: int | None = None) -> Payment:
        """Add the payment to the freee deal behind ``payment.invoice_erp_id`` (a freee請求書 invoice id;
        pass ``deal_id`` to address the deal directly). ``payment.fee`` is not booked here."""
        if deal_id is None:
            deal_id = self.deal_id_for_invoice(payment.invoice_erp_id)
        walletable_id = self.config.deposit_walletable_id
        if payment.deposit_erp_id:
            txn = self.client._get(f"/api/1/wallet_txns/{payment.deposit_erp_id}")["wallet_txn"]
            walletable_id = txn["walletable_id"]
        if walletable_id is None:
            raise ValueError("no walletable: set FreeeConnectorConfig.deposit_walletable_id or payment.deposit_erp_id")
        body = payment_to_deal_payment(payment, company_id=self.client.company_id, from_walletable_id=walletable_id,
                                       from_walletable_type=self.config.deposit_walletable_type)
        deal = self.client.add_deal_payment(deal_id, body)
        # the new payment: same date, amount and account; freee ids grow, so the highest is ours
        ours = [p for p in deal.get("payments") or []
                if p.get("amount") == body["amount"] and p.get("date") == body["date"]
                and str(p.get("from_walletable_id")) == str(body["from_walletable_id"])]
        if not ours:
            raise FreeeMappingError(f"the payment did not appear on freee deal {deal_id}")
        newest = max(ours, key=lambda p: int(p.get("id") or 0))
        mapped = deal_to_payments({"id": deal_id, "payments": [newest]}, invoice_erp_id=payment.invoice_erp_id)[0]
        if not mapped.ok:
            raise FreeeMappingError(mapped.error or "invalid payment")
        return mapped.value.model_copy(update={"deposit_erp_id": payment.deposit_erp_id,  # type: ignore[union-attr]
                                               "fee": payment.fee})
