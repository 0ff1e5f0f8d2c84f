"""What a CRM connector and an ERP connector offer the flows (structural ``Protocol`` types).

Kept deliberately small: flows and tasks use these names; anything system-specific stays on the concrete
client. Adding an ERP = one package under ``connectors/`` that satisfies :class:`ERPConnector` and passes
the same conformance tests.

Incremental reads return :class:`ChangeBatch` objects: the records of one page plus the ``watermark``
to commit **after** the caller has durably processed them (a crash means redo, never skip). Mapping
returns :class:`MapResult` so an invalid record becomes a review item instead of an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import (Any, Collection, Generic, Iterable, Iterator, Mapping, Protocol, Sequence, TypeVar,
                    runtime_checkable)

from renkei.domain.model import BankDeposit, Company, Deal, Invoice, Payment, Product
from renkei.domain.money import Rounding
from renkei.domain.reporting import CostFact, DealFact, InvoiceFact

T = TypeVar("T")


@dataclass
class MapResult(Generic[T]):
    """Outcome of mapping one external record to a canonical model."""

    source_id: str | None
    value: T | None = None
    error: str | None = None  # validation message (reason for a review item); None when ok
    raw: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None


@dataclass
class ChangeBatch(Generic[T]):
    """One page of changed records and the cursor value to commit once they are processed."""

    records: list[T]
    watermark: Any  # opaque to the caller: store it, pass it back as ``since`` next run
    exhausted: bool = False  # True on the last batch of this read


@dataclass
class WriteResult(Generic[T]):
    """Per-input outcome of a batch write (inputs keep their order)."""

    index: int  # position in the caller's input list
    ok: bool
    id: str | None = None  # id of the created/updated record
    created: bool | None = None  # upsert: True when a new record was made
    value: T | None = None
    error: str | None = None
    category: str | None = None
    status: int | None = None
    details: Any = None


@dataclass(frozen=True)
class CRMCapabilities:
    """What a CRM can do; flows branch on these flags, never on the system's name."""

    name: str  # registry key: "hubspot", "salesforce"
    label: str  # shown to people: "HubSpot", "Salesforce"
    merges: bool = False  # the CRM merges records (a merged-away id must be followed)
    line_items: bool = True  # deals carry product lines
    owners: bool = True  # deals have an owner (sales rep) id
    daily_api_limit: int | None = None  # calls per 24 h the org may spend (None: no daily cap)


@dataclass(frozen=True)
class ERPCapabilities:
    """What an ERP / accounting system can do; flows branch on these flags, never on the system's name."""

    name: str  # registry key: "freee", "moneyforward"
    label: str  # shown to people: "freee", "Money Forward クラウド請求書"
    bank_lines: bool = True  # deposits (bank statement lines) can be read and matched to invoices (消込)
    payment_status: bool = True  # an invoice's paid / unpaid status can be read
    record_payments: bool = True  # Renkei can record a payment against an invoice
    journals: bool = True  # manual journals can be posted (revenue allocation 売上按分)
    partner_codes: bool = True  # partners carry a code the company may require
    departments: bool = False  # partners have departments (請求先部署) that hold the address
    item_cost: bool = False  # items carry a cost price (原価)
    item_stock: bool = False  # items carry a stock count (在庫数)
    cost_records: bool = False  # cost records can be read per customer (freee: expense 取引 with the partner)
    erp_numbering: bool = True  # the ERP can number invoices itself


# ------------------------------------------------------------------------------------------------
# Connection checks (``renkei doctor``, a flow's preflight). Each connector package offers, next to its
# ``factory.build``, a ``factory.check(settings, *, deep=False) -> list[CheckResult]`` (see
# :class:`ConnectorCheck`): a module function rather than a method, because it must also answer when the
# connector cannot be built (a setting missing). It makes real but harmless calls with short timeouts and
# no retry loop, and says what is wrong in one line with the setting to change; ``deep`` adds the slower
# checks ``renkei doctor`` shows (e.g. token scopes) that a flow's preflight skips.
# ------------------------------------------------------------------------------------------------

CHECK_OK, CHECK_WARN, CHECK_FAIL, CHECK_SKIP = "ok", "warn", "fail", "skip"


@dataclass
class CheckResult:
    """One row of ``renkei doctor``: the check, its status (ok / warn / fail / skip), what was found, the fix."""

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == CHECK_FAIL

    def line(self) -> str:
        """The one line a person reads: what is wrong and what to change."""
        return f"{self.name}: {self.detail}" + (f" — fix: {self.fix}" if self.fix else "")


class ConnectorCheck(Protocol):
    """``factory.check`` of a connector package (found by the registry next to ``factory.build``)."""

    def __call__(self, settings: Any, *, deep: bool = False) -> list[CheckResult]: ...


# ------------------------------------------------------------------------------------------------
# The contract: everything flows and tasks need from a CRM or an ERP. It is composed of parts so
# that each area (companies & products, deals & money) is kept in one place; a connector implements
# the composed protocol, and the conformance suites (tests/connectors/conformance/) check it.
# ------------------------------------------------------------------------------------------------


@runtime_checkable
class CRMCompanies(Protocol):
    """CRM: companies and products (customer-sync, product-sync)."""

    # == companies & products: start ==
    # Companies. Reads map to canonical CompanyRecord (MapResult[Company] + merged ids); writes name
    # canonical paths of domain.model.Company (see connectors.canonical_sync: ``erp_id`` is the write-back
    # key of the linked ERP partner id, ``partner_code`` the 取引先コード).
    def iter_company_changes(self, since: Any = None, *, lookback_ms: int = 0
                             ) -> Iterator[ChangeBatch[CompanyRecord]]:
        """Companies modified after ``since`` (a watermark from an earlier batch or from
        :meth:`company_watermark_now`; ``None`` = all), oldest first, boundary-safe."""
        ...

    def iter_all_companies(self) -> Iterator[list[CompanyRecord]]:
        """Every live company, in pages, as fast as the CRM allows (a full read; no order promised)."""
        ...

    def company_watermark_now(self) -> Any:
        """A watermark for a full read started now: passing it to :meth:`iter_company_changes` later
        yields every change made after it (``str()`` of it is stored as the cursor)."""
        ...

    def get_companies(self, ids: Sequence[str]) -> list[CompanyRecord]:
        """Batch read by CRM id (missing ids are left out)."""
        ...

    def find_company_candidates(self, company: Company, limit: int = 50) -> list[CompanyRecord]:
        """Live companies that may be ``company`` (an ERP partner without a link): same registration /
        corporate number, partner code or phone, or a name containing its normalised core."""
        ...

    def update_companies(self, updates: Sequence[CompanyUpdate]) -> list[WriteResult[CompanyEcho]]:
        """Batch update of the given fields; per-input results (``index`` = input position), the value
        the record as the CRM echoed it."""
        ...

    def upsert_companies(self, companies: Sequence[Company], key: str = "partner_code") -> list[WriteResult[Company]]:
        """Create-or-update by a canonical key (``erp_id`` or ``partner_code``): a retry finds the same
        record; per-input results with ``created``."""
        ...

    def iter_archived_company_ids(self) -> Iterator[list[str]]:
        """Ids of archived / deleted companies (merged-away ones included), in pages."""
        ...

    # Products (ERP items → CRM products, one way).
    def iter_product_changes(self, since: Any = None) -> Iterator[ChangeBatch[CRMProduct]]:
        """Products modified after ``since`` (``None`` = all)."""
        ...

    def upsert_products(self, products: Sequence[Product]) -> list[WriteResult[Product]]:
        """Create-or-update by the 品目コード (``Product.code``); per-input results with ``created``."""
        ...

    def update_products(self, updates: Mapping[str, Product]) -> list[WriteResult[Any]]:
        """CRM product id → the ERP-owned fields of that item written onto it (adopting a hand-made
        product: it gets the upsert key too)."""
        ...

    def archive_products(self, ids: Sequence[str]) -> None: ...
    # == companies & products: end ==


@runtime_checkable
class CRMDeals(Protocol):
    """CRM: deals, line items and write-backs (order-to-invoice, payment-writeback, proration)."""

    # == deals: start ==
    def iter_deal_changes(self, since: Any = None, *, stages: Collection[str] | None = None,
                          until: datetime | None = None) -> Iterator[ChangeBatch[MapResult[Deal]]]:
        """Changed deals with their company and line items; ``stages``: only deals in these stage ids;
        ``until``: only deals last modified at or before it (a run's start: its own write-backs wait)."""
        ...

    def get_deals(self, ids: Sequence[str], *, with_line_items: bool = True) -> list[MapResult[Deal]]: ...

    def update_deal_properties(self, updates: Mapping[str, Mapping[str, Any]]) -> list[WriteResult[Any]]:
        """deal id → canonical write-back keys (``renkei_*``, :data:`DEAL_WRITEBACK_KEYS`) → values."""
        ...

    def won_stage_ids(self) -> set[str]: ...

    def subscription_deal(self, record: MapResult[Deal]) -> SubscriptionDeal | None:
        """A deal read by this CRM (``iter_deal_changes`` / ``get_deals``) as a subscription; ``None``
        when it has no recurring line item."""
        ...

    def get_subscription_deals(self, ids: Sequence[str]) -> list[SubscriptionDeal | None]:
        """``subscription_deal`` of each deal read by id (input order; ``None``: not a subscription)."""
        ...

    # reporting (batch; no line items, no owner)
    def iter_deal_facts(self) -> Iterator[list[DealFact]]:
        """Every deal of every pipeline and stage as :class:`~renkei.domain.reporting.DealFact` (amount,
        stage and its probability, won / closed, close date, primary company, payment status written back),
        one list per page."""
        ...
    # == deals: end ==


@runtime_checkable
class CRMConnector(CRMCompanies, CRMDeals, Protocol):
    """A CRM (HubSpot, Salesforce)."""

    capabilities: CRMCapabilities

    def prepare(self) -> dict[str, list[str]] | None:
        """Make sure the CRM holds what Renkei writes (custom properties / fields); idempotent. May return
        what it created per object type (a flow's preflight logs it)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ERPPartnersItems(Protocol):
    """ERP: partners (取引先) and items (品目) (customer-sync, product-sync)."""

    # == partners & items: start ==
    def iter_partners(self, since: date | None = None, *, page_size: int | None = None
                      ) -> Iterator[list[MapResult[Company]]]:
        """Partners (active and deactivated: ``archived``) updated on or after the JST date ``since``
        (``None`` = every partner), in pages; ``page_size`` None = the connector's default."""
        ...

    def get_partner(self, erp_id: str) -> MapResult[Company]:
        """One partner by id; raises a ``ConnectorError`` (``NotFound`` …) when it cannot be read."""
        ...

    def find_partner_by_name(self, name: str) -> MapResult[Company] | None:
        """The partner with exactly this name (names are unique in the ERP), else ``None``."""
        ...

    def create_partner(self, company: Company) -> Company:
        """A new partner (``partner_code`` sent only when the ERP uses codes); raises on refusal."""
        ...

    def upsert_partner(self, company: Company) -> tuple[Company, bool]:
        """Create-or-update by ``partner_code`` (capability ``partner_codes``) → (partner, created)."""
        ...

    def validate_partner(self, company: Company) -> None:
        """Raises ``ValueError`` when the ERP cannot hold ``company`` (checked before any write)."""
        ...

    def update_partner(self, company: Company) -> MapResult[Company]:
        """Update ``company.erp_id`` with the company's values (``None`` values leave the ERP's as they are;
        the code is never changed) → the partner as the ERP returned it."""
        ...

    def deactivate_partner(self, erp_id: str) -> None:
        """Mark a partner not in use (never a deletion)."""
        ...

    def iter_items(self, *, page_size: int | None = None) -> Iterator[list[MapResult[Product]]]:
        """Every item (品目), active and inactive (``Product.active``), in pages."""
        ...
    # == partners & items: end ==


@runtime_checkable
class ERPMoney(Protocol):
    """ERP: invoices, payments, deposits, journals (order-to-invoice, payment-writeback, proration)."""

    # == money: start ==
    # invoices (請求書): create only after a reference lookup (exactly-once)
    def read_invoice_settings(self, *, as_of: date, numbering: str) -> InvoiceSettings:
        """The account's settings for invoices (partner codes, 端数処理, registration number) as of a
        business date; ``numbering`` is the policy's ``[invoice_numbering] mode`` (``auto`` | ``manual``)
        where the ERP's API does not expose it. Raises :class:`InvoiceSettingMismatch` for a setting
        Renkei cannot work with."""
        ...

    def configure_invoices(self, settings: InvoiceSettings, *, tax_rounding: Rounding) -> None:
        """Send invoices the way ``settings`` say (partner codes, a number only under ``manual``
        numbering) with ``tax_rounding`` as the invoice's tax rounding."""
        ...

    def get_invoice_recipient(self, partner_erp_id: str) -> MapResult[Company]:
        """The partner an invoice is addressed to (billing info is ERP-owned)."""
        ...

    def find_invoice_by_reference(self, reference: str, *, partner_erp_id: str | None = None,
                                  around: date | None = None) -> Invoice | None:
        """The invoice carrying ``reference`` (never limited to today's dates: ``around`` is only where
        to look first)."""
        ...

    def create_invoice(self, invoice: Invoice) -> Invoice:
        """Raises :class:`InvoiceSettingMismatch` / :class:`InvoiceNumberTaken` (nothing created)."""
        ...

    def get_invoice(self, erp_id: str) -> Invoice: ...

    # payments and deposits (入金・消込) — bank_lines=True
    def iter_deposits(self, since: date | None = None) -> Iterator[ChangeBatch[BankDeposit]]: ...

    def iter_bank_lines(self, since: date | None = None) -> Iterator[list[BankLineRead]]:
        """Income lines of the bank accounts dated on or after ``since``, one list per page; each line
        read on its own (an unreadable line is a :class:`BankLineRead` with its error)."""
        ...

    def get_bank_line(self, line_id: str) -> BankLineRead | None:
        """One bank line by id (``None``: no such line)."""
        ...

    def open_receivables(self) -> OpenReceivables:
        """Every unsettled receivable whose invoice is not cancelled, with partner names."""
        ...

    def get_receivable(self, receivable_id: str) -> Receivable: ...

    def add_receivable_payment(self, receivable_id: str, *, day: date, amount: int,
                               account: MoneyAccount) -> Receivable:
        """Record a payment of ``amount`` from ``account`` on ``day``; the receivable afterwards."""
        ...

    def money_accounts(self) -> list[MoneyAccount]:
        """Bank accounts deposits arrive on and the clearing account transfer fees are settled through
        (``kind`` ``clearing``; absent when the ERP has none)."""
        ...

    def record_payment(self, payment: Payment) -> Payment: ...

    # payment status — payment_status=True
    def iter_invoice_payment_changes(self, since: Any = None) -> Iterator[ChangeBatch[InvoicePaymentStatus]]:
        """Invoices whose payment status changed since the watermark ``since`` (``None``: every invoice
        with a payment state), plus every open one (overdue is Renkei's reading). The watermark never
        depends on today's date and must be JSON-serialisable (the caller stores it as JSON and commits it
        after the batch is processed); the last batch has ``exhausted`` True."""
        ...

    # journals — journals=True
    def account_names(self) -> set[str]:
        """Names of the account items (勘定科目) journals may use."""
        ...

    def find_journal(self, ref: str, *, on: date) -> str | None:
        """Id of the manual journal with ``ref`` dated ``on``."""
        ...

    def post_journal(self, journal: ManualJournal) -> str:
        """Post a manual journal; its id."""
        ...

    # reporting (batch)
    def iter_invoice_facts(self) -> Iterator[list[InvoiceFact]]:
        """Every invoice (cancelled ones flagged) with its settlement — outstanding amount, payments (fees
        apart) and per-rate totals where the listing has them — as :class:`~renkei.domain.reporting.InvoiceFact`,
        one list per page."""
        ...

    # cost records — cost_records=True
    def iter_cost_facts(self) -> Iterator[list[CostFact]]:
        """Cost records tagged to a customer (税抜) as :class:`~renkei.domain.reporting.CostFact`, one list
        per page; raises ``NotImplementedError`` without the capability."""
        ...
    # == money: end ==


@runtime_checkable
class ERPConnector(ERPPartnersItems, ERPMoney, Protocol):
    """An ERP / accounting system (freee, Money Forward). Money is int yen; dates are Asia/Tokyo business dates."""

    capabilities: ERPCapabilities

    def close(self) -> None: ...


def failed(results: Iterable[WriteResult[Any]]) -> list[WriteResult[Any]]:
    return [r for r in results if not r.ok]
from renkei.connectors.canonical_sync import *  # noqa: E402,F401,F403  (companies & products records)
from renkei.connectors.canonical_money import *  # noqa: E402,F401,F403  (deals & money canonical types)
