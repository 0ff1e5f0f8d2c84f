"""Custom ``renkei_*`` HubSpot properties: definitions and idempotent creation.

Every property Renkei writes lives in its own property group ``renkei`` per object type. All of them are
ensured once at the start of every run (``PropertyManager.ensure_all`` from the flow's preflight task,
``tasks/preflight.py``), before any search or write names one — a fresh portal has none, and a search on a
missing property is HubSpot's 400 ``PROPERTY_DOESNT_EXIST``. The existing property list is read once per
object type and cached; properties that exist are never written again. A 409 on create (someone else
created it meanwhile) counts as success.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from renkei.connectors.http import Conflict

if TYPE_CHECKING:
    from renkei.connectors.hubspot.client import HubSpotClient

GROUP_NAME = "renkei"
GROUP_LABEL = "Renkei 連携 (freee)"


@dataclass(frozen=True)
class PropertySpec:
    name: str
    label: str
    type: str = "string"  # bool, date, datetime, enumeration, number, phone_number, string
    field_type: str = "text"  # booleancheckbox, date, number, select, text, textarea ...
    description: str = ""
    options: tuple[tuple[str, str], ...] = ()  # (value, label) for enumerations
    unique: bool = False  # hasUniqueValue: usable as idProperty for upsert

    def body(self) -> dict[str, Any]:
        b: dict[str, Any] = {"name": self.name, "label": self.label, "type": self.type, "fieldType": self.field_type,
                             "groupName": GROUP_NAME, "description": self.description}
        if self.options:
            b["options"] = [{"label": lab, "value": val, "displayOrder": i, "hidden": False}
                            for i, (val, lab) in enumerate(self.options)]
        if self.unique:
            b["hasUniqueValue"] = True
        return b


def _text(name: str, label: str, desc: str = "", unique: bool = False) -> PropertySpec:
    return PropertySpec(name, label, "string", "text", desc, unique=unique)


_BOOL_OPTIONS = (("true", "Yes"), ("false", "No"))
TAX_CATEGORY_OPTIONS = (("standard_10", "10%"), ("reduced_8", "8%（軽減）"), ("exempt", "非課税"),
                        ("non_taxable", "不課税"))

RENKEI_PROPERTIES: dict[str, tuple[PropertySpec, ...]] = {
    "companies": (
        _text("renkei_name_kana", "フリガナ"),
        PropertySpec("renkei_entity_kind", "法人／個人事業者", "enumeration", "select",
                     options=(("corporation", "法人"), ("sole_trader", "個人事業者"))),
        _text("renkei_corporate_number", "法人番号", "13 digits"),
        _text("renkei_invoice_registration_number", "適格請求書発行事業者登録番号", "T + 13 digits"),
        _text("renkei_partner_code", "freee 取引先コード", unique=True),
        _text("renkei_freee_partner_id", "freee 取引先ID", unique=True),
        _text("renkei_billing_contact", "請求先担当者"),
        _text("renkei_billing_email", "請求書送付先メール"),
        _text("renkei_payment_terms", "支払条件", "closing_day/pay_month_offset/pay_day, e.g. 0/1/0 = 月末締め翌月末払い"),
        PropertySpec("renkei_credit_hold", "与信停止", "bool", "booleancheckbox", options=_BOOL_OPTIONS),
    ),
    "deals": (
        _text("renkei_invoice_id", "freee 請求書ID"),
        _text("renkei_invoice_number", "請求書番号"),
        _text("renkei_invoice_status", "請求書ステータス",
              "created | pending_approval | rejected | totals_mismatch"),
        PropertySpec("renkei_invoiced_at", "請求書作成日時", "datetime", "date"),
        _text("renkei_invoice_comment", "請求書コメント", "approver and comment of a finance decision"),
        _text("renkei_payment_status", "入金ステータス", "unpaid | partial | paid | overdue"),
        PropertySpec("renkei_paid_amount", "入金額", "number", "number"),
        PropertySpec("renkei_paid_at", "入金日", "date", "date"),
        PropertySpec("renkei_outstanding_amount", "未入金額", "number", "number"),
        _text("renkei_sync_status", "連携ステータス", "last Renkei outcome or review reason code"),
    ),
    "line_items": (
        PropertySpec("renkei_tax_category", "税区分", "enumeration", "select", options=TAX_CATEGORY_OPTIONS),
        PropertySpec("renkei_effective_date", "変更の適用日", "date", "date"),
    ),
    "products": (
        PropertySpec("renkei_tax_category", "税区分", "enumeration", "select", options=TAX_CATEGORY_OPTIONS),
        _text("renkei_product_code", "freee 品目コード", "unique copy of hs_sku (upsert key)", unique=True),
        _text("renkei_freee_item_id", "freee 品目ID"),
        PropertySpec("renkei_stock", "在庫数", "number", "number"),
    ),
}


class PropertyManager:
    """Ensures custom properties exist (group ``renkei``), caching what exists per object type."""

    def __init__(self, client: "HubSpotClient"):
        self.client = client
        self._existing: dict[str, dict[str, dict]] = {}
        self._groups: set[str] = set()
        self._lock = threading.RLock()
        self.created: list[tuple[str, str]] = []  # (object_type, name) created by this process

    def existing(self, object_type: str, *, refresh: bool = False) -> dict[str, dict]:
        with self._lock:
            if refresh or object_type not in self._existing:
                data = self.client.request("GET", f"/crm/v3/properties/{object_type}") or {}
                self._existing[object_type] = {p["name"]: p for p in data.get("results", [])}
                if any(p.get("groupName") == GROUP_NAME for p in data.get("results", [])):
                    self._groups.add(object_type)
            return self._existing[object_type]

    def ensure_group(self, object_type: str) -> None:
        with self._lock:
            if object_type in self._groups:
                return
            try:
                self.client.request("POST", f"/crm/v3/properties/{object_type}/groups",
                                    json={"name": GROUP_NAME, "label": GROUP_LABEL, "displayOrder": -1})
            except Conflict:
                pass
            self._groups.add(object_type)

    def ensure(self, object_type: str, specs: Iterable[PropertySpec] | None = None) -> list[str]:
        """Create the missing ones of ``specs`` (default: :data:`RENKEI_PROPERTIES`); returns names created.
        Cheap after the first call (cached)."""
        specs = tuple(RENKEI_PROPERTIES.get(object_type, ()) if specs is None else specs)
        with self._lock:
            have = self.existing(object_type)
            missing = [s for s in specs if s.name not in have]
            if not missing:
                return []
            self.ensure_group(object_type)
            created = []
            for spec in missing:
                try:
                    prop = self.client.request("POST", f"/crm/v3/properties/{object_type}", json=spec.body())
                    created.append(spec.name)
                    self.created.append((object_type, spec.name))
                except Conflict:
                    prop = {"name": spec.name}
                have[spec.name] = prop or {"name": spec.name}
            return created

    def ensure_all(self) -> dict[str, list[str]]:
        return {t: self.ensure(t) for t in RENKEI_PROPERTIES}


def renkei_property_names(object_type: str) -> list[str]:
    return [s.name for s in RENKEI_PROPERTIES.get(object_type, ())]


__all__ = ["GROUP_NAME", "PropertyManager", "PropertySpec", "RENKEI_PROPERTIES", "renkei_property_names"]
