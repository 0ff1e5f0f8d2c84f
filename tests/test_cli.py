"""The ``renkei`` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from renkei.store.repo import Store


def renkei(*args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "renkei.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=timeout)


def test_help_lists_the_commands():
    r = renkei("--help")
    assert r.returncode == 0
    for cmd in ("sandbox", "run", "demo", "doctor", "reviews", "approvals", "console"):
        assert cmd in r.stdout


def test_unknown_flow_is_refused():
    r = renkei("run", "no-such-flow")
    assert r.returncode == 2 and "unknown flow" in r.stderr


def test_reviews_list_json(sqlite_url):
    store = Store.open(sqlite_url, cached=False)
    store.add_review(flow="customer-sync", reason_code="AMBIGUOUS_MATCH", entity="company", entity_key="7",
                     message="2 candidates", payload={"candidates": ["P-1", "P-2"]})
    r = renkei("reviews", "list", "--json", env={"RENKEI_DATABASE_URL": sqlite_url})
    assert r.returncode == 0, r.stderr
    (item,) = json.loads(r.stdout)
    assert item["reason_code"] == "AMBIGUOUS_MATCH" and item["payload"]["candidates"] == ["P-1", "P-2"]
    r = renkei("reviews", "list", env={"RENKEI_DATABASE_URL": sqlite_url})
    assert "AMBIGUOUS_MATCH" in r.stdout
    assert " 0.0h " in r.stdout  # its age in hours (a helper of the same name for seconds once shadowed it: "0m")


@pytest.mark.parametrize(
    "args, message",
    [(["--reject", "--approver", "keiri@example.co.jp"], "comment is required to reject"),
     (["--approve", "--approver", "not-an-email"], "e-mail"),
     (["--approver", "keiri@example.co.jp"], "--approve or --reject")],
)
def test_approval_decisions_are_validated_before_anything_is_sent(args, message):
    r = renkei("approvals", "decide", "00000000-0000-0000-0000-000000000000", *args)
    assert r.returncode == 2 and message in r.stderr


def test_approvals_need_a_server():
    r = renkei("approvals", "list", env={"PREFECT_API_URL": ""})
    assert r.returncode == 2 and "PREFECT_API_URL" in r.stderr


def test_docs_check():
    r = renkei("docs", "--check")
    assert r.returncode == 0, r.stderr


def test_config_hides_secrets():
    r = renkei("config", env={"RENKEI_HUBSPOT_TOKEN": "pat-secret-123"})
    assert r.returncode == 0 and "pat-secret-123" not in r.stdout and "(set)" in r.stdout


def test_pairing_options_are_checked_against_the_registry():
    """``--crm`` / ``--erp`` name registered connectors; anything else exits 2 naming the known ones."""
    from typer.testing import CliRunner

    from renkei.cli import app

    r = CliRunner().invoke(app, ["sandbox", "serve", "--crm", "nosuch"])
    assert r.exit_code == 2 and "hubspot" in r.output
    r = CliRunner().invoke(app, ["demo", "--erp", "nosuch"])
    assert r.exit_code == 2 and "freee" in r.output


def test_config_shows_a_connectors_own_settings_with_secrets_hidden(monkeypatch):
    from pydantic import SecretStr
    from pydantic_settings import BaseSettings, SettingsConfigDict

    import renkei.connectors.hubspot.factory as factory
    from renkei.cli import connector_settings
    from renkei.settings import Settings

    class OwnSettings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="RENKEI_HUBSPOT_", extra="ignore")
        token: SecretStr | None = None
        refresh_token: SecretStr | None = None
        portal_id: str | None = None

    monkeypatch.setattr(factory, "SETTINGS", OwnSettings, raising=False)
    monkeypatch.setenv("RENKEI_HUBSPOT_TOKEN", "pat-na1-secret")
    monkeypatch.setenv("RENKEI_HUBSPOT_PORTAL_ID", "4711")
    shown = connector_settings(Settings())
    assert shown == {"hubspot": {"token": "****** (set)", "refresh_token": "(not set)", "portal_id": "4711"}}
    assert "pat-na1-secret" not in repr(shown)


def test_commands_that_run_no_flow_do_not_import_prefect(tmp_path):
    """``renkei --help``, ``config`` and ``reviews list`` start fast: Prefect (seconds of
    imports) and the flow modules are imported only by the commands that run a flow or talk to Prefect."""
    script = (
        "import sys\n"
        "from renkei.cli import app\n"
        "for args in (['--help'], ['run', '--help'], ['config'], ['reviews', 'list', '--json']):\n"
        "    try:\n"
        "        app(args, prog_name='renkei')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    heavy = sorted(m for m in sys.modules if m == 'prefect' or m.startswith('renkei.flows'))\n"
        "    print('IMPORTED', ' '.join(args), heavy, file=sys.stderr)\n"
    )
    env = {**os.environ, "RENKEI_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}", "RENKEI_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("IMPORTED")]
    assert len(lines) == 4, r.stderr
    assert all(ln.endswith("[]") for ln in lines), lines
