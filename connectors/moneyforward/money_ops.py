"""Money Forward billings and payment status in canonical terms (the ``ERPMoney`` part of the contract).
Mixed into :class:`connectors.moneyforward.connector.MoneyForwardERP`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from typing import Any

from renkei.connectors.base import ChangeBatch
from renkei.connectors.http import BadRequest, PermanentError
from renkei.connectors.moneyforward.mapping import (
    ROUNDING,
    MoneyForwardMappingError,
    billing_to_invoice,
    invoice_to_billing,
)
from renkei.domain.model import BankDeposit, Invoice, Payment
from renkei.domain.tax import rate_totals

log = logging.getLogger("renkei.connectors.moneyforward")

__all__ = ["CompanySettingError", "InvoiceNumberTaken", "MoneyForwardMoneyOps", "PartialPaymentNotSupported"]


class CompanySettingError(PermanentError):
    """The office is set up differently from what Renkei was told (採番ルール): nothing was created; the
    message names the setting to change."""


class InvoiceNumberTaken(PermanentError):
    """MF refused the billing number as already used: nothing was created."""


class PartialPaymentNotSupported(PermanentError):
    """A billing has one payment status: a payment short of the total (beyond the fee) cannot be recorded."""


class MoneyForwardMoneyOps:
    """Billings and payment status: order-to-invoice, payment-writeback."""

    client: Any
    config: Any
    tax_mismatches: list[str]

    # -- invoices -----------------------------------------------------------------------------------

    def _invoice(self, raw: dict) -> Invoice:
        res = billing_to_invoice(raw)
        if not res.ok:
            raise MoneyForwardMappingError(res.error or "invalid billing")
        return res.value  # type: ignore[return-value]

    def department_id(self, partner_erp_id: str) -> str:
        """The department a partner is billed at (its first one)."""
        if partner_erp_id not in self._departments:
            raw = self.client.get_partner(partner_erp_id)
            if not raw.get("departments"):
                raise MoneyForwardMappingError(f"Money Forward partner {partner_erp_id} has no department to bill")
            self._departments[partner_erp_id] = raw["departments"][0]["id"]
        return self._departments[partner_erp_id]

    def find_invoice_by_reference(self, reference: str, *, number: str | None = None,
                                  partner_erp_id: str | None = None, **_: Any) -> Invoice | None:
        """The billing carrying ``reference`` (tag, then ``document_number`` when known, then the partner's
        billings), whatever its date."""
        found = self.client.find_billing_by_reference(reference, number=number, partner_id=partner_erp_id)
        return self._invoice(found) if found else None

    def create_invoice(self, invoice: Invoice) -> Invoice:
        """``POST /invoice_template_billings`` (exactly once under a lost answer, see the client).

        Under ``numbering="manual"`` the invoice must carry its number; under ``auto`` MF numbers it when it
        has none. A 400 about ``billing_number`` raises :class:`InvoiceNumberTaken` or
        :class:`CompanySettingError`. After creation MF's per-rate tax is compared with
        :func:`domain.tax.rate_totals` under the office's rounding (and Renkei's policy rounding)."""
        if not invoice.partner_erp_id:
            raise ValueError("create_invoice needs invoice.partner_erp_id")
        if self.config.numbering == "manual" and not invoice.number:
            raise CompanySettingError("the Money Forward office has no 採番ルール (numbering=manual): the invoice "
                                      "needs a number")
        body = invoice_to_billing(invoice, department_id=self.department_id(invoice.partner_erp_id))
        try:
            raw = self.client.create_billing(body)
        except BadRequest as exc:
            text = f"{exc.message} {exc.details or ''}"
            if "billing_number" in text:
                if "すでに" in text or "既に" in text or "taken" in text:
                    raise InvoiceNumberTaken(exc.message, status=exc.status, category=exc.category,
                                             correlation_id=exc.correlation_id) from exc
                if "billing_number" not in body:
                    raise CompanySettingError(
                        "the Money Forward office has no 採番ルール: set RENKEI_MONEYFORWARD_NUMBERING=manual and "
                        f"number invoices in Renkei, or set a rule in 帳票設定 (MF said: {exc.message})",
                        status=exc.status, category=exc.category, correlation_id=exc.correlation_id) from exc
            raise
        created = self._invoice(raw)
        self._check_tax(invoice, created, raw)
        return created

    def _check_tax(self, sent: Invoice, created: Invoice, raw: dict) -> None:
        config = raw.get("config") or {}
        office = ROUNDING.get(config.get("rounding_consumption_tax") or "", None)
        wanted = [(office, "office 帳票設定")]
        if self.config.tax_rounding is not None:
            wanted.append((self.config.tax_rounding, "Renkei policy [tax] rounding"))
        got = {(t.tax_category, t.subtotal, t.tax) for t in created.rate_totals}
        for rounding, source in wanted:
            if rounding is None or not sent.lines:
                continue
            expect = {(t.tax_category, t.subtotal, t.tax)
                      for t in rate_totals(sent.lines, rounding, created.tax_entry_method)}
            if expect != got:
                note = (f"Money Forward billing {created.erp_id} ({created.reference}): per-rate tax {sorted(got)} "
                        f"differs from {source} ({rounding.value}) {sorted(expect)}")
                log.warning(note)
                self.tax_mismatches.append(note)

    def get_invoice(self, erp_id: str) -> Invoice:
        return self._invoice(self.client.get_billing(erp_id))

    # -- deposits and payments ----------------------------------------------------------------------

    def iter_deposits(self, since: date | None = None) -> Iterator[ChangeBatch[BankDeposit]]:
        """Not offered: the invoice API has no bank lines (``capabilities.bank_lines`` is False)."""
        raise NotImplementedError("Money Forward クラウド請求書 has no bank lines; deposits are reconciled in "
                                  "クラウド会計 and read back as payment_status")

    def record_payment(self, payment: Payment) -> Payment:
        """Mark the billing 入金済み (``PUT /billings/{id}/payment_status`` ``"2"``; idempotent).

        MF keeps one status per billing: a payment that, with its fee, covers the total is recorded; a
        shorter one raises :class:`PartialPaymentNotSupported` (a review item)."""
        billing = self._invoice(self.client.get_billing(payment.invoice_erp_id))
        if payment.amount + payment.fee < billing.total:
            raise PartialPaymentNotSupported(
                f"Money Forward billing {payment.invoice_erp_id}: payment {payment.amount:,} + fee {payment.fee:,} "
                f"is short of the total {billing.total:,}; MF records only paid / unpaid")
        self.client.set_payment_status(payment.invoice_erp_id, "2")
        return payment.model_copy(update={"erp_id": f"{payment.invoice_erp_id}:payment_status"})

    def set_unpaid(self, invoice_erp_id: str) -> Invoice:
        """Back to 未入金 (a payment recorded by mistake)."""
        return self._invoice(self.client.set_payment_status(invoice_erp_id, "1"))

    # -- incremental reads --------------------------------------------------------------------------

    def iter_invoice_changes(self, since: date | None = None) -> Iterator[ChangeBatch[Any]]:
        """Billings updated on or after ``since`` (``range_key=updated_at``; MF filters by **day**), as
        :class:`MapResult` of :class:`Invoice` — e.g. to see payment statuses set in MF (消込 in クラウド会計).

        Every batch but the last repeats ``since`` as its watermark; the last carries the latest
        ``updated_at`` day seen, which is read again next time (the caller dedupes on id + status)."""
        from renkei.connectors.moneyforward.mapping import parse_timestamp

        filters: dict[str, Any] = {}
        if since is not None:
            filters = {"range_key": "updated_at", "from": since}
        latest = since
        pending = None
        for page in self.client.iter_billing_pages(per_page=self.config.page_size, **filters):
            if pending is not None:
                yield ChangeBatch(records=pending, watermark=since, exhausted=False)
            pending = []
            for raw in page.items:
                res = billing_to_invoice(raw)
                pending.append(res)
                ts = parse_timestamp(raw.get("updated_at"))
                if ts is not None and (latest is None or ts.date() > latest):
                    latest = ts.date()
        yield ChangeBatch(records=pending or [], watermark=latest, exhausted=True)
