"""Local, stateful fake of the freee会計 and freee請求書 APIs (plus freee's OAuth2 token endpoint).

``create_app(FreeeSandboxConfig(...))`` returns a FastAPI app; serve it with
:class:`sandboxes.common.ServerThread` in tests or ``python -m renkei.sandboxes.freee`` by hand. Every response
body is shaped by freee's official OpenAPI operation (checked by
``tests/sandboxes/test_freee_contract_responses.py``); the sandbox never reads the OpenAPI files at run
time. :mod:`sandboxes.freee.openapi` validates requests/responses against them in tests.
"""

from __future__ import annotations

from .app import ADMIN_PREFIX, create_app
from .config import DEFAULT_COMPANY_ID, FreeeSandboxConfig
from .seed import BANK_ACCOUNT_ID, CASH_WALLET_ID, CREDIT_CARD_ID
from .store import FreeeStore

__all__ = [
    "ADMIN_PREFIX",
    "BANK_ACCOUNT_ID",
    "CASH_WALLET_ID",
    "CREDIT_CARD_ID",
    "DEFAULT_COMPANY_ID",
    "FreeeSandboxConfig",
    "FreeeStore",
    "create_app",
]
