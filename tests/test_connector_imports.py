"""Flows and tasks speak to systems only through the connector contract: no module under ``flows/`` or
``tasks/`` imports a concrete connector package, or reaches past the contract through ``rt.crm.client`` /
``rt.erp.client`` (adding a system must need no change there). And the layering of issue #13: a flow module
holds orchestration only (no ``@task`` defined under ``flows/``), and no module under ``tasks/`` imports a
flow (approval flows are started by deployment name, never imported)."""

from __future__ import annotations

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
ALLOWED = ("renkei.connectors.base", "renkei.connectors.registry", "renkei.connectors.http",
           "renkei.connectors.errors")
ALLOWED_PREFIXES = ("renkei.connectors.canonical_",)


def _allowed(module: str) -> bool:
    if not (module == "renkei.connectors" or module.startswith("renkei.connectors.")
            or module == "connectors" or module.startswith("connectors.")):
        return True
    module = module if module.startswith("renkei.") else f"renkei.{module}"
    return module in ALLOWED or any(module == a or module.startswith(a + ".") for a in ALLOWED) \
        or module.startswith(ALLOWED_PREFIXES)


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def offenders(root: Path = ROOT) -> list[str]:
    found = []
    for folder in ("flows", "tasks"):
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found += [f"{rel}:{node.lineno} import {a.name}" for a in node.names if not _allowed(a.name)]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    if not _allowed(node.module):
                        found.append(f"{rel}:{node.lineno} from {node.module} import ...")
                    elif node.module == "renkei.connectors":
                        found += [f"{rel}:{node.lineno} from renkei.connectors import {a.name}" for a in node.names
                                  if not _allowed(f"renkei.connectors.{a.name}")]
                elif isinstance(node, ast.Attribute) and node.attr == "client":
                    dotted = _dotted(node.value) or ""
                    if dotted.split(".")[-1] in ("crm", "erp"):  # rt.crm.client, self.rt.erp.client ...
                        found.append(f"{rel}:{node.lineno} {dotted}.client")
                elif isinstance(node, ast.Call) and _dotted(node.func) in ("getattr",) and len(node.args) >= 2:
                    target, attr = node.args[0], node.args[1]
                    if isinstance(attr, ast.Constant) and attr.value == "client" \
                            and (_dotted(target) or "").split(".")[-1] in ("crm", "erp"):
                        found.append(f"{rel}:{node.lineno} getattr({_dotted(target)}, 'client')")
    return found


def test_the_rule_finds_what_it_must():
    """The check itself: it flags a concrete import and a client reach, and lets the contract through."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "flows").mkdir()
        (Path(tmp) / "tasks").mkdir()
        (Path(tmp) / "tasks" / "bad.py").write_text(
            "from renkei.connectors.freee.mapping import x\nimport renkei.connectors.hubspot.client\n"
            "from renkei.connectors import salesforce\n"
            "def f(rt):\n    return rt.crm.client.deals, getattr(rt.erp, 'client')\n", encoding="utf-8")
        (Path(tmp) / "flows" / "good.py").write_text(
            "from renkei.connectors.base import MapResult\nfrom renkei.connectors.registry import entry\n"
            "from renkei.connectors.canonical_money import InvoiceSettings\n"
            "from renkei.connectors.http import ConnectorError\nfrom renkei.connectors.errors import X\n"
            "from prefect import get_client\n"
            "def f(rt):\n    return rt.crm.won_stage_ids(), get_client()\n", encoding="utf-8")
        got = offenders(Path(tmp))
    assert len(got) == 5 and all(g.startswith("tasks/bad.py") for g in got), got


def test_flows_and_tasks_use_only_the_contract():
    found = offenders()
    assert not found, "flows/tasks must use only the connector contract; offenders:\n" + "\n".join(found)


def _is_flow_module(name: str) -> bool:
    return name in ("flows", "renkei.flows") or name.startswith(("flows.", "renkei.flows."))


def layering_offenders(root: Path = ROOT) -> list[str]:
    """``@task`` / ``@task(...)`` defined in a module under ``flows/``; any import of a flow from ``tasks/``."""
    found = []
    for path in sorted((root / "flows").rglob("*.py")):
        rel = path.relative_to(root)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for dec in node.decorator_list:
                    name = _dotted(dec.func if isinstance(dec, ast.Call) else dec) or ""
                    if name.split(".")[-1] == "task":
                        found.append(f"{rel}:{node.lineno} @task {node.name}")
    for path in sorted((root / "tasks").rglob("*.py")):
        rel = path.relative_to(root)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))):
            if isinstance(node, ast.Import):
                found += [f"{rel}:{node.lineno} import {a.name}" for a in node.names if _is_flow_module(a.name)]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if _is_flow_module(node.module) or (node.module == "renkei" and any(a.name == "flows"
                                                                                      for a in node.names)):
                    found.append(f"{rel}:{node.lineno} from {node.module} import ...")
            elif isinstance(node, ast.Call) and (_dotted(node.func) or "").split(".")[-1] == "import_module" \
                    and node.args and isinstance(node.args[0], ast.Constant) \
                    and _is_flow_module(str(node.args[0].value)):
                found.append(f"{rel}:{node.lineno} import_module({node.args[0].value!r})")
    return found


def test_flows_hold_orchestration_and_tasks_never_import_flows():
    """The rule flags what it must (checked on a scratch tree), and the project has no offender."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "flows").mkdir()
        (Path(tmp) / "tasks").mkdir()
        (Path(tmp) / "flows" / "bad.py").write_text(
            "from prefect import flow, task\nimport prefect\n"
            "@task\ndef a(): pass\n@task(retries=2)\ndef b(): pass\n@prefect.task(name='c')\ndef c(): pass\n"
            "@flow(name='f')\ndef f():\n    return a()\n", encoding="utf-8")
        (Path(tmp) / "tasks" / "bad.py").write_text(
            "import renkei.flows.order_to_invoice\nfrom renkei.flows.customer_sync import customer_sync\n"
            "from renkei import flows\nimport importlib\n"
            "def f():\n    from flows.product_sync import product_sync\n"
            "    return importlib.import_module('renkei.flows.payment_writeback')\n", encoding="utf-8")
        (Path(tmp) / "tasks" / "good.py").write_text(
            "from prefect import task\nfrom renkei.tasks.retry import BATCH_TASK\n"
            "APPROVAL = 'invoice-approval/invoice-approval'\n@task(**BATCH_TASK)\ndef t(): pass\n",
            encoding="utf-8")
        got = layering_offenders(Path(tmp))
    assert len(got) == 8, got
    assert sum(g.startswith("flows/bad.py") for g in got) == 3 and not any("good.py" in g for g in got), got
    found = layering_offenders()
    assert not found, "flow modules hold orchestration only; tasks never import flows:\n" + "\n".join(found)
