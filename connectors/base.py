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
from datetime import date
from typing import Any, Generic, Iterable, Iterator, Mapping, Protocol, Sequence, TypeVar, runtime_checkable

from renkei.domain.model import BankDeposit, Company, Deal, Invoice, Payment, Product

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
    def iter_company_changes(self, since: Any = None) -> Iterator[ChangeBatch[MapResult[Company]]]: ...

    def upsert_companies(self, companies: Sequence[Company], id_property: str) -> list[WriteResult[Company]]: ...

    def update_company_properties(self, updates: Mapping[str, Mapping[str, Any]]) -> list[WriteResult[Any]]: ...

    def upsert_products(self, products: Sequence[Product]) -> list[WriteResult[Product]]: ...
    # == companies & products: end ==


@runtime_checkable
class CRMDeals(Protocol):
    """CRM: deals, line items and write-backs (order-to-invoice, payment-writeback, proration)."""

    # == deals: start ==
    def iter_deal_changes(self, since: Any = None) -> Iterator[ChangeBatch[MapResult[Deal]]]: ...

    def get_deals(self, ids: Sequence[str], *, with_line_items: bool = True) -> list[MapResult[Deal]]: ...

    def update_deal_properties(self, updates: Mapping[str, Mapping[str, Any]]) -> list[WriteResult[Any]]: ...

    def won_stage_ids(self) -> set[str]: ...
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
    def iter_partners(self) -> Iterator[list[MapResult[Company]]]: ...

    def create_partner(self, company: Company) -> Company: ...

    def update_partner(self, company: Company) -> Company: ...

    def iter_items(self) -> Iterator[list[MapResult[Product]]]: ...
    # == partners & items: end ==


@runtime_checkable
class ERPMoney(Protocol):
    """ERP: invoices, payments, deposits, journals (order-to-invoice, payment-writeback, proration)."""

    # == money: start ==
    # invoices (請求書): create only after a reference lookup (exactly-once)
    def find_invoice_by_reference(self, reference: str) -> Invoice | None: ...

    def create_invoice(self, invoice: Invoice) -> Invoice: ...

    def get_invoice(self, erp_id: str) -> Invoice: ...

    # payments and deposits (入金・消込)
    def iter_deposits(self, since: date | None = None) -> Iterator[ChangeBatch[BankDeposit]]: ...

    def record_payment(self, payment: Payment) -> Payment: ...
    # == money: end ==


@runtime_checkable
class ERPConnector(ERPPartnersItems, ERPMoney, Protocol):
    """An ERP / accounting system (freee, Money Forward). Money is int yen; dates are Asia/Tokyo business dates."""

    capabilities: ERPCapabilities

    def close(self) -> None: ...


def failed(results: Iterable[WriteResult[Any]]) -> list[WriteResult[Any]]:
    return [r for r in results if not r.ok]
