"""Canonical records of the companies & products part of the contract (customer-sync, product-sync).

Re-exported from :mod:`connectors.base`. Nothing here names a system: a CRM or ERP connector maps its own
records to these and back.

Canonical field paths
---------------------
Writes that name fields use the dotted paths of :class:`domain.model.Company` (``name``, ``phone``,
``address.postal_code``, ``payment_terms``, ``erp_id`` …). ``erp_id`` on a CRM company is the canonical
write-back key for the linked ERP partner's id (HubSpot stores it in ``renkei_freee_partner_id``, a
Salesforce connector in its own custom field); ``partner_code`` is the 取引先コード (``renkei_partner_code``).
A path the CRM does not hold is ignored by the connector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, Mapping

import renkei.connectors.base as _base  # loads base first (base re-exports this module at its end)
from renkei.connectors.base import MapResult
from renkei.domain.model import Company, Product

# Canonical keys a CRM can upsert companies by (``CRMCompanies.upsert_companies(key=...)``).
COMPANY_KEYS = ("erp_id", "partner_code")
# Canonical product fields the ERP owns and product-sync compares (``CRMProduct.values``).
PRODUCT_FIELDS = ("name", "code", "unit_price", "tax_category", "erp_id", "cost_price", "stock")


@dataclass
class CompanyRecord(MapResult[Company]):
    """A CRM company as read for customer-sync: a ``MapResult[Company]`` (``value``'s ``updated_at`` is the
    CRM's modification stamp) plus, for a CRM that merges records (capability ``merges``), the ids merged
    into this one, and the CRM's modification stamp as text (``version``: equal to a
    :class:`CompanyEcho` ``version`` when the record is the echo of Renkei's own write)."""

    merged_ids: tuple[str, ...] = ()
    version: str | None = None


@dataclass
class CompanyUpdate:
    """Update of one CRM company: the values of ``fields`` (canonical paths) are taken from ``company``;
    a ``None`` value clears the field in the CRM. ``fields=None`` writes every field the company holds."""

    crm_id: str
    company: Company
    fields: frozenset[str] | None = None


@dataclass
class CompanyEcho:
    """What a CRM returned after a company update: the record as written (``company``) and the canonical
    paths the response actually carried (``fields``; a path not in it is unknown, not empty)."""

    company: Company | None  # None when the echo is too partial to map
    fields: frozenset[str] = frozenset()
    version: str | None = None  # the modification stamp of this write (its echo in a later read is ours)


@dataclass
class CRMProduct:
    """A CRM product as read for product-sync. ``code`` is the 品目コード (the CRM's upsert key, else its
    SKU); ``keyed`` says the upsert key is set (False: made by hand with the SKU, to be adopted);
    ``values`` holds the ERP-owned fields (:data:`PRODUCT_FIELDS`) as the CRM stores them, as text
    (:func:`product_values` of what Renkei would write, so the two compare as text)."""

    crm_id: str
    code: str | None
    keyed: bool
    values: Mapping[str, str] = field(default_factory=dict)
    archived: bool = False


def wire_text(v: Any) -> str:
    """A canonical value as text ("" for None; Decimal without exponent; enums by value)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        raise TypeError("float: money is int yen")
    if isinstance(v, Decimal):
        return format(v.normalize(), "f") if v == v.to_integral_value() else format(v, "f")
    if isinstance(v, Enum):
        return str(v.value)
    return str(v)


def product_values(product: Product) -> dict[str, str]:
    """The ERP-owned fields of ``product`` Renkei writes to the CRM, as text; empty ones (the ERP does not
    hold them) left out."""
    out = {f: wire_text(getattr(product, f)) for f in PRODUCT_FIELDS}
    return {k: v for k, v in out.items() if v != ""}


def product_drift(crm: CRMProduct, item: Product) -> dict[str, str | None]:
    """ERP-owned fields the CRM holds differently from ``item``: ``{field: CRM value}``."""
    return {k: crm.values.get(k) for k, v in product_values(item).items() if (crm.values.get(k) or "") != v}


__all__ = ["COMPANY_KEYS", "PRODUCT_FIELDS", "CRMProduct", "CompanyEcho", "CompanyRecord", "CompanyUpdate",
           "product_drift", "product_values", "wire_text"]

# base.py re-exports these with ``import *`` at its end; when this module is imported before base, that
# import ran while this module was still empty: complete base here.
for _name in __all__:
    setattr(_base, _name, globals()[_name])
