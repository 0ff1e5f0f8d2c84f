"""Money Forward billings and payment status in canonical terms (the ``ERPMoney`` part of the contract).
Mixed into :class:`connectors.moneyforward.connector.MoneyForwardERP`.

MF specifics kept here: billings are created only through ``/invoice_template_billings`` and carry Renkei's
reference in ``memo`` + ``tag_names``; the office's tax rounding is not readable by itself (it is each
billing's ``config``); the payment state is one ``payment_status`` per billing (no payments, no payment
date: a billing marked 入金済み is paid on the JST day of its last update). No bank lines, receivables or
journals: those methods raise ``NotImplementedError`` and the capability flags say so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

from renkei.connectors.base import ChangeBatch, MapResult
from renkei.connectors.canonical_money import (
    BankLineRead,
    InvoiceNumberTaken,
    InvoicePaymentStatus,
    InvoiceSettingMismatch,
    InvoiceSettings,
    ManualJournal,
    MoneyAccount,
    OpenReceivables,
    Receivable,
)
from renkei.connectors.http import BadRequest, PermanentError
from renkei.connectors.moneyforward.mapping import (
    PAYMENT_STATUS_CODES,
    ROUNDING,
    TAX_ROUNDING,
    MoneyForwardMappingError,
    billing_reference,
    billing_to_invoice,
    invoice_to_billing,
    parse_date,
    parse_timestamp,
    partner_to_company,
    yen,
)
from renkei.domain.model import BankDeposit, Company, Invoice, Payment
from renkei.domain.money import Rounding
from renkei.domain.tax import rate_totals

log = logging.getLogger("renkei.connectors.moneyforward")

__all__ = ["CompanySettingError", "InvoiceNumberTaken", "InvoiceSettingMismatch", "MoneyForwardMoneyOps",
           "PartialPaymentNotSupported"]

CompanySettingError = InvoiceSettingMismatch
JST = timezone(timedelta(hours=9))
_PAID = {"2", "4"}  # 入金済み, 振込済み
_NO_BANK_LINES = ("Money Forward クラウド請求書 has no bank lines, receivables or recorded payments (capability "
                  "bank_lines is False): deposits are reconciled in クラウド会計 and read back as payment status")
_NO_JOURNALS = "Money Forward クラウド請求書 has no journals (capability journals is False)"


class PartialPaymentNotSupported(PermanentError):
    """A billing has one payment status: a payment short of the total (beyond the fee) cannot be recorded."""


class MoneyForwardMoneyOps:
    """Billings and payment status: order-to-invoice, payment-writeback."""

    client: Any
    config: Any
    tax_mismatches: list[str]

    def department_id(self, partner_erp_id: str) -> str:  # pragma: no cover - MoneyForwardPartnerOps
        raise NotImplementedError

    # -- invoice settings ---------------------------------------------------------------------------

    def read_invoice_settings(self, *, as_of: date, numbering: str) -> InvoiceSettings:
        """Office (``GET /office``: id, name, 登録番号) and the 端数処理 of the latest billing's ``config``
        (MF has no endpoint for 帳票設定; before the first billing MF's default 切り捨て is assumed).
        ``numbering`` is the policy's mode; the office's 採番ルール is ``RENKEI_MONEYFORWARD_NUMBERING``:
        policy ``auto`` on an office without a rule → :class:`InvoiceSettingMismatch`."""
        office = self.client.get_office()
        latest = next(iter(self.client.iter_billing_pages(per_page=1)), None)
        config = (latest.items[0].get("config") or {}) if latest is not None and latest.items else {}
        source = "config of the latest billing (帳票設定)" if config else "MF default (no billing yet to read 帳票設定 from)"
        tax = TAX_ROUNDING.get(config.get("rounding_consumption_tax") or "round_down", Rounding.FLOOR)
        amount = TAX_ROUNDING.get(config.get("rounding") or "round_down", Rounding.FLOOR)
        office_rule = self.config.numbering
        if numbering == "auto" and office_rule == "manual":
            raise InvoiceSettingMismatch(
                "the Money Forward office has no 採番ルール (RENKEI_MONEYFORWARD_NUMBERING=manual) but the policy "
                "says [invoice_numbering] mode = \"auto\": set mode = \"manual\" (Renkei numbers the invoices) or set "
                "a 採番ルール in MF's 帳票設定 and RENKEI_MONEYFORWARD_NUMBERING=auto")
        rows = (
            ("事業者 (office)", str(office.get("name") or office.get("id")), "MF GET /office"),
            ("登録番号 (registration number)", office.get("registration_code") or "not registered", "MF GET /office"),
            ("取引先コード (partner codes)", "on", "MF partners carry an optional code"),
            ("端数処理 (tax rounding)", f"{tax.value} ({tax.label_ja})", source),
            ("明細の端数処理 (line rounding)", f"{amount.value} ({amount.label_ja})", source),
            ("消費税の表示 (tax display)", str(config.get("consumption_tax_display_type") or "external"), source),
            ("採番 (invoice numbering)", "auto (MF numbers)" if numbering == "auto" else "manual (Renkei numbers)",
             "policy [invoice_numbering] mode"),
            ("採番ルール (MF numbering rule)", "set" if office_rule == "auto" else "not set",
             "RENKEI_MONEYFORWARD_NUMBERING (not readable by API)"),
        )
        return InvoiceSettings(account_id=str(office.get("id") or "moneyforward"), use_partner_code=True,
                               tax_rounding=tax, amount_rounding=amount, invoice_numbering=numbering,
                               registration_number=office.get("registration_code") or None, rows=rows)

    def configure_invoices(self, settings: InvoiceSettings, *, tax_rounding: Rounding) -> None:
        """A number is sent only under ``manual`` numbering; ``tax_rounding`` is what Renkei computed with —
        MF taxes by its 帳票設定, and a billing whose per-rate tax differs is logged (``tax_mismatches``)."""
        self.config.send_number = settings.invoice_numbering == "manual"
        self.config.use_partner_code = settings.use_partner_code
        self.config.tax_rounding = tax_rounding

    def get_invoice_recipient(self, partner_erp_id: str) -> MapResult[Company]:
        return partner_to_company(self.client.get_partner(partner_erp_id))

    # -- invoices -----------------------------------------------------------------------------------

    def _invoice(self, raw: dict) -> Invoice:
        res = billing_to_invoice(raw)
        if not res.ok:
            raise MoneyForwardMappingError(res.error or "invalid billing")
        return res.value  # type: ignore[return-value]

    def find_invoice_by_reference(self, reference: str, *, partner_erp_id: str | None = None,
                                  around: date | None = None, number: str | None = None, **_: Any) -> Invoice | None:
        """The billing carrying ``reference``: by tag, then ``document_number`` (when known), then every
        billing of the partner — never by date (``around`` is not needed)."""
        found = self.client.find_billing_by_reference(reference, number=number, partner_id=partner_erp_id)
        return self._invoice(found) if found else None

    def create_invoice(self, invoice: Invoice) -> Invoice:
        """``POST /invoice_template_billings`` (exactly once under a lost answer, see the client).

        The number is sent when Renkei numbers (``configure_invoices`` with ``manual``); an office without
        採番ルール needs one. A 400 about ``billing_number`` raises :class:`InvoiceNumberTaken` or
        :class:`InvoiceSettingMismatch` — nothing created either way. After creation MF's per-rate tax is
        compared with :func:`domain.tax.rate_totals` (office rounding and Renkei's)."""
        if not invoice.partner_erp_id:
            raise ValueError("create_invoice needs invoice.partner_erp_id")
        send_number = bool(invoice.number) and getattr(self.config, "send_number", True)
        if self.config.numbering == "manual" and not send_number:
            raise InvoiceSettingMismatch(
                "the Money Forward office has no 採番ルール (RENKEI_MONEYFORWARD_NUMBERING=manual): the invoice needs "
                "a number — set [invoice_numbering] mode = \"manual\" in the policy")
        body = invoice_to_billing(invoice, department_id=self.department_id(invoice.partner_erp_id),
                                  send_number=send_number)
        try:
            raw = self.client.create_billing(body)
        except BadRequest as exc:
            text = f"{exc.message} {exc.details or ''}"
            if "billing_number" in text:
                if "すでに" in text or "既に" in text or "taken" in text:
                    raise InvoiceNumberTaken(exc.message, status=exc.status, category=exc.category,
                                             correlation_id=exc.correlation_id) from exc
                if "billing_number" not in body:
                    raise InvoiceSettingMismatch(
                        "the Money Forward office has no 採番ルール: set RENKEI_MONEYFORWARD_NUMBERING=manual and "
                        "[invoice_numbering] mode = \"manual\", or set a rule in MF's 帳票設定 "
                        f"(MF said: {exc.message})", status=exc.status, category=exc.category,
                        correlation_id=exc.correlation_id) from exc
            raise
        created = self._invoice(raw)
        self._check_tax(invoice, created, raw)
        return created

    def _check_tax(self, sent: Invoice, created: Invoice, raw: dict) -> None:
        config = raw.get("config") or {}
        wanted = [(ROUNDING.get(config.get("rounding_consumption_tax") or ""), "office 帳票設定")]
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

    # -- payments -----------------------------------------------------------------------------------

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

    # -- payment status -----------------------------------------------------------------------------

    @staticmethod
    def _payment_status(raw: dict) -> InvoicePaymentStatus | None:
        try:
            total = yen(raw.get("total_price"), "total_price")
        except ValueError as exc:
            log.warning("Money Forward billing %s: %s", raw.get("id"), exc)
            return None
        label = str(raw.get("payment_status") or "")
        code = PAYMENT_STATUS_CODES.get(label, label)
        paid = code in _PAID
        ts = parse_timestamp(raw.get("updated_at"))
        return InvoicePaymentStatus(
            invoice_erp_id=str(raw["id"]), total=total, outstanding=0 if paid else total,
            status="paid" if paid else "unpaid", paid_on=ts.astimezone(JST).date() if paid and ts else None,
            due_date=parse_date(raw.get("due_date")), reference=billing_reference(raw),
            invoice_number=raw.get("billing_number") or None)

    def iter_invoice_payment_changes(self, since: Any = None) -> Iterator[ChangeBatch[InvoicePaymentStatus]]:
        """Billings updated after the watermark (``updated_at``, an ISO timestamp string; ``None`` = all)
        plus every open one (未入金 / 未設定), one batch per page of ``GET /billings``. The watermark is the
        latest ``updated_at`` seen — MF's clock, never today's date; the last batch carries it."""
        last = datetime.fromisoformat(since) if since else None
        top = last
        pending: list[InvoicePaymentStatus] | None = None
        for page in self.client.iter_billing_pages(per_page=self.config.page_size):
            batch = []
            for raw in page.items:
                ts = parse_timestamp(raw.get("updated_at"))
                if ts is not None and (top is None or ts > top):
                    top = ts
                state = self._payment_status(raw)
                if state is None:
                    continue
                changed = last is None or ts is None or ts > last
                if changed or state.status != "paid":
                    batch.append(state)
            if pending is not None:
                yield ChangeBatch(pending, since, False)
            pending = batch
        yield ChangeBatch(pending or [], top.isoformat() if top is not None else since, True)

    def iter_invoice_changes(self, since: date | None = None) -> Iterator[ChangeBatch[MapResult[Invoice]]]:
        """Billings updated on or after the JST day ``since`` (``range_key=updated_at``, day granularity), as
        mapped invoices. The last batch's watermark is the latest ``updated_at`` day (read again next time)."""
        filters: dict[str, Any] = {"range_key": "updated_at", "from": since} if since is not None else {}
        latest = since
        pending = None
        for page in self.client.iter_billing_pages(per_page=self.config.page_size, **filters):
            if pending is not None:
                yield ChangeBatch(records=pending, watermark=since, exhausted=False)
            pending = []
            for raw in page.items:
                pending.append(billing_to_invoice(raw))
                ts = parse_timestamp(raw.get("updated_at"))
                if ts is not None and (latest is None or ts.astimezone(JST).date() > latest):
                    latest = ts.astimezone(JST).date()
        yield ChangeBatch(records=pending or [], watermark=latest, exhausted=True)

    # -- bank lines, receivables (bank_lines=False) ----------------------------------------------------

    def iter_deposits(self, since: date | None = None) -> Iterator[ChangeBatch[BankDeposit]]:
        raise NotImplementedError(_NO_BANK_LINES)

    def iter_bank_lines(self, since: date | None = None) -> Iterator[list[BankLineRead]]:
        raise NotImplementedError(_NO_BANK_LINES)

    def get_bank_line(self, line_id: str) -> BankLineRead | None:
        raise NotImplementedError(_NO_BANK_LINES)

    def open_receivables(self) -> OpenReceivables:
        raise NotImplementedError(_NO_BANK_LINES)

    def get_receivable(self, receivable_id: str) -> Receivable:
        raise NotImplementedError(_NO_BANK_LINES)

    def add_receivable_payment(self, receivable_id: str, *, day: date, amount: int,
                               account: MoneyAccount) -> Receivable:
        raise NotImplementedError(_NO_BANK_LINES)

    def money_accounts(self) -> list[MoneyAccount]:
        raise NotImplementedError(_NO_BANK_LINES)

    # -- journals (journals=False) --------------------------------------------------------------------

    def account_names(self) -> set[str]:
        raise NotImplementedError(_NO_JOURNALS)

    def find_journal(self, ref: str, *, on: date) -> str | None:
        raise NotImplementedError(_NO_JOURNALS)

    def post_journal(self, journal: ManualJournal) -> str:
        raise NotImplementedError(_NO_JOURNALS)

    # -- reporting (batch) ----------------------------------------------------------------------------

    def iter_invoice_facts(self) -> Iterator[list[Any]]:
        """Billings with MF's per-rate totals. MF keeps one status per billing: a 入金済み billing counts as
        one payment of its whole total on the JST day of its last update; an open one is outstanding in
        full (no partial payments, no fee). Every billing is live (MF deletes rather than cancels)."""
        from renkei.domain.reporting import InvoiceFact, PaymentFact, RateTotalFact, deal_id_from_reference, read_facts

        def fact(raw: dict) -> Any:
            res = billing_to_invoice(raw)
            if not res.ok:
                raise ValueError(res.error or "the billing cannot be read")
            state = self._payment_status(raw)
            if state is None:
                raise ValueError("its total cannot be read")
            inv = res.value
            if not inv.partner_erp_id:
                raise ValueError("partner is missing")
            subtotal = sum(t.subtotal - (t.tax if inv.tax_entry_method.value == "inclusive" else 0)
                           for t in inv.rate_totals)
            paid = state.status == "paid"
            return InvoiceFact(
                erp_id=str(inv.erp_id), number=inv.number, reference=inv.reference,
                deal_crm_id=deal_id_from_reference(inv.reference), partner_erp_id=inv.partner_erp_id,
                issue_date=inv.issue_date, due_date=inv.due_date, total=inv.total, subtotal=subtotal,
                outstanding=state.outstanding,
                rate_totals=tuple(RateTotalFact(t.tax_category.value,
                                                t.subtotal - (t.tax if inv.tax_entry_method.value == "inclusive"
                                                              else 0), t.tax) for t in inv.rate_totals),
                payments=(PaymentFact(f"{inv.erp_id}:payment_status", state.paid_on, inv.total),) if paid else ())

        for page in self.client.iter_billing_pages(per_page=self.config.page_size):
            facts = read_facts("invoice", page.items, fact)  # an unreadable billing: left out, reported
            for u in facts.unreadable:
                log.warning("Money Forward billing %s left out of the report: %s", u.key, u.reason)
            yield facts

    def iter_cost_facts(self) -> Iterator[list[Any]]:
        raise NotImplementedError("Money Forward クラウド請求書 holds no cost records (capability cost_records is False)")
