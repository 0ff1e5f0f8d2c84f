"""Settings of the Money Forward クラウド請求書 connector (environment variables ``RENKEI_MONEYFORWARD_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_SCOPE", "MoneyForwardSettings"]

DEFAULT_SCOPE = "mfc/invoice/data.read mfc/invoice/data.write"


class MoneyForwardSettings(BaseSettings):
    """Where Money Forward is and how Renkei authenticates. Secrets are ``SecretStr`` and never printed."""

    model_config = SettingsConfigDict(env_prefix="RENKEI_MONEYFORWARD_", env_file=None, extra="ignore")

    base_url: str = Field("https://invoice.moneyforward.com/api/v3", description="クラウド請求書 API v3 base URL")
    auth_url: str = Field("https://api.biz.moneyforward.com",
                          description="authorization server (``/authorize``, ``/token``) or the full token URL")
    client_id: str | None = Field(None, description="OAuth2 client id (アプリポータル)")
    client_secret: SecretStr | None = Field(None, description="OAuth2 client secret")
    refresh_token: SecretStr | None = Field(
        None, description="first refresh token (authorization-code flow, once); seeds the token store when empty")
    scope: str = Field(DEFAULT_SCOPE, description="scopes requested at authorisation (list endpoints need data.write "
                                                  "as well, integrators report 404 with data.read alone)")
    token_store: Literal["db", "file"] = Field(
        "db", description="where the rotating token lives: the state store (row-locked, encrypted with the data key) "
                          "or a 0600 file")
    token_file: Path | None = Field(None, description="token file for token_store=file "
                                                      "(default RENKEI_HOME/secrets/moneyforward-token.json)")
    numbering: Literal["auto", "manual"] = Field(
        "auto", description="the office's 採番ルール (帳票設定): auto = MF numbers a billing sent without "
                            "billing_number; manual = no rule, Renkei must send the number. Not readable by API.")
    partner_suffix: str = Field("御中", description="敬称 for new partners")
    requests_per_minute: int = Field(300, description="requests per minute the client allows itself (MF publishes "
                                                      "no number; 429 when exceeded)")
    billing_writes_per_second: float = Field(3.0, description="billing writes per second (MF's historic 3/s)")

    def safe_dict(self) -> dict[str, object]:
        return {k: ("****** (set)" if isinstance(v, SecretStr) else (str(v) if isinstance(v, Path) else v))
                for k, v in self}
