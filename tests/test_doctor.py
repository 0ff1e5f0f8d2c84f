"""``renkei doctor`` against real sandboxes, a real store and the session's Prefect server: all green on a
healthy installation, and for each broken setting exactly one failed check, said in one line with its
fix (snapshots in tests/snapshots/doctor/, ports and paths normalised; RENKEI_UPDATE_SNAPSHOTS=1 rewrites
them). ``renkei run`` / ``renkei demo`` print the same single line instead of a traceback."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.sandbox_env import sandbox_env

SNAPSHOTS = Path(__file__).parent / "snapshots" / "doctor"


def renkei(*args: str, env: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "renkei.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **env}, timeout=timeout)


def closed_port() -> int:
    from renkei.prefect_server import free_port

    return free_port()  # bound and released: nothing listens there


@pytest.fixture
def install(prefect_api, hubspot_sandbox, freee_sandbox, tmp_path):
    """A healthy installation: sandboxes, a migrated SQLite store, a work pool with every deployment."""
    from prefect import get_client

    from renkei.doctor import project_deployments
    from renkei.store.db import migrate

    db = tmp_path / "renkei.db"
    migrate(f"sqlite:///{db}")
    pool = f"renkei-doctor-{uuid.uuid4().hex[:8]}"
    _, names = project_deployments()
    with get_client(sync_client=True) as client:
        client.create_work_pool(_work_pool(pool))
        flow_id = client.create_flow_from_name("renkei-doctor-test")
        for name in names:
            client.create_deployment(flow_id=flow_id, name=name, work_pool_name=pool)
    env = {
        **sandbox_env(hubspot_sandbox, freee_sandbox, tmp_path, db=db),
        "PREFECT_API_URL": prefect_api,
    }
    return {"env": env, "pool": pool, "db": db, "tmp": tmp_path}


def _work_pool(name: str):
    from prefect.client.schemas.actions import WorkPoolCreate

    return WorkPoolCreate(name=name, type="process")


def normalise(text: str, install: dict) -> str:
    text = text.replace(str(install["tmp"]), "<tmp>").replace(install["pool"], "<pool>")
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)


def failure_lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.startswith("✗ ")]


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("RENKEI_UPDATE_SNAPSHOTS") or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not os.environ.get("RENKEI_UPDATE_SNAPSHOTS"):
            pytest.fail(f"snapshot {path.name} was missing and has been written: check it and rerun")
    assert text == path.read_text(encoding="utf-8")


def doctor(install: dict, **env: str) -> tuple[subprocess.CompletedProcess, dict]:
    r = renkei("doctor", "--work-pool", install["pool"], env={**install["env"], **env})
    j = renkei("doctor", "--json", "--work-pool", install["pool"], env={**install["env"], **env})
    return r, json.loads(j.stdout)


def statuses(report: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def test_a_healthy_installation_passes_twice_sharing_the_rotated_freee_token(install, freee_sandbox):
    r, report = doctor(install)
    assert r.returncode == 0, r.stdout + r.stderr
    assert report["ok"] and set(statuses(report).values()) == {"ok"}, statuses(report)
    assert "partner codes on" in r.stdout and "tax rounding" in r.stdout
    assert token_generation(install) == 1  # the doctor's refresh went through the shared token store...
    r, report = doctor(install)  # ...so the next process (and every worker) uses it, nothing burnt
    assert report["ok"], statuses(report)
    assert token_generation(install) == 1


def token_generation(install) -> int:
    """Rotations of the freee token set in the state store's shared token store (table ``credential``)."""
    import sqlite3

    with sqlite3.connect(install["db"]) as conn:
        return conn.execute("select generation from credential where name like 'freee:%'").fetchone()[0]


def test_wrong_hubspot_token(install):
    r, report = doctor(install, RENKEI_HUBSPOT_TOKEN="pat-na1-not-the-token")
    assert r.returncode == 1
    assert [n for n, s in statuses(report).items() if s == "fail"] == ["hubspot"]
    assert "pat-na1-not-the-token" not in r.stdout + r.stderr
    assert_snapshot("wrong_token", "\n".join(normalise(ln, install) for ln in failure_lines(r.stdout)) + "\n")


def test_unreachable_freee_fails_fast(install):
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    r, report = doctor(install, RENKEI_FREEE_BASE_URL=url, RENKEI_FREEE_AUTH_URL=url)
    assert time.monotonic() - started < 30  # two processes, each refused at once (no retry loop)
    assert r.returncode == 1
    assert [n for n, s in statuses(report).items() if s == "fail"] == ["freee"]
    assert_snapshot("unreachable_freee", "\n".join(normalise(ln, install) for ln in failure_lines(r.stdout)) + "\n")


def test_read_only_store(install):
    db = install["db"]
    r, report = doctor(install, RENKEI_DATABASE_URL=f"sqlite:///file:{db}?mode=ro&uri=true")
    assert r.returncode == 1
    assert [n for n, s in statuses(report).items() if s == "fail"] == ["store writable"]
    lines = failure_lines(r.stdout)
    assert str(db) in lines[0]  # the path, so the reader knows which file
    assert_snapshot("read_only_store", "\n".join(normalise(ln, install) for ln in lines) + "\n")


def test_missing_work_pool(install):
    install = {**install, "pool": f"renkei-missing-{uuid.uuid4().hex[:6]}"}
    r, report = doctor(install)
    assert r.returncode == 1
    assert statuses(report)["work pool"] == "fail" and statuses(report)["deployments"] == "skip"
    assert [n for n, s in statuses(report).items() if s == "fail"] == ["work pool"]
    assert_snapshot("missing_work_pool", "\n".join(normalise(ln, install) for ln in failure_lines(r.stdout)) + "\n")


def test_missing_scopes_are_named(prefect_api, freee_sandbox, tmp_path):
    from renkei.sandboxes.common import ServerThread
    from renkei.sandboxes.hubspot import HubSpotSandboxConfig, create_app

    from renkei.doctor import check_hubspot
    from renkei.settings import Settings

    config = HubSpotSandboxConfig(seed="none", scopes=frozenset({"crm.objects.companies.read",
                                                                 "crm.schemas.companies.read"}))
    with ServerThread(create_app(config)) as hs:
        checks = check_hubspot(Settings(hubspot_base_url=hs.url, hubspot_token=config.token))
    assert [c.status for c in checks] == ["ok", "fail"]
    assert "crm.objects.deals.write" in checks[1].detail and "private app" in checks[1].fix


# --------------------------------------------------------------------------------------------- run / demo
def _one_line(r: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1, r.stdout + r.stderr
    assert r.returncode == 1
    assert "Traceback" not in lines[0] and " — fix: " in lines[0]
    return lines[0]


def test_run_with_a_wrong_token_is_one_line(install):
    r = renkei("run", "customer-sync", env={**install["env"], "RENKEI_HUBSPOT_TOKEN": "wrong"})
    assert "RENKEI_HUBSPOT_TOKEN" in _one_line(r)


def test_run_with_freee_unreachable_is_one_line_within_seconds(install):
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    r = renkei("run", "order-to-invoice", env={**install["env"], "RENKEI_FREEE_BASE_URL": url,
                                               "RENKEI_FREEE_AUTH_URL": url})
    assert time.monotonic() - started < 20
    line = _one_line(r)
    assert "connection refused" in line and "RENKEI_FREEE_BASE_URL" in line


def test_run_with_a_read_only_store_names_the_path(install):
    db = install["db"]
    r = renkei("run", "product-sync", env={**install["env"],
                                           "RENKEI_DATABASE_URL": f"sqlite:///file:{db}?mode=ro&uri=true"})
    line = _one_line(r)
    assert str(db) in line and "RENKEI_DATABASE_URL" in line


def test_run_with_no_environment_at_all_is_one_readable_line(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "renkei.cli", "run", "customer-sync"], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=120)
    line = _one_line(r)
    assert "RENKEI_HUBSPOT_TOKEN is not set" in line and "REDACTED" not in line


def test_demo_with_an_unusable_home_is_one_line(tmp_path):
    home = tmp_path / "not-a-folder"
    home.write_text("")
    r = renkei("demo", env={"RENKEI_HOME": str(home)})
    assert "RENKEI_HOME" in _one_line(r)


# --------------------------------------------------------------------------------------------- in a flow
def test_a_flow_fails_in_one_line_naming_the_setting(install, monkeypatch):
    from renkei.flows.product_sync import product_sync
    from renkei.tasks.runtime import reset_runtime

    for k, v in {**install["env"], "RENKEI_HUBSPOT_TOKEN": "wrong"}.items():
        monkeypatch.setenv(k, v)
    reset_runtime()
    try:
        state = product_sync(return_state=True)
    finally:
        reset_runtime()
    assert state.is_failed()
    assert "PreflightError" in state.message and "RENKEI_HUBSPOT_TOKEN" in state.message
    assert "\n" not in state.message


def test_a_one_line_error_is_logged_without_its_traceback():
    import io

    from renkei import logmask
    from renkei.tasks.preflight import PreflightError

    logmask.install()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("renkei.test.quiet")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise PreflightError("hubspot", "HubSpot rejected the token (401)", "set RENKEI_HUBSPOT_TOKEN")
        except PreflightError:
            logger.exception("Encountered exception during execution")
        try:
            raise ValueError("a bug keeps its traceback")
        except ValueError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert out.count("Traceback") == 1 and "a bug keeps its traceback" in out
    assert "Encountered exception during execution" in out


def test_the_hubspot_sandbox_tells_a_private_app_token_its_scopes(hubspot_sandbox):
    import httpx

    from renkei.doctor import REQUIRED_SCOPES, TOKEN_INFO_PATH

    url = hubspot_sandbox.url + TOKEN_INFO_PATH
    ok = httpx.post(url, json={"tokenKey": hubspot_sandbox.config.token})
    assert ok.status_code == 200
    body = ok.json()
    assert body["hubId"] == hubspot_sandbox.config.portal_id and {"userId", "appId"} <= set(body)
    assert all(set(alts) & set(body["scopes"]) for alts in REQUIRED_SCOPES)  # scopes=None: every scope
    bad = httpx.post(url, json={"tokenKey": "pat-na1-unknown"})
    assert bad.status_code == 401 and bad.json()["category"] == "INVALID_AUTHENTICATION"
    assert httpx.post(url, json={}).status_code == 400


def test_an_invalid_setting_is_one_line_without_its_value_when_secret():
    from pydantic import ValidationError

    from renkei.doctor import explain
    from renkei.settings import Settings

    with pytest.raises(ValidationError) as exc:
        Settings(freee_company_id="abc")
    check = explain(exc.value)
    assert check is not None and check.line().startswith("settings: RENKEI_FREEE_COMPANY_ID='abc' is not valid")


def test_doctor_runs_the_configured_connectors_own_checks(monkeypatch, tmp_path):
    """The connection rows come from the configured CRM's and ERP's ``factory.check`` (through the registry);
    a connector without one is a skip row, one that cannot load a failure naming RENKEI_CRM / RENKEI_ERP."""
    from renkei.connectors import registry
    from renkei.doctor import check_connectors
    from renkei.settings import Settings

    monkeypatch.setenv("RENKEI_HOME", str(tmp_path))
    rows = check_connectors(Settings())
    assert [r.name for r in rows] == ["hubspot", "freee"] and all(r.failed for r in rows)
    assert "RENKEI_HUBSPOT_TOKEN" in rows[0].line() and "RENKEI_FREEE_CLIENT_ID" in rows[1].line()
    monkeypatch.setattr(registry, "ENTRIES", registry.ENTRIES + (
        registry.ConnectorEntry("nocheck", "crm", "NoCheck", "json:dumps"),
        registry.ConnectorEntry("gone", "erp", "Gone", "renkei.connectors.gone.factory:build")))
    rows = check_connectors(Settings(crm="nocheck", erp="gone"))
    assert [(r.name, r.status) for r in rows] == [("nocheck", "skip"), ("gone", "fail")]
    assert "RENKEI_ERP" in rows[1].fix
