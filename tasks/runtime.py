"""What every flow run needs, built once per process from settings: policy, state store and the
connectors for the configured CRM and ERP."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from renkei.connectors.freee.auth import DbTokenStore, FileTokenStore, TokenStore
from renkei.connectors.freee.client import FreeeClient, FreeeLimits
from renkei.connectors.freee.connector import FreeeConnector, FreeeConnectorConfig
from renkei.connectors.hubspot.client import HubSpotClient
from renkei.connectors.hubspot.connector import HubSpotCRM
from renkei.logmask import install as install_log_masking
from renkei.policy import Policy, load_policy
from renkei.settings import Settings
from renkei.store.repo import Store

_LOCK = threading.Lock()
_CACHE: dict[str, "Runtime"] = {}


@dataclass
class Runtime:
    settings: Settings
    policy: Policy
    store: Store
    crm: HubSpotCRM
    erp: FreeeConnector
    worker_id: str = field(default_factory=lambda: f"{os.getpid()}-{uuid.uuid4().hex[:8]}")

    def close(self) -> None:
        for closer in (getattr(self.crm.client, "close", None), getattr(self.erp.client, "close", None)):
            if closer:
                closer()


def freee_token_store(settings: Settings, store: Store) -> TokenStore:
    """The freee token store of ``settings.token_store``: the state store by default (shared by every worker
    on every host; an existing token file is read while the row is still empty, so the first refresh moves
    it in), or the host-local file."""
    legacy = FileTokenStore(settings.token_store_path)
    if settings.token_store == "file":
        return legacy
    return DbTokenStore(store.engine, data_key=settings.personal_data_key(),
                        name=f"freee:{settings.freee_company_id}",
                        fallback=legacy if legacy.path.exists() else None)


def _build(settings: Settings) -> Runtime:
    if settings.credentials_block:
        from renkei.blocks import settings_with_block

        settings = settings_with_block(settings)
        if settings.data_key is not None and not os.environ.get("RENKEI_DATA_KEY"):
            # the block's data key: also for the keyed hashes of personal values (store.repo.personal_key)
            os.environ["RENKEI_DATA_KEY"] = settings.data_key.get_secret_value()
    policy = load_policy(settings.policy_file)
    store = Store.open(settings.database_url)
    hubspot = HubSpotClient(settings.hubspot_base_url, settings.hubspot_token)
    if settings.freee_company_id is None:
        raise RuntimeError("RENKEI_FREEE_COMPANY_ID is not set")
    token_store = freee_token_store(settings, store)
    freee = FreeeClient(
        base_url=settings.freee_base_url,
        auth_url=settings.freee_auth_url.rstrip("/") + "/public_api/token",
        client_id=settings.freee_client_id,
        client_secret=settings.freee_client_secret.get_secret_value() if settings.freee_client_secret else None,
        company_id=settings.freee_company_id,
        token_store=token_store,
        initial_refresh_token=(settings.freee_refresh_token.get_secret_value()
                               if settings.freee_refresh_token else None),
        limits=FreeeLimits(accounting_per_s=settings.freee_accounting_per_second,
                           iv_per_minute=settings.freee_iv_per_minute, iv_per_hour=settings.freee_iv_per_hour),
    )
    erp = FreeeConnector(freee, FreeeConnectorConfig(tax_fraction=policy.tax.rounding))
    return Runtime(settings, policy, store, HubSpotCRM(hubspot), erp)


def get_runtime(**overrides: Any) -> Runtime:
    """The runtime of this process for the current settings (environment)."""
    install_log_masking()
    settings = Settings(**overrides)
    key = hashlib.sha256(repr(sorted(
        (k, v.get_secret_value() if isinstance(v, SecretStr) else str(v)) for k, v in settings)).encode()).hexdigest()
    with _LOCK:
        rt = _CACHE.get(key)
        if rt is None:
            rt = _CACHE[key] = _build(settings)
        return rt


def reset_runtime() -> None:
    """Forget cached runtimes (tests switch sandboxes between cases)."""
    with _LOCK:
        for rt in _CACHE.values():
            rt.close()
        _CACHE.clear()
