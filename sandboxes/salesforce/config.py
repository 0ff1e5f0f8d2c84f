"""Configuration of the Salesforce sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field

from renkei.sandboxes.common import Clock, FaultConfig


@dataclass
class SalesforceSandboxConfig:
    """Knobs of :func:`sandboxes.salesforce.create_app`.

    seed
        ``"demo"`` (users, accounts, products with standard prices, won and open opportunities with line items,
        one merged duplicate account) or ``"none"`` (an empty org: the integration user, the standard price
        book and the stage table only).
    client_id / client_secret
        The External Client App's consumer key and secret (client-credentials grant).
    username
        The run-as / integration user (``sub`` of the JWT bearer grant).
    jwt_public_key_pem
        PEM public key or certificate uploaded to the app; the JWT bearer grant is refused without one.
    daily_limit
        Rolling-24-hour API request allocation (``DailyApiRequests.Max``; Developer Edition 15,000); 0 = off.
    batch_size
        Default query batch (Salesforce: 2,000; ``Sforce-Query-Options: batchSize`` can lower it to 200).
    cursor_ttl_s / max_cursors
        Lifetime and number of open query locators (``nextRecordsUrl``); older ones answer INVALID_QUERY_LOCATOR.
    session_lifetime_s
        Access tokens expire after this (Session Settings timeout); then calls answer 401 INVALID_SESSION_ID.
    renkei_fields / missing_fields
        Whether the ``Renkei_*__c`` fields are installed (all, or all but ``"Object.Field__c"`` names).
    faults
        Latency / injected faults (sandboxes.common.FaultConfig).
    """

    seed: str = "demo"
    api_version: str = "60.0"
    client_id: str = "3MVG9renkeiSandboxConsumerKey"
    client_secret: str = "renkei-sandbox-client-secret-9c1e"
    username: str = "renkei-integration@renkei-demo.example"
    jwt_public_key_pem: str | None = None
    daily_limit: int = 15_000
    batch_size: int = 2000
    cursor_ttl_s: int = 900
    max_cursors: int = 50
    session_lifetime_s: int = 7200
    renkei_fields: bool = True
    missing_fields: tuple[str, ...] = ()
    multicurrency: bool = False
    faults: FaultConfig = field(default_factory=FaultConfig)
    clock: Clock | None = None
    org_name: str = "Renkei Demo 株式会社"

    def __post_init__(self) -> None:
        if self.seed not in ("demo", "none"):
            raise ValueError("seed is 'demo' or 'none'")
        if not 200 <= self.batch_size <= 2000:
            raise ValueError("batch_size is between 200 and 2000")
        if self.daily_limit < 0:
            raise ValueError("daily_limit cannot be negative")
