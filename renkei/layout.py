"""Does the running ``renkei`` match its source? The project's top-level folders install as ``renkei.<folder>``
(pyproject ``[tool.setuptools] package-dir``). An editable install (``pip install -e .``) writes that mapping
into site-packages once, from the package list of the day it was made: a folder added since is missing
(``No module named 'renkei.webhooks'`` in the middle of a run), and a venv made for another checkout maps
``renkei.tasks`` ... into that checkout while ``renkei`` itself comes from this one (old code runs silently).

:func:`install_problems` finds both without importing any subpackage; ``renkei doctor``, ``renkei run`` and
every flow's preflight report them as one line with the fix (:func:`install_line`,
``renkei.doctor.check_install``); every ``renkei`` command refuses to start on one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

# Every top-level source folder that installs as renkei.<name> (tests/packaging checks it against pyproject).
SUBPACKAGES = ("flows", "tasks", "connectors", "deployments", "domain", "store", "sandboxes", "console", "webhooks")


def _located(name: str) -> Path | None:
    """The folder ``renkei.<name>`` would be imported from, or None when it cannot be found."""
    try:
        spec = importlib.util.find_spec(f"renkei.{name}")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("namespace", "built-in"):
        return Path(spec.origin).resolve().parent
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]).resolve() if locations else None


def package_root() -> Path:
    """The folder of the running ``renkei`` package."""
    import renkei

    return Path(renkei.__file__).resolve().parent


def source_root() -> Path | None:
    """The checkout ``renkei`` runs from (it holds pyproject.toml), or None for an installed wheel."""
    root = package_root().parent
    return root if (root / "pyproject.toml").is_file() and (root / "renkei").is_dir() else None


def install_problems() -> list[str]:
    """What does not match: ``renkei.<name> not found`` or ``renkei.<name> from <other folder>``. A subpackage
    belongs next to ``renkei`` (source checkout) or inside it (installed wheel)."""
    here = package_root()
    problems = []
    for name in SUBPACKAGES:
        found = _located(name)
        if found is None:
            problems.append(f"renkei.{name} not found")
        elif found not in (here / name, here.parent / name):
            problems.append(f"renkei.{name} from {found}")
    return problems


def install_fix() -> str:
    root = source_root()
    if root is not None:
        return (f"reinstall from this checkout: pip install -e '{root}' (an editable install keeps the package list "
                "of the day it was made)")
    return "reinstall renkei: pip install --force-reinstall renkei"


def install_detail(problems: list[str]) -> str:
    return f"the installed renkei does not match the code at {package_root()}: " + "; ".join(problems)


def install_line() -> str | None:
    """The one line (what, then the fix) when the install does not match its source, else None. Needs nothing
    but ``renkei`` itself, so it works however broken the mapping of the subpackages is."""
    problems = install_problems()
    return f"install: {install_detail(problems)} — fix: {install_fix()}" if problems else None


__all__ = ["SUBPACKAGES", "install_detail", "install_fix", "install_line", "install_problems", "package_root",
           "source_root"]
