"""Local, stateful fake of Money Forward クラウド請求書 API v3 (plus MF's OAuth2 authorization server).

``create_app(MoneyForwardSandboxConfig(...))`` returns a FastAPI app; serve it with
:class:`sandboxes.common.ServerThread` in tests or ``python -m renkei.sandboxes.moneyforward`` by hand.
Shapes follow the v3.6.0 OpenAPI document as summarised in ``moneyforward-invoice-api.md``; the sandbox
never reads that document.
"""

from __future__ import annotations

from .app import ADMIN_PREFIX, API_PREFIX, create_app
from .config import MoneyForwardSandboxConfig
from .store import MoneyForwardStore

__all__ = ["ADMIN_PREFIX", "API_PREFIX", "MoneyForwardSandboxConfig", "MoneyForwardStore", "create_app"]
