"""Configuration of the freee sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from renkei.sandboxes.common import Clock, FaultConfig

__all__ = ["DEFAULT_COMPANY_ID", "FreeeSandboxConfig"]

DEFAULT_COMPANY_ID = 1
"""The sandbox's one company (事業所). freee's own docs use ``company_id=1`` in their examples."""


@dataclass
class FreeeSandboxConfig:
    """Everything that shapes one sandbox instance.

    Limits (freee's documented numbers, see ``freee-and-moneyforward-api.md`` §1.4):

    * ``accounting_limit_per_hour`` — freee会計 does not publish a number, only that "excessive access"
      gets **403** for about 10 minutes; the sandbox trips after this many calls in a rolling hour and
      then refuses every call for ``accounting_lockout_s``.
    * ``iv_limit_per_minute`` / ``iv_limit_per_hour`` — freee請求書's published 30/min and 1,500/h
      (fixed windows aligned on the UTC minute / hour, as the documented ``X-RateLimit-Reset`` headers
      show) → **429**.
    * ``daily_cap`` — the per-company, per-application daily cap (3,000 / 5,000 / 10,000 by plan);
      ``0`` switches it off. Counted per API (会計 and 請求書 each publish their own), per UTC day.
      Over the cap: 403 on freee会計, 429 on freee請求書.

    ``refresh_token=None`` makes the sandbox generate the first refresh token; it is printed when the
    app starts serving and readable as ``app.state.auth.initial_refresh_token``.
    """

    client_id: str = "renkei-sandbox-client"
    client_secret: str = "renkei-sandbox-secret"
    refresh_token: str | None = None
    access_token_ttl_s: int = 21600
    refresh_token_ttl_s: int = 90 * 24 * 3600
    company_id: int = DEFAULT_COMPANY_ID
    seed: Literal["demo", "none"] = "demo"
    accounting_limit_per_hour: int = 3600
    accounting_lockout_s: int = 600
    iv_limit_per_minute: int = 30
    iv_limit_per_hour: int = 1500
    daily_cap: int = 0
    iv_daily_cap: int = 0  # 請求書 API's own daily cap (0 = same number as daily_cap)
    faults: FaultConfig = field(default_factory=FaultConfig)
    clock: Clock | None = None
    # freee settings of the sandbox company
    use_partner_code: bool = True
    """取引先コード enabled: partner ``code`` is required on create and upsert_by_code works."""
    iv_auto_numbering: bool = False
    """freee請求書 自動採番: True → ``invoice_number`` must be omitted; False → it is required."""
    tax_fraction: int = 0
    """端数処理 of the company's fiscal year (``GET /api/1/companies/{id}``): 0 切り捨て, 1 切り上げ,
    2 四捨五入 — used for the tax of deals booked in freee会計."""
    iv_register_deal: bool = True
    """Book every new freee請求書 invoice as an income deal in freee会計 (``deal_status=registered``)."""
    print_refresh_token: bool = True
    """Print the initial refresh token on startup (``renkei sandbox serve``)."""

    def __post_init__(self) -> None:
        if self.seed not in ("demo", "none"):
            raise ValueError("seed is 'demo' or 'none'")
        if self.company_id < 1:
            raise ValueError("company_id is a positive integer")
        if self.tax_fraction not in (0, 1, 2):
            raise ValueError("tax_fraction is 0 (切り捨て), 1 (切り上げ) or 2 (四捨五入)")
        if self.access_token_ttl_s <= 0:
            raise ValueError("access_token_ttl_s must be positive")
