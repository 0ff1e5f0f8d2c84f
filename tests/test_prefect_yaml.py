"""prefect.yaml names a real flow for every deployment, and every `renkei run` flow has a deployment."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from renkei.registry import FLOWS

ROOT = Path(__file__).resolve().parents[1]


def test_every_deployment_points_at_a_flow():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    names = set()
    for dep in config["deployments"]:
        path, func = dep["entrypoint"].split(":")
        assert (ROOT / path).exists(), dep["entrypoint"]
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, func)
        assert flow.name == dep["name"], (flow.name, dep["name"])
        for schedule in dep.get("schedules", []):
            assert schedule["timezone"] == "Asia/Tokyo"
        names.add(dep["name"])
    assert set(FLOWS) <= names
    assert {"invoice-approval", "payment-approval", "proration-approval"} <= names


def test_deploys_from_a_clone_without_hidden_variables_and_schedules_start_paused():
    """No pull step naming an environment variable (prefect deploy records the folder it ran in), and
    every schedule inactive until `renkei doctor` passes and `renkei schedules resume` turns it on."""
    text = (ROOT / "prefect.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert not config.get("pull"), config.get("pull")
    assert "{{ $" not in text  # nothing resolved from the deploying shell's environment
    schedules = [s for dep in config["deployments"] for s in dep.get("schedules", [])]
    assert schedules and all(s.get("active") is False for s in schedules)


def test_webhook_triggers_are_the_served_ones_and_name_real_parameters():
    """order-to-invoice (HubSpot deal changes and inbound orders), customer-sync and payment-writeback
    (inbound payment notices) run on the receiver's events with the burst's ids; local serve
    (deployments/serve.py) wires the same triggers; the parameters exist on the flows."""
    import inspect

    from prefect.events import DeploymentEventTrigger

    from renkei.deployments.serve import CONCURRENCY, WEBHOOK_TRIGGERS, webhook_triggers

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    deps = {d["name"]: d for d in config["deployments"]}
    for name, spec in WEBHOOK_TRIGGERS.items():
        (trigger,) = deps[name]["triggers"]
        assert trigger["type"] == "event" and trigger["enabled"] is True
        assert {k: v for k, v in trigger.items() if k not in ("type", "enabled")} == spec
        DeploymentEventTrigger(**{k: v for k, v in trigger.items() if k != "type"})  # a valid trigger
        (served,) = webhook_triggers(name)
        assert served.within.total_seconds() == 60 and served.for_each == {"renkei.batch-id"}
        assert deps[name].get("schedules"), "the schedule stays as the reconciling poll"
        assert deps[name]["concurrency_limit"] == CONCURRENCY.get(name, 1)
        module = importlib.import_module(deps[name]["entrypoint"].split(":")[0].removesuffix(".py").replace("/", "."))
        flow = getattr(module, deps[name]["entrypoint"].split(":")[1])
        assert set(spec.get("parameters", {})) <= set(inspect.signature(flow.fn).parameters)
    assert set(WEBHOOK_TRIGGERS) == {"order-to-invoice", "customer-sync", "payment-writeback"}
    # an inbound order takes the deal path: its event renders the same deal_ids parameter
    assert "renkei.inbound.order" in WEBHOOK_TRIGGERS["order-to-invoice"]["expect"]
    assert "renkei.inbound.order.*" in WEBHOOK_TRIGGERS["order-to-invoice"]["match"]["prefect.resource.id"]
    assert WEBHOOK_TRIGGERS["payment-writeback"]["expect"] == ["renkei.inbound.payment"]
