"""Configuration of the HubSpot sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field

from renkei.sandboxes.common import Clock, FaultConfig


@dataclass
class HubSpotSandboxConfig:
    """Knobs of :func:`sandboxes.hubspot.create_app`.

    token
        The only accepted private-app token (``Authorization: Bearer <token>``).
    seed
        ``"demo"`` loads :mod:`sandboxes.demo_data` (owners, products, companies, contacts, deals,
        line items, associations, the ``renkei_*`` properties they use); ``"none"`` starts empty
        (owners and pipelines are always present).
    rate_limit_per_10s
        Per-app rolling 10-second bucket (Free/Starter 100, Pro/Enterprise 190, +increase 250); 0 = off.
    search_per_second
        Search requests per second (search is exempt from the 10-second bucket); 0 = off.
    daily_limit
        Requests per day, reset at midnight in ``account_timezone``; 0 = off.
    faults
        Latency / injected faults (sandboxes.common.FaultConfig).
    index_lag_ms
        Search indexing lag: a write becomes visible to search only this long after it happened.
    preserve_merge_id
        Merge keeps the primary record's id (HubSpot's "Primary ID Preservation" beta) instead of
        giving the merged record a new id.
    clock
        Shared clock for timestamps and rate-limit windows (a frozen one in tests); default wall clock.
    rate_limit_headers / search_rate_limit_headers
        Send ``X-HubSpot-RateLimit-*`` headers on ordinary / search responses (HubSpot omits them on
        search, so the default is off there).
    portal_id, account_timezone
        Account id and time zone (daily limit reset).
    webhook_url, webhook_client_secret
        When a URL is set, every subscribed change is delivered there automatically
        (``sandboxes.hubspot.webhooks.Deliverer``), signed v3 with the client secret.
    webhook_delay_ms, webhook_subscriptions, webhook_duplicate_rate, webhook_reorder
        Delivery delay after the change; subscriptions (``type`` or ``type:property``); probability of a
        duplicate delivery; out-of-order delivery (see ``Deliverer``).
    scopes
        Scopes granted to the token (e.g. ``{"crm.objects.companies.read"}``); a call needing a scope not
        granted gets HubSpot's 403 ``MISSING_SCOPES``. ``None`` = every scope.
    """

    token: str = "renkei-sandbox-token"
    seed: str = "demo"  # "demo" | "none"
    rate_limit_per_10s: int = 100
    search_per_second: int = 5
    daily_limit: int = 250_000
    faults: FaultConfig = field(default_factory=FaultConfig)
    index_lag_ms: int = 0
    preserve_merge_id: bool = False
    clock: Clock | None = None
    rate_limit_headers: bool = True
    search_rate_limit_headers: bool = False
    portal_id: int = 62515
    account_timezone: str = "Asia/Tokyo"
    scopes: frozenset[str] | None = None
    webhook_url: str | None = None
    webhook_client_secret: str = "renkei-sandbox-app-secret"
    webhook_delay_ms: int = 200
    webhook_subscriptions: tuple[str, ...] | None = None
    webhook_duplicate_rate: float = 0.0
    webhook_reorder: bool = False

    def __post_init__(self) -> None:
        if self.seed not in ("demo", "none"):
            raise ValueError("seed is 'demo' or 'none'")
        for name in ("rate_limit_per_10s", "search_per_second", "daily_limit", "index_lag_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative")
