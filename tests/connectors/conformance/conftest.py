"""Fixtures of the connector conformance suites: every registered connector, built by its registry
factory from the settings its sandbox hands out, against that sandbox served over HTTP.

``crm`` / ``erp``: a connector on a sandbox seeded with demo data; ``crm_empty`` / ``erp_empty``: on an empty
account (a fresh HubSpot portal, a new freee company ...). Each is parametrised over the registry, so a new
connector is tested by registering it: no change here.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from renkei.connectors import registry
from tests.sandbox_env import ServedSandbox


def _params(side: registry.Side) -> list[Any]:
    # every registered connector is tested: one that does not build fails here, it is never skipped
    return [pytest.param(e, id=e.name) for e in registry.entries(side)]


Served = ServedSandbox  # one connector's sandbox, served: ``entry``, ``spec``, ``app``, ``url``, ``env``, ``tmp``


def _connector(served: Served, tmp_path, monkeypatch) -> Iterator[Any]:
    from renkei.policy import load_policy
    from renkei.settings import Settings
    from renkei.store.repo import Store

    for key, value in served.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RENKEI_HOME", str(served.tmp / ".renkei"))
    settings = Settings(database_url=f"sqlite:///{served.tmp / 'conformance.db'}")
    store = Store.open(settings.database_url, cached=False)
    connector = served.entry.builder()(settings, store, load_policy(None))
    connector.served = served  # the conformance tests reach the sandbox's state through this
    try:
        yield connector
    finally:
        connector.close()
        store.engine.dispose()


@pytest.fixture(scope="module", params=_params("crm"))
def crm_served(request) -> Iterator[Served]:
    with Served(request.param, "demo") as served:
        yield served


@pytest.fixture(scope="module", params=_params("crm"))
def crm_empty_served(request) -> Iterator[Served]:
    with Served(request.param, "none") as served:
        yield served


@pytest.fixture(scope="module", params=_params("erp"))
def erp_served(request) -> Iterator[Served]:
    with Served(request.param, "demo") as served:
        yield served


@pytest.fixture(scope="module", params=_params("erp"))
def erp_empty_served(request) -> Iterator[Served]:
    with Served(request.param, "none") as served:
        yield served


@pytest.fixture
def crm(crm_served, tmp_path, monkeypatch):
    yield from _connector(crm_served, tmp_path, monkeypatch)


@pytest.fixture
def crm_empty(crm_empty_served, tmp_path, monkeypatch):
    yield from _connector(crm_empty_served, tmp_path, monkeypatch)


@pytest.fixture
def erp(erp_served, tmp_path, monkeypatch):
    yield from _connector(erp_served, tmp_path, monkeypatch)


@pytest.fixture
def erp_empty(erp_empty_served, tmp_path, monkeypatch):
    yield from _connector(erp_empty_served, tmp_path, monkeypatch)
