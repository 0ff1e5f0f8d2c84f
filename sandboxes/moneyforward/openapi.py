"""Validate Money Forward requests and responses against MF's published OpenAPI document (tests only).

The document is **not** part of this project (Money Forward's, no licence): it is read from
``$RENKEI_MONEYFORWARD_OPENAPI`` (a file, or a folder holding one ``*.yaml``/``*.yml``/``*.json``) or from
``../shared/specs/moneyforward/`` as seen from the project root. When neither holds one, the contract tests
skip. The sandbox never reads it.

The v3.6.0 document is Stoplight output and needs three adjustments before a JSON-Schema validator can
use it; they change no meaning:

* Ruby regexes (``'/\\A(\\+|＋)?[0-9０-９\\-|－|ー|−]+\\s*+\\z/'``) lose their slashes and get ``^`` / ``$``
  for ``\\A`` / ``\\z``;
* numeric bounds written as strings (``'-10_000_000_000'``) become numbers;
* ``nullable`` (OpenAPI 3.0 wording in a 3.1 document) and the fields MF leaves empty: ``null`` is admitted
  for every property of a **response** (the document declares no field nullable, while MF answers ``null``
  for unset optional fields); request bodies are validated strictly.
"""

from __future__ import annotations


import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["SPEC_ENV", "SPEC_MISSING_REASON", "ContractViolation", "spec_path", "validate_request",
           "validate_response"]

SPEC_ENV = "RENKEI_MONEYFORWARD_OPENAPI"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_DEFAULT_DIR = _PROJECT_ROOT.parent / "shared" / "specs" / "moneyforward"
SERVER_PREFIX = "/api/v3"
NOT_IN_SPEC = {("GET", "/billings/{billing_id}.pdf")}  # named only as Billing.pdf_url
SPEC_MISSING_REASON = (f"Money Forward OpenAPI document not found (${SPEC_ENV} or {_DEFAULT_DIR}/*.yaml); it is "
                       "not vendored in this repository (no licence)")


class ContractViolation(AssertionError):
    def __init__(self, what: str, errors: list[str]) -> None:
        self.what, self.errors = what, errors
        super().__init__(f"{what} does not match Money Forward's OpenAPI:\n  - " + "\n  - ".join(errors))


def spec_path() -> Path | None:
    override = os.environ.get(SPEC_ENV)
    candidate = Path(override) if override else _DEFAULT_DIR
    if candidate.is_file():
        return candidate
    if candidate.is_dir():
        found = sorted(p for ext in ("*.yaml", "*.yml", "*.json") for p in candidate.glob(ext))
        return found[0] if found else None
    return None


@lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    path = spec_path()
    if path is None:
        raise FileNotFoundError(SPEC_MISSING_REASON)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    import yaml

    return yaml.safe_load(text)


def _resolve(node: Any, doc: dict) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"external $ref {ref!r} is not supported")
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _ruby_regex(pattern: str) -> str:
    p = pattern
    if len(p) >= 2 and p.startswith("/") and p.endswith("/"):
        p = p[1:-1]
    return p.replace("\\A", "^").replace("\\z", "$").replace("\\Z", "$")


def _number(v: Any) -> Any:
    if isinstance(v, str):
        try:
            s = v.replace("_", "")
            return int(s) if re.fullmatch(r"-?\d+", s) else float(s)
        except ValueError:
            return v
    return v


def _clean(node: Any, doc: dict, *, response: bool, depth: int = 0) -> Any:
    """A JSON-Schema (2020-12) copy of an OpenAPI schema node, refs inlined."""
    if depth > 40:
        return {}
    node = _resolve(node, doc)
    if isinstance(node, list):
        return [_clean(x, doc, response=response, depth=depth + 1) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-") or key in ("example", "examples", "description", "title", "nullable", "format"):
            continue
        if key == "pattern" and isinstance(value, str):
            out[key] = _ruby_regex(value)
        elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            out[key] = _number(value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: _clean(v, doc, response=response, depth=depth + 1) for k, v in value.items()}
        elif isinstance(value, (dict, list)):
            out[key] = _clean(value, doc, response=response, depth=depth + 1)
        else:
            out[key] = value
    if (node.get("nullable") is True or (response and depth > 0)) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _operation(method: str, path: str) -> tuple[str, dict, list[dict]]:
    """(template, operation, parameters) for a request path under ``/api/v3``."""
    doc = load_spec()
    rel = path.split("?", 1)[0]
    rel = rel[len(SERVER_PREFIX):] if rel.startswith(SERVER_PREFIX) else rel
    best: tuple[int, str] | None = None
    for template in doc.get("paths", {}):
        regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(regex, rel):
            params = template.count("{")
            if best is None or params < best[0]:
                best = (params, template)
    if best is None:
        raise ContractViolation(f"{method} {rel}", ["no such path in the document"])
    item = doc["paths"][best[1]]
    op = item.get(method.lower())
    if op is None:
        raise ContractViolation(f"{method} {best[1]}", ["no such operation in the document"])
    params = [_resolve(p, doc) for p in [*item.get("parameters", []), *op.get("parameters", [])]]
    return best[1], op, params


def _schema_errors(schema: dict, instance: Any) -> list[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))]


def _json_schema(container: dict | None, *, response: bool) -> dict | None:
    doc = load_spec()
    container = _resolve(container, doc) if container else None
    if not container:
        return None
    content = container.get("content") or {}
    media = content.get("application/json")
    if media is None or "schema" not in media:
        return None
    return _clean(media["schema"], doc, response=response)


def validate_request(method: str, path: str, query: dict[str, str], body: Any) -> None:
    """Raise :class:`ContractViolation` unless the path, query parameters and JSON body fit the operation."""
    template, op, params = _operation(method, path)
    what = f"{method} {template}"
    errors: list[str] = []
    declared = {p["name"]: p for p in params if p.get("in") == "query"}
    for name, value in query.items():
        p = declared.get(name)
        if p is None:
            errors.append(f"query parameter {name!r} is not declared")
            continue
        schema = _clean(p.get("schema") or {}, load_spec(), response=False)
        coerced: Any = value
        if schema.get("type") == "integer":
            try:
                coerced = int(value)
            except ValueError:
                pass
        errors += [f"query {name}: {e}" for e in _schema_errors(schema, coerced)]
    schema = _json_schema(op.get("requestBody"), response=False)
    if body is not None and schema is None and method in ("POST", "PUT"):
        errors.append("a body was sent but the operation declares none")
    elif schema is not None and body is not None:
        errors += _schema_errors(schema, body)
    elif schema is not None and body is None and _resolve(op.get("requestBody"), load_spec()).get("required"):
        errors.append("the operation requires a body")
    if errors:
        raise ContractViolation(what, errors)


def validate_response(method: str, path: str, status: int, body: Any) -> None:
    """Raise :class:`ContractViolation` unless ``status`` is declared and ``body`` fits its schema."""
    template, op, _ = _operation(method, path)
    what = f"{method} {template} → {status}"
    responses = op.get("responses") or {}
    declared = responses.get(str(status))
    if declared is None:
        raise ContractViolation(what, [f"status {status} is not declared ({sorted(responses)})"])
    schema = _json_schema(declared, response=True)
    if schema is not None:
        errors = _schema_errors(schema, body)
        if errors:
            raise ContractViolation(what, errors)


def is_documented(method: str, path: str) -> bool:
    rel = path[len(SERVER_PREFIX):] if path.startswith(SERVER_PREFIX) else path
    return not any(m == method and re.match("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$", rel)
                   for m, t in NOT_IN_SPEC)


__all__ += ["is_documented", "load_spec"]

