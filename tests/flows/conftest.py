"""Flow-test fixtures: both sandboxes over HTTP, a fresh state store, Renkei's settings pointing at them,
and the session's Prefect server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox_env import sandbox_env


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
    from renkei.tasks.runtime import get_runtime, reset_runtime

    env = sandbox_env(hubspot_sandbox, freee_sandbox, tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    reset_runtime()
    rt = get_runtime()
    for object_type in ("companies", "deals", "line_items", "products"):
        rt.crm.client.properties.ensure(object_type)  # as a HubSpot admin would have them after the first run
    yield World(rt, hubspot_sandbox, freee_sandbox, env, tmp_path)
    reset_runtime()


def write_policy(tmp: Path, text: str, monkeypatch) -> None:
    from renkei.tasks.runtime import reset_runtime

    path = tmp / "policy.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("RENKEI_POLICY_FILE", str(path))
    reset_runtime()


@pytest.fixture
def runner(world, tmp_path, request):
    """The approval deployments served in this process (``deployments.serve.Runner``), as a worker would.
    A test module whose flow must see one deployment registered before it starts names it in
    ``RUNNER_WAITS_FOR``."""
    from renkei.deployments.serve import Runner

    r = Runner(log_path=tmp_path / "runner.log")
    r.start(wait_for=getattr(request.module, "RUNNER_WAITS_FOR", "invoice-approval/invoice-approval"))
    yield r
    r.stop()
