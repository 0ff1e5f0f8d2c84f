"""Connection checks of the Salesforce connector (``renkei doctor``, a flow's preflight): the settings are
complete, the org accepts the login (one token request), the daily API allocation has room, and — deep —
the ``Renkei_*__c`` fields are visible to the integration user."""

from __future__ import annotations

from typing import Any

from renkei.connectors.base import CHECK_FAIL as FAIL, CHECK_OK as OK, CHECK_WARN as WARN, CheckResult
from renkei.connectors.http import ConnectorError, QuotaExhausted, TransportError, Unauthorized

from .settings import SalesforceSettings

TIMEOUT_S = 10.0
README = "connectors/salesforce/README.md"


def check(settings: Any = None, *, deep: bool = False) -> list[CheckResult]:
    """``factory.check``: the Salesforce rows of ``renkei doctor`` (the field check only when ``deep``)."""
    try:
        sf = SalesforceSettings()
    except Exception as exc:  # noqa: BLE001 - a malformed variable: name it
        return [CheckResult("salesforce", FAIL, f"RENKEI_SALESFORCE_* settings are invalid: {str(exc).splitlines()[0]}",
                            "fix the variable named above")]
    if not sf.client_id:
        return [CheckResult("salesforce", FAIL, "RENKEI_SALESFORCE_CLIENT_ID is not set",
                            "set it to the External Client App's consumer key")]
    if not sf.uses_jwt and sf.client_secret is None:
        return [CheckResult("salesforce", FAIL, "neither RENKEI_SALESFORCE_PRIVATE_KEY nor "
                            "RENKEI_SALESFORCE_CLIENT_SECRET is set",
                            "set the app's private key (JWT bearer) or its consumer secret (client credentials)")]
    if sf.uses_jwt and not sf.username:
        return [CheckResult("salesforce", FAIL, "RENKEI_SALESFORCE_USERNAME is not set (JWT bearer needs the run-as "
                            "user)", "set it to the integration user's username")]
    from .client import SalesforceClient

    client = SalesforceClient(sf.model_copy(update={"timeout": TIMEOUT_S}), max_attempts=1)
    try:
        try:
            instance = client.auth.instance_url
        except Unauthorized as exc:
            return [CheckResult("salesforce", FAIL, f"Salesforce refused the login: {exc.message}",
                                "check RENKEI_SALESFORCE_CLIENT_ID and the key/secret; the app must be approved for "
                                "the integration user (JWT) or have a Run As user (client credentials)")]
        except (TransportError, ConnectorError) as exc:
            return [CheckResult("salesforce", FAIL, f"cannot reach Salesforce at {client.auth.token_url} "
                                f"({type(exc).__name__})", "check RENKEI_SALESFORCE_LOGIN_URL / INSTANCE_URL and the "
                                "network")]
        out = [CheckResult("salesforce", OK, f"logged in to {instance} ({client.auth.method}, API v{sf.api_version})")]
        try:
            limits = (client.limits() or {}).get("DailyApiRequests") or {}
            mx, left = int(limits.get("Max", 0)), int(limits.get("Remaining", 0))
            used = mx - left
            if mx and used >= mx * sf.daily_budget_share:
                out.append(CheckResult("salesforce api", WARN, f"{used}/{mx} daily API requests used: Renkei stops at "
                                       f"{sf.daily_budget_share:.0%}", "wait for the rolling 24 h window or raise "
                                       "RENKEI_SALESFORCE_DAILY_BUDGET_SHARE"))
            else:
                out.append(CheckResult("salesforce api", OK, f"{used}/{mx} daily API requests used"))
        except QuotaExhausted as exc:
            out.append(CheckResult("salesforce api", FAIL, exc.message, "wait for the rolling 24 h window"))
        except ConnectorError as exc:
            out.append(CheckResult("salesforce api", WARN, f"limits not readable ({exc.code or exc.status}): the "
                                   "integration user may lack 'View Setup and Configuration'"))
        if deep:
            from .connector import SalesforceCRM

            try:
                missing = SalesforceCRM(client).missing_fields()
            except ConnectorError as exc:
                missing = None
                out.append(CheckResult("salesforce fields", WARN, f"describe failed ({exc.code or exc.status})"))
            if missing:
                out.append(CheckResult("salesforce fields", FAIL, f"{len(missing)} Renkei field(s) missing or not "
                                       f"visible: {', '.join(missing)}",
                                       f"deploy the Renkei fields and permission set ({README})"))
            elif missing is not None:
                out.append(CheckResult("salesforce fields", OK, "every Renkei_*__c field is visible"))
        return out
    finally:
        client.close()


__all__ = ["check"]
