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

from renkei.connectors.base import CRMConnector, ERPConnector
from renkei.connectors.registry import build_crm, build_erp
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
    crm: CRMConnector
    erp: ERPConnector
    worker_id: str = field(default_factory=lambda: f"{os.getpid()}-{uuid.uuid4().hex[:8]}")

    def side_of(self, exc: BaseException) -> str | None:
        """``"crm"`` or ``"erp"``: whose API (or whose limiter) raised ``exc`` — its ``system`` against the
        connectors' registry names; ``None`` when it does not say."""
        system = getattr(exc, "system", None)
        for side, connector in (("crm", self.crm), ("erp", self.erp)):
            if system is not None and system == getattr(getattr(connector, "capabilities", None), "name", None):
                return side
        return None

    def close(self) -> None:
        for connector in (self.crm, self.erp):
            closer = getattr(connector, "close", None) or getattr(getattr(connector, "client", None), "close", None)
            if closer:
                closer()


def _build(settings: Settings) -> Runtime:
    if settings.credentials_block:
        from renkei.blocks import settings_with_block

        settings = settings_with_block(settings)
        if settings.data_key is not None and not os.environ.get("RENKEI_DATA_KEY"):
            # the block's data key: also for the keyed hashes of personal values (store.repo.personal_key)
            os.environ["RENKEI_DATA_KEY"] = settings.data_key.get_secret_value()
    policy = load_policy(settings.policy_file)
    store = Store.open(settings.database_url)
    return Runtime(settings, policy, store, build_crm(settings, store, policy), build_erp(settings, store, policy))


def get_runtime(**overrides: Any) -> Runtime:
    """The runtime of this process for the current settings (environment)."""
    install_log_masking()
    settings = Settings(**overrides)
    # connectors read their own settings (RENKEI_SALESFORCE_* ...): every RENKEI_ variable is part of the key
    key = hashlib.sha256(repr((sorted(
        (k, v.get_secret_value() if isinstance(v, SecretStr) else str(v)) for k, v in settings),
        sorted((k, v) for k, v in os.environ.items() if k.startswith("RENKEI_")))).encode()).hexdigest()
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
