"""Store tests keep their generated data key in the test's own folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _renkei_home(tmp_path, monkeypatch):
    monkeypatch.setenv("RENKEI_HOME", str(tmp_path / "home"))
