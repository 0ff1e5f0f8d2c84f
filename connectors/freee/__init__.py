"""freee connector: freee会計 (accounting, ``/api/1``) and freee請求書 (invoicing, ``/iv``).

* :mod:`connectors.freee.auth` — OAuth2 with single-use refresh-token rotation (``FreeeAuth``,
  ``FileTokenStore``, ``DbTokenStore``).
* :mod:`connectors.freee.client` — ``FreeeClient``: freee's endpoints on :mod:`connectors.http`.
* :mod:`connectors.freee.mapping` — freee objects ⇄ canonical model.
* :mod:`connectors.freee.connector` — ``FreeeConnector``: the ``ERPConnector`` protocol.

See ``connectors/freee/README.md``.
"""

from renkei.connectors.freee.auth import (
    FileTokenStore,
    FreeeAuth,
    FreeeAuthError,
    MemoryTokenStore,
    NoRefreshToken,
    DbTokenStore,
    RefreshTokenRejected,
    RefreshUncertain,
    TokenSet,
    TokenStore,
)
from renkei.connectors.freee.client import FreeeClient, FreeeLimits, parse_freee_error
from renkei.connectors.freee.connector import FreeeConnector, FreeeConnectorConfig

__all__ = [
    "FileTokenStore", "FreeeAuth", "FreeeAuthError", "FreeeClient", "FreeeConnector", "FreeeConnectorConfig",
    "FreeeLimits", "MemoryTokenStore", "NoRefreshToken", "DbTokenStore", "RefreshTokenRejected",
    "RefreshUncertain", "TokenSet", "TokenStore", "parse_freee_error",
]
