"""Per-request plumbing shared by every API handler: auth, ``company_id``, limits, parsing, responses.

Every API call goes through :func:`begin`, in freee's order:

1. bearer token (401 ``invalid_access_token`` / ``expired_access_token``);
2. rate limits and daily cap (会計 403, 請求書 429) — a call with a bad ``company_id`` still counts;
3. ``company_id`` present (400) and a company the token can see (401 ``company_not_found``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams

from .auth import TokenStore
from .config import FreeeSandboxConfig
from .errors import Api, bad_request, not_found, unauthorized
from .limits import ApiLimits
from .store import FreeeStore

__all__ = ["Call", "FreeeJSONResponse", "Query", "SandboxState", "begin", "parse_id", "read_body", "state_of"]

CompanySource = Literal["query", "body", "path", "none"]


@dataclass
class SandboxState:
    """What :func:`~sandboxes.freee.app.create_app` puts on ``app.state``."""

    config: FreeeSandboxConfig
    store: FreeeStore
    auth: TokenStore
    limits: ApiLimits


def state_of(request: Request) -> SandboxState:
    return request.app.state.sandbox


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):  # quantities only (amounts are ints)
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class FreeeJSONResponse(JSONResponse):
    """JSON with Japanese text unescaped and Decimal quantities rendered as numbers."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, default=_json_default, separators=(",", ":")).encode("utf-8")


@dataclass
class Call:
    """An admitted API call."""

    api: Api
    company_id: int
    body: dict[str, Any]
    query: Query
    headers: dict[str, str] = field(default_factory=dict)

    def respond(self, body: dict[str, Any], status: int = 200) -> FreeeJSONResponse:
        return FreeeJSONResponse(body, status_code=status, headers=self.headers)


async def read_body(request: Request, api: Api) -> dict[str, Any]:
    """JSON (floats parsed as Decimal) or flat form-encoded body; empty → ``{}``."""
    raw = await request.body()
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    try:
        data = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise bad_request(api, "リクエストボディのJSONの形式が不正です。") from None
    if not isinstance(data, dict):
        raise bad_request(api, "リクエストボディはJSONオブジェクトで指定してください。")
    return data


def _company_id(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw >= 1 else None
    if isinstance(raw, str) and raw.isdigit() and int(raw) >= 1:
        return int(raw)
    if isinstance(raw, Decimal) and raw == raw.to_integral_value() and raw >= 1:
        return int(raw)
    return None


async def begin(
    request: Request, api: Api, *, company: CompanySource = "query", path_company_id: str | None = None
) -> Call:
    """Authenticate, rate-limit and resolve ``company_id`` for one API call (see module doc)."""
    state = state_of(request)
    state.auth.check_bearer(request.headers.get("authorization"))
    body = await read_body(request, api) if request.method in ("POST", "PUT") else {}
    raw: Any = {
        "query": request.query_params.get("company_id"),
        "body": body.get("company_id"),
        "path": path_company_id,
        "none": None,
    }[company]
    company_id = _company_id(raw)
    headers = state.limits.admit(api, company_id)
    request.state.freee_headers = headers
    if company != "none":
        if raw is None or raw == "":
            raise bad_request(api, "company_id は必須です。")
        if company_id is None:
            raise bad_request(api, "company_id の値が不正です。")
        if company_id not in state.store.companies:
            raise unauthorized("存在しないかすでに削除された事業所です。", "company_not_found")
    return Call(api, company_id or 0, body, Query(request.query_params, api), headers)


def parse_id(raw: str, api: Api, what: str) -> int:
    """A numeric path id; anything else is freee's 404."""
    if not raw.isdigit() or int(raw) < 1:
        raise not_found(api, f"指定した{what}は存在しません。")
    return int(raw)


class Query:
    """Typed access to query parameters; a bad value is freee's 400."""

    def __init__(self, params: QueryParams, api: Api) -> None:
        self._params = params
        self._api = api

    def text(self, name: str, *, choices: tuple[str, ...] | None = None) -> str | None:
        value = self._params.get(name)
        if value is None or value == "":
            return None
        if choices is not None and value not in choices:
            raise bad_request(self._api, f"{name} は {', '.join(choices)} のいずれかを指定してください。")
        return value

    def integer(self, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self._params.get(name)
        if value is None or value == "":
            return None
        try:
            number = int(value)
        except ValueError:
            raise bad_request(self._api, f"{name} は整数で指定してください。") from None
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            raise bad_request(self._api, f"{name} は {minimum} 以上 {maximum} 以下で指定してください。")
        return number

    def day(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            date.fromisoformat(value)
        except ValueError:
            raise bad_request(self._api, f"{name} は不正な日付フォーマットです。入力例：2019-12-17") from None
        return value

    def flag(self, name: str) -> bool | None:
        value = self.text(name, choices=("true", "false"))
        return None if value is None else value == "true"

    def page(self, default_limit: int, max_limit: int, max_offset: int = 2**63 - 1) -> tuple[int, int]:
        offset = self.integer("offset", minimum=0, maximum=max_offset) or 0
        limit = self.integer("limit", minimum=1, maximum=max_limit) or default_limit
        return offset, limit
