"""Money Forward partners (取引先 + 部門) and items (品目) in canonical terms (the ``ERPPartnersItems`` part of
the contract). Mixed into :class:`connectors.moneyforward.connector.MoneyForwardERP`; ``self.client`` is the
:class:`~connectors.moneyforward.client.MoneyForwardClient`.

MF specifics kept here: a partner's address, person, e-mail and phone live on its **department**; Renkei
bills and maintains the first one (``Company.erp_department_id``). ``GET /partners`` has no date filter: the
incremental read filters ``updated_at`` itself. Partners have no in-use flag: deactivating one prefixes its
``memo`` with 【利用停止】 (read back as ``archived``); nothing is ever deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta, timezone
from typing import Any

from renkei.connectors.base import MapResult
from renkei.connectors.moneyforward.mapping import (
    ARCHIVED_MARKER,
    MoneyForwardMappingError,
    company_to_department,
    company_to_partner,
    item_to_product,
    parse_timestamp,
    partner_to_company,
)
from renkei.domain.model import Company, Product

JST = timezone(timedelta(hours=9))


class MoneyForwardPartnerOps:
    """Partners and items: customer-sync and product-sync."""

    client: Any
    config: Any
    _departments: dict[str, str]

    # -- partners -----------------------------------------------------------------------------------

    def iter_partners(self, since: date | str | None = None, *, page_size: int | None = None
                      ) -> Iterator[list[MapResult[Company]]]:
        """Partners updated on or after the JST date ``since`` (``None`` = all), in pages. MF cannot filter
        partners by date: every page is read and older partners are left out here."""
        day = date.fromisoformat(since) if isinstance(since, str) else since
        for page in self.client.iter_partner_pages(per_page=page_size or self.config.page_size):
            out = []
            for raw in page.items:
                if day is not None:
                    ts = parse_timestamp(raw.get("updated_at"))
                    if ts is not None and ts.astimezone(JST).date() < day:
                        continue
                out.append(self._remember(raw))
            yield out

    def _remember(self, raw: dict) -> MapResult[Company]:
        res = partner_to_company(raw)
        if raw.get("departments") and raw.get("id"):
            self._departments[str(raw["id"])] = raw["departments"][0]["id"]
        return res

    def _company(self, raw: dict) -> Company:
        res = self._remember(raw)
        if not res.ok:
            raise MoneyForwardMappingError(res.error or "invalid partner")
        return res.value  # type: ignore[return-value]

    def get_partner(self, erp_id: str) -> MapResult[Company]:
        return self._remember(self.client.get_partner(erp_id))

    def find_partner_by_name(self, name: str) -> MapResult[Company] | None:
        raw = self.client.find_partner_by_name(name)
        return self._remember(raw) if raw is not None else None

    def validate_partner(self, company: Company) -> None:
        """Raises ``ValueError`` when MF cannot hold ``company`` (before any request)."""
        company_to_partner(company, suffix=self.config.partner_suffix)

    def create_partner(self, company: Company) -> Company:
        """``POST /partners`` with one department holding the billing address, person and e-mail."""
        body = company_to_partner(company, suffix=self.config.partner_suffix,
                                  include_code=getattr(self.config, "use_partner_code", True))
        return self._company(self.client.create_partner(body))

    def update_partner(self, company: Company) -> MapResult[Company]:
        """``PUT /partners/{id}`` (the code never changes), then the billing department (``PUT``; a new one
        when the partner has none). ``None`` values leave MF's as they are → the partner as MF returns it."""
        if not company.erp_id:
            raise ValueError("update_partner needs company.erp_id")
        body = company_to_partner(company, suffix=self.config.partner_suffix, with_department=False,
                                  include_code=False)
        raw = self.client.update_partner(company.erp_id, body)
        depts = raw.get("departments") or []
        target = company.erp_department_id if any(d["id"] == company.erp_department_id for d in depts) else (
            depts[0]["id"] if depts else None)
        if target is not None:
            dept = company_to_department(company, fallback=False)
            if dept:
                self.client.update_department(company.erp_id, target, dept)
        else:
            self.client.create_department(company.erp_id, company_to_department(company))
        return self._remember(self.client.get_partner(company.erp_id))

    def upsert_partner(self, company: Company) -> tuple[Company, bool]:
        """By 取引先コード (``GET /partners?code=``, then create or update) → (company, created)."""
        if not company.partner_code:
            raise ValueError("upsert_partner needs company.partner_code")
        found = self.client.find_partner_by_code(company.partner_code)
        if found is None:
            return self.create_partner(company), True
        res = self.update_partner(company.model_copy(update={"erp_id": found["id"]}))
        if not res.ok:
            raise MoneyForwardMappingError(res.error or "invalid partner")
        return res.value, False  # type: ignore[return-value]

    def deactivate_partner(self, erp_id: str) -> None:
        """Not in use: 【利用停止】 in front of the memo (MF has no flag; the partner and its billings stay)."""
        memo = str(self.client.get_partner(erp_id).get("memo") or "")
        if not memo.startswith(ARCHIVED_MARKER):
            self.client.update_partner(erp_id, {"memo": (ARCHIVED_MARKER + memo)[:500]})

    def department_id(self, partner_erp_id: str) -> str:
        """The department a partner is billed at (its first one)."""
        if partner_erp_id not in self._departments:
            raw = self.client.get_partner(partner_erp_id)
            if not raw.get("departments"):
                raise MoneyForwardMappingError(f"Money Forward partner {partner_erp_id} has no department to bill")
            self._departments[partner_erp_id] = raw["departments"][0]["id"]
        return self._departments[partner_erp_id]

    # -- items --------------------------------------------------------------------------------------

    def iter_items(self, *, page_size: int | None = None) -> Iterator[list[MapResult[Product]]]:
        for page in self.client.iter_item_pages(per_page=page_size or self.config.page_size):
            yield [item_to_product(i) for i in page.items]

    def create_item(self, product: Product) -> Product:
        from renkei.connectors.moneyforward.mapping import product_to_item

        res = item_to_product(self.client.create_item(product_to_item(product)))
        if not res.ok:
            raise MoneyForwardMappingError(res.error or "invalid item")
        return res.value  # type: ignore[return-value]

    # -- office -------------------------------------------------------------------------------------

    def office_settings(self) -> list[tuple[str, str, str]]:
        """(setting, value, source) rows for ``renkei doctor``: what shapes the billings Renkei creates."""
        return list(self.read_invoice_settings(as_of=date.today(), numbering="manual").rows)  # type: ignore[attr-defined]
