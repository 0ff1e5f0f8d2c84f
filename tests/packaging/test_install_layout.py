"""An install that does not match its source is one line with the fix, before anything runs.

A long-lived checkout's editable install maps ``renkei.<folder>`` to folders from the package list of the day
it was made: ``renkei.webhooks`` (added since) was missing, and every payment-writeback run failed in its
notices task with ``No module named 'renkei.webhooks'``; a venv made for another checkout silently ran that
checkout's ``renkei.tasks``. Here a stale mapping of that kind (the same mechanism: a meta-path finder
mapping ``renkei.<folder>`` to folders, appended after the path finder) runs ``renkei run`` from the checkout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STALE = textwrap.dedent("""
    import json, sys
    from importlib.util import spec_from_file_location
    from pathlib import Path

    sys.path.append({purelib!r})  # the venv's packages, without its .pth files (so without its real mapping)
    MAPPING = {mapping!r}

    class StaleEditableFinder:
        @classmethod
        def find_spec(cls, fullname, path=None, target=None):
            if fullname in MAPPING:
                folder = Path(MAPPING[fullname])
                return spec_from_file_location(fullname, folder / "__init__.py",
                                               submodule_search_locations=[str(folder)])
            return None

    sys.meta_path.append(StaleEditableFinder)
    from renkei.cli import app
    try:
        app(["run", "payment-writeback"], prog_name="renkei")
    except SystemExit as exc:
        print("exit", exc.code, file=sys.stderr)
    from renkei.doctor import connection_checks  # what every flow's preflight runs first
    from renkei.settings import Settings

    print(json.dumps([[c.name, c.status] for c in connection_checks(Settings())]))
""")


def test_the_subpackage_list_is_the_pyprojects_and_a_stale_or_foreign_mapping_is_one_line(tmp_path):
    from renkei.doctor import check_install
    from renkei.layout import SUBPACKAGES, install_line

    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-dir"]
    assert {k.removeprefix("renkei.") for k in package_dir if k != "renkei"} == set(SUBPACKAGES)
    assert install_line() is None and check_install().status == "ok"  # this checkout and its install

    other = tmp_path / "other-checkout" / "tasks"  # a venv made for another checkout: its renkei.tasks
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("")
    mapping = {f"renkei.{n}": str(ROOT / n) for n in SUBPACKAGES if n not in ("console", "webhooks")}
    mapping["renkei.tasks"] = str(other)
    code = STALE.format(purelib=sysconfig.get_paths()["purelib"], mapping=mapping)
    r = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "COLUMNS": "400", "RENKEI_HOME": str(tmp_path / "home")})
    lines = r.stderr.splitlines()
    assert r.returncode == 0 and lines[-1] == "exit 1", r.stderr
    assert len(lines) == 2 and "Traceback" not in r.stderr, r.stderr  # one line, then the harness's exit code
    line = lines[0]
    assert line.startswith(f"✗ install: the installed renkei does not match the code at {ROOT / 'renkei'}: "), line
    for part in ("renkei.console not found", "renkei.webhooks not found", f"renkei.tasks from {other}",
                 f"fix: reinstall from this checkout: pip install -e '{ROOT}'"):
        assert part in line, (part, line)
    assert "renkei.flows" not in line  # mapped to this checkout: fine
    # a flow started any other way (a deployment's worker) stops in its preflight on the same single check
    assert json.loads(r.stdout.splitlines()[-1]) == [["install", "fail"]]
