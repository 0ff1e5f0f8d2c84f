"""Salesforce settings (environment variables prefixed ``RENKEI_SALESFORCE_``).

Two server-to-server logins are supported (reference §2):

* **JWT bearer** when ``RENKEI_SALESFORCE_PRIVATE_KEY`` (PEM) or ``…_PRIVATE_KEY_FILE`` is set: ``iss`` = the
  client id, ``sub`` = ``RENKEI_SALESFORCE_USERNAME``, ``aud`` = the login host; no secret is sent.
* **Client credentials** otherwise (``RENKEI_SALESFORCE_CLIENT_SECRET``): posted to the org's My Domain
  (``RENKEI_SALESFORCE_INSTANCE_URL`` when set, else the login URL).

Secrets are ``SecretStr``: never printed, logged or stored.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SalesforceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RENKEI_SALESFORCE_", env_file=None, extra="ignore")

    login_url: str = Field("https://login.salesforce.com",
                           description="OAuth host: https://login.salesforce.com, https://test.salesforce.com "
                                       "(sandbox orgs) or the org's My Domain")
    instance_url: str | None = Field(None, description="the org's My Domain (https://acme.my.salesforce.com); the "
                                                       "token response's instance_url is used for data calls")
    client_id: str | None = Field(None, description="External Client App consumer key")
    client_secret: SecretStr | None = Field(None, description="consumer secret (client-credentials flow)")
    private_key: SecretStr | None = Field(None, description="PEM private key of the app's certificate (JWT flow)")
    private_key_file: Path | None = Field(None, description="file holding the PEM private key (JWT flow)")
    username: str | None = Field(None, description="run-as integration user (JWT sub)")
    audience: str | None = Field(None, description="JWT aud; default https://login.salesforce.com or, for a "
                                                   "test.salesforce.com login URL, https://test.salesforce.com")
    api_version: str = Field("60.0", description="REST API version (v60.0 = Spring '24)")
    daily_budget_share: float = Field(0.8, gt=0, le=1, description="stop before this share of the org's daily API "
                                                                    "allocation is used (Sforce-Limit-Info)")
    daily_api_limit: int | None = Field(None, description="the org's daily allocation when known in advance "
                                                          "(otherwise read from Sforce-Limit-Info)")
    query_batch_size: int = Field(2000, ge=200, le=2000, description="Sforce-Query-Options batchSize")
    lookback_seconds: int = Field(0, ge=0, description="overlap re-read before a watermark (long transactions "
                                                       "commit with an earlier SystemModstamp)")
    settle_timeout_seconds: float = Field(3.0, ge=0, description="how long an incremental read may wait for the "
                                                                "org's clock to pass the second it ended in")
    ca_bundle: Path | None = Field(None, description="CA file to trust (local TLS sandbox)")
    timeout: float = Field(30.0, description="HTTP timeout, seconds")

    @property
    def uses_jwt(self) -> bool:
        return self.private_key is not None or self.private_key_file is not None

    def private_key_pem(self) -> str | None:
        if self.private_key is not None:
            return self.private_key.get_secret_value()
        if self.private_key_file is not None:
            return self.private_key_file.read_text(encoding="utf-8")
        return None

    def jwt_audience(self) -> str:
        if self.audience:
            return self.audience
        return "https://test.salesforce.com" if "test.salesforce.com" in self.login_url else "https://login.salesforce.com"


__all__ = ["SalesforceSettings"]
