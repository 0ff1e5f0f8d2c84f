"""Stable content hash of a canonical record's synced fields, to skip unchanged records.

The hash is sha256 over canonical JSON (sorted keys, no whitespace, UTF-8) of
``{"v": HASH_VERSION, "f": {path: comparable value}}`` where

* only the synced paths count (the policy's paths — by default the Company policy of
  :func:`domain.ownership.default_policy`); ids, ``updated_at``, ``warnings`` and any key the policy
  does not name are irrelevant;
* values go through :func:`domain.ownership.comparable` — the same normalisation the merge uses
  for equality — so two records the merge treats as equal always hash equal (``03-1234-5678`` ≡
  ``0312345678``, ``〒1000001`` ≡ ``100-0001``, full-width ≡ half-width, ``""`` ≡ ``None``);
* empty values are dropped, so adding an optional field to the model (``None`` everywhere) does not
  change every stored hash and force a full resync;
* nested (``{"address": {...}}``), flat dotted (``{"address.city": ...}``) and pydantic inputs of
  the same content hash equal; key order never matters.

Bump :data:`HASH_VERSION` whenever the normalisation changes meaning: every record then reads as
changed once, which costs one no-op merge per record and never a missed update.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from renkei.domain.ownership import MISSING, PolicyTable, comparable, default_policy, get_path

HASH_VERSION = 1

_DEFAULT_PATHS: tuple[str, ...] | None = None


def _default_paths() -> tuple[str, ...]:
    global _DEFAULT_PATHS
    if _DEFAULT_PATHS is None:
        _DEFAULT_PATHS = default_policy().paths
    return _DEFAULT_PATHS


def canonical_fields(fields: Any, paths: PolicyTable | Iterable[str] | None = None) -> dict[str, Any]:
    """``{path: comparable value}`` of the non-empty synced fields — what :func:`content_hash` hashes."""
    if paths is None:
        selected: Iterable[str] = _default_paths()
    elif isinstance(paths, PolicyTable):
        selected = paths.paths
    else:
        selected = paths
    out: dict[str, Any] = {}
    for path in sorted(set(selected)):
        value = get_path(fields, path)
        if value is MISSING:
            continue
        c = comparable(path, value)
        if c is not None:
            out[path] = c
    return out


def canonical_json(fields: Any, paths: PolicyTable | Iterable[str] | None = None) -> str:
    payload = {"v": HASH_VERSION, "f": canonical_fields(fields, paths)}
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def content_hash(fields: Any, paths: PolicyTable | Iterable[str] | None = None) -> str:
    """sha256 hex digest of :func:`canonical_json` (64 lowercase hex characters).

    ``fields`` is a canonical record: a nested or flat dotted dict, or a pydantic model. ``paths`` is
    the policy (or a list of paths) whose fields count; the Company default policy when omitted.
    Store one hash per (record, side) after a successful sync; when the newly read record hashes to the
    stored value, nothing that is synced changed and the record can be skipped.
    """
    return hashlib.sha256(canonical_json(fields, paths).encode("utf-8")).hexdigest()
