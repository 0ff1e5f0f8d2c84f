"""`pip install .` puts one name at the top of site-packages: ``renkei``.

The folders the design names (flows/, tasks/, connectors/ ...) stay at the project's top level and install
as ``renkei.flows``, ``renkei.tasks`` ...; a package folder forgotten in ``pyproject.toml`` would be missing
from the wheel, so every folder with an ``__init__.py`` is checked to be in it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAPPED = {"renkei": "renkei", "flows": "renkei.flows", "tasks": "renkei.tasks", "connectors": "renkei.connectors",
          "deployments": "renkei.deployments", "domain": "renkei.domain", "store": "renkei.store",
          "sandboxes": "renkei.sandboxes", "console": "renkei.console",
          "webhooks": "renkei.webhooks"}


def test_the_wheel_holds_only_the_renkei_namespace_and_every_package(tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy, so that the build leaves nothing in the checkout
    # (without what tests running at the same time on other workers write into the checkout)
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".renkei", "node_modules", ".pytest_cache",
        ".hypothesis", "test-artifacts"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("renkei-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"renkei"}, top

    # every package folder of the source tree is in the wheel, under the namespace
    expected = set()
    for folder, dotted in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            expected.add("/".join([*dotted.split("."), *rel, "__init__.py"]))
    assert expected - set(names) == set(), "add the package to [tool.setuptools] packages in pyproject.toml"
    # the store's migrations travel with it
    assert any(n.startswith("renkei/store/migrations/versions/0001") for n in names)
    # the console's templates and its vendored chart library (with its licence) travel with it
    for data in ("renkei/console/templates/base.html", "renkei/console/static/chart.umd.min.js",
                 "renkei/console/static/chart.js.LICENSE.md", "renkei/console/static/console.js"):
        assert data in names, data


def test_no_module_imports_a_bare_top_level_folder() -> None:
    """``import tasks`` would work from a checkout and break once installed; everything says ``renkei.``."""
    import re

    bare = re.compile(r"^\s*(from|import)\s+(flows|tasks|connectors|deployments|domain|store|sandboxes|console|webhooks)\b",
                      re.M)
    offenders = []
    for folder in [*MAPPED, "tests", "benchmarks"]:
        for path in (ROOT / folder).rglob("*.py"):
            if bare.search(path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
