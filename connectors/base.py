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


@runtime_checkable
class CRMConnector(Protocol):
    """A CRM (HubSpot today)."""

    def iter_company_changes(self, since: Any = None) -> Iterator[ChangeBatch[MapResult[Company]]]: ...

    def upsert_companies(self, companies: Sequence[Company], id_property: str) -> list[WriteResult[Company]]: ...

    def update_company_properties(self, updates: Mapping[str, Mapping[str, Any]]) -> list[WriteResult[Any]]: ...

    def iter_deal_changes(self, since: Any = None) -> Iterator[ChangeBatch[MapResult[Deal]]]: ...

    def get_deals(self, ids: Sequence[str], *, with_line_items: bool = True) -> list[MapResult[Deal]]: ...

    def update_deal_properties(self, updates: Mapping[str, Mapping[str, Any]]) -> list[WriteResult[Any]]: ...

    def upsert_products(self, products: Sequence[Product]) -> list[WriteResult[Product]]: ...

    def won_stage_ids(self) -> set[str]: ...


@runtime_checkable
class ERPConnector(Protocol):
    """An ERP / accounting system (freee today). Money is int yen; dates are Asia/Tokyo business dates."""

    # partners (取引先)
    def iter_partners(self) -> Iterator[list[MapResult[Company]]]: ...

    def create_partner(self, company: Company) -> Company: ...

    def update_partner(self, company: Company) -> Company: ...

    # items (品目)
    def iter_items(self) -> Iterator[list[MapResult[Product]]]: ...

    # invoices (請求書): create only after a reference lookup (exactly-once)
    def find_invoice_by_reference(self, reference: str) -> Invoice | None: ...

    def create_invoice(self, invoice: Invoice) -> Invoice: ...

    def get_invoice(self, erp_id: str) -> Invoice: ...

    # payments and deposits (入金・消込)
    def iter_deposits(self, since: date | None = None) -> Iterator[ChangeBatch[BankDeposit]]: ...

    def record_payment(self, payment: Payment) -> Payment: ...


def failed(results: Iterable[WriteResult[Any]]) -> list[WriteResult[Any]]:
    return [r for r in results if not r.ok]
