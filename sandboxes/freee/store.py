"""In-memory, thread-safe state of the freee sandbox and the business rules freee applies to it.

Exposed as ``app.state.store``: tests read entities directly (``store.deals[id]``) and bulk-load
with the same methods the HTTP handlers use (``store.create_partner(PartnerBody(...))``).

Modelling choices (where freee's behaviour is not documented, the choice is named here):

* **Deals (取引)** — ``amount`` is the sum of the detail amounts (tax-inclusive, 税込);
  ``due_amount = amount − Σ payments``; ``status`` is ``settled`` exactly when ``due_amount == 0``.
  A payment that would make ``due_amount`` negative is refused (400). A detail without ``vat`` gets
  the tax contained in its amount, rounded with the company's ``tax_fraction`` (per line, as freee
  does for deal lines; invoices round per rate — book them with explicit ``vat``).
* **Wallet txns (口座明細) and matching (消込)** — a new txn is ``status 1`` (消込待ち) with
  ``due_amount = amount``. A deal payment from a bank account / card / wallet is matched to the
  oldest open txn (status 1 or 4) of that walletable with the same date and entry side whose
  ``due_amount`` covers it (an exact amount wins): its ``due_amount`` drops by the payment and the
  status becomes 2 (消込済み) at 0 or 4 (消込中) in between. Several payments can consume one deposit
  (まとめ入金). With no matching txn, a settled txn (status 2) is recorded for the payment, the way
  freee lists manually registered settlements in the account's 明細.
* **freee請求書 invoices** — totals per rate with one rounding per rate (:mod:`.tax`); with
  ``iv_register_deal`` the invoice is booked at once as an income deal (one detail per tax group,
  ``amount`` = 税込 group total, explicit ``vat`` = the invoice's tax of that group,
  ``ref_number`` = invoice number) and ``payment_status`` follows the deal's settlement. Per-rate
  fields of a rate with no lines are ``null``. Invoice numbers are not forced unique.
* **Partners (取引先)** — name and code are unique per company; ``invoice_registration_number`` is
  stored with its ``T`` prefix; the check digit is not verified (freee's own spec example
  ``T1000000000001`` fails it), only the spec's pattern.
* **Lists** — partners, items, deals and manual journals by id ascending; wallet txns by date, newest
  first (``sort_type=created_at_desc``: by id, newest first); invoices newest first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar, Literal, TypeVar

from renkei.domain.money import round_yen
from renkei.sandboxes.common import Clock

from . import tax
from .config import FreeeSandboxConfig
from .entities import (
    TXN_MATCHED,
    TXN_PARTIAL,
    TXN_UNMATCHED,
    AccountItem,
    Company,
    Deal,
    DealDetail,
    Invoice,
    InvoiceLine,
    Item,
    JournalDetail,
    ManualJournal,
    Partner,
    Payment,
    TaxCode,
    Template,
    Walletable,
    WalletTxn,
)
from .errors import Api, bad_request, not_found
from .models import (
    DealCreate,
    DealDetailIn,
    DealPaymentCreate,
    DealUpdate,
    InvoiceCreate,
    InvoiceLineIn,
    ItemBody,
    ManualJournalCreate,
    PartnerBody,
    PartnerFields,
    PartnerUpsert,
    WalletTxnCreate,
)

__all__ = [
    "JST",
    "AccountItem",
    "Company",
    "Deal",
    "FreeeStore",
    "Invoice",
    "Item",
    "ManualJournal",
    "Partner",
    "TaxCode",
    "Template",
    "WalletTxn",
    "Walletable",
]

JST = timezone(timedelta(hours=9), "Asia/Tokyo")

T = TypeVar("T")

_OPEN_TXN = (TXN_UNMATCHED, TXN_PARTIAL)


# ---------------------------------------------------------------------------------------------------
# Store
# ---------------------------------------------------------------------------------------------------


def _page(rows: list[T], offset: int, limit: int) -> list[T]:
    return rows[offset : offset + limit]


class FreeeStore:
    """The sandbox's data for one freee company plus the rules that keep it consistent."""

    def __init__(self, config: FreeeSandboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.companies: dict[int, Company] = {}
        self.taxes: dict[int, TaxCode] = {}
        self.account_items: dict[int, AccountItem] = {}
        self.walletables: dict[int, Walletable] = {}
        self.templates: dict[int, Template] = {}
        self.partners: dict[int, Partner] = {}
        self.items: dict[int, Item] = {}
        self.deals: dict[int, Deal] = {}
        self.wallet_txns: dict[int, WalletTxn] = {}
        self.manual_journals: dict[int, ManualJournal] = {}
        self.invoices: dict[int, Invoice] = {}
        self._ids: dict[str, int] = {}
        # partners by (company, name) and (company, code): built from ``partners`` when its size changes
        # (records loaded straight into the dict), kept current by the store's own writes; every hit is
        # checked against the partner itself, so an outdated entry is never an answer
        self._partner_keys: dict[tuple[str, int, str], set[int]] | None = None
        self._partner_keys_len = -1
        self.use_indexes = True  # False: look-ups scan every partner (tests compare the two)

    # -- helpers -------------------------------------------------------------------------------------

    _ID_BASE: ClassVar[dict[str, int]] = {
        "partner": 100_001,
        "item": 200_001,
        "deal": 300_001,
        "deal_detail": 400_001,
        "payment": 500_001,
        "wallet_txn": 600_001,
        "manual_journal": 700_001,
        "journal_detail": 800_001,
        "invoice": 900_001,
        "invoice_line": 1_000_001,
    }

    def next_id(self, kind: str) -> int:
        with self.lock:
            value = self._ids.get(kind, self._ID_BASE[kind])
            self._ids[kind] = value + 1
            return value

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now_ms() / 1000, UTC).astimezone(JST)

    def today(self) -> str:
        """Today in Asia/Tokyo (freee's ``update_date``)."""
        return self.now().date().isoformat()

    def company(self, company_id: int) -> Company:
        found = self.companies.get(company_id)
        if found is None:  # callers check membership first; this is a programming error
            raise KeyError(company_id)
        return found

    @staticmethod
    def _owned(rows: Iterable[T], company_id: int) -> list[T]:
        return [r for r in rows if getattr(r, "company_id", company_id) == company_id]

    # -- master data ---------------------------------------------------------------------------------

    def tax_code(self, code: int, api: Api = "accounting") -> TaxCode:
        found = self.taxes.get(code)
        if found is None or not found.available:
            raise bad_request(api, f"税区分コード {code} は存在しないか、利用できません。")
        return found

    def tax_code_for(self, key: tax.RateKey) -> TaxCode:
        """The sales tax code freee uses for an invoice tax group (課税売上10% / 8%（軽）/ 8% / 対象外)."""
        wanted = {
            tax.RateKey(10): "sales_with_tax_10",
            tax.RateKey(8, True): "sales_with_tax_reduced_8",
            tax.RateKey(8): "sales_with_tax_8",
            tax.RateKey(0): "non_taxable",
        }[key]
        return next(t for t in self.taxes.values() if t.name == wanted)

    def account_item(
        self, company_id: int, item_id: int | None, code: str | None, api: Api = "accounting"
    ) -> AccountItem:
        if (item_id is None) == (code is None):
            raise bad_request(api, "account_item_id と account_item_code はどちらか一方を指定してください。")
        for ai in self.account_items.values():
            if (item_id is not None and ai.id == item_id) or (code is not None and ai.code == code):
                return ai
        raise bad_request(api, f"勘定科目 {item_id if item_id is not None else code} が存在しません。")

    def account_item_by_name(self, name: str) -> AccountItem:
        return next(ai for ai in self.account_items.values() if ai.name == name)

    def resolve_partner(
        self, company_id: int, partner_id: int | None, partner_code: str | None, api: Api, *, required: bool = False
    ) -> Partner | None:
        if partner_id is not None and partner_code is not None:
            raise bad_request(api, "partner_id と partner_code は同時に指定できません。")
        if partner_id is None and partner_code is None:
            if required:
                raise bad_request(api, "partner_id または partner_code を指定してください。")
            return None
        if partner_id is not None:
            p = self.partners.get(partner_id)
            if p is not None and getattr(p, "company_id", company_id) == company_id:
                return p
        else:
            found = self.partners_with(company_id, code=partner_code)
            if found:
                return found[0]
        raise bad_request(api, f"取引先 {partner_id if partner_id is not None else partner_code} が存在しません。")

    def resolve_item(
        self, company_id: int, item_id: int | None, code: str | None, api: Api = "accounting"
    ) -> Item | None:
        if item_id is None and code is None:
            return None
        for it in self._owned(self.items.values(), company_id):
            if (item_id is not None and it.id == item_id) or (code is not None and it.code == code):
                return it
        raise bad_request(api, f"品目 {item_id if item_id is not None else code} が存在しません。")

    # -- partners (取引先) ---------------------------------------------------------------------------

    def _partner_index(self) -> dict[tuple[str, int, str], set[int]]:
        if self._partner_keys is None or self._partner_keys_len != len(self.partners):
            keys: dict[tuple[str, int, str], set[int]] = {}
            for p in self.partners.values():
                keys.setdefault(("name", p.company_id, p.name), set()).add(p.id)
                if p.code is not None:
                    keys.setdefault(("code", p.company_id, p.code), set()).add(p.id)
            self._partner_keys, self._partner_keys_len = keys, len(self.partners)
        return self._partner_keys

    def _partner_written(self, partner: Partner, *, added: bool) -> None:
        """After a create / update through the store: index the partner's current name and code."""
        keys = self._partner_keys
        if keys is None or self._partner_keys_len != len(self.partners) - (1 if added else 0):
            return  # not built or already outdated: rebuilt on the next look-up
        keys.setdefault(("name", partner.company_id, partner.name), set()).add(partner.id)
        if partner.code is not None:
            keys.setdefault(("code", partner.company_id, partner.code), set()).add(partner.id)
        self._partner_keys_len = len(self.partners)

    def partners_with(self, company_id: int, *, name: str | None = None, code: str | None = None) -> list[Partner]:
        """The company's partners with this name (or code), in ``partners`` order (a scan's order)."""
        field, value = ("name", name) if name is not None else ("code", code)
        if value is None:
            return []
        if not self.use_indexes:
            return [p for p in self._owned(self.partners.values(), company_id) if getattr(p, field) == value]
        ids = self._partner_index().get((field, company_id, value), ())
        hits = [p for i in ids if (p := self.partners.get(i)) is not None
                and p.company_id == company_id and getattr(p, field) == value]
        if len(hits) > 1:
            order = {pid: n for n, pid in enumerate(self.partners)} if len(hits) > 1 else {}
            hits.sort(key=lambda p: order[p.id])
        return hits

    def _apply_partner_fields(self, partner: Partner, fields: PartnerFields, *, creating: bool) -> None:
        sent = fields.model_fields_set
        nested = {
            "address_attributes",
            "partner_doc_setting_attributes",
            "partner_bank_account_attributes",
            "payment_term_attributes",
            "invoice_payment_term_attributes",
        }
        for name in sent - nested - {"code"}:
            value = getattr(fields, name)
            if name == "invoice_registration_number" and value:
                value = value if value.startswith("T") else f"T{value}"
            if value is None and name in (
                "available",
                "country_code",
                "transfer_fee_handling_side",
                "qualified_invoice_issuer",
            ):
                continue
            setattr(partner, name, value)
        for name in sent & nested:
            value = getattr(fields, name)
            if value is None:
                continue
            getattr(partner, name).update(value.model_dump(exclude_unset=True))
        partner.update_date = self.today()

    def _check_partner_unique(self, company_id: int, name: str, code: str | None, exclude_id: int | None) -> None:
        clash = {p.id: p for p in self.partners_with(company_id, name=name)}
        clash.update((p.id, p) for p in self.partners_with(company_id, code=code))
        order = {pid: n for n, pid in enumerate(self.partners)} if len(clash) > 1 else {}
        for other in sorted(clash.values(), key=lambda p: order.get(p.id, 0)):
            if other.id == exclude_id:
                continue
            if other.name == name:
                raise bad_request("accounting", f"取引先名（{name}）は既に使用されています。")
            if code is not None and other.code == code:
                raise bad_request("accounting", f"取引先コード（{code}）は既に使用されています。")

    def _check_code_setting(self, company: Company, code: str | None, *, creating: bool) -> None:
        if company.use_partner_code and creating and not code:
            raise bad_request("accounting", "取引先コードを入力してください。（取引先コードの利用が有効な事業所です）")
        if not company.use_partner_code and code:
            raise bad_request("accounting", "取引先コードの利用が無効な事業所では code を指定できません。")

    def create_partner(self, body: PartnerBody) -> Partner:
        with self.lock:
            company = self.company(body.company_id)
            self._check_code_setting(company, body.code, creating=True)
            self._check_partner_unique(company.id, body.name, body.code, None)
            partner = Partner(
                id=self.next_id("partner"),
                company_id=company.id,
                name=body.name,
                code=body.code,
                update_date=self.today(),
            )
            self._apply_partner_fields(partner, body, creating=True)
            self.partners[partner.id] = partner
            self._partner_written(partner, added=True)
            return partner

    def get_partner(self, company_id: int, partner_id: int) -> Partner:
        partner = self.partners.get(partner_id)
        if partner is None or partner.company_id != company_id:
            raise not_found("accounting", "指定した取引先は存在しません。")
        return partner

    def update_partner(self, partner_id: int, body: PartnerBody) -> Partner:
        with self.lock:
            partner = self.get_partner(body.company_id, partner_id)
            code = body.code if "code" in body.model_fields_set else partner.code
            self._check_partner_unique(partner.company_id, body.name, code, partner.id)
            if "code" in body.model_fields_set:
                self._check_code_setting(self.company(partner.company_id), body.code, creating=False)
                partner.code = body.code
            self._apply_partner_fields(partner, body, creating=False)
            self._partner_written(partner, added=False)
            return partner

    def upsert_partner_by_code(self, body: PartnerUpsert, *, create: bool = True) -> tuple[Partner, bool]:
        """``PUT /partners/upsert_by_code`` (``create=True``) and ``PUT /partners/code/{code}``.

        Returns ``(partner, created)``. PATCH-like: only the sent attributes change.
        """
        with self.lock:
            company = self.company(body.company_id)
            if not company.use_partner_code:
                raise bad_request("accounting", "取引先コードの利用が無効な事業所です。")
            existing = next(iter(self.partners_with(company.id, code=body.code)), None)
            if existing is None:
                if not create:
                    raise not_found("accounting", "指定した取引先は存在しません。")
                self._check_partner_unique(company.id, body.partner.name, body.code, None)
                partner = Partner(
                    id=self.next_id("partner"),
                    company_id=company.id,
                    name=body.partner.name,
                    code=body.code,
                    update_date=self.today(),
                )
                self._apply_partner_fields(partner, body.partner, creating=True)
                self.partners[partner.id] = partner
                self._partner_written(partner, added=True)
                return partner, True
            self._check_partner_unique(company.id, body.partner.name, body.code, existing.id)
            self._apply_partner_fields(existing, body.partner, creating=False)
            self._partner_written(existing, added=False)
            return existing, False

    def list_partners(
        self,
        company_id: int,
        *,
        keyword: str | None = None,
        start_update_date: str | None = None,
        end_update_date: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[Partner]:
        rows = sorted(self._owned(self.partners.values(), company_id), key=lambda p: p.id)
        if keyword:
            k = keyword.casefold()
            rows = [
                p
                for p in rows
                if any(
                    k in (v or "").casefold()
                    for v in (p.name, p.long_name, p.name_kana, p.code, p.shortcut1, p.shortcut2)
                )
            ]
        if start_update_date:
            rows = [p for p in rows if p.update_date >= start_update_date]
        if end_update_date:
            rows = [p for p in rows if p.update_date <= end_update_date]
        return _page(rows, offset, limit)

    # -- items (品目) ---------------------------------------------------------------------------------

    def create_item(self, body: ItemBody) -> Item:
        with self.lock:
            self._check_item_unique(body.company_id, body.name, body.code, None)
            item = Item(
                id=self.next_id("item"),
                company_id=body.company_id,
                name=body.name,
                code=body.code,
                shortcut1=body.shortcut1,
                shortcut2=body.shortcut2,
                update_date=self.today(),
            )
            self.items[item.id] = item
            return item

    def _check_item_unique(self, company_id: int, name: str, code: str | None, exclude_id: int | None) -> None:
        for other in self._owned(self.items.values(), company_id):
            if other.id == exclude_id:
                continue
            if other.name == name:
                raise bad_request("accounting", f"品目名（{name}）は既に使用されています。")
            if code is not None and other.code == code:
                raise bad_request("accounting", f"品目コード（{code}）は既に使用されています。")

    def get_item(self, company_id: int, item_id: int) -> Item:
        item = self.items.get(item_id)
        if item is None or item.company_id != company_id:
            raise not_found("accounting", "指定した品目は存在しません。")
        return item

    def update_item(self, item_id: int, body: ItemBody) -> Item:
        with self.lock:
            item = self.get_item(body.company_id, item_id)
            code = body.code if "code" in body.model_fields_set else item.code
            self._check_item_unique(item.company_id, body.name, code, item.id)
            item.name = body.name
            for name in ("shortcut1", "shortcut2", "code"):
                if name in body.model_fields_set:
                    setattr(item, name, getattr(body, name))
            item.update_date = self.today()
            return item

    def list_items(
        self,
        company_id: int,
        *,
        offset: int = 0,
        limit: int = 50,
        start_update_date: str | None = None,
        end_update_date: str | None = None,
    ) -> list[Item]:
        rows = sorted(self._owned(self.items.values(), company_id), key=lambda i: i.id)
        if start_update_date:
            rows = [i for i in rows if i.update_date >= start_update_date]
        if end_update_date:
            rows = [i for i in rows if i.update_date <= end_update_date]
        return _page(rows, offset, limit)

    # -- deals (取引) and payments ---------------------------------------------------------------------

    def _build_details(
        self,
        company_id: int,
        deal_type: str,
        details: list[DealDetailIn],
        existing: dict[int, DealDetail] | None = None,
    ) -> list[DealDetail]:
        company = self.company(company_id)
        out: list[DealDetail] = []
        side: Literal["credit", "debit"] = "credit" if deal_type == "income" else "debit"
        for d in details:
            code = self.tax_code(d.tax_code)
            ai = self.account_item(company_id, d.account_item_id, d.account_item_code)
            item = self.resolve_item(company_id, d.item_id, d.item_code)
            if d.vat is not None and code.rate == 0 and d.vat != 0:
                raise bad_request("accounting", f"税区分（{code.name_ja}）では消費税額（vat）を指定できません。")
            vat = (
                d.vat
                if d.vat is not None
                else tax.vat_included(d.amount, code.rate, tax.company_fraction(company.tax_fraction))
            )
            detail_id = d.id if existing is not None and d.id in existing else self.next_id("deal_detail")
            out.append(
                DealDetail(
                    id=detail_id,
                    account_item_id=ai.id,
                    tax_code=code.code,
                    amount=d.amount,
                    vat=vat,
                    entry_side=side,
                    item_id=item.id if item else None,
                    section_id=d.section_id,
                    tag_ids=list(d.tag_ids or []),
                    description=d.description or "",
                )
            )
        return out

    def _check_walletable(self, kind: str, walletable_id: int, api: Api = "accounting") -> None:
        if kind == "private_account_item":
            if walletable_id not in self.account_items:
                raise bad_request(api, f"勘定科目 {walletable_id} が存在しません。")
            return
        found = self.walletables.get(walletable_id)
        if found is None or found.type != kind:
            raise bad_request(api, f"口座（{kind} {walletable_id}）が存在しません。")

    def create_deal(self, body: DealCreate) -> Deal:
        with self.lock:
            partner = self.resolve_partner(body.company_id, body.partner_id, body.partner_code, "accounting")
            deal = Deal(
                id=0,
                company_id=body.company_id,
                issue_date=body.issue_date,
                type=body.type,
                details=self._build_details(body.company_id, body.type, body.details),
                due_date=body.due_date,
                partner_id=partner.id if partner else None,
                ref_number=body.ref_number,
                receipt_ids=list(body.receipt_ids or []),
            )
            for p in body.payments or []:
                self._check_walletable(p.from_walletable_type, p.from_walletable_id)
            if sum(p.amount for p in body.payments or []) > deal.amount:
                raise bad_request("accounting", "決済金額の合計が取引金額を超えています。")
            deal.id = self.next_id("deal")
            self.deals[deal.id] = deal
            for p in body.payments or []:
                self._add_payment(deal, p.date, p.from_walletable_type, p.from_walletable_id, p.amount)
            return deal

    def get_deal(self, company_id: int, deal_id: int) -> Deal:
        deal = self.deals.get(deal_id)
        if deal is None or deal.company_id != company_id:
            raise not_found("accounting", "指定した取引は存在しません。")
        return deal

    def update_deal(self, deal_id: int, body: DealUpdate) -> Deal:
        with self.lock:
            deal = self.get_deal(body.company_id, deal_id)
            partner = self.resolve_partner(body.company_id, body.partner_id, body.partner_code, "accounting")
            details = self._build_details(body.company_id, body.type, body.details, {d.id: d for d in deal.details})
            if sum(d.amount for d in details) < deal.paid:
                raise bad_request("accounting", "取引金額が決済済みの金額を下回ります。")
            deal.issue_date, deal.type, deal.details = body.issue_date, body.type, details
            deal.due_date = body.due_date
            deal.partner_id = partner.id if partner else None
            deal.ref_number = body.ref_number
            if body.receipt_ids is not None:
                deal.receipt_ids = list(body.receipt_ids)
            return deal

    def add_payment(self, deal_id: int, body: DealPaymentCreate) -> Deal:
        with self.lock:
            deal = self.get_deal(body.company_id, deal_id)
            self._check_walletable(body.from_walletable_type, body.from_walletable_id)
            if body.amount > deal.due_amount:
                raise bad_request(
                    "accounting", f"決済金額（{body.amount}）が未決済金額（{deal.due_amount}）を超えています。"
                )
            self._add_payment(deal, body.date, body.from_walletable_type, body.from_walletable_id, body.amount)
            return deal

    def _add_payment(self, deal: Deal, day: str, kind: str, walletable_id: int, amount: int) -> Payment:
        payment = Payment(self.next_id("payment"), day, kind, walletable_id, amount)
        if kind != "private_account_item":
            payment.wallet_txn_id = self._match_wallet_txn(deal, payment).id
        deal.payments.append(payment)
        return payment

    def _match_wallet_txn(self, deal: Deal, payment: Payment) -> WalletTxn:
        side: Literal["income", "expense"] = "income" if deal.type == "income" else "expense"
        candidates = [
            t
            for t in sorted(self.wallet_txns.values(), key=lambda t: t.id)
            if t.company_id == deal.company_id
            and t.walletable_id == payment.from_walletable_id
            and t.walletable_type == payment.from_walletable_type
            and t.entry_side == side
            and t.date == payment.date
            and t.status in _OPEN_TXN
            and t.due_amount >= payment.amount
        ]
        exact = [t for t in candidates if t.due_amount == payment.amount]
        txn = (exact or candidates)[0] if candidates else None
        if txn is None:
            partner = self.partners.get(deal.partner_id) if deal.partner_id else None
            txn = WalletTxn(
                id=self.next_id("wallet_txn"),
                company_id=deal.company_id,
                date=payment.date,
                amount=payment.amount,
                due_amount=payment.amount,
                entry_side=side,
                walletable_type=payment.from_walletable_type,
                walletable_id=payment.from_walletable_id,
                description=partner.name if partner else (deal.ref_number or ""),
            )
            self.wallet_txns[txn.id] = txn
        txn.due_amount -= payment.amount
        txn.status = TXN_MATCHED if txn.due_amount == 0 else TXN_PARTIAL
        return txn

    def list_deals(
        self,
        company_id: int,
        *,
        partner_id: int | None = None,
        partner_code: str | None = None,
        account_item_id: int | None = None,
        status: str | None = None,
        type: str | None = None,  # noqa: A002 - freee's parameter name
        start_issue_date: str | None = None,
        end_issue_date: str | None = None,
        start_due_date: str | None = None,
        end_due_date: str | None = None,
    ) -> list[Deal]:
        """All matching deals ordered by id (the caller pages them; ``meta.total_count`` is the length)."""
        code_partner = None
        if partner_code is not None:
            code_partner = next((p.id for p in self.partners_with(company_id, code=partner_code)), -1)
        checks: list[Callable[[Deal], bool]] = []
        if partner_id is not None:
            checks.append(lambda d: d.partner_id == partner_id)
        if code_partner is not None:
            checks.append(lambda d: d.partner_id == code_partner)
        if account_item_id is not None:
            checks.append(lambda d: any(x.account_item_id == account_item_id for x in d.details))
        if status is not None:
            checks.append(lambda d: d.status == status)
        if type is not None:
            checks.append(lambda d: d.type == type)
        if start_issue_date:
            checks.append(lambda d: d.issue_date >= start_issue_date)
        if end_issue_date:
            checks.append(lambda d: d.issue_date <= end_issue_date)
        if start_due_date:
            checks.append(lambda d: d.due_date is not None and d.due_date >= start_due_date)
        if end_due_date:
            checks.append(lambda d: d.due_date is not None and d.due_date <= end_due_date)
        rows = sorted(self._owned(self.deals.values(), company_id), key=lambda d: d.id)
        return [d for d in rows if all(c(d) for c in checks)]

    def deal_to_api(self, deal: Deal) -> dict[str, Any]:
        partner = self.partners.get(deal.partner_id) if deal.partner_id else None
        body: dict[str, Any] = {
            "id": deal.id,
            "company_id": deal.company_id,
            "issue_date": deal.issue_date,
            "due_date": deal.due_date,
            "amount": deal.amount,
            "due_amount": deal.due_amount,
            "type": deal.type,
            "partner_id": deal.partner_id,
            "partner_code": partner.code if partner else None,
            "ref_number": deal.ref_number,
            "status": deal.status,
            "details": [self._detail_to_api(deal, d) for d in deal.details],
            "receipts": [],
        }
        if deal.payments:
            body["payments"] = [
                {
                    "id": p.id,
                    "date": p.date,
                    "from_walletable_type": p.from_walletable_type,
                    "from_walletable_id": p.from_walletable_id,
                    "amount": p.amount,
                }
                for p in deal.payments
            ]
        return body

    def _detail_to_api(self, deal: Deal, d: DealDetail) -> dict[str, Any]:
        ai = self.account_items.get(d.account_item_id)
        item = self.items.get(d.item_id) if d.item_id else None
        partner = self.partners.get(deal.partner_id) if deal.partner_id else None
        return {
            "id": d.id,
            "account_item_id": d.account_item_id,
            "account_item_code": ai.code if ai else None,
            "tax_code": d.tax_code,
            "partner_id": deal.partner_id,
            "partner_code": partner.code if partner else None,
            "item_id": d.item_id,
            "item_code": item.code if item else None,
            "section_id": d.section_id,
            "section_code": None,
            "tag_ids": list(d.tag_ids),
            "amount": d.amount,
            "vat": d.vat,
            "description": d.description,
            "entry_side": d.entry_side,
        }

    # -- wallet txns (口座明細) -------------------------------------------------------------------------

    def create_wallet_txn(self, body: WalletTxnCreate) -> WalletTxn:
        with self.lock:
            self._check_walletable(body.walletable_type, body.walletable_id)
            txn = WalletTxn(
                id=self.next_id("wallet_txn"),
                company_id=body.company_id,
                date=body.date,
                amount=body.amount,
                due_amount=body.amount,
                entry_side=body.entry_side,
                walletable_type=body.walletable_type,
                walletable_id=body.walletable_id,
                description=body.description or "",
                balance=body.balance,
            )
            self.wallet_txns[txn.id] = txn
            return txn

    def get_wallet_txn(self, company_id: int, txn_id: int) -> WalletTxn:
        txn = self.wallet_txns.get(txn_id)
        if txn is None or txn.company_id != company_id:
            raise not_found("accounting", "指定した明細は存在しません。")
        return txn

    def list_wallet_txns(
        self,
        company_id: int,
        *,
        walletable_type: str | None = None,
        walletable_id: int | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
        entry_side: str | None = None,
        sort_type: str | None = None,
    ) -> list[WalletTxn]:
        rows = [
            t
            for t in self._owned(self.wallet_txns.values(), company_id)
            if (walletable_type is None or t.walletable_type == walletable_type)
            and (walletable_id is None or t.walletable_id == walletable_id)
            and (start_date is None or t.date >= start_date)
            and (end_date is None or t.date <= end_date)
            and (entry_side is None or t.entry_side == entry_side)
        ]
        if sort_type == "created_at_desc":
            return sorted(rows, key=lambda t: t.id, reverse=True)
        return sorted(rows, key=lambda t: (t.date, t.id), reverse=True)  # freee's default: date, newest first

    def walletable_balance(self, walletable_id: int) -> int:
        return sum(
            t.amount if t.entry_side == "income" else -t.amount
            for t in self.wallet_txns.values()
            if t.walletable_id == walletable_id
        )

    # -- manual journals (振替伝票) ---------------------------------------------------------------------

    def create_manual_journal(self, body: ManualJournalCreate) -> ManualJournal:
        with self.lock:
            company = self.company(body.company_id)
            details: list[JournalDetail] = []
            for d in body.details:
                code = self.tax_code(d.tax_code)
                ai = self.account_item(company.id, d.account_item_id, d.account_item_code)
                partner = self.resolve_partner(company.id, d.partner_id, d.partner_code, "accounting")
                item = self.resolve_item(company.id, d.item_id, d.item_code)
                vat = (
                    d.vat
                    if d.vat is not None
                    else tax.vat_included(d.amount, code.rate, tax.company_fraction(company.tax_fraction))
                )
                details.append(
                    JournalDetail(
                        id=self.next_id("journal_detail"),
                        entry_side=d.entry_side,
                        account_item_id=ai.id,
                        tax_code=code.code,
                        amount=d.amount,
                        vat=vat,
                        partner_id=partner.id if partner else None,
                        item_id=item.id if item else None,
                        section_id=d.section_id,
                        tag_ids=list(d.tag_ids or []),
                        description=d.description or "",
                    )
                )
            debit = sum(d.amount for d in details if d.entry_side == "debit")
            credit = sum(d.amount for d in details if d.entry_side == "credit")
            if debit != credit:
                raise bad_request("accounting", f"貸借の金額が一致しません。（借方 {debit} / 貸方 {credit}）")
            journal = ManualJournal(
                id=self.next_id("manual_journal"),
                company_id=company.id,
                issue_date=body.issue_date,
                adjustment=body.adjustment,
                details=details,
                ref_number=body.ref_number,
                receipt_ids=list(body.receipt_ids or []),
            )
            self.manual_journals[journal.id] = journal
            return journal

    def list_manual_journals(
        self,
        company_id: int,
        *,
        start_issue_date: str | None = None,
        end_issue_date: str | None = None,
        entry_side: str | None = None,
        account_item_id: int | None = None,
        min_amount: int | None = None,
        max_amount: int | None = None,
        partner_id: int | None = None,
        ref_number: str | None = None,
        adjustment: str | None = None,
    ) -> list[ManualJournal]:
        def detail_ok(d: JournalDetail) -> bool:
            return (
                (entry_side is None or d.entry_side == entry_side)
                and (account_item_id is None or d.account_item_id == account_item_id)
                and (min_amount is None or d.amount >= min_amount)
                and (max_amount is None or d.amount <= max_amount)
                and (partner_id is None or d.partner_id == partner_id)
            )

        rows = [
            j
            for j in sorted(self._owned(self.manual_journals.values(), company_id), key=lambda j: j.id)
            if (start_issue_date is None or j.issue_date >= start_issue_date)
            and (end_issue_date is None or j.issue_date <= end_issue_date)
            and (ref_number is None or j.ref_number == ref_number)
            and (adjustment is None or j.adjustment == (adjustment == "only"))
            and any(detail_ok(d) for d in j.details)
        ]
        return rows

    def manual_journal_to_api(self, journal: ManualJournal) -> dict[str, Any]:
        def detail(d: JournalDetail) -> dict[str, Any]:
            ai = self.account_items.get(d.account_item_id)
            partner = self.partners.get(d.partner_id) if d.partner_id else None
            item = self.items.get(d.item_id) if d.item_id else None
            return {
                "id": d.id,
                "entry_side": d.entry_side,
                "account_item_id": d.account_item_id,
                "account_item_code": ai.code if ai else None,
                "tax_code": d.tax_code,
                "partner_id": d.partner_id,
                "partner_name": partner.name if partner else None,
                "partner_code": partner.code if partner else None,
                "partner_long_name": partner.long_name if partner else None,
                "item_id": d.item_id,
                "item_name": item.name if item else None,
                "item_code": item.code if item else None,
                "section_id": d.section_id,
                "section_name": None,
                "section_code": None,
                "tag_ids": list(d.tag_ids),
                "tag_names": [],
                "amount": d.amount,
                "vat": d.vat,
                "description": d.description,
            }

        return {
            "id": journal.id,
            "company_id": journal.company_id,
            "issue_date": journal.issue_date,
            "adjustment": journal.adjustment,
            "txn_number": journal.txn_number,
            "ref_number": journal.ref_number,
            "details": [detail(d) for d in journal.details],
            "receipt_ids": list(journal.receipt_ids),
        }

    # -- freee請求書 invoices ---------------------------------------------------------------------------

    def create_invoice(self, body: InvoiceCreate) -> Invoice:
        with self.lock:
            company = self.company(body.company_id)
            partner = self.resolve_partner(company.id, body.partner_id, body.partner_code, "iv", required=True)
            if partner is None:  # pragma: no cover - required=True raises first
                raise bad_request("iv", "partner_id または partner_code を指定してください。")
            if self.config.iv_auto_numbering and body.invoice_number is not None:
                raise bad_request("iv", "請求書番号の自動採番が有効なため invoice_number は指定できません。")
            if not self.config.iv_auto_numbering and not body.invoice_number:
                raise bad_request("iv", "invoice_number は必須です。（請求書番号は手動採番の設定です）")
            if body.invoice_number is not None and any(
                    i.company_id == company.id and i.invoice_number == body.invoice_number
                    for i in self.invoices.values()):
                raise bad_request("iv", f"invoice_number {body.invoice_number} は既に使用されています。")
            template_id = body.template_id or min(self.templates)
            if template_id not in self.templates:
                raise bad_request("iv", f"帳票テンプレート {template_id} が存在しません。")
            line_fraction = body.line_amount_fraction or "omit"
            lines: list[InvoiceLine] = []
            for n, ln in enumerate(body.lines):
                lines.append(self._invoice_line(n, ln, line_fraction, body.tax_entry_method, body.tax_fraction))
            totals = tax.group_totals(
                [
                    (tax.RateKey(ln.tax_rate, ln.reduced_tax_rate), ln.amount)
                    for ln in lines
                    if ln.amount is not None and ln.tax_rate is not None
                ],
                body.tax_entry_method,
                body.tax_fraction,
            )
            withholding_base = self._withholding_base(lines, body)
            invoice = Invoice(
                id=self.next_id("invoice"),
                company_id=company.id,
                request=body,
                invoice_number=body.invoice_number or f"INV-{len(self.invoices) + 1:07d}",
                partner_id=partner.id,
                template_id=template_id,
                lines=lines,
                totals=totals,
                amount_withholding_tax=tax.withholding_tax(withholding_base),
                created_at=self.now().strftime("%Y-%m-%d %H:%M:%S"),
            )
            self.invoices[invoice.id] = invoice
            if self.config.iv_register_deal:
                invoice.deal_id = self._book_invoice(invoice, partner).id
            return invoice

    @staticmethod
    def _withholding_base(lines: list[InvoiceLine], body: InvoiceCreate) -> int:
        """Amount subject to 源泉徴収: the withholding lines, 税込 (``in``) or 税別 (``out``)."""
        base = 0
        for ln in lines:
            if not ln.withholding or ln.amount is None or ln.amount_excluding_tax is None:
                continue
            excluding = ln.amount_excluding_tax
            if body.tax_entry_method == "in":
                including = ln.amount
            else:
                line_tax = Decimal(ln.amount) * Decimal(ln.tax_rate or 0) / Decimal(100)
                including = ln.amount + round_yen(line_tax, tax.rounding_for(body.tax_fraction))
            base += including if body.withholding_tax_entry_method == "in" else excluding
        return base

    def _invoice_line(
        self, n: int, ln: InvoiceLineIn, fraction: tax.TaxFraction, entry: str, tax_fraction: tax.TaxFraction
    ) -> InvoiceLine:
        where = f"lines.{n}"
        if ln.type == "text":
            return InvoiceLine(
                id=self.next_id("invoice_line"),
                type="text",
                description=ln.description or "",
                sales_date=ln.sales_date,
                unit=ln.unit or "",
                quantity=None,
                unit_price=None,
                tax_rate=None,
                reduced_tax_rate=False,
                withholding=False,
                amount=None,
                amount_excluding_tax=None,
            )
        quantity, unit_price, rate = ln.quantity, ln.unit_price, ln.tax_rate
        if quantity is None or unit_price is None or rate is None:
            missing = [f for f in ("quantity", "unit_price", "tax_rate") if getattr(ln, f) is None]
            raise bad_request("iv", *(f"{where}.{f} は必須です。" for f in missing))
        if ln.reduced_tax_rate and ln.tax_rate != 8:
            raise bad_request("iv", f"{where}.reduced_tax_rate は tax_rate が 8 の場合のみ指定できます。")
        if ln.tax_code is not None:
            self.tax_code(ln.tax_code, "iv")
        amount = tax.line_amount(quantity, Decimal(unit_price), fraction)
        # 内税: informational per-line figure only; the per-rate totals never use per-line tax
        excluding = amount if entry == "out" else amount - tax.vat_included(amount, rate, tax_fraction)
        return InvoiceLine(
            id=self.next_id("invoice_line"),
            type="item",
            description=ln.description or "",
            sales_date=ln.sales_date,
            unit=ln.unit or "",
            quantity=ln.quantity,
            unit_price=ln.unit_price,
            tax_rate=ln.tax_rate,
            reduced_tax_rate=bool(ln.reduced_tax_rate),
            withholding=bool(ln.withholding),
            amount=amount,
            amount_excluding_tax=excluding,
            account_item_id=ln.account_item_id,
            tax_code=ln.tax_code,
            item_id=ln.item_id,
            section_id=ln.section_id,
            tag_ids=list(ln.tag_ids or []),
        )

    def _book_invoice(self, invoice: Invoice, partner: Partner) -> Deal:
        """Register the invoice as an income deal: one detail per tax group, vat = the invoice's tax."""
        sales = self.account_item_by_name("売上高")
        details: list[DealDetail] = []
        for key, total in invoice.totals.items():
            group_lines = [ln for ln in invoice.lines if ln.tax_rate == key.rate and ln.reduced_tax_rate == key.reduced]
            code = next((ln.tax_code for ln in group_lines if ln.tax_code is not None), None)
            account = next((ln.account_item_id for ln in group_lines if ln.account_item_id is not None), sales.id)
            details.append(
                DealDetail(
                    id=self.next_id("deal_detail"),
                    account_item_id=account,
                    tax_code=code if code is not None else self.tax_code_for(key).code,
                    amount=total.amount_including_tax,
                    vat=total.amount_tax,
                    entry_side="credit",
                    description=invoice.request.subject or f"請求書 {invoice.invoice_number}",
                )
            )
        req = invoice.request
        deal = Deal(
            id=self.next_id("deal"),
            company_id=invoice.company_id,
            issue_date=req.issue_date or req.billing_date,
            type="income",
            details=details,
            due_date=req.payment_date,
            partner_id=partner.id,
            ref_number=invoice.invoice_number,
        )
        self.deals[deal.id] = deal
        return deal

    def get_invoice(self, company_id: int, invoice_id: int) -> Invoice:
        invoice = self.invoices.get(invoice_id)
        if invoice is None or invoice.company_id != company_id:
            raise not_found("iv", "請求書が見つかりません。")
        return invoice

    def invoice_payment_status(self, invoice: Invoice) -> str:
        if invoice.cancel_status == "canceled":
            return "canceled"
        deal = self.deals.get(invoice.deal_id) if invoice.deal_id else None
        return deal.status if deal else "unsettled"

    def list_invoices(
        self,
        company_id: int,
        *,
        invoice_number: str | None = None,
        subject: str | None = None,
        partner_ids: list[int] | None = None,
        payment_status: str | None = None,
        deal_status: str | None = None,
        sending_status: str | None = None,
        cancel_status: str | None = None,
        start_billing_date: str | None = None,
        end_billing_date: str | None = None,
        start_payment_date: str | None = None,
        end_payment_date: str | None = None,
    ) -> list[Invoice]:
        rows = []
        for inv in sorted(self._owned(self.invoices.values(), company_id), key=lambda i: i.id, reverse=True):
            req = inv.request
            pay = req.payment_date
            if (
                (invoice_number is None or inv.invoice_number == invoice_number)
                and (subject is None or subject in (req.subject or ""))
                and (partner_ids is None or inv.partner_id in partner_ids)
                and (payment_status is None or self.invoice_payment_status(inv) == payment_status)
                and (deal_status is None or ("registered" if inv.deal_id else "unregistered") == deal_status)
                and (sending_status is None or inv.sending_status == sending_status)
                and (cancel_status is None or inv.cancel_status == cancel_status)
                and (start_billing_date is None or req.billing_date >= start_billing_date)
                and (end_billing_date is None or req.billing_date <= end_billing_date)
                and (start_payment_date is None or (pay is not None and pay >= start_payment_date))
                and (end_payment_date is None or (pay is not None and pay <= end_payment_date))
            ):
                rows.append(inv)
        return rows

    def invoice_to_api(self, invoice: Invoice, *, summary: bool = False) -> dict[str, Any]:
        req = invoice.request
        partner = self.partners[invoice.partner_id]
        template = self.templates[invoice.template_id]
        company = self.company(invoice.company_id)
        body: dict[str, Any] = {
            "id": invoice.id,
            "company_id": invoice.company_id,
            "invoice_number": invoice.invoice_number,
            "subject": req.subject or "",
            "template_id": template.id,
            "billing_date": req.billing_date,
            "issue_date": req.issue_date,
            "payment_date": req.payment_date,
            "payment_type": req.payment_type,
            "memo": req.memo or "",
            "sending_status": invoice.sending_status,
            "payment_status": self.invoice_payment_status(invoice),
            "cancel_status": invoice.cancel_status,
            "deal_status": "registered" if invoice.deal_id else "unregistered",
            "deal_id": invoice.deal_id,
            "total_amount": invoice.total_amount,
            "amount_withholding_tax": invoice.amount_withholding_tax,
            "amount_including_tax": invoice.amount_including_tax,
            "amount_excluding_tax": invoice.amount_excluding_tax,
            "amount_tax": invoice.amount_tax,
            "amount_brought_forward": invoice.amount_brought_forward,
            "partner_id": partner.id,
            "partner_code": partner.code,
            "partner_name": partner.name,
            "partner_display_name": req.partner_display_name or partner.long_name or partner.name,
            "company_contact_name": req.company_contact_name or company.contact_name or "",
            "report_url": f"https://invoice.secure.freee.co.jp/reports/invoices/{invoice.id}",
        }
        if summary:
            return body
        title = "(空白)" if req.partner_title == "（空白）" else req.partner_title
        address = partner.address_attributes
        body |= {
            "branch_no": req.branch_no,
            "template_name": template.name,
            "invoice_note": req.invoice_note or "",
            "tax_entry_method": req.tax_entry_method,
            "tax_fraction": req.tax_fraction,
            "line_amount_fraction": req.line_amount_fraction,
            "withholding_tax_entry_method": req.withholding_tax_entry_method,
            "created_at": invoice.created_at,
            "partner_title": title,
            "partner_address_zipcode": req.partner_address_zipcode or address.get("zipcode") or "",
            "partner_address_prefecture_code": (
                req.partner_address_prefecture_code
                if req.partner_address_prefecture_code is not None
                else (address.get("prefecture_code") if address.get("prefecture_code") is not None else -1)
            ),
            "partner_address_street_name1": req.partner_address_street_name1 or address.get("street_name1") or "",
            "partner_address_street_name2": req.partner_address_street_name2 or address.get("street_name2") or "",
            "partner_contact_department": req.partner_contact_department or "",
            "partner_contact_email_cc": req.partner_contact_email_cc or "",
            "partner_contact_email_to": req.partner_contact_email_to or partner.email or "",
            "partner_contact_name": req.partner_contact_name or partner.contact_name or "",
            "partner_bank_account": req.partner_bank_account or "",
            "partner_sending_method": req.partner_sending_method,
            "company_name": req.company_name or template.company_name,
            "company_description": req.company_description or template.company_description,
            "bank_account_to_transfer": req.bank_account_to_transfer or template.bank_account_to_transfer,
            "template": {
                "title": template.title,
                "invoice_registration_number": template.invoice_registration_number,
                "company_name": template.company_name,
                "company_description": template.company_description,
                "bank_account_to_transfer": template.bank_account_to_transfer,
                "message": template.message,
            },
            "lines": [self._line_to_api(ln) for ln in invoice.lines],
        }
        for key in tax.RATE_KEYS:
            total = invoice.totals.get(key)
            body[f"amount_including_tax_{key.suffix}"] = total.amount_including_tax if total else None
            body[f"amount_excluding_tax_{key.suffix}"] = total.amount_excluding_tax if total else None
            body[f"amount_tax_{key.suffix}"] = total.amount_tax if total else None
        return body

    @staticmethod
    def _line_to_api(ln: InvoiceLine) -> dict[str, Any]:
        quantity: int | Decimal | None = ln.quantity
        if ln.quantity is not None and ln.quantity == ln.quantity.to_integral_value():
            quantity = int(ln.quantity)
        return {
            "id": ln.id,
            "type": ln.type,
            "description": ln.description,
            "sales_date": ln.sales_date,
            "unit": ln.unit,
            "quantity": quantity,
            "unit_price": ln.unit_price,
            "tax_rate": ln.tax_rate,
            "reduced_tax_rate": ln.reduced_tax_rate,
            "withholding": ln.withholding,
            "amount_excluding_tax": ln.amount_excluding_tax,
            "account_item_id": ln.account_item_id,
            "tax_code": ln.tax_code,
            "item_id": ln.item_id,
            "section_id": ln.section_id,
            "tag_ids": list(ln.tag_ids),
        }

    # -- companies ------------------------------------------------------------------------------------

    def company_to_api(self, company: Company, *, detail: bool) -> dict[str, Any]:
        summary = {
            "id": company.id,
            "name": company.name,
            "name_kana": company.name_kana,
            "display_name": company.display_name,
            "company_number": company.company_number,
            "role": company.role,
        }
        if not detail:
            return summary
        today = self.now().date()
        start_year = today.year if today.month >= 4 else today.year - 1
        return summary | {
            "tax_at_source_calc_type": 0,
            "contact_name": company.contact_name,
            "head_count": 12,
            "corporate_number": company.corporate_number,
            "txn_number_format": "not_used",
            "default_wallet_account_id": next(iter(self.walletables), None),
            "private_settlement": False,
            "minus_format": 0,
            "org_code": 1,
            "phone1": company.phone1,
            "phone2": None,
            "fax": None,
            "zipcode": company.zipcode,
            "prefecture_code": company.prefecture_code,
            "street_name1": company.street_name1,
            "street_name2": company.street_name2,
            "invoice_layout": "default_modern",
            "amount_fraction": company.amount_fraction,
            "use_partner_code": company.use_partner_code,
            "industry_class": "it",
            "industry_code": "software_development",
            "workflow_setting": "disable",
            "fiscal_years": [
                {
                    "id": 1,
                    "use_industry_template": False,
                    "indirect_write_off_method": False,
                    "start_date": date(start_year, 4, 1).isoformat(),
                    "end_date": date(start_year + 1, 3, 31).isoformat(),
                    "depreciation_record_method": 0,
                    "tax_method": 0,
                    "sales_tax_business_code": 0,
                    "tax_fraction": company.tax_fraction,
                    "tax_account_method": company.tax_account_method,
                    "return_code": 0,
                    "is_closed": False,
                    "month_end_date": None,
                    "temp_month_end_date": None,
                }
            ],
        }

    def account_item_to_api(self, ai: AccountItem) -> dict[str, Any]:
        return {
            "id": ai.id,
            "name": ai.name,
            "tax_code": ai.tax_code,
            "shortcut": ai.shortcut,
            "shortcut_num": None,
            "code": ai.code,
            "default_tax_code": ai.tax_code,
            "account_category": ai.account_category,
            "account_category_id": ai.account_category_id,
            "categories": list(ai.categories),
            "available": ai.available,
            "walletable_id": ai.walletable_id,
            "group_name": ai.group_name,
            "group_id": ai.group_id,
            "corresponding_income_name": None,
            "corresponding_income_id": None,
            "corresponding_expense_name": None,
            "corresponding_expense_id": None,
            "update_date": self.today(),
        }
