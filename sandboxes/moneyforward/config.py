"""Configuration of the Money Forward クラウド請求書 sandbox: the company settings a customer office can
have (帳票設定), token lifetimes, limits, seed and faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from renkei.sandboxes.common import Clock, FaultConfig

__all__ = ["ROUNDINGS", "MoneyForwardSandboxConfig"]

ROUNDINGS = ("round_down", "round_up", "round_off")  # 切り捨て / 切り上げ / 四捨五入


@dataclass
class MoneyForwardSandboxConfig:
    """Everything that shapes one sandbox instance (``moneyforward-invoice-api.md``).

    OAuth (§1): the authorization server answers ``/authorize`` and ``/token``. Lifetimes are not
    published for v3; the defaults follow the most specific third-party report (access 3600 s). With
    ``rotate_refresh_tokens`` each refresh returns a new refresh token and the presented one stops
    working (the safe assumption: a client that survives rotation survives no rotation too);
    ``False`` hands the same refresh token back. ``token_limit_per_minute`` → 429 + ``Retry-After``.

    Office settings (§6, §7) — what a customer's 帳票設定 can be:

    * ``numbering`` — ``auto`` (採番ルール set: a billing without ``billing_number`` is numbered from
      ``numbering_rule``; numbers of deleted billings become gaps) or ``manual`` (no rule: a billing
      without ``billing_number`` is refused with 400).
    * ``unique_billing_numbers`` — a ``billing_number`` already used by another billing is refused (400).
    * ``rounding`` (line amounts), ``rounding_consumption_tax`` (tax per rate, once per billing),
      ``consumption_tax_display_type`` (``external`` 外税 / ``internal`` 内税) — returned as ``config``.
    * ``registration_code`` — the office's 適格請求書発行事業者登録番号 (``None``: not registered, billings
      carry ``registration_code: null``).
    * ``office_type`` — ``corporation`` (法人) or ``individual`` (個人事業主: ``deduct_price`` is returned).

    Limits (§10): ``billing_writes_per_s`` (POST/PUT/DELETE on billings, the v1/v2 figure of 3/s),
    ``api_limit_per_minute`` (every API call; MF publishes no number), ``monthly_document_cap``
    (billings created per calendar month, 100 on the small plans; 0 = unlimited). Over a limit → 429.
    """

    client_id: str = "renkei-mf-sandbox-client"
    client_secret: str = "renkei-mf-sandbox-secret"
    refresh_token: str | None = None
    access_token_ttl_s: int = 3600
    refresh_token_ttl_s: int = 540 * 24 * 3600
    rotate_refresh_tokens: bool = True
    token_limit_per_minute: int = 60
    read_only_lists_404: bool = True
    """A token with only ``mfc/invoice/data.read`` gets 404 on list endpoints (reported by integrators)."""
    seed: Literal["demo", "none"] = "demo"
    office_name: str = "株式会社連携サンプル"
    office_type: Literal["corporation", "individual"] = "corporation"
    registration_code: str | None = "T7010705000725"
    numbering: Literal["auto", "manual"] = "auto"
    numbering_rule: str = "${年}${月}-${連番}"
    unique_billing_numbers: bool = True
    rounding: str = "round_down"
    rounding_consumption_tax: str = "round_down"
    consumption_tax_display_type: Literal["external", "internal"] = "external"
    initial_payment_status: Literal["0", "1"] = "1"
    """入金ステータス of a new billing: ``1`` 未入金 (入金確認機能 on) or ``0`` 未設定."""
    reconcile_bank_feed: bool = True
    """Simulate クラウド会計's 消込 of the demo bank feed (seed ``demo``): a billing whose total equals a
    demo deposit plus its transfer fee (or two billings of one partner whose totals do) becomes 入金済み
    when it is created — what accounting staff matching the 入金予定仕訳 would do. The invoice API itself
    exposes no bank lines."""
    billing_writes_per_s: int = 3
    api_limit_per_minute: int = 600
    monthly_document_cap: int = 0
    faults: FaultConfig = field(default_factory=FaultConfig)
    clock: Clock | None = None
    print_refresh_token: bool = True

    def __post_init__(self) -> None:
        if self.seed not in ("demo", "none"):
            raise ValueError("seed is 'demo' or 'none'")
        if self.numbering not in ("auto", "manual"):
            raise ValueError("numbering is 'auto' or 'manual'")
        for name in ("rounding", "rounding_consumption_tax"):
            if getattr(self, name) not in ROUNDINGS:
                raise ValueError(f"{name} is one of {ROUNDINGS}")
        if self.consumption_tax_display_type not in ("external", "internal"):
            raise ValueError("consumption_tax_display_type is 'external' or 'internal'")
        if self.registration_code is not None:
            import re

            if not re.fullmatch(r"T\d{13}", self.registration_code):
                raise ValueError("registration_code is T + 13 digits")
        if self.access_token_ttl_s <= 0:
            raise ValueError("access_token_ttl_s must be positive")
