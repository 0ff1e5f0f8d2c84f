"""``renkei setup``: what a Prefect server needs before Renkei runs there — the credentials block and the
alert automations. Idempotent: run it again after changing the policy, the credentials or the receiver.

    renkei setup --notify webhook:https://ops.example.com/hooks/renkei
    renkei setup --notify slack:https://hooks.slack.com/services/…
    RENKEI_SENDGRID_API_KEY=… renkei setup --notify email:finance-ops@example.com

1. Registers the ``Renkei Credentials`` block type and saves the document ``--credentials-block`` (default
   ``renkei``) from the ``RENKEI_*`` environment of this shell (``--no-credentials`` skips it). Workers then
   need only ``RENKEI_CREDENTIALS_BLOCK=renkei`` (and the state store URL) instead of every secret.
2. Saves the notification block ``renkei-notify`` from ``--notify`` (or reuses the one saved earlier).
3. Creates or updates the automations of ``deployments/automations.py`` from the policy's ``[alerts]``.
4. Creates the shared rate-limit rows of the configured accounts in the state store when the limits are shared
   (``RENKEI_RATE_LIMITS``; PostgreSQL store by default): HubSpot's 10-second, search and daily buckets,
   freee's, Money Forward's pace, the Salesforce org's daily budget — docs/scale-out.md.

No secret is printed: the output names blocks and automations only.
"""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

console = Console()

_CREDENTIAL_ENV = ("hubspot_token", "freee_client_id", "freee_client_secret", "freee_refresh_token",
                   "freee_company_id")


def run_setup(*, notify: str | None, credentials_block: str | None, policy_file: str | None = None,
              save_credentials: bool = True) -> list[tuple[str, str, str]]:
    """Do the setup; returns ``(what, name, outcome)`` rows. Raises ``ValueError`` for a bad ``--notify``."""
    from renkei.deployments.automations import (NOTIFY_BLOCK_NAME, apply_automations, existing_notification_block,
                                         save_notification_block)
    from renkei.blocks import DEFAULT_BLOCK_NAME, register, save_credentials as save_block
    from renkei.policy import load_policy
    from renkei.settings import Settings

    settings = Settings()
    policy = load_policy(policy_file if policy_file is not None else settings.policy_file)
    rows: list[tuple[str, str, str]] = []

    rows.extend(setup_rate_limits(settings))
    register()
    rows.append(("block type", "renkei-credentials", "registered"))
    name = credentials_block or DEFAULT_BLOCK_NAME
    if save_credentials:
        if any(getattr(settings, f) is not None for f in _CREDENTIAL_ENV):
            save_block(settings, name)
            rows.append(("credentials block", name, f"saved (workers: RENKEI_CREDENTIALS_BLOCK={name})"))
        else:
            rows.append(("credentials block", name, "skipped: no RENKEI_HUBSPOT_TOKEN / RENKEI_FREEE_* set"))

    if notify:
        block_id = save_notification_block(notify)
        rows.append(("notification block", NOTIFY_BLOCK_NAME, f"saved ({notify.split(':', 1)[0]})"))
    else:
        block_id = existing_notification_block()
        if block_id is None:
            rows.append(("automations", "-", "skipped: give --notify webhook:URL | slack:URL | email:ADDR once"))
            return rows
        rows.append(("notification block", NOTIFY_BLOCK_NAME, "reused"))
    for auto, outcome in apply_automations(policy.alerts, block_id).items():
        rows.append(("automation", auto, outcome))
    return rows


def setup_rate_limits(settings) -> list[tuple[str, str, str]]:
    """The shared rate-limit buckets of the configured accounts (rows in ``rate_bucket``); nothing when the
    limits are per process."""
    from renkei.store.ratelimit import ensure_buckets, shared_backend
    from renkei.store.repo import Store

    try:
        store = Store.open(settings.database_url)
    except Exception as exc:  # noqa: BLE001 - the Prefect part of the setup can still be done
        return [("rate limits", "-", f"skipped: state store not reachable ({type(exc).__name__})")]
    if not shared_backend(settings, store.engine):
        return [("rate limits", "-", "per process (SQLite store; RENKEI_RATE_LIMITS=shared to share)")]
    out: list[tuple[str, str, str]] = []
    if settings.hubspot_token is not None:
        from renkei.connectors.hubspot.factory import hubspot_limits, hubspot_rate_scope

        limits = hubspot_limits(settings)  # 10 s, search, and the account's day: the connector's own buckets
        out += [("rate limit", name, outcome) for name, outcome in
                ensure_buckets(store.engine, hubspot_rate_scope(settings), limits)]
    if settings.freee_company_id is not None:
        from renkei.connectors.freee.factory import freee_limits, freee_rate_scope

        limits = freee_limits(settings).as_dict()
        out += [("rate limit", name, outcome) for name, outcome in
                ensure_buckets(store.engine, freee_rate_scope(settings), limits)]
    if getattr(settings, "crm", None) == "salesforce":
        from renkei.connectors.salesforce.client import ApiBudget
        from renkei.connectors.salesforce.factory import salesforce_rate_scope
        from renkei.connectors.salesforce.settings import SalesforceSettings

        sf = SalesforceSettings()
        # the org's rolling-24-hour allocation: observed from Sforce-Limit-Info, shared by every worker
        out += [("rate limit", name, outcome) for name, outcome in
                ensure_buckets(store.engine, salesforce_rate_scope(sf),
                               ApiBudget.limits(sf.daily_budget_share, sf.daily_api_limit))]
    if getattr(settings, "erp", None) == "moneyforward":
        from renkei.connectors.moneyforward.client import MoneyForwardLimits
        from renkei.connectors.moneyforward.settings import MoneyForwardSettings

        mf = MoneyForwardSettings()
        limits = MoneyForwardLimits(mf.requests_per_minute, mf.billing_writes_per_second).as_dict()
        out += [("rate limit", name, outcome) for name, outcome in
                ensure_buckets(store.engine, f"moneyforward:{mf.client_id}", limits)]
    return out


def setup_command(
    notify: Optional[str] = typer.Option(
        None, "--notify", help="where alerts go: webhook:URL | slack:URL | email:ADDR (SendGrid; "
                               "RENKEI_SENDGRID_API_KEY). Once; later runs reuse it"),
    credentials_block: Optional[str] = typer.Option(
        None, "--credentials-block", help="name of the Renkei Credentials block to save (default: renkei)"),
    no_credentials: bool = typer.Option(False, "--no-credentials", help="do not save the credentials block"),
) -> None:
    """Register the credentials block and create/update the alert automations on the Prefect server."""
    try:
        rows = run_setup(notify=notify, credentials_block=credentials_block, save_credentials=not no_credentials)
    except ValueError as exc:
        console.print(f"[red]setup failed:[/red] {exc}")
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        console.print(f"[red]setup failed:[/red] {type(exc).__name__}: {str(exc)[:300]} "
                      "(is PREFECT_API_URL set and the Prefect server running?)")
        raise typer.Exit(1) from None
    table = Table("what", "name", "outcome", title="renkei setup")
    for row in rows:
        table.add_row(*row)
    console.print(table)
