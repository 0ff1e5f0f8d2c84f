"""``renkei sandbox serve`` serves both sandboxes over HTTP until stopped."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from renkei.prefect_server import free_port
from tests.sandbox_env import served


def test_sandbox_serve_answers_on_both_ports(tmp_path):
    hs_port, fr_port = free_port(), free_port()
    with served(["--hubspot-port", str(hs_port), "--freee-port", str(fr_port), "--seed", "demo", "--hubspot-token",
                 "cli-test-token", "--freee-refresh-token", "cli-refresh-1"],
                lambda: httpx.get(f"http://127.0.0.1:{hs_port}/crm/v3/objects/companies?limit=2",
                                  headers={"Authorization": "Bearer cli-test-token"}, timeout=2)) as (_, r):
        assert r.status_code == 200 and len(r.json()["results"]) == 2  # demo seed
        assert httpx.get(f"http://127.0.0.1:{hs_port}/crm/v3/objects/companies", timeout=5).status_code == 401
        tok = httpx.post(f"http://127.0.0.1:{fr_port}/public_api/token", data={
            "grant_type": "refresh_token", "refresh_token": "cli-refresh-1", "client_id": "renkei-sandbox-client",
            "client_secret": "renkei-sandbox-secret"}, timeout=5)
        assert tok.status_code == 200 and tok.json()["refresh_token"] != "cli-refresh-1"
        partners = httpx.get(f"http://127.0.0.1:{fr_port}/api/1/partners", params={"company_id": 1},
                             headers={"Authorization": f"Bearer {tok.json()['access_token']}"}, timeout=5)
        assert partners.status_code == 200 and partners.json()["partners"]


def test_sandbox_serve_refuses_an_unknown_fault_kind():
    res = subprocess.run([sys.executable, "-m", "renkei.cli", "sandbox", "serve", "--fault-kinds", "5xx,meteor"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert res.returncode == 2 and "meteor" in res.stdout + res.stderr


def test_sandbox_serve_injects_processed_response_lost():
    """``--fault-kinds drop_after``: the write is committed, the connection closes before the answer."""
    hs_port, fr_port = free_port(), free_port()
    auth = {"Authorization": "Bearer cli-test-token"}
    with served(["--hubspot-port", str(hs_port), "--freee-port", str(fr_port), "--seed", "none", "--hubspot-token",
                 "cli-test-token", "--fault-rate", "1", "--fault-kinds", "drop_after", "--fault-seed", "1"],
                lambda: httpx.get(f"http://127.0.0.1:{hs_port}/_sandbox/health", timeout=2)):
        try:
            r = httpx.post(f"http://127.0.0.1:{hs_port}/crm/v3/objects/companies", headers=auth, timeout=5,
                           json={"properties": {"name": "株式会社ドロップ"}})
            lost = False
        except httpx.HTTPError:
            lost = True
        assert lost, f"expected the response to be lost, got {r.status_code}"
        # the write happened (the admin health endpoint is never faulted): one company exists
        health = httpx.get(f"http://127.0.0.1:{hs_port}/_sandbox/health", timeout=5).json()
        assert health["counts"]["companies"] == 1
