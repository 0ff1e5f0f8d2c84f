"""Validate freee requests and responses against freee's official OpenAPI files.

The files are **not** part of this project: they live next to it, in ``../shared/specs/freee`` as seen
from the project root (``accounting-v1-api-schema.json`` for freee会計, ``iv-api-schema.yml`` for
freee請求書). ``RENKEI_TEST_FREEE_SPEC_DIR`` overrides the location. Everything here is meant for tests:
the sandbox itself never needs the files at run time.

Usage (shared with the freee connector's contract tests)::

    from renkei.sandboxes.freee.openapi import spec_dir, validate_request, validate_response

    if spec_dir() is None:
        pytest.skip(SPEC_MISSING_REASON)
    validate_request("POST", "/api/1/deals", None, body)                    # freee会計
    validate_response("GET", "/iv/invoices/7", 200, payload, api="iv")      # freee請求書

Both raise :class:`ContractViolation` (an ``AssertionError``) naming the operation, the status and every
schema error with its JSON path. Parsed specs are cached per process (the accounting file is ~2 MB and
takes about a second to load).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "SPEC_FILES",
    "SPEC_MISSING_REASON",
    "Api",
    "ContractViolation",
    "SpecUnavailable",
    "load_spec_dict",
    "spec_dir",
    "validate_component",
    "validate_request",
    "validate_response",
]

Api = Literal["accounting", "iv"]

SPEC_FILES: dict[str, str] = {
    "accounting": "accounting-v1-api-schema.json",
    "iv": "iv-api-schema.yml",
}
_HOST = "https://api.freee.co.jp"  # both servers live here; freee請求書's server URL adds "/iv"
SPEC_DIR_ENV = "RENKEI_TEST_FREEE_SPEC_DIR"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_DEFAULT_SPEC_DIR = _PROJECT_ROOT.parent / "shared" / "specs" / "freee"

SPEC_MISSING_REASON = (
    f"freee OpenAPI files not found (looked in ${SPEC_DIR_ENV} or {_DEFAULT_SPEC_DIR}, i.e. "
    "../shared/specs/freee from the project root); they are not vendored in this repository"
)


class SpecUnavailable(RuntimeError):
    """The freee OpenAPI files are not present (see :data:`SPEC_MISSING_REASON`)."""


class ContractViolation(AssertionError):
    """A request or response does not match freee's OpenAPI operation."""

    def __init__(self, what: str, errors: list[str]) -> None:
        self.what = what
        self.errors = errors
        super().__init__(f"{what} does not match freee's OpenAPI:\n  - " + "\n  - ".join(errors))


def spec_dir() -> Path | None:
    """Directory holding both freee OpenAPI files, or None when they are absent."""
    override = os.environ.get(SPEC_DIR_ENV)
    candidate = Path(override) if override else _DEFAULT_SPEC_DIR
    if all((candidate / name).is_file() for name in SPEC_FILES.values()):
        return candidate
    return None


def _require_dir() -> Path:
    found = spec_dir()
    if found is None:
        raise SpecUnavailable(SPEC_MISSING_REASON)
    return found


@lru_cache(maxsize=2)
def load_spec_dict(api: Api = "accounting") -> dict[str, Any]:
    """The parsed OpenAPI document (cached), with nullable enums admitting ``null`` (see below)."""
    path = _require_dir() / SPEC_FILES[api]
    if path.suffix == ".json":
        doc = json.loads(path.read_text(encoding="utf-8"))
    else:
        import yaml

        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    _admit_null_in_nullable_enums(doc)
    return doc


def _admit_null_in_nullable_enums(node: Any) -> None:
    """freee marks many enums ``nullable: true`` without listing ``null`` among the values (e.g. a tax
    code's ``display_category``, which is null for 対象外). OpenAPI 3.0.3 would then forbid null; freee
    clearly means "one of these or null", so ``null`` is added to such enums before validating."""
    if isinstance(node, dict):
        enum = node.get("enum")
        if node.get("nullable") is True and isinstance(enum, list) and None not in enum:
            enum.append(None)
        for value in node.values():
            _admit_null_in_nullable_enums(value)
    elif isinstance(node, list):
        for value in node:
            _admit_null_in_nullable_enums(value)


def _json_bytes(data: bytes | str) -> Any:
    return json.loads(data)


@lru_cache(maxsize=2)
def _openapi(api: Api) -> Any:
    from openapi_core import Config, OpenAPI

    # freee請求書 declares its error bodies as application/problem+json
    config = Config(extra_media_type_deserializers={"application/problem+json": _json_bytes})
    return OpenAPI.from_dict(load_spec_dict(api), config=config)


def _api_path(path: str, api: Api) -> str:
    """Path relative to the spec's server URL (``/iv/invoices`` → ``/invoices`` for iv)."""
    path = path.split("?", 1)[0]
    if api == "iv" and path.startswith("/iv/"):
        return path[len("/iv") :]
    return path


def _full_path(path: str, api: Api) -> str:
    """Path below the host (``/invoices`` → ``/iv/invoices`` for iv)."""
    api_path = _api_path(path, api)
    return f"/iv{api_path}" if api == "iv" else api_path


def _query_args(query: Mapping[str, Any] | None) -> dict[str, str]:
    args: dict[str, str] = {}
    for key, value in (query or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            args[key] = "true" if value else "false"
        else:
            args[key] = str(value)
    return args


def _match_operation(api: Api, method: str, path: str) -> tuple[str, dict[str, Any]]:
    """(template, operation) for ``method path``; literal segments win over ``{param}`` ones."""
    doc = load_spec_dict(api)
    parts = path.strip("/").split("/")
    best: tuple[int, str, dict[str, Any]] | None = None
    for template, item in doc["paths"].items():
        tparts = template.strip("/").split("/")
        if len(tparts) != len(parts):
            continue
        literal = 0
        for t, p in zip(tparts, parts, strict=True):
            if t.startswith("{") and t.endswith("}"):
                continue
            if t != p:
                break
            literal += 1
        else:
            op = item.get(method.lower())
            if op is not None and (best is None or literal > best[0]):
                best = (literal, template, op)
    if best is None:
        raise ContractViolation(f"{method.upper()} {path}", ["no such operation in the spec"])
    return best[1], best[2]


def _response_media_type(api: Api, method: str, path: str, status: int) -> str:
    """The media type freee declares for ``status`` (iv errors are ``application/problem+json``)."""
    _, op = _match_operation(api, method, path)
    responses = op.get("responses", {})
    response = responses.get(str(status)) or responses.get("default") or {}
    content = response.get("content") or {}
    if not content or "application/json" in content:
        return "application/json"
    return next(iter(content))


def _schema_errors(exc: BaseException) -> Iterator[str]:
    """Flatten openapi-core's exception chain into ``path: message`` lines."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    found = False
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for err in getattr(current, "schema_errors", None) or ():
            found = True
            for leaf in _leaf_errors(err):
                where = "/".join(str(p) for p in leaf.absolute_path) or "(root)"
                yield f"{where}: {leaf.message}"
        for nested in (current.__cause__, current.__context__):
            if nested is not None:
                stack.append(nested)
    if not found:
        yield f"{type(exc).__name__}: {exc}"


def _leaf_errors(err: Any) -> Iterator[Any]:
    context = list(getattr(err, "context", None) or ())
    if not context:
        yield err
        return
    for sub in context:
        yield from _leaf_errors(sub)


def validate_request(
    method: str,
    path: str,
    query: Mapping[str, Any] | None = None,
    json_body: Any = None,
    api: Api = "accounting",
    headers: Mapping[str, str] | None = None,
) -> None:
    """Check a request (path, query parameters, JSON body) against freee's operation.

    ``path`` is the concrete path (``/api/1/deals/12``, ``/iv/invoices``); the query may hold ints,
    bools or strings. Raises :class:`ContractViolation` or :class:`SpecUnavailable`.
    """
    from openapi_core.testing import MockRequest

    api_path = _api_path(path, api)
    _match_operation(api, method, api_path)
    data = None if json_body is None else json.dumps(json_body, ensure_ascii=False, default=str).encode("utf-8")
    request = MockRequest(
        _HOST,
        method.lower(),
        _full_path(path, api),
        args=_query_args(query),
        data=data,
        headers=dict(headers or {"Authorization": "Bearer sandbox"}),
        content_type="application/json",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unsupported scheme type" for oauth2
        try:
            _openapi(api).validate_request(request)
        except Exception as exc:  # noqa: BLE001 - re-raised as a readable ContractViolation
            raise ContractViolation(f"request {method.upper()} {path}", list(_schema_errors(exc))) from exc


def validate_response(
    method: str,
    path: str,
    status: int,
    json_body: Any,
    api: Api = "accounting",
    content_type: str | None = None,
) -> None:
    """Check a response body against the schema freee declares for ``method path`` and ``status``.

    ``content_type`` defaults to the media type the operation declares for that status. Raises
    :class:`ContractViolation` (also when the status is not declared) or :class:`SpecUnavailable`.
    """
    from openapi_core.testing import MockRequest, MockResponse

    api_path = _api_path(path, api)
    media_type = content_type or _response_media_type(api, method, api_path, status)
    request = MockRequest(_HOST, method.lower(), _full_path(path, api))
    response = MockResponse(
        json.dumps(json_body, ensure_ascii=False).encode("utf-8"), status_code=status, content_type=media_type
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _openapi(api).validate_response(request, response)
        except Exception as exc:  # noqa: BLE001
            raise ContractViolation(f"response {status} to {method.upper()} {path}", list(_schema_errors(exc))) from exc


def validate_component(json_body: Any, schema_name: str, api: Api = "accounting") -> None:
    """Check a body against a named ``components.schemas`` entry (for statuses an operation does not
    declare, e.g. freee請求書's documented 429)."""
    from jsonschema_path import SchemaPath
    from openapi_core.validation.schemas import oas30_read_schema_validators_factory

    spec = SchemaPath.from_dict(load_spec_dict(api))
    schema = spec / "components" / "schemas" / schema_name
    validator = oas30_read_schema_validators_factory.create(spec, schema)
    try:
        validator.validate(json_body)
    except Exception as exc:  # noqa: BLE001
        raise ContractViolation(f"body as {api} schema {schema_name!r}", list(_schema_errors(exc))) from exc
