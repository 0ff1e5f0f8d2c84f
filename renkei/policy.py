"""Business policy: one TOML file (``renkei/policy.toml`` packaged defaults, overridable with
``RENKEI_POLICY_FILE``), loaded into typed sections. Flows read it; pure rules get plain values."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from renkei.domain.model import TaxCategory, TaxEntryMethod
from renkei.domain.money import Rounding

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IssuerPolicy(_Section):
    name: str
    registration_number: str


class TaxPolicy(_Section):
    rounding: Rounding = Rounding.FLOOR
    entry_method: TaxEntryMethod = TaxEntryMethod.EXCLUSIVE
    line_rounding: Rounding = Rounding.HALF_UP
    default_category: TaxCategory = TaxCategory.STANDARD_10


class InvoiceNumberingPolicy(_Section):
    """``[invoice_numbering]``: how the freee company numbers invoices (freee請求書 採番の設定).

    freee's API does not expose this setting, so it is configured here and must match the company:
    ``auto`` (自動採番 — freee numbers, ``invoice_number`` is never sent) or ``manual`` (手動採番 —
    Renkei numbers from ``format``, a gapless sequence per ``reset`` period reserved in the state store
    as part of each invoice's exactly-once claim). A mismatch is detected on the first invoice and
    reported as one review item naming this setting."""

    mode: Literal["auto", "manual"] = "manual"
    format: str = "INV-{yyyy}{mm}-{seq:05d}"
    reset: Literal["never", "yearly", "monthly"] = "monthly"

    @model_validator(mode="after")
    def _valid_format(self) -> "InvoiceNumberingPolicy":
        self.number_format()
        return self

    def number_format(self):
        from renkei.domain.invoice import NumberFormat

        return NumberFormat(self.format, self.reset)


class FreeeCompanyPolicy(_Section):
    """``[freee]``: where Renkei takes the freee company's settings from. ``tax_rounding``: ``company``
    (the fiscal year's 端数処理 read from ``GET /api/1/companies/{id}`` replaces ``[tax] rounding``) or
    ``policy`` (``[tax] rounding`` is sent with every invoice). 取引先コード is always read from the company."""

    tax_rounding: Literal["company", "policy"] = "company"


class PaymentTermsPolicy(_Section):
    closing_day: int = 0
    pay_month_offset: int = 1
    pay_day: int = 0
    holiday_shift: Literal["none", "previous_business_day", "next_business_day"] = "none"


class FieldOwnership(_Section):
    owner: Literal["crm", "erp", "both"]
    on_foreign_change: Literal["overwrite", "review", "report_only"] | None = None


class OwnershipPolicy(_Section):
    default_on_foreign_change: Literal["overwrite", "review", "report_only"] = "overwrite"
    fields: dict[str, FieldOwnership] = Field(default_factory=dict)


class SyncPolicy(_Section):
    on_crm_delete: Literal["review", "deactivate", "ignore"] = "review"
    on_erp_delete: Literal["report", "ignore"] = "report"
    review_similarity: int = Field(85, ge=0, le=100)


class ApprovalPolicy(_Section):
    amount_threshold: int = 5_000_000
    discount_percent_limit: int = 30
    amount_mismatch_tolerance: int = 0
    require_registration_number: bool = False
    require_billing_email: bool = True
    timeout_hours: float = Field(72, gt=0)  # fractions allowed (tests use seconds)
    on_timeout: Literal["expire", "renotify"] = "renotify"


class TierPolicy(_Section):
    max_amount: int | None = None  # inclusive, yen; omitted = no upper bound
    roles: list[str]


ApprovalKind = Literal["invoice", "payment", "proration"]


class AuthorityPolicy(_Section):
    """``[authority]``: who may decide approvals (pure rules in :mod:`domain.authority`)."""

    roles: dict[str, list[str]] = Field(default_factory=dict)  # role → e-mails or "*@domain" patterns
    tiers: dict[ApprovalKind, list[TierPolicy]] = Field(default_factory=dict)
    second_approval_above: dict[ApprovalKind, int] = Field(default_factory=dict)
    owners: dict[str, str | list[str]] = Field(default_factory=dict)  # CRM owner id → e-mail(s)

    @model_validator(mode="after")
    def _known_roles(self) -> "AuthorityPolicy":
        for kind, tiers in self.tiers.items():
            for t in tiers:
                unknown = sorted(set(t.roles) - set(self.roles))
                if unknown:
                    raise ValueError(f"[authority] tiers.{kind} names unknown role(s) {', '.join(unknown)}")
        return self

    def rules(self):
        from renkei.domain.authority import AuthorityRules, Tier

        return AuthorityRules(
            roles={r: tuple(m) for r, m in self.roles.items()},
            tiers={k: tuple(Tier(t.max_amount, tuple(t.roles)) for t in ts) for k, ts in self.tiers.items()},
            second_approval_above=dict(self.second_approval_above),
            owners={str(k): (v,) if isinstance(v, str) else tuple(v) for k, v in self.owners.items()})


class ReconciliationPolicy(_Section):
    fee_max: int = 1100
    fee_whitelist: list[int] = Field(default_factory=list)
    auto_apply_threshold: float = Field(0.9, ge=0, le=1)  # a score, not money
    auto_apply_margin: float = Field(0.15, ge=0, le=1)  # best − runner-up score of another partner
    max_invoices_per_deposit: int = 5
    auto_apply_partial: bool = False


class PlausibilityPolicy(_Section):
    """``[plausibility]``: limits of :mod:`domain.plausibility` (records outside them go to review)."""

    date_past_days: int = Field(3650, ge=1)
    date_future_days: int = Field(366, ge=1)
    allow_zero_total: bool = False
    allow_negative_total: bool = False
    check_email: bool = True
    check_markup: bool = True

    def rules(self):
        from renkei.domain.plausibility import PlausibilityRules

        return PlausibilityRules(**self.model_dump())


class ProrationPolicy(_Section):
    day_count: Literal["actual", "thirty_360"] = "actual"
    behavior: Literal["create_prorations", "always_invoice", "none"] = "create_prorations"
    charge_rounding: Rounding = Rounding.HALF_UP
    credit_rounding: Rounding = Rounding.TRUNCATE
    approval_amount_threshold: int = 1_000_000


class AlertsPolicy(_Section):
    """Prefect automations that ``renkei setup`` creates (``deployments/automations.py``)."""

    on_failure: bool = True                 # any Renkei flow run Failed or Crashed → notification
    approval_reminder_hours: float = 24.0   # an approval run waiting (Paused/Suspended) this long → reminder; 0 = off
    on_approval_rerequested: bool = True    # an expired approval requested again in a fresh run → notification
    review_flood_threshold: int = 50        # a run that opens at least this many review items → notification; 0 = off
    review_flood_window_hours: float = 1.0  # … within this time


class RevenuePolicy(_Section):
    advance_account: str = "前受金"
    sales_account: str = "売上高"


class Policy(_Section):
    issuer: IssuerPolicy
    tax: TaxPolicy = TaxPolicy()
    invoice_numbering: InvoiceNumberingPolicy = InvoiceNumberingPolicy()
    freee: FreeeCompanyPolicy = FreeeCompanyPolicy()
    payment_terms: PaymentTermsPolicy = PaymentTermsPolicy()
    ownership: OwnershipPolicy = OwnershipPolicy()
    sync: SyncPolicy = SyncPolicy()
    approval: ApprovalPolicy = ApprovalPolicy()
    authority: AuthorityPolicy = AuthorityPolicy()
    reconciliation: ReconciliationPolicy = ReconciliationPolicy()
    plausibility: PlausibilityPolicy = PlausibilityPolicy()
    proration: ProrationPolicy = ProrationPolicy()
    revenue: RevenuePolicy = RevenuePolicy()
    alerts: AlertsPolicy = AlertsPolicy()


def load_policy(path: Path | str | None = None) -> Policy:
    """Packaged defaults, overlaid section by section with ``path`` when given."""
    with DEFAULT_POLICY_FILE.open("rb") as fh:
        data = tomllib.load(fh)
    if path is not None:
        with Path(path).open("rb") as fh:
            override = tomllib.load(fh)
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                merged = dict(data[key])
                for k, v in value.items():
                    if isinstance(v, dict) and isinstance(merged.get(k), dict):
                        merged[k] = {**merged[k], **v}
                    else:
                        merged[k] = v
                data[key] = merged
            else:
                data[key] = value
    return Policy.model_validate(data)
