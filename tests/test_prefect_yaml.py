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
