"""Money Forward クラウド請求書 (API v3) connector.

* :mod:`~connectors.moneyforward.settings` — ``MoneyForwardSettings`` (``RENKEI_MONEYFORWARD_*``).
* :mod:`~connectors.moneyforward.auth` — OAuth2 with refresh-token rotation (``MoneyForwardAuth`` on freee's
  token stores), authorization-code helpers.
* :mod:`~connectors.moneyforward.client` — ``MoneyForwardClient``: the endpoints on :mod:`connectors.http`.
* :mod:`~connectors.moneyforward.mapping` — MF objects ⇄ canonical model.
* :mod:`~connectors.moneyforward.connector` — ``MoneyForwardERP``: the ``ERPConnector`` protocol.
* :mod:`~connectors.moneyforward.factory` — ``build(settings, store, policy)``.

See ``connectors/moneyforward/README.md``.
"""
