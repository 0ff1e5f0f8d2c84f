"""Flow-test fixtures: both sandboxes over HTTP, a fresh state store, Renkei's settings pointing at them,
and the session's Prefect server. ``world`` is the HubSpot + freee pair on empty accounts (with the
HubSpot-specific helpers the older tests use); ``pairing`` is any registered (CRM, ERP) pairing through the
sandboxes' ``SandboxSpec`` (parametrised over ``registry.pairings()``; seeded with ``pairing_seed``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.flows.approvals import delete_runs, human_run_ids
from tests.sandbox_env import ServedSandbox, pairing_env, pairing_params, sandbox_env


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


@pytest.fixture(autouse=True)
def _no_waiting_run_outlives_its_test(request):
    """Approval / review runs a test leaves waiting are deleted after it (its runners stopped first): the
    sandboxes reuse record ids, so a later test would otherwise meet a stranger's run for "its" deal."""
    if "prefect_api" not in request.fixturenames:
        yield
        return
    before = human_run_ids()
    yield
    delete_runs(human_run_ids() - before)


@pytest.fixture
def world(prefect_api, hubspot_sandbox, freee_sandbox, tmp_path, monkeypatch) -> World:
    from renkei.tasks.runtime import get_runtime, reset_runtime

    env = sandbox_env(hubspot_sandbox, freee_sandbox, tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    reset_runtime()
    rt = get_runtime()
    rt.crm.prepare()  # the custom fields, as an admin would have them after the first run
    yield World(rt, hubspot_sandbox, freee_sandbox, env, tmp_path)
    reset_runtime()


@dataclass
class Pairing:
    """A flow-test world on one (CRM, ERP) pairing: the runtime built from the sandboxes' settings, the
    served sandboxes (``crm.app`` / ``erp.app`` only where a test must arrange sandbox state), the env."""

    rt: Any
    crm: ServedSandbox
    erp: ServedSandbox
    env: dict[str, str]
    tmp: Path

    @property
    def name(self) -> str:
        return f"{self.crm.entry.name}-{self.erp.entry.name}"


@pytest.fixture
def pairing_seed() -> str:
    """The sandboxes' seed for ``pairing`` ("demo" data or "none"); a module overrides this fixture."""
    return "demo"


@pytest.fixture(params=pairing_params())
def pairing(request, prefect_api, pairing_seed, tmp_path, monkeypatch) -> Pairing:
    from renkei.connectors import registry
    from renkei.tasks.runtime import get_runtime, reset_runtime

    crm_name, erp_name = request.param
    with ServedSandbox(registry.entry("crm", crm_name), pairing_seed) as crm, \
            ServedSandbox(registry.entry("erp", erp_name), pairing_seed) as erp:
        env = pairing_env(crm, erp, tmp_path)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        reset_runtime()
        try:
            yield Pairing(get_runtime(), crm, erp, env, tmp_path)
        finally:
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
