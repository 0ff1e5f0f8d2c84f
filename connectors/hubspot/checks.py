"""Connection checks of the HubSpot connector (``renkei doctor``, a flow's preflight): the token is present
and accepted (one property-list read) and, deep, the private app's scopes. Their requests take the account's
rate-limit slots like every other request (factory.hubspot_pace): three flows' preflights starting
together while the workers fill the 10-second bucket must not push it over."""

from __future__ import annotations

from typing import Any

import httpx

from renkei.connectors.base import CHECK_FAIL as FAIL, CHECK_OK as OK, CHECK_WARN as WARN, CheckResult
from renkei.connectors.http import QuotaExhausted
from renkei.connectors.probe import PROBE_TIMEOUT_S, UNREACHABLE, first_line, net_error

# Scopes a Renkei private app needs; each entry lists the alternatives of which one is enough.
REQUIRED_SCOPES: tuple[tuple[str, ...], ...] = tuple(
    [(f"crm.objects.{o}.{rw}",) for o in ("companies", "deals") for rw in ("read", "write")]
    + [(f"crm.objects.{o}.{rw}", "e-commerce") for o in ("line_items", "products") for rw in ("read", "write")]
    + [(f"crm.schemas.{o}.{rw}",) for o in ("companies", "deals") for rw in ("read", "write")]
    + [(f"crm.schemas.{o}.{rw}", "e-commerce") for o in ("line_items", "products") for rw in ("read", "write")]
)
TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"


def check_hubspot(settings: Any, *, scopes: bool = True) -> list[CheckResult]:
    """Token present and accepted (one property-list read); scopes from the private-app token info."""
    if settings.hubspot_token is None:
        return [CheckResult("hubspot", FAIL, "RENKEI_HUBSPOT_TOKEN is not set",
                      "set RENKEI_HUBSPOT_TOKEN to the private app's access token "
                      "(HubSpot → Settings → Integrations → Private apps)")]
    base = settings.hubspot_base_url.rstrip("/")
    token = settings.hubspot_token.get_secret_value()
    with _paced_http(settings) as http:
        return _check_token(http, base, token, scopes)


def _paced_http(settings: Any) -> httpx.Client:
    from renkei.connectors.hubspot.factory import hubspot_pace

    return httpx.Client(event_hooks=hubspot_pace(settings).hooks, timeout=PROBE_TIMEOUT_S)


def _check_token(http: httpx.Client, base: str, token: str, scopes: bool) -> list[CheckResult]:
    try:
        r = http.get(f"{base}/crm/v3/properties/companies", headers={"Authorization": f"Bearer {token}"})
    except QuotaExhausted as exc:
        return [CheckResult("hubspot", WARN, f"token not confirmed: {first_line(exc)}",
                            "the account's daily requests are used up (RENKEI_HUBSPOT_DAILY_CAP); retry tomorrow")]
    except UNREACHABLE as exc:
        return [CheckResult("hubspot", FAIL, f"cannot reach HubSpot at {base} ({net_error(exc)})",
                      "check RENKEI_HUBSPOT_BASE_URL (https://api.hubapi.com in production) and the network")]
    except httpx.HTTPError as exc:
        return [CheckResult("hubspot", WARN, f"HubSpot at {base} did not answer cleanly ({net_error(exc)}); token not "
                      "confirmed", "retry later")]
    if r.status_code == 401:
        return [CheckResult("hubspot", FAIL, f"HubSpot at {base} rejected the token (401 {_hs_category(r)})",
                      "set RENKEI_HUBSPOT_TOKEN to the current access token of the Renkei private app")]
    if r.status_code == 403:
        return [CheckResult("hubspot", FAIL, f"the token may not read company properties (403 {_hs_category(r)})",
                      "grant the private app the scopes listed by `renkei doctor` (crm.schemas.*, crm.objects.*)")]
    if r.status_code >= 400:
        return [CheckResult("hubspot", WARN, f"HubSpot answered {r.status_code} {_hs_category(r)}; token not confirmed",
                      "retry later; see https://status.hubspot.com")]
    out = [CheckResult("hubspot", OK, f"token accepted by {base}")]
    if scopes:
        out.append(_check_scopes(http, base, token))
    return out


def _hs_category(r: httpx.Response) -> str:
    try:
        return str(r.json().get("category") or "")
    except Exception:  # noqa: BLE001 - not JSON
        return ""


def _check_scopes(http: httpx.Client, base: str, token: str) -> CheckResult:
    try:
        r = http.post(f"{base}{TOKEN_INFO_PATH}", json={"tokenKey": token})
    except (httpx.HTTPError, QuotaExhausted) as exc:
        return CheckResult("hubspot scopes", WARN, f"token info not readable ({net_error(exc)})")
    if r.status_code != 200:
        return CheckResult("hubspot scopes", WARN, f"token info not readable ({r.status_code}): an OAuth token? "
                     "scopes are then checked by the calls themselves")
    granted = set(r.json().get("scopes") or [])
    missing = [alts[0] for alts in REQUIRED_SCOPES if not granted & set(alts)]
    if missing:
        return CheckResult("hubspot scopes", FAIL, f"the token lacks {len(missing)} scope(s): {', '.join(missing)}",
                     "add these scopes to the private app (HubSpot → Private apps → Scopes), then update "
                     "RENKEI_HUBSPOT_TOKEN if HubSpot rotated it")
    return CheckResult("hubspot scopes", OK, f"{len(granted)} scopes granted; all {len(REQUIRED_SCOPES)} needed present")


def check(settings: Any, *, deep: bool = False) -> list[CheckResult]:
    """``factory.check``: the HubSpot rows of ``renkei doctor`` (scopes only when ``deep``)."""
    return check_hubspot(settings, scopes=deep)
