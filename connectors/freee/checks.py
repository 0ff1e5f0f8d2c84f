"""Connection checks of the freee connector (``renkei doctor``, a flow's preflight): reachable, OAuth through
the shared token store (a refresh only when the stored access token is stale, persisted under the store's
lock like every worker's: nobody's refresh token is burnt) and one company read with its settings, which
takes its slot in the company's shared rate-limit buckets (factory.freee_pace) like every worker's request."""

from __future__ import annotations

from typing import Any

import httpx

from renkei.connectors.base import CHECK_FAIL as FAIL, CHECK_OK as OK, CHECK_WARN as WARN, CheckResult
from renkei.connectors.probe import PROBE_TIMEOUT_S, UNREACHABLE, first_line, net_error, origin


def token_store(settings: Any) -> Any:
    """The token store every worker of this installation uses (shared rotation): the runtime's own
    choice when it offers one (``connectors.freee.factory.freee_token_store``), else the token file."""
    import sqlalchemy

    from renkei.connectors.freee.auth import FileTokenStore

    legacy = FileTokenStore(settings.token_store_path)
    try:
        from renkei.connectors.freee.factory import freee_token_store
    except ImportError:
        return legacy
    from renkei.store.repo import Store

    try:
        shared = freee_token_store(settings, Store.open(settings.database_url, run_migrations=False, cached=False))
        shared.load()
    except sqlalchemy.exc.SQLAlchemyError:  # no token table yet: the first run moves the file (or seed) in
        return legacy
    return shared


def check_freee(settings: Any) -> list[CheckResult]:
    """Reachable, OAuth through the shared token store, the company and its settings as freee reports them."""
    missing = [name for name, value in (("RENKEI_FREEE_CLIENT_ID", settings.freee_client_id),
                                        ("RENKEI_FREEE_CLIENT_SECRET", settings.freee_client_secret),
                                        ("RENKEI_FREEE_COMPANY_ID", settings.freee_company_id)) if value is None]
    if missing:
        return [CheckResult("freee", FAIL, f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set",
                      "set them from the freee app (freee developers → アプリ管理) and the 事業所 id")]
    from renkei.connectors.freee.auth import (FreeeAuth, FreeeAuthError, NoRefreshToken, RefreshTokenRejected,
                                       RefreshUncertain)
    from renkei.connectors.freee.client import token_url_from

    base = settings.freee_base_url.rstrip("/")
    token_url = token_url_from(settings.freee_auth_url)
    for url, setting in ((base, "RENKEI_FREEE_BASE_URL"), (token_url, "RENKEI_FREEE_AUTH_URL")):
        try:
            httpx.get(url, timeout=PROBE_TIMEOUT_S)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            if not isinstance(exc, UNREACHABLE):
                continue  # reachable, just not a clean answer
            return [CheckResult("freee", FAIL, f"cannot reach freee at {origin(url)} ({net_error(exc)})",
                          f"check {setting} (production: {_default(setting)}) and the network")]
    store = token_store(settings)
    auth = FreeeAuth(client_id=settings.freee_client_id, client_secret=settings.freee_client_secret.get_secret_value(),
                     store=store, token_url=token_url, connect_retries=1, timeout_s=PROBE_TIMEOUT_S,
                     initial_refresh_token=(settings.freee_refresh_token.get_secret_value()
                                            if settings.freee_refresh_token else None))
    try:
        access = auth.access_token()
    except NoRefreshToken:
        return [CheckResult("freee", FAIL, f"no freee refresh token: the token store {_store_name(store)} is empty",
                      "authorise the app once and set RENKEI_FREEE_REFRESH_TOKEN to the refresh token it gave")]
    except RefreshTokenRejected as exc:
        return [CheckResult("freee", FAIL, f"freee rejected the refresh token ({first_line(exc).split('(')[-1].split(';')[0]})",
                      f"re-authorise the app, empty the token store {_store_name(store)} and set "
                      "RENKEI_FREEE_REFRESH_TOKEN to the new refresh token")]
    except RefreshUncertain as exc:  # freee's side or the network: not a setting; the run's own refresh decides
        return [CheckResult("freee", WARN, f"freee token refresh not confirmed: {first_line(exc)}", "retry later")]
    except FreeeAuthError as exc:
        return [CheckResult("freee", FAIL, f"freee token refresh failed: {first_line(exc)}",
                      "check RENKEI_FREEE_AUTH_URL and RENKEI_FREEE_CLIENT_ID/RENKEI_FREEE_CLIENT_SECRET")]
    finally:
        auth.close()
    out = [CheckResult("freee", OK, f"OAuth token valid (token store {_store_name(store)})")]
    out.append(_check_company(settings, base, access))
    return out


def _default(setting: str) -> str:
    from renkei.settings import Settings

    return str(Settings.model_fields[setting.removeprefix("RENKEI_").lower()].default)


def _store_name(store: Any) -> str:
    return str(getattr(store, "path", None) or store)


def _check_company(settings: Any, base: str, access: str) -> CheckResult:
    from renkei.connectors.freee.factory import freee_pace
    from renkei.connectors.http import QuotaExhausted

    cid = settings.freee_company_id
    try:  # under the company's pace: the read takes a slot of the workers' buckets
        with httpx.Client(event_hooks=freee_pace(settings).hooks, timeout=PROBE_TIMEOUT_S) as http:
            r = http.get(f"{base}/api/1/companies/{cid}", headers={"Authorization": f"Bearer {access}"})
    except QuotaExhausted as exc:
        return CheckResult("freee company", WARN, f"company {cid} not read ({first_line(exc)})")
    except httpx.HTTPError as exc:
        return CheckResult("freee company", WARN, f"company {cid} not read ({net_error(exc)})")
    if r.status_code == 401:
        return CheckResult("freee company", FAIL, f"freee rejected the stored access token for company {cid} (401)",
                     "re-authorise the app, empty the token store and set RENKEI_FREEE_REFRESH_TOKEN")
    if r.status_code in (403, 404):
        return CheckResult("freee company", FAIL, f"company {cid} is not accessible with this token ({r.status_code})",
                     "set RENKEI_FREEE_COMPANY_ID to a 事業所 id the authorising user can use "
                     "(GET /api/1/companies lists them)")
    if r.status_code >= 400:
        return CheckResult("freee company", WARN, f"company {cid} not read ({r.status_code}); retry later")
    company = (r.json() or {}).get("company") or {}
    if not company.get("invoice_numbering") and not company.get("invoice_number_format"):
        try:  # freee's API does not report 採番の設定: the policy says which one the company uses
            from renkei.policy import load_policy

            numbering = load_policy(settings.policy_file).invoice_numbering
            company = {**company, "invoice_numbering": f"{numbering.mode} (policy [invoice_numbering]; "
                                                       f"must match freee請求書 採番の設定)"}
        except Exception:  # noqa: BLE001 - the policy check reports a broken policy file
            pass
    return CheckResult("freee company", OK, f"{company.get('display_name') or company.get('name') or cid}: "
                 + describe_company_settings(company))


def describe_company_settings(company: dict) -> str:
    """The company settings Renkei depends on, as freee reports them."""
    fraction = {0: "切り捨て", 1: "切り上げ", 2: "四捨五入"}
    years = company.get("fiscal_years") or [{}]
    tax_fraction = years[-1].get("tax_fraction", company.get("tax_fraction"))
    code = company.get("use_partner_code")
    numbering = company.get("invoice_numbering") or company.get("invoice_number_format")
    parts = [f"partner codes {'on' if code else 'off' if code is not None else 'unknown'}",
             f"tax rounding {fraction.get(tax_fraction, tax_fraction if tax_fraction is not None else 'unknown')}",
             f"amount rounding {fraction.get(company.get('amount_fraction'), 'unknown')}",
             f"invoice numbering {numbering or 'not reported by the API (see the policy)'}"]
    return ", ".join(parts)


def check(settings: Any, *, deep: bool = False) -> list[CheckResult]:
    """``factory.check``: the freee rows of ``renkei doctor``."""
    return check_freee(settings)
