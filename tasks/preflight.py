"""Preflight: a flow's first task. The connection checks of ``renkei doctor`` (policy, the configured CRM
and ERP, state store — not the work pool), then the CRM schema bootstrap: ``rt.crm.prepare()`` makes sure
the CRM holds every custom field Renkei reads, searches or writes, once, before any search or write names
one (a fresh account has none).

A configuration problem ends the run with :class:`PreflightError`, whose message is one line naming the
setting to change (logged without a traceback). Weather — a 503, a slow answer — is not a configuration
problem: it is left to the run's own retries.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from renkei.doctor import Check, ConfigProblem, connection_checks, explain
from renkei.settings import Settings


class PreflightError(ConfigProblem):
    """A flow cannot start: the message is one line — what is wrong and the setting to change."""


def check_connections(settings: Settings | None = None) -> list[Check]:
    """Raise :class:`PreflightError` for the first failed connection check (naming how many more)."""
    settings = settings or Settings()
    checks = connection_checks(settings)
    failed = [c for c in checks if c.failed]
    if failed:
        first = failed[0]
        if len(failed) > 1:
            first = Check(first.name, first.status, first.detail,
                          f"{first.fix} ({len(failed) - 1} more problem(s): run `renkei doctor`)")
        raise PreflightError(first)
    return checks


def ensure_crm_schema(rt: Any) -> dict[str, list[str]]:
    """Every custom field Renkei reads, searches or writes, on every object type (``rt.crm.prepare()``,
    idempotent). Returns what was created per object type when the connector says so, else ``{}``."""
    created = rt.crm.prepare()
    return created if isinstance(created, dict) else {}


@task(name="preflight", retries=0, cache_policy=NO_CACHE, persist_result=False)
def preflight(flow: str, crm_schema: bool = True) -> dict[str, Any]:
    """Connections and store first, then the runtime and the CRM schema. Returns what was created."""
    from renkei.tasks.runtime import get_runtime

    settings = Settings()
    checks = check_connections(settings)
    try:
        rt = get_runtime()
        created = ensure_crm_schema(rt) if crm_schema else {}
    except ConfigProblem:
        raise
    except Exception as exc:  # noqa: BLE001 - known configuration errors become one line
        known = explain(exc, settings)
        if known is not None:
            raise PreflightError(known) from None
        raise
    from prefect import get_run_logger

    log = get_run_logger()
    made = {t: names for t, names in created.items() if names}
    if made:
        log.info("%s: created %s properties %s", flow, rt.crm.capabilities.label, made)
    warnings = [c.line() for c in checks if c.status == "warn"]
    for w in warnings:
        log.warning("%s preflight: %s", flow, w)
    return {"created_properties": made, "warnings": warnings}


__all__ = ["PreflightError", "check_connections", "ensure_crm_schema", "preflight"]
