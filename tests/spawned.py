"""Tests that need real separate processes (workers, racing writers): start them the way a second worker
would start (``spawn``: a fresh interpreter, nothing shared but the database), collect one result each."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from typing import Any

SPAWN = mp.get_context("spawn")


def run_spawned(target: Callable[..., None], argsets: Sequence[tuple], out: Any, *, timeout: float = 60.0) -> list:
    """One spawned process per ``argsets`` entry, each putting one result on ``out`` (a ``SPAWN.Queue()``
    the caller passed in the args); returns the results in arrival order once every process exited with 0."""
    procs = [SPAWN.Process(target=target, args=tuple(args)) for args in argsets]
    for p in procs:
        p.start()
    results = [out.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0, f"a spawned process exited with {p.exitcode}"
    return results
