"""Money Forward partners (取引先 + 部門) and items (品目) in canonical terms (the ``ERPPartnersItems`` part of
the contract). Mixed into :class:`connectors.moneyforward.connector.MoneyForwardERP`; ``self.client`` is the
:class:`~connectors.moneyforward.client.MoneyForwardClient`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from renkei.connectors.base import MapResult
from renkei.connectors.moneyforward.mapping import (
    MoneyForwardMappingError,
    company_to_department,
    company_to_partner,
    item_to_product,
    partner_to_company,
    product_to_item,
)
from renkei.domain.model import Company, Product


class MoneyForwardPartnerOps:
    """Partners and items: customer-sync and product-sync."""

    client: Any
    config: Any
    _departments: dict[str, str]

    # -- partners -----------------------------------------------------------------------------------

    def iter_partners(self) -> Iterator[list[MapResult[Company]]]:
        for page in self.client.iter_partner_pages(per_page=self.config.page_size):
            yield [partner_to_company(p) for p in page.items]

    def _company(self, raw: dict) -> Company:
        res = partner_to_company(raw)
        if not res.ok:
            raise MoneyForwardMappingError(res.error or "invalid partner")
        if raw.get("departments"):
            self._departments[str(raw["id"])] = raw["departments"][0]["id"]
        return res.value  # type: ignore[return-value]

    def create_partner(self, company: Company) -> Company:
        """``POST /partners`` with one department holding the billing address, person and e-mail."""
        body = company_to_partner(company, suffix=self.config.partner_suffix)
        return self._company(self.client.create_partner(body))

    def update_partner(self, company: Company) -> Company:
        """``PUT /partners/{id}``, then the first department (``PUT``) or a new one (``POST``)."""
        if not company.erp_id:
            raise ValueError("update_partner needs company.erp_id")
        body = company_to_partner(company, suffix=self.config.partner_suffix, with_department=False)
        raw = self.client.update_partner(company.erp_id, body)
        dept = company_to_department(company)
        if raw.get("departments"):
            self.client.update_department(company.erp_id, raw["departments"][0]["id"], dept)
        else:
            self.client.create_department(company.erp_id, dept)
        return self._company(self.client.get_partner(company.erp_id))

    def upsert_partner(self, company: Company) -> tuple[Company, bool]:
        """By 取引先コード → (company, created)."""
        if not company.partner_code:
            raise ValueError("upsert_partner needs company.partner_code")
        found = self.client.find_partner_by_code(company.partner_code)
        if found is None:
            return self.create_partner(company), True
        return self.update_partner(company.model_copy(update={"erp_id": found["id"]})), False

    # -- items --------------------------------------------------------------------------------------

    def iter_items(self) -> Iterator[list[MapResult[Product]]]:
        for page in self.client.iter_item_pages(per_page=self.config.page_size):
            yield [item_to_product(i) for i in page.items]

    def create_item(self, product: Product) -> Product:
        res = item_to_product(self.client.create_item(product_to_item(product)))
        if not res.ok:
            raise MoneyForwardMappingError(res.error or "invalid item")
        return res.value  # type: ignore[return-value]

    # -- office -------------------------------------------------------------------------------------

    def office_settings(self) -> list[tuple[str, str, str]]:
        """(setting, value, source) rows for ``renkei doctor``: what shapes the billings Renkei creates."""
        office = self.client.get_office()
        rows = [("事業者 (office)", str(office.get("name") or ""), "GET /office"),
                ("登録番号 (registration number)", office.get("registration_code") or "not registered", "GET /office"),
                ("採番ルール (numbering)", "auto (MF numbers)" if self.config.numbering == "auto" else
                 "manual (Renkei numbers)", "RENKEI_MONEYFORWARD_NUMBERING (not readable by API)")]
        latest = next(iter(self.client.iter_billing_pages(per_page=1)), None)
        if latest is not None and latest.items:
            cfg = latest.items[0].get("config") or {}
            rows += [("端数処理 (tax rounding)", str(cfg.get("rounding_consumption_tax")), "latest billing's config"),
                     ("消費税の表示 (tax display)", str(cfg.get("consumption_tax_display_type")),
                      "latest billing's config")]
        else:
            rows.append(("端数処理 (tax rounding)", "unknown until the first billing", "billing config"))
        return rows
