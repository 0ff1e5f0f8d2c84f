"""freee invoices, deposits, payments and journals in canonical terms (the ``ERPMoney`` part of the contract).

Mixed into :class:`connectors.freee.connector.FreeeConnector`; ``self.client`` is the :class:`FreeeClient`.

freee specifics kept here: a receivable is an income 取引 (deal) and its ``payments``; a bank line is a
``wallet_txn`` (status 1 消込待ち, 4 消込中 with ``due_amount`` left; 2/3/6 are done); the fee clearing
account is a 決済口座 whose name contains 手数料 (else the first ``wallet``); journals are 振替伝票 found
again by ``ref_number``; tax code 2 is 対象外.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Iterator

from pydantic import ValidationError

from renkei.connectors.base import ChangeBatch, MapResult
from renkei.connectors.canonical_money import (BankLineRead, InvalidBankLine, InvoicePaymentStatus, InvoiceSettings,
                                               ManualJournal, MoneyAccount, OpenReceivables, Receivable,
                                               ReceivablePayment)
from renkei.domain.model import BankDeposit, Company
from renkei.domain.money import Rounding
from renkei.domain.payer import payer_name_from_bank

TXN_WAITING, TXN_PARTIAL = 1, 4
NON_TAXABLE_TAX_CODE = 2  # freee 税区分 「対象外」
CLEARING_HINT = "手数料"
_REF = re.compile(r"^renkei:deal:([^:\s]+)")


def _date(v: Any) -> date | None:
    return date.fromisoformat(str(v)[:10]) if v else None


def _whole_yen(value: Any, field_name: str, problems: list[str]) -> int | None:
    """Integer yen from the API (an int, or a string of digits); anything else is a problem."""
    if isinstance(value, bool) or value is None:
        problems.append(f"{field_name} missing")
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,15}", value.strip()):
        return int(value.strip())
    problems.append(f"{field_name} is not {'whole yen' if field_name == 'amount' else 'an integer'} "
                    f"({type(value).__name__})")
    return None


def _line_date(value: Any, problems: list[str]) -> date | None:
    try:
        day = date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        day = None
    if day is None:
        problems.append("date missing or not a date")
    return day


def txn_day(txn: dict) -> date | None:
    """The bank line's date, ``None`` when it has none (never raises)."""
    return _line_date(txn.get("date"), [])


def deposit_from_txn(txn: dict, banks: set[str] | None = None) -> BankDeposit | None:
    """A bank line waiting to be matched (status 1, or 4 with its remaining amount), else ``None``.

    The payer name is :func:`domain.payer.payer_name_from_bank` of the description. A line that still
    cannot become a deposit raises :class:`InvalidBankLine`."""
    if txn.get("entry_side") not in (None, "income"):
        return None
    if banks is not None and (txn.get("walletable_type") not in (None, "bank_account")
                              or str(txn.get("walletable_id")) not in banks):
        return None
    txn_id = str(txn.get("id") or "").strip()
    problems: list[str] = []
    if not txn_id:
        raise InvalidBankLine("?", ["id missing"])
    status = _whole_yen(txn.get("status") if txn.get("status") is not None else TXN_WAITING, "status", problems)
    if status is not None and status not in (TXN_WAITING, TXN_PARTIAL):
        return None
    raw = txn.get("due_amount") if txn.get("due_amount") is not None else txn.get("amount")
    remaining = _whole_yen(raw, "amount", problems)
    if remaining is not None and remaining <= 0 and not problems:
        return None
    day = _line_date(txn.get("date"), problems)
    if problems:
        raise InvalidBankLine(txn_id, problems)
    try:
        return BankDeposit(erp_id=txn_id, received_on=day, amount=remaining,
                           payer_name=payer_name_from_bank(txn.get("description")),
                           walletable_id=str(txn["walletable_id"]) if txn.get("walletable_id") is not None else None)
    except ValidationError as exc:  # field names and error types only: never the input values
        raise InvalidBankLine(txn_id, [f"{'.'.join(str(x) for x in e['loc'])}: {e['type']}"
                                       for e in exc.errors(include_input=False, include_url=False)]) from None


def deal_to_receivable(d: dict, inv: dict | None = None) -> Receivable:
    settled = d.get("status") == "settled"
    ref_m = _REF.match((inv or {}).get("memo") or "")
    return Receivable(
        id=str(d["id"]), total=int(d.get("amount") or 0),
        outstanding=0 if settled else int(d.get("due_amount") or 0), settled=settled,
        issue_date=_date(d.get("issue_date")),
        due_date=_date(d.get("due_date")) or (_date(inv.get("payment_date")) if inv else None),
        partner_erp_id=str(d["partner_id"]) if d.get("partner_id") else None,
        invoice_erp_id=str(inv["id"]) if inv else None,
        invoice_number=((inv.get("invoice_number") if inv else None) or d.get("ref_number") or None),
        reference=ref_m.group(0) if ref_m else None,
        payments=tuple(ReceivablePayment(str(p["id"]), _date(p.get("date")), int(p.get("amount") or 0),
                                         str(p["from_walletable_id"]) if p.get("from_walletable_id") is not None
                                         else None) for p in d.get("payments") or []))


class FreeeMoneyOps:
    """Invoices, payments, deposits, journals: order-to-invoice, payment-writeback, subscription-proration."""

    client: Any
    config: Any

    # -- invoices --------------------------------------------------------------------------------------

    def read_invoice_settings(self, *, as_of: date, numbering: str) -> InvoiceSettings:
        from renkei.connectors.freee.connector import read_company_settings

        s = read_company_settings(self.client, as_of=as_of, invoice_numbering=numbering)
        return InvoiceSettings(account_id=str(s.company_id), use_partner_code=s.use_partner_code,
                               tax_rounding=s.tax_rounding, amount_rounding=s.amount_fraction,
                               invoice_numbering=s.invoice_numbering, numbering_source=s.numbering_source,
                               registration_number=s.registration_number, rows=tuple(s.rows()))

    def configure_invoices(self, settings: InvoiceSettings, *, tax_rounding: Rounding) -> None:
        self.config.use_partner_code = settings.use_partner_code
        self.config.send_invoice_number = settings.invoice_numbering == "manual"
        self.config.tax_fraction = tax_rounding

    def get_invoice_recipient(self, partner_erp_id: str) -> MapResult[Company]:
        from renkei.connectors.freee.mapping import partner_to_company

        return partner_to_company(self.client.get_partner(partner_erp_id))

    # -- bank lines --------------------------------------------------------------------------------------

    def _banks(self) -> set[str]:
        return {str(w["id"]) for w in self.client.list_walletables(type="bank_account")}

    def _line(self, txn: dict, banks: set[str]) -> BankLineRead:
        try:
            dep = deposit_from_txn(txn, banks)
        except InvalidBankLine as exc:
            return BankLineRead(exc.txn_id, txn_day(txn), None, exc)
        return BankLineRead(str(txn.get("id") or ""), txn_day(txn), dep)

    def iter_bank_lines(self, since: date | None = None) -> Iterator[list[BankLineRead]]:
        banks = self._banks()
        for page in self.client.iter_wallet_txn_pages(limit=100, entry_side="income", walletable_type="bank_account",
                                                      start_date=since):
            yield [self._line(t, banks) for t in page.items]

    def get_bank_line(self, line_id: str) -> BankLineRead | None:
        from renkei.connectors.http import NotFound

        try:
            txn = self.client._get(f"/api/1/wallet_txns/{line_id}")["wallet_txn"]
        except NotFound:
            return None
        return self._line(txn, self._banks())

    # -- receivables -------------------------------------------------------------------------------------

    def open_receivables(self) -> OpenReceivables:
        client = self.client
        out = OpenReceivables()
        deals = [d for page in client.iter_deal_pages(type="income", status="unsettled", limit=100) for d in page.items]
        invoices: dict[int, dict] = {}
        canceled: set[int] = set()
        for page in client.iter_invoice_pages(payment_status="unsettled", limit=100):
            for inv in page.items:
                if inv.get("deal_id"):
                    if inv.get("cancel_status") == "canceled":
                        canceled.add(int(inv["deal_id"]))
                    else:
                        invoices[int(inv["deal_id"])] = inv
        for page in client.iter_invoice_pages(payment_status="canceled", limit=100):
            canceled.update(int(inv["deal_id"]) for inv in page.items if inv.get("deal_id"))
        deals = [d for d in deals if int(d["id"]) not in canceled]  # a cancelled invoice is not to be paid
        partner_ids = sorted({str(d["partner_id"]) for d in deals if d.get("partner_id")})
        partners: dict[str, dict] = {}
        if len(partner_ids) > 30:
            wanted = set(partner_ids)
            for page in client.iter_partner_pages(limit=3000):
                partners.update({str(p["id"]): p for p in page.items if str(p["id"]) in wanted})
        else:
            for pid in partner_ids:
                partners[pid] = client.get_partner(pid)
        out.partners = {pid: (p.get("name") or pid, p.get("name_kana") or None) for pid, p in partners.items()}
        for d in deals:
            if int(d.get("due_amount") or 0) <= 0:
                continue
            if not d.get("partner_id"):
                out.skipped.append(f"freee deal {d.get('id')}: no partner, cannot be matched")
                continue
            if str(d["partner_id"]) not in partners:
                out.skipped.append(f"freee deal {d['id']}: partner {d['partner_id']} not readable")
                continue
            out.receivables.append(deal_to_receivable(d, invoices.get(int(d["id"]))))
        return out

    def get_receivable(self, receivable_id: str) -> Receivable:
        return deal_to_receivable(self.client.get_deal(receivable_id))

    def add_receivable_payment(self, receivable_id: str, *, day: date, amount: int,
                               account: MoneyAccount) -> Receivable:
        wtype = "bank_account" if account.kind == "bank" else self._wallet_type(account.id)
        deal = self.client.add_deal_payment(receivable_id, {"date": day.isoformat(), "from_walletable_type": wtype,
                                                            "from_walletable_id": int(account.id), "amount": amount})
        return deal_to_receivable(deal)

    def _wallet_type(self, walletable_id: str) -> str:
        for w in self._walletables():
            if str(w["id"]) == str(walletable_id):
                return w["type"]
        return "wallet"

    def _walletables(self) -> list[dict]:
        cached = getattr(self, "_walletables_cache", None)
        if cached is None:
            cached = self.client.list_walletables()
            self._walletables_cache = cached
        return cached

    def money_accounts(self) -> list[MoneyAccount]:
        items = self._account_items()
        self._walletables_cache = self.client.list_walletables()
        wallets = [w for w in self._walletables() if w.get("type") in ("wallet", "bank_account")]
        out = []
        by_wallet = {str(a.get("walletable_id")): a for a in items if a.get("walletable_id") is not None}
        for w in wallets:
            if w.get("type") == "bank_account":
                out.append(MoneyAccount(str(w["id"]), "bank", (by_wallet.get(str(w["id"])) or {}).get("name") or ""))
        clearing = (next((w for w in wallets if CLEARING_HINT in (w.get("name") or "")), None)
                    or next((w for w in wallets if w.get("type") == "wallet"), None))
        if clearing is not None and str(clearing["id"]) in by_wallet:
            out.append(MoneyAccount(str(clearing["id"]), "clearing", by_wallet[str(clearing["id"])]["name"]))
        return out

    # -- payment status ----------------------------------------------------------------------------------

    def iter_invoice_payment_changes(self, since: Any = None) -> Iterator[ChangeBatch[InvoicePaymentStatus]]:
        """freee: an income 取引 per invoice; its payment ids only grow, so the watermark is the highest
        payment id seen. Each batch: the deals with a payment newer than ``since`` and every open one."""
        last = int(since or 0)
        invoices: dict[int, dict] = {}
        for page in self.client.iter_invoice_pages(limit=100):
            for inv in page.items:
                if inv.get("deal_id") and inv.get("cancel_status") != "canceled":
                    invoices[int(inv["deal_id"])] = inv
        top = last
        pending: list[InvoicePaymentStatus] | None = None
        for page in self.client.iter_deal_pages(type="income", limit=100):
            batch = []
            for d in page.items:
                inv = invoices.get(int(d["id"]))
                if inv is None:
                    continue
                ids = [int(p["id"]) for p in d.get("payments") or []]
                newest = max(ids, default=0)
                top = max(top, newest)
                open_ = d.get("status") != "settled" and int(d.get("due_amount") or 0) > 0
                if since is not None and newest <= last and not open_:
                    continue
                r = deal_to_receivable(d, inv)
                status = "paid" if r.outstanding == 0 else "partial" if r.outstanding < r.total else "unpaid"
                batch.append(InvoicePaymentStatus(
                    invoice_erp_id=str(inv["id"]), total=r.total, outstanding=r.outstanding, status=status,
                    paid_on=r.paid_on, due_date=r.due_date, reference=r.reference, invoice_number=r.invoice_number))
            if pending is not None:
                yield ChangeBatch(pending, since, False)
            pending = batch
        yield ChangeBatch(pending or [], top if top else since, True)

    # -- journals --------------------------------------------------------------------------------------

    def _account_items(self) -> list[dict]:
        return self.client.list_account_items()

    def account_names(self) -> set[str]:
        return {a["name"] for a in self._account_items()}

    def find_journal(self, ref: str, *, on: date) -> str | None:
        found = [j for j in self.client.list_manual_journals(ref_number=ref, start_issue_date=on.isoformat(),
                                                             end_issue_date=on.isoformat(), limit=100)
                 if j.get("ref_number") == ref]
        return str(found[0]["id"]) if found else None

    def post_journal(self, journal: ManualJournal) -> str:
        items = {a["name"]: a for a in self._account_items()}
        details = []
        for ln in journal.lines:
            acc = items.get(ln.account)
            if acc is None:
                raise ValueError(f"freee has no account item {ln.account}")
            tax = (NON_TAXABLE_TAX_CODE if ln.tax == "non_taxable"
                   else int(acc.get("default_tax_code") or acc.get("tax_code") or NON_TAXABLE_TAX_CODE))
            partner = int(ln.partner_erp_id) if ln.partner_erp_id and ln.partner_erp_id.isdigit() else None
            details.append({"entry_side": ln.side, "account_item_id": int(acc["id"]), "tax_code": tax,
                            "amount": ln.amount, "description": ln.description[:250],
                            **({"partner_id": partner} if partner else {})})
        created = self.client.create_manual_journal({"issue_date": journal.issue_date.isoformat(),
                                                     "ref_number": journal.ref, "details": details})
        return str(created["id"])

    # -- reporting (batch) -------------------------------------------------------------------------------

    def _tax_categories(self) -> dict[int, str]:
        """freee tax code → canonical TaxCategory value, from the company's 税区分 names."""
        out: dict[int, str] = {}
        for t in self.client.list_taxes():
            name = str(t.get("name") or "")
            if "reduced" in name:
                cat = "reduced_8"
            elif "non_taxable" in name or name == "":
                cat = "non_taxable"
            elif "no_tax" in name or "exempt" in name:
                cat = "exempt"
            else:
                cat = "standard_10"
            out[int(t["code"])] = cat
        return out

    def iter_invoice_facts(self) -> Iterator[list[Any]]:
        """freee請求書 invoices (listing: 請求金額, 税抜, 支払期日, memo reference) joined to their income 取引
        (settlement: ``due_amount``, payments, and per-rate totals from the 取引's details: amount 税込 − vat).
        A payment from the fee clearing account (:data:`CLEARING_HINT`) is a fee, not cash collected."""
        from renkei.domain.reporting import (InvoiceFact, PaymentFact, RateTotalFact, deal_id_from_reference,
                                             read_facts, whole_yen)

        client = self.client
        taxes = self._tax_categories()
        clearing = {a.id for a in self.money_accounts() if a.kind == "clearing"}

        def settlement(d: dict) -> tuple[int, tuple[Any, ...], tuple[Any, ...]]:
            """(outstanding, payments, per-rate totals) of an income 取引 — kept instead of the whole record."""
            payments = []
            for p in d.get("payments") or []:
                fee = str(p.get("from_walletable_id")) in clearing
                amt = whole_yen(p.get("amount"), "payment amount")
                payments.append(PaymentFact(str(p["id"]), _date(p.get("date")), 0 if fee else amt, amt if fee else 0))
            by_cat: dict[str, list[int]] = {}
            for det in d.get("details") or []:
                cat = taxes.get(int(det.get("tax_code") or NON_TAXABLE_TAX_CODE), "standard_10")
                row = by_cat.setdefault(cat, [0, 0])
                vat = whole_yen(det.get("vat"), "vat")
                row[0] += whole_yen(det.get("amount")) - vat
                row[1] += vat
            outstanding = 0 if d.get("status") == "settled" else whole_yen(d.get("due_amount"), "due_amount")
            return outstanding, tuple(payments), tuple(RateTotalFact(c, v[0], v[1]) for c, v in by_cat.items())

        deals: dict[str, Any] = {}  # 取引 id → its settlement, or the reason it cannot be read
        for page in client.iter_deal_pages(type="income", limit=100):
            for d in page.items:
                try:
                    deals[str(d["id"])] = settlement(d)
                except Exception as exc:  # noqa: BLE001 - the invoice of this 取引 is reported unreadable
                    deals[str(d.get("id"))] = ValueError(f"its 取引 {d.get('id')} cannot be read: "
                                                         f"{type(exc).__name__}: {str(exc)[:200]}")

        def fact(inv: dict) -> Any:
            deal = deals.get(str(inv["deal_id"])) if inv.get("deal_id") else None
            if isinstance(deal, Exception):
                raise deal
            ref = ((inv.get("memo") or "").splitlines() or [""])[0].strip() or None
            total = whole_yen(inv.get("total_amount"), "total_amount")
            subtotal = (whole_yen(inv.get("amount_excluding_tax"), "amount_excluding_tax")
                        if inv.get("amount_excluding_tax") is not None
                        else total - whole_yen(inv.get("amount_tax"), "amount_tax"))
            payments: tuple[Any, ...] = ()
            rates: tuple[Any, ...] = ()
            if deal is not None:
                outstanding, payments, rates = deal
            else:
                outstanding = 0 if inv.get("payment_status") == "settled" else total
            if inv.get("partner_id") in (None, ""):
                raise ValueError("partner is missing")
            return InvoiceFact(
                erp_id=str(inv["id"]), number=inv.get("invoice_number") or None, reference=ref,
                deal_crm_id=deal_id_from_reference(ref), partner_erp_id=str(inv["partner_id"]),
                issue_date=_date(inv.get("billing_date")), due_date=_date(inv.get("payment_date")),
                total=total, subtotal=subtotal, outstanding=outstanding,
                cancelled=inv.get("cancel_status") == "canceled", rate_totals=rates, payments=payments)

        for page in client.iter_invoice_pages(limit=100):  # an unreadable invoice: left out, reported
            yield read_facts("invoice", page.items, fact)

    def iter_cost_facts(self) -> Iterator[list[Any]]:
        """Per-customer cost: every expense 取引 (``type=expense``) with a partner; its cost is Σ details
        (amount − vat), i.e. 税抜. Expense 取引 without a partner are overhead, not a customer's cost."""
        from renkei.domain.reporting import CostFact, read_facts, whole_yen

        def fact(d: dict) -> Any:
            if not d.get("partner_id"):
                return None  # overhead, not a customer's cost
            return CostFact(erp_id=str(d["id"]), partner_erp_id=str(d["partner_id"]), day=_date(d.get("issue_date")),
                            amount=sum(whole_yen(x.get("amount")) - whole_yen(x.get("vat"), "vat")
                                       for x in d.get("details") or []))

        for page in self.client.iter_deal_pages(type="expense", limit=100):  # unreadable: left out, reported
            yield read_facts("cost_record", page.items, fact)
