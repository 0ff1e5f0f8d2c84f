"""Credentials as a Prefect Block: ``RenkeiCredentials``.

``renkei setup`` registers the block type and saves a named document (default ``renkei``) from the current
environment; a worker with ``RENKEI_CREDENTIALS_BLOCK=<name>`` then reads the HubSpot and freee credentials
from the Prefect server instead of its own environment. Secrets are ``SecretStr``: they print as
``**********`` and are never logged. Anybody who can reach the Prefect API can read them in clear
(``?include_secrets=true``), so keep the server private and set ``PREFECT_SERVER_API_AUTH_STRING``.

The freee *refresh token* in the block only seeds an empty token store: the rotated token lives in the state
store (``connectors.freee.auth.DbTokenStore``), never back in the block.
"""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from renkei.settings import Settings

DEFAULT_BLOCK_NAME = "renkei"

# block field -> settings field (same names)
CREDENTIAL_FIELDS = ("hubspot_base_url", "hubspot_token", "freee_base_url", "freee_auth_url", "freee_client_id",
                     "freee_client_secret", "freee_refresh_token", "freee_company_id", "data_key",
                     "webhook_hubspot_secret", "webhook_inbound_secret")


class RenkeiCredentials(Block):
    """HubSpot and freee credentials of one Renkei installation."""

    _block_type_name = "Renkei Credentials"
    _block_type_slug = "renkei-credentials"
    _description = "HubSpot token and freee OAuth client of a Renkei installation (renkei setup)."

    hubspot_base_url: str = Field("https://api.hubapi.com", description="HubSpot API base URL")
    hubspot_token: SecretStr | None = Field(None, description="HubSpot private-app access token")
    freee_base_url: str = Field("https://api.freee.co.jp", description="freee API base URL")
    freee_auth_url: str = Field("https://accounts.secure.freee.co.jp", description="freee OAuth2 base URL")
    freee_client_id: str | None = Field(None, description="freee OAuth2 client id")
    freee_client_secret: SecretStr | None = Field(None, description="freee OAuth2 client secret")
    freee_refresh_token: SecretStr | None = Field(
        None, description="first freee refresh token: seeds the shared token store once, then unused")
    freee_company_id: int | None = Field(None, description="freee company (事業所) id")
    data_key: SecretStr | None = Field(
        None, description="RENKEI_DATA_KEY shared by every worker: encrypts the freee token set in the state "
                          "store and keys the hashes of personal values")
    webhook_hubspot_secret: SecretStr | None = Field(
        None, description="HubSpot app client secret (webhook signatures, renkei webhooks serve)")
    webhook_inbound_secret: SecretStr | None = Field(
        None, description="shared secret of the generic inbound webhooks (Zapier / Make)")

    @classmethod
    def from_settings(cls, settings: Settings) -> "RenkeiCredentials":
        return cls(**{f: getattr(settings, f) for f in CREDENTIAL_FIELDS})


def register() -> None:
    """Register the block type and schema with the Prefect server (idempotent)."""
    RenkeiCredentials.register_type_and_schema(_sync=True)


def save_credentials(settings: Settings, name: str = DEFAULT_BLOCK_NAME) -> Any:
    """Save (or overwrite) the block document ``name`` from ``settings``; returns its id."""
    register()
    return RenkeiCredentials.from_settings(settings).save(name, overwrite=True, _sync=True)


def settings_with_block(settings: Settings) -> Settings:
    """``settings`` with the credentials of the block ``settings.credentials_block`` (when set). A value in
    the block wins (except ``data_key``: ``RENKEI_DATA_KEY`` in the environment wins); a field the block
    leaves empty keeps the environment's value."""
    if not settings.credentials_block:
        return settings
    try:
        block = RenkeiCredentials.load(settings.credentials_block, _sync=True)
    except ValueError:
        raise RuntimeError(f"the Renkei Credentials block {settings.credentials_block!r} does not exist on the "
                           "Prefect server: run `renkei setup` or fix RENKEI_CREDENTIALS_BLOCK") from None
    update = {f: getattr(block, f) for f in CREDENTIAL_FIELDS if getattr(block, f) is not None}
    if settings.data_key is not None:
        update.pop("data_key", None)  # an explicit RENKEI_DATA_KEY wins: every reader of the key must agree
    return settings.model_copy(update=update)
