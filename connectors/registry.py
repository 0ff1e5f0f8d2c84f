"""The one table of connectors: which CRM and which ERP Renkei can speak, chosen by ``RENKEI_CRM`` /
``RENKEI_ERP``.

Flows and tasks never import a concrete connector: they get ``rt.crm`` / ``rt.erp`` (built here through
:func:`build_crm` / :func:`build_erp`) and use only the protocols of :mod:`connectors.base`. Adding a
system = one package under ``connectors/`` (with a ``factory.build``), its sandbox under ``sandboxes/``
(with a ``spec.SPEC``) and one row below; ``flows/`` and ``tasks/`` do not change.

Third-party packages may add rows through the ``renkei.connectors`` entry-point group: each entry point
loads a :class:`ConnectorEntry`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

Side = Literal["crm", "erp"]


class SandboxSpec(Protocol):
    """A connector's local sandbox: a faithful, stateful stand-in for the vendor API (tests and demo)."""

    name: str  # the connector it serves ("hubspot", "freee", ...)
    default_port: int

    def app(self, *, seed: str = "demo", **options: Any) -> "FastAPI":
        """A fresh sandbox app; ``seed`` is ``"demo"`` (realistic data) or ``"none"`` (an empty account)."""
        ...

    def env(self, url: str, app: "FastAPI") -> dict[str, str]:
        """The ``RENKEI_*`` settings that point Renkei at this app served at ``url``."""
        ...

    # Optional (looked up with ``getattr``):
    #   demo_options: dict — extra ``app()`` options ``renkei demo`` uses (fixed credentials ...)
    #   test_options: dict — extra ``app()`` options for fast tests (rate limits off or high; ``env`` then
    #       points the connector's own pacing at them)
    #   seed_demo_deals(app) -> list[str] — (CRM) add the won deals that need finance approval in the demo;
    #       returns their CRM ids. Without it the demo skips that step.
    #   describe(url, app) -> list[str] — lines ``renkei sandbox serve`` prints (credentials, settings)


@dataclass(frozen=True)
class ConnectorEntry:
    name: str  # RENKEI_CRM / RENKEI_ERP value
    side: Side
    label: str  # shown to people
    build: str  # "module:function" — build(settings, store, policy) -> the connector
    sandbox: str | None = None  # "module:attribute" — a SandboxSpec

    def builder(self):
        return _load(self.build)

    def checker(self) -> Any:
        """The connector's connection checks: ``check(settings, *, deep=False) -> list[CheckResult]`` from
        the module of ``build`` (:class:`connectors.base.ConnectorCheck`), or ``None`` when it has none."""
        module = self.build.partition(":")[0]
        return getattr(importlib.import_module(module), "check", None)

    def settings_class(self) -> Any:
        """The connector's own pydantic-settings class (env prefix ``RENKEI_<NAME>_``), ``SETTINGS`` in the
        module of ``build``, or ``None`` when its settings live on :class:`renkei.settings.Settings`."""
        module = self.build.partition(":")[0]
        return getattr(importlib.import_module(module), "SETTINGS", None)

    def sandbox_spec(self) -> SandboxSpec:
        if not self.sandbox:
            raise LookupError(f"{self.label} has no sandbox")
        return _load(self.sandbox)


ENTRIES: tuple[ConnectorEntry, ...] = (
    ConnectorEntry("hubspot", "crm", "HubSpot", "renkei.connectors.hubspot.factory:build",
                   "renkei.sandboxes.hubspot.spec:SPEC"),
    ConnectorEntry("salesforce", "crm", "Salesforce", "renkei.connectors.salesforce.factory:build",
                   "renkei.sandboxes.salesforce.spec:SPEC"),
    ConnectorEntry("freee", "erp", "freee", "renkei.connectors.freee.factory:build",
                   "renkei.sandboxes.freee.spec:SPEC"),
    ConnectorEntry("moneyforward", "erp", "Money Forward クラウド請求書", "renkei.connectors.moneyforward.factory:build",
                   "renkei.sandboxes.moneyforward.spec:SPEC"),
)


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def entries(side: Side | None = None) -> list[ConnectorEntry]:
    """Every registered connector (the table, then the ``renkei.connectors`` entry points)."""
    found = list(ENTRIES)
    for ep in entry_points(group="renkei.connectors"):
        entry = ep.load()
        if isinstance(entry, ConnectorEntry) and entry.name not in {e.name for e in found}:
            found.append(entry)
    return [e for e in found if side is None or e.side == side]


def entry(side: Side, name: str) -> ConnectorEntry:
    for e in entries(side):
        if e.name == name:
            return e
    known = ", ".join(e.name for e in entries(side))
    raise LookupError(f"RENKEI_{side.upper()}={name!r} is not a known {side.upper()} (known: {known})")


def names(side: Side) -> list[str]:
    return [e.name for e in entries(side)]


def build_crm(settings: Any, store: Any, policy: Any) -> Any:
    return entry("crm", settings.crm).builder()(settings, store, policy)


def build_erp(settings: Any, store: Any, policy: Any) -> Any:
    return entry("erp", settings.erp).builder()(settings, store, policy)


def pairings() -> list[tuple[str, str]]:
    """Every (CRM, ERP) pairing, HubSpot + freee first."""
    return [(c, e) for c in names("crm") for e in names("erp")]
