"""freee error bodies → typed errors (no server: hand-built responses shaped as freee's OpenAPI says)."""

from __future__ import annotations

import httpx
import pytest

from renkei.connectors.base import ERPConnector
from renkei.connectors.freee.client import FreeeClient, FreeeLimits, is_iv_path, parse_freee_error, token_url_from
from renkei.connectors.freee.connector import FreeeConnector
from renkei.connectors.freee.auth import FreeeAuth, MemoryTokenStore
from renkei.connectors.http import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    QuotaExhausted,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationFailed,
    error_from_response,
)


def _resp(status: int, body, path: str = "/api/1/deals", headers: dict | None = None) -> httpx.Response:
    req = httpx.Request("POST", "https://api.freee.co.jp" + path)
    return httpx.Response(status, json=body, headers={"X-Freee-Request-ID": "req-123", **(headers or {})}, request=req)


def _err(*a, **kw):
    return error_from_response(_resp(*a, **kw), parse_freee_error)


def test_accounting_validation_error():
    err = _err(400, {"status_code": 400, "errors": [
        {"type": "status", "messages": ["不正なリクエストです。"]},
        {"type": "validation", "messages": ["Date は不正な日付フォーマットです。入力例：2019-12-17"]}]})
    assert isinstance(err, ValidationFailed) and err.category == "validation" and err.correlation_id == "req-123"
    assert "不正なリクエストです。" in err.message and "Date は不正な日付" in err.message


def test_not_found_conflict_and_server_errors():
    assert isinstance(_err(404, {"status_code": 404, "errors": [{"type": "status", "messages": ["x"]}]}), NotFound)
    assert isinstance(_err(409, {"status_code": 409, "errors": [{"type": "error", "messages": ["x"]}]}), Conflict)
    assert isinstance(_err(503, {"status_code": 503, "errors": [{"type": "status", "messages": ["メンテナンス"]}]}),
                      ServerError)
    iv = _err(400, {"status_code": 400, "errors": [{"type": "bad_request", "messages": ["形式が不正"]}]},
              path="/iv/invoices")
    assert isinstance(iv, BadRequest) and iv.category == "bad_request"


def test_401_and_permission_403():
    assert isinstance(_err(401, {"message": "アクセスする権限がありません", "messages": "x", "code": "expired_access_token"}),
                      Unauthorized)
    forbidden = _err(403, {"message": "この操作を行う権限がありません。", "messages": "権限がありません"})
    assert isinstance(forbidden, Forbidden) and not forbidden.retryable


def test_accounting_403_too_many_requests_is_rate_limited():
    info = parse_freee_error(_resp(403, {"message": "APIの利用制限中です。しばらく時間をおいてから再度お試しください。"}))
    assert info.retryable and info.category == "rate_limited" and not info.quota_exhausted
    info = parse_freee_error(_resp(403, {"message": "x"}, headers={"X-RateLimit-Remaining": "0"}))
    assert info.retryable


def test_daily_cap_is_quota_exhausted_on_both_apis():
    acc = _err(403, {"message": "1日のAPI利用回数の上限に達しました。", "messages": "1日のAPI利用回数の上限に達しました。"})
    assert isinstance(acc, QuotaExhausted) and not acc.retryable and acc.category == "daily_cap"
    assert str(acc).count("quota exhausted") == 1
    iv = _err(429, {"status_code": 429, "meta": {"limit": 3000, "period": 86400, "remaining": 0,
                                                 "reset": "2026-11-26T00:00:00.000000Z"},
                    "errors": [{"type": "status", "messages": ["1日あたりのリクエスト回数の上限（3000回）を超えました。"]}]},
              path="/iv/invoices", headers={"X-RateLimit-Remaining-Day": "0"})
    assert isinstance(iv, QuotaExhausted)


def test_iv_minute_limit_is_rate_limited_with_wait():
    err = _err(429, {"status_code": 429, "meta": {"limit": 30, "period": 60, "remaining": 0, "reset": ""},
                     "errors": [{"type": "status", "messages": ["1分間あたりのリクエスト回数の上限（30回）を超えました。"]}]},
               path="/iv/invoices", headers={"Retry-After": "7", "X-RateLimit-Remaining-Day": "100"})
    assert isinstance(err, RateLimited) and err.retry_after == 7.0


def test_helpers_and_protocol():
    assert is_iv_path("/iv/invoices") and is_iv_path("/iv/invoices/12") and not is_iv_path("/api/1/partners")
    assert token_url_from("https://accounts.secure.freee.co.jp") == "https://accounts.secure.freee.co.jp/public_api/token"
    assert token_url_from("http://h/public_api/token") == "http://h/public_api/token"
    limiter = FreeeLimits().limiter()
    assert limiter.limits["iv_minute"] == (30, 60.0) and limiter.limits["iv_hour"] == (1500, 3600.0)
    auth = FreeeAuth(client_id="c", client_secret="client-secret-xyz", store=MemoryTokenStore())
    client = FreeeClient(company_id=1, auth=auth)
    try:
        assert isinstance(FreeeConnector(client), ERPConnector)
        assert "client-secret-xyz" not in repr(client) + repr(auth)
    finally:
        client.close()
    with pytest.raises(ValueError):
        FreeeClient(company_id=1)
