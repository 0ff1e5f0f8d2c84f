"""Connection checks (``factory.check``, :class:`connectors.base.ConnectorCheck`) for ``renkei doctor`` and every
flow's preflight when ``RENKEI_ERP=moneyforward``: settings present, OAuth through the shared (rotating) token
store, the office readable. Real but harmless calls, short timeouts, one line with the setting to change."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["check"]


def _token_store(settings: Any, mf: Any) -> Any:
    """The store the runtime uses (state store, else the file while the database has no token table yet:
    the runtime's store reads that file until its own row is filled)."""
    import sqlalchemy

    from renkei.connectors.moneyforward.factory import token_store

    try:
        from renkei.store.repo import Store

        shared = token_store(settings, mf, Store.open(settings.database_url, run_migrations=False, cached=False))
        shared.load()
        return shared
    except sqlalchemy.exc.SQLAlchemyError:
        return token_store(settings, mf, None)


def check(settings: Any, *, deep: bool = False) -> list[Any]:
    from renkei.connectors.moneyforward.auth import (
        MoneyForwardAuth,
        MoneyForwardAuthError,
        NoRefreshToken,
        RefreshTokenRejected,
        RefreshUncertain,
        token_url_from,
    )
    from renkei.connectors.moneyforward.settings import MoneyForwardSettings
    from renkei.connectors.base import CHECK_FAIL as FAIL
    from renkei.connectors.base import CHECK_OK as OK
    from renkei.connectors.base import CHECK_WARN as WARN
    from renkei.connectors.base import CheckResult as Check
    from renkei.connectors.probe import PROBE_TIMEOUT_S, UNREACHABLE, first_line, net_error, origin

    name = "moneyforward"
    mf = MoneyForwardSettings()
    missing = [n for n, v in (("RENKEI_MONEYFORWARD_CLIENT_ID", mf.client_id),
                              ("RENKEI_MONEYFORWARD_CLIENT_SECRET", mf.client_secret)) if not v]
    if missing:
        return [Check(name, FAIL, f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set",
                      "set them from the app in MF's アプリポータル")]
    store = _token_store(settings, mf)
    auth = MoneyForwardAuth(client_id=mf.client_id, client_secret=mf.client_secret.get_secret_value(),  # type: ignore[union-attr]
                            store=store, token_url=token_url_from(mf.auth_url),
                            initial_refresh_token=mf.refresh_token.get_secret_value() if mf.refresh_token else None,
                            timeout_s=PROBE_TIMEOUT_S, connect_retries=0)
    try:
        token = auth.access_token()
    except NoRefreshToken:
        return [Check(name, FAIL, f"no refresh token: the token store {store!r} is empty",
                      "authorise the app once and set RENKEI_MONEYFORWARD_REFRESH_TOKEN")]
    except RefreshTokenRejected:
        return [Check(name, FAIL, "Money Forward rejected the refresh token",
                      "authorise the app again (a user with アプリ連携権限) and seed the new refresh token into an "
                      "emptied token store")]
    except RefreshUncertain as exc:
        if "cannot reach" in str(exc):
            return [Check(name, FAIL, f"cannot reach Money Forward's authorization server at {origin(auth.token_url)}",
                          "check RENKEI_MONEYFORWARD_AUTH_URL and the network")]
        return [Check(name, WARN, f"token refresh not confirmed: {first_line(exc)}", "retry later")]
    except MoneyForwardAuthError as exc:
        return [Check(name, FAIL, f"token refresh failed: {first_line(exc)}",
                      "check RENKEI_MONEYFORWARD_AUTH_URL and the app's credentials")]
    finally:
        auth.close()
    try:
        resp = httpx.get(mf.base_url.rstrip("/") + "/office", headers={"Authorization": f"Bearer {token}"},
                         timeout=PROBE_TIMEOUT_S)
    except UNREACHABLE as exc:
        return [Check(name, FAIL, f"cannot reach Money Forward at {origin(mf.base_url)} ({net_error(exc)})",
                      "check RENKEI_MONEYFORWARD_BASE_URL and the network")]
    except httpx.HTTPError as exc:
        return [Check(name, WARN, f"office not read ({net_error(exc)}); retry later")]
    if resp.status_code in (401, 403):
        return [Check(name, FAIL, f"the office is not readable with this token ({resp.status_code})",
                      "request the scopes mfc/invoice/data.read and mfc/invoice/data.write when authorising")]
    if resp.status_code >= 400:
        return [Check(name, WARN, f"office not read ({resp.status_code}); retry later")]
    office = resp.json()
    reg = office.get("registration_code") or "no 登録番号"
    return [Check(name, OK, f"OAuth token valid (token store {store!r}); office {office.get('name') or office.get('id')}"
                            f" ({reg}); numbering {mf.numbering}")]
