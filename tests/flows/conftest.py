"""Flow-test fixtures: both sandboxes over HTTP, a fresh state store, Renkei's settings pointing at them,
and the session's Prefect server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class World:
    rt: Any
    hubspot: Any
    freee: Any
    env: dict[str, str]
    tmp: Path

    def hs(self):
        return self.rt.crm.client

    def fr(self):
        return self.rt.erp.client


@pytest.fixture
def world(prefect_api, hubspot_sandbox, freee_sandbox, tmp_path, monkeypatch) -> World:
    from tasks.runtime import get_runtime, reset_runtime

    env = {
        "RENKEI_HUBSPOT_BASE_URL": hubspot_sandbox.url,
        "RENKEI_HUBSPOT_TOKEN": hubspot_sandbox.config.token,
        "RENKEI_FREEE_BASE_URL": freee_sandbox.url,
        "RENKEI_FREEE_AUTH_URL": freee_sandbox.url,
        "RENKEI_FREEE_CLIENT_ID": freee_sandbox.config.client_id,
        "RENKEI_FREEE_CLIENT_SECRET": freee_sandbox.config.client_secret,
        "RENKEI_FREEE_REFRESH_TOKEN": freee_sandbox.config.refresh_token,
        "RENKEI_FREEE_COMPANY_ID": str(freee_sandbox.config.company_id),
        "RENKEI_DATABASE_URL": f"sqlite:///{tmp_path / 'renkei.db'}",
        "RENKEI_HOME": str(tmp_path / ".renkei"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    reset_runtime()
    rt = get_runtime()
    for object_type in ("companies", "deals", "line_items", "products"):
        rt.crm.client.properties.ensure(object_type)  # as a HubSpot admin would have them after the first run
    yield World(rt, hubspot_sandbox, freee_sandbox, env, tmp_path)
    reset_runtime()


def write_policy(tmp: Path, text: str, monkeypatch) -> None:
    from tasks.runtime import reset_runtime

    path = tmp / "policy.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("RENKEI_POLICY_FILE", str(path))
    reset_runtime()
