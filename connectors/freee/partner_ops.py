"""freee partners (取引先) and items (品目) in canonical terms (the ``ERPPartnersItems`` part of the contract).

Mixed into :class:`connectors.freee.connector.FreeeConnector`; ``self.client`` is the :class:`FreeeClient`.
The partner body (``company_to_partner``) is built here: flows and tasks hand over canonical companies.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Iterator

from renkei.connectors.base import MapResult
from renkei.connectors.freee.mapping import FreeeMappingError, company_to_partner, item_to_product, partner_to_company
from renkei.domain.model import Company, Product


class FreeePartnerOps:
    """Partners and items: customer-sync and product-sync."""

    client: Any
    config: Any

    # -- partners -----------------------------------------------------------------------------------

    def iter_partners(self, since: date | str | None = None, *, page_size: int | None = None, offset: int = 0
                      ) -> Iterator[list[MapResult[Company]]]:
        """Partners updated on or after the JST date ``since`` (freee filters by ``update_date``; ``None`` =
        all), ``page_size`` per request (freee allows up to 3,000)."""
        for page in self.client.iter_partner_pages(limit=page_size or self.config.page_size, offset=offset,
                                                   start_update_date=since):
            box = [[partner_to_company(p) for p in page.items]]
            page = None  # type: ignore[assignment]  # nothing of a handed-over page stays referenced here
            yield box.pop()

    def _company(self, raw: dict) -> Company:
        res = partner_to_company(raw)
        if not res.ok:
            raise FreeeMappingError(res.error or "invalid partner")
        return res.value  # type: ignore[return-value]

    def get_partner(self, erp_id: str) -> MapResult[Company]:
        return partner_to_company(self.client.get_partner(erp_id))

    def find_partner_by_name(self, name: str) -> MapResult[Company] | None:
        raw = self.client.find_partner(name=name)
        return partner_to_company(raw) if raw is not None else None

    def validate_partner(self, company: Company) -> None:
        """Raises ``ValueError`` when freee cannot hold ``company`` (before any request)."""
        company_to_partner(company, include_code=False)

    def create_partner(self, company: Company) -> Company:
        body = company_to_partner(company, include_code=self.config.use_partner_code)
        return self._company(self.client.create_partner(body))

    def update_partner(self, company: Company) -> MapResult[Company]:
        """``PUT /partners/{id}`` with the company's values (``None`` values are not sent, the code never);
        → the partner as freee returned it."""
        if not company.erp_id:
            raise ValueError("update_partner needs company.erp_id")
        body = company_to_partner(company, include_code=False)
        return partner_to_company(self.client.update_partner(company.erp_id, body))

    def upsert_partner(self, company: Company) -> tuple[Company, bool]:
        """By 取引先コード (``PUT /partners/upsert_by_code``) → (company, created)."""
        if not company.partner_code:
            raise ValueError("upsert_partner needs company.partner_code")
        body = company_to_partner(company, include_code=False)
        raw, created = self.client.upsert_partner_by_code(company.partner_code, body)
        return self._company(raw), created

    def deactivate_partner(self, erp_id: str) -> None:
        """``available: false`` (freee keeps the partner; its invoices stay valid)."""
        p = self.client.get_partner(erp_id)
        self.client.update_partner(erp_id, {"name": p["name"], "available": False})

    # -- items --------------------------------------------------------------------------------------

    def iter_items(self, *, page_size: int | None = None, offset: int = 0) -> Iterator[list[MapResult[Product]]]:
        for page in self.client.iter_item_pages(limit=page_size or self.config.page_size, offset=offset):
            yield [item_to_product(i) for i in page.items]
