"""Every registered connector builds: its factory, checks and sandbox load (nothing in the registry is a
placeholder), and the pairings cover both sides."""

from __future__ import annotations

from renkei.connectors import registry


def test_every_registered_connector_loads_its_factory_checks_and_sandbox():
    assert {e.name for e in registry.entries("crm")} >= {"hubspot", "salesforce"}
    assert {e.name for e in registry.entries("erp")} >= {"freee", "moneyforward"}
    for e in registry.entries():
        assert callable(e.builder()), e.name
        assert callable(e.checker()), e.name
        spec = e.sandbox_spec()
        assert spec.name == e.name and spec.default_port > 0
    assert registry.pairings()[0] == ("hubspot", "freee") and len(registry.pairings()) == 4
