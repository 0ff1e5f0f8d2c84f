"""Runtime settings (environment variables prefixed ``RENKEI_``; see the README's table).

The names are fixed so scripts and deployments can rely on them. Secrets are ``SecretStr`` and never
printed: ``Settings.safe_dict()`` is what logs and ``renkei config`` show.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path(".renkei")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RENKEI_", env_file=None, extra="ignore")

    crm: str = Field("hubspot", description="CRM connector (connectors/registry.py: hubspot, salesforce)")
    erp: str = Field("freee", description="ERP / accounting connector (connectors/registry.py: freee, moneyforward)")

    @field_validator("hubspot_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError for a malformed key
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Tokyo)") from None
        return value

    @field_validator("crm", "erp")
    @classmethod
    def _known_connector(cls, value: str, info) -> str:
        from renkei.connectors.registry import entry

        value = value.strip().lower()
        try:
            entry(info.field_name, value)
        except LookupError as exc:  # names the known ones
            raise ValueError(str(exc)) from None
        return value

    hubspot_base_url: str = Field("https://api.hubapi.com", description="HubSpot API base URL")
    hubspot_token: SecretStr | None = Field(None, description="HubSpot private-app or OAuth access token")
    hubspot_daily_cap: int | None = Field(
        250_000, ge=0, description="HubSpot API requests per day per account the client allows itself (documented: "
                                   "Free/Starter 250,000, Professional 625,000, Enterprise 1,000,000, +1,000,000 per "
                                   "API limit increase; other apps of the account share it, so set it lower to leave "
                                   "them room); when used up a run stops cleanly (QuotaExhausted). 0: not counted")
    hubspot_timezone: str = Field(
        "Asia/Tokyo", description="the HubSpot account's time zone (Settings → Account defaults): its daily limit "
                                  "resets at midnight there")

    freee_base_url: str = Field("https://api.freee.co.jp", description="freee API base URL (会計 /api/1, 請求書 /iv)")
    freee_auth_url: str = Field("https://accounts.secure.freee.co.jp", description="freee OAuth2 base URL")
    freee_client_id: str | None = Field(None, description="freee OAuth2 client id")
    freee_client_secret: SecretStr | None = Field(None, description="freee OAuth2 client secret")
    freee_refresh_token: SecretStr | None = Field(
        None, description="first freee refresh token; seeds the token store when it is empty"
    )
    freee_company_id: int | None = Field(None, description="freee company (事業所) id")
    freee_iv_per_minute: int = Field(30, description="freee請求書 requests per minute the client allows itself")
    freee_iv_per_hour: int = Field(1500, description="freee請求書 requests per hour the client allows itself")
    freee_iv_window: Literal["fixed", "rolling"] = Field(
        "fixed", description="how freee請求書's per-minute and per-hour limits are counted: 'fixed' — windows that "
                             "reset on the clock, as freee's X-Ratelimit-Reset-Minute / X-RateLimit-Reset headers "
                             "say; 'rolling' — any 60 s / 3,600 s (stricter: up to twice the wait in a burst)")
    freee_daily_cap: int | None = Field(
        None, description="freee requests per day (Asia/Tokyo) per company and app, both APIs: 3,000 / 5,000 / "
                          "10,000 by plan; when used up a run stops cleanly (QuotaExhausted). Unset: not counted")
    payment_notice_days_before: int = Field(
        2, ge=0, description="a payment notice matches a bank line dated up to this many days before its day")
    payment_notice_days_after: int = Field(
        5, ge=0, description="... or up to this many days after it (transfers booked on the next business days)")
    payment_notice_unmatched_days: int = Field(
        7, ge=0, description="a payment notice no reconciled bank line matched this many days after its day "
                             "becomes one PAYMENT_NOTICE_UNMATCHED review item")
    rate_limits: Literal["auto", "local", "shared"] = Field(
        "auto", description="where the API pace is kept: shared = in the state store, for every worker and process "
                            "(store.ratelimit); local = in each process; auto = shared when the state store is "
                            "PostgreSQL, local for SQLite")
    freee_accounting_per_second: float = Field(
        5.0, description="freee会計 request pace (freee publishes no number, only a 403 lockout)")

    database_url: str = Field(
        f"sqlite:///{DEFAULT_HOME / 'renkei.db'}",
        description="state store (SQLAlchemy URL): SQLite by default, postgresql+psycopg2://… for PostgreSQL",
        repr=False,  # may hold a password
    )
    home: Path = Field(DEFAULT_HOME, description="working folder: SQLite file, token store, local Prefect home")
    policy_file: Path | None = Field(None, description="business policy TOML; defaults to the packaged policy")
    data_key: SecretStr | None = Field(
        None, description="key of the keyed hashes (HMAC-SHA256) that stand for personal values at rest; "
                          "when unset, one is generated once and kept 0600 under RENKEI_HOME/secrets")

    credentials_block: str | None = Field(
        None, description="name of a Renkei Credentials block (``renkei setup``) to read the HubSpot and freee "
                          "credentials from; unset: the RENKEI_* environment variables above")
    token_store: Literal["db", "file"] = Field(
        "db", description="where the rotating freee token lives: the state store (shared by every worker, "
                          "row-locked, encrypted with the data key) or a 0600 file under RENKEI_HOME (one host)")

    webhook_hubspot_secret: SecretStr | None = Field(
        None, description="HubSpot app client secret: the key of the X-HubSpot-Signature-v3 on webhooks")
    webhook_inbound_secret: SecretStr | None = Field(
        None, description="shared secret of the generic inbound webhooks (Zapier / Make): X-Renkei-Signature")
    webhook_public_url: str | None = Field(
        None, description="base URL the senders call (https://hooks.example.co.jp) when the receiver sits "
                          "behind a proxy; HubSpot signs the URL it called")
    webhook_won_stages: str | None = Field(
        None, description="comma-separated won deal stage ids for the receiver's filter; unset: read once "
                          "from the CRM's pipelines (probability 1.0), and no filter when that fails")
    webhook_batch_seconds: float = Field(
        1.0, description="the receiver gathers the changes of a burst this long into one triggered run")
    webhook_max_runs: int = Field(
        3, ge=0, description="runs the receiver's batches may keep under way at once: during a burst it sends a "
                             "batch (one triggered run) every RENKEI_WEBHOOK_RUN_SECONDS / this (0: every "
                             "batch window). Keep it at the order-to-invoice deployment's concurrency limit: a "
                             "run over that limit waits for Prefect's slot retry (30 s by default)")
    webhook_run_seconds: float = Field(
        4.0, ge=0, description="how long one triggered run takes, its process start included (webhook_max_runs)")

    def safe_dict(self) -> dict[str, object]:
        """Settings for display: secrets shown only as set / not set."""
        out: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "****** (set)"
            elif value is None and name.endswith(("token", "secret")):
                out[name] = "(not set)"
            else:
                out[name] = str(value) if isinstance(value, Path) else value
        out["database_url"] = redact_url(self.database_url)
        return out

    @property
    def token_store_path(self) -> Path:
        return self.home / "secrets" / "freee-token.json"

    @property
    def data_key_path(self) -> Path:
        return self.home / "secrets" / "data-key"

    def personal_data_key(self) -> bytes:
        """The key for personal values at rest: ``RENKEI_DATA_KEY``, else the generated key file."""
        if self.data_key is not None:
            return self.data_key.get_secret_value().encode("utf-8")
        return _key_file(str(self.data_key_path.resolve()))


def redact_url(url: str) -> str:
    """``postgresql://user:pw@host/db`` → ``postgresql://user:***@host/db``."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


@lru_cache(maxsize=16)
def _key_file(path: str) -> bytes:
    """Read the key file, creating it (32 random bytes as hex, mode 0600) exactly once. The key is written
    to a private temporary file and hard-linked into place, so a reader never sees a partial key and of
    concurrent first callers exactly one key wins."""
    import os
    import secrets
    import tempfile

    p = Path(path)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".data-key.", dir=p.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_hex(32))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, p)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            os.unlink(tmp)
    key = p.read_text(encoding="utf-8").strip()
    if not key:
        raise RuntimeError(f"the data key file {p} is empty: remove it or set RENKEI_DATA_KEY")
    return key.encode("utf-8")


def _renkei_env() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("RENKEI_")))


@lru_cache(maxsize=8)
def _settings_for(env: tuple[tuple[str, str], ...]) -> Settings:
    return Settings()


def get_settings() -> Settings:
    """The settings of the current environment: cached per set of ``RENKEI_*`` variables, so a process that
    changes them (a test, the demo) never reads a stale database URL."""
    return _settings_for(_renkei_env())


get_settings.cache_clear = _settings_for.cache_clear  # type: ignore[attr-defined]
