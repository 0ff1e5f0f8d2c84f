"""Shared fixtures: the session-wide Prefect test server, state stores (SQLite and PostgreSQL) and the
local sandboxes over real HTTP on free ports."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT.parent / "shared" / "specs"
DEFAULT_TEST_PG = "postgresql+psycopg2://postgres@127.0.0.1:55432/renkei_test"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# Never touch a developer's server or their real configuration from the test run.
os.environ.pop("PREFECT_API_URL", None)
_KEEP = ("RENKEI_TEST_", "RENKEI_REQUIRE_", "RENKEI_VCR_", "RENKEI_MONEYFORWARD_OPENAPI")
if os.environ.get("RENKEI_VCR_RECORD") in ("hubspot", "freee"):  # re-recording against a real account
    _KEEP += (f"RENKEI_{os.environ['RENKEI_VCR_RECORD'].upper()}_",)
for _k in [k for k in os.environ if k.startswith("RENKEI_") and not k.startswith(_KEEP)]:
    os.environ.pop(_k)


# ----------------------------------------------------------------------------------------- order
# The suite runs on pytest-xdist workers, one test file at a time per worker (pyproject addopts). Files go out in
# collection order, so the longest ones (each a minute or more on 2 cores) are moved to the front: started
# last, one of them would keep a worker busy alone after the other has finished. Longest first; a file not
# named here keeps its place after them. Reordering whole files changes nothing inside a file.
SLOW_FILES_FIRST = (
    "tests/test_demo.py",
    "tests/chaos/test_chaos_small.py",
    "tests/deploy/test_real_deployment.py",
    "tests/flows/test_pairings.py",
    "tests/flows/test_review_decisions.py",
    "tests/flows/test_approval_lifecycle.py",
    "tests/test_doctor.py",
    "tests/flows/test_invoice_approval.py",
    "tests/ui/test_prefect_ui_approval.py",
    "tests/flows/test_payment_writeback_approval.py",
    "tests/store/test_store_races.py",
    "tests/ui/test_invoice_approval_ui.py",
    "tests/ui/test_review_decisions_ui.py",
    "tests/test_prefect_server_orphans.py",
    "tests/flows/test_hostile_corpus.py",
    "tests/ui/test_console_ui.py",
    "tests/flows/test_reporting.py",
    "tests/webhooks/test_receiver.py",
    "tests/webhooks/test_trigger.py",
    "tests/flows/test_webhook_runs.py",
    "tests/flows/test_webhook_full_path.py",
    "tests/store/test_shared_ratelimit.py",
    "tests/test_stack.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: order kept within


# ----------------------------------------------------------------------------------------- Prefect
@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One temporary Prefect server (real API, SQLite) for the whole test session."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            os.environ.pop("PREFECT_API_URL", None)


# ----------------------------------------------------------------------------------------- stores
def postgres_url() -> str | None:
    """The test PostgreSQL URL when a server answers, else ``None`` (tests then skip)."""
    url = os.environ.get("RENKEI_TEST_POSTGRES_URL", DEFAULT_TEST_PG)
    try:
        import sqlalchemy

        eng = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 2})
        with eng.connect() as conn:
            conn.exec_driver_sql("select 1")
        eng.dispose()
        return url
    except Exception:  # noqa: BLE001 - any failure means "no server"
        return None


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'renkei.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema-less database on the test PostgreSQL server (dropped afterwards)."""
    base = postgres_url()
    if base is None:
        if os.environ.get("RENKEI_REQUIRE_POSTGRES"):
            pytest.fail("RENKEI_REQUIRE_POSTGRES is set but no PostgreSQL answers at RENKEI_TEST_POSTGRES_URL")
        pytest.skip("no PostgreSQL reachable (set RENKEI_TEST_POSTGRES_URL; .ci/run starts one)")
    import sqlalchemy

    name = f"renkei_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from renkei.store.db import engine_for

        engine_for.cache_clear()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def store(db_url: str):
    from renkei.store.repo import Store

    return Store.open(db_url, cached=False)


# ----------------------------------------------------------------------------------------- sandboxes
@pytest.fixture
def hubspot_sandbox():
    """A HubSpot sandbox with an empty account, over HTTP on a free port (``.url``, ``.app``, ``.config``)."""
    from renkei.sandboxes.common import ServerThread
    from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app

    config = HubSpotSandboxConfig(seed="none", rate_limit_per_10s=0, search_per_second=0)
    app = create_app(config)
    with ServerThread(app) as server:
        server.app, server.config = app, config
        yield server


@pytest.fixture
def freee_sandbox():
    """A freee sandbox with an empty company, over HTTP on a free port (``.url``, ``.app``, ``.config``)."""
    from renkei.sandboxes.common import ServerThread
    from renkei.sandboxes.freee import FreeeSandboxConfig, create_app

    config = FreeeSandboxConfig(seed="none", refresh_token="test-refresh-token-0",
                                print_refresh_token=False)
    app = create_app(config)
    with ServerThread(app) as server:
        server.app, server.config = app, config
        yield server
