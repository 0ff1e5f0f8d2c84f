"""connectors/http.py: retries, typed errors, redaction, rate limiter, auth refresh, paging (MockTransport,
sleep patched out)."""

from __future__ import annotations

import pickle
import threading
import time

import httpx
import pytest

from renkei.connectors.http import (
    BadRequest, BearerAuth, Conflict, ConnectorError, CursorPaginator, ErrorInfo, Forbidden, HttpClient,
    HttpConfig, NotFound, OffsetPaginator, PermanentError, QuotaExhausted, RateLimited, RateLimiter,
    ServerError, TransientError, TransportError, Unauthorized, ValidationFailed, chunked, iter_cursor_pages,
    iter_offset_pages, parse_retry_after, redact, redact_headers,
)

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"


class Script:
    """A MockTransport handler answering from a list of (status, json, headers) or exceptions."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        status, body, headers = (step + (None, None))[:3]
        return httpx.Response(status, json=body, headers=headers or {})


def make(script, sleeps=None, **kw) -> HttpClient:
    sleeps = sleeps if sleeps is not None else []
    cfg = HttpConfig(base_url="https://api.example.com", auth=kw.pop("auth", BearerAuth(TOKEN)),
                     transport=httpx.MockTransport(script), sleep=sleeps.append, **kw)
    return HttpClient(cfg)


def test_retries_5xx_then_succeeds():
    s = Script((503, {"message": "down"}), (502, None), (200, {"ok": 1}))
    sleeps: list[float] = []
    c = make(s, sleeps, max_attempts=5, backoff_initial=1.0, backoff_max=8)
    assert c.get("/x") == {"ok": 1}
    assert len(s.requests) == 3 and c.stats.retries == 2
    assert len(sleeps) == 2 and all(0 <= x <= 8 for x in sleeps)


def test_gives_up_after_max_attempts_with_typed_error():
    s = Script((500, {"message": "boom", "correlationId": "c-1"}))
    c = make(s, max_attempts=3)
    with pytest.raises(ServerError) as ei:
        c.get("/x")
    assert len(s.requests) == 3
    assert ei.value.status == 500 and ei.value.correlation_id == "c-1" and ei.value.retryable


@pytest.mark.parametrize("status,cls", [(400, BadRequest), (401, Unauthorized), (403, Forbidden), (404, NotFound),
                                        (409, Conflict), (422, ValidationFailed), (418, BadRequest)])
def test_4xx_not_retried(status, cls):
    s = Script((status, {"message": "nope", "category": "X"}))
    c = make(s)
    with pytest.raises(cls) as ei:
        c.get("/x")
    assert len(s.requests) == 1
    assert isinstance(ei.value, PermanentError) and not isinstance(ei.value, TransientError)


def test_validation_category_maps_to_validation_failed():
    s = Script((400, {"message": "bad", "category": "VALIDATION_ERROR", "correlationId": "abc"}))
    with pytest.raises(ValidationFailed) as ei:
        make(s).post("/x", json={})
    assert ei.value.category == "VALIDATION_ERROR" and "abc" in str(ei.value)


def test_429_honours_retry_after_and_hook():
    s = Script((429, {"message": "slow"}, {"Retry-After": "3"}), (200, {"ok": 1}))
    sleeps: list[float] = []
    c = make(s, sleeps)
    assert c.get("/x") == {"ok": 1}
    assert 3.0 <= sleeps[0] <= 3.5
    assert c.stats.rate_limited == 1

    s2 = Script((429, {"message": "slow"}, {"X-Interval": "2500"}), (200, {"ok": 2}))
    sleeps2: list[float] = []
    c2 = make(s2, sleeps2, retry_after=lambda r, e: int(r.headers["X-Interval"]) / 1000)
    assert c2.get("/x") == {"ok": 2}
    assert 2.5 <= sleeps2[0] <= 2.8


def test_429_penalises_shared_limiter():
    clk = FakeClock()
    rl = RateLimiter({"default": (100, 10.0)}, clock=clk, sleep=clk.sleep)
    s = Script((429, {}, {"Retry-After": "5"}), (200, {}))
    c = make(s, rate_limiter=rl)
    c.get("/x")
    assert clk.t >= 5.0  # the retry waited in the shared limiter (the client's own sleep is patched out)
    rl.penalise("default", 2.0)
    assert rl.try_acquire("default") > 0  # blocked for every thread


def test_quota_exhausted_not_retried():
    def parser(resp):
        body = resp.json()
        return ErrorInfo(message=body["message"], category=body.get("errorType"),
                         quota_exhausted=body.get("policyName") == "DAILY")

    s = Script((429, {"message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
                      "policyName": "DAILY"}))
    with pytest.raises(QuotaExhausted):
        make(s, error_parser=parser).get("/x")
    assert len(s.requests) == 1


def test_transport_errors_retried():
    req = httpx.Request("GET", "https://api.example.com/x")
    s = Script(httpx.ConnectError("refused", request=req), httpx.ReadTimeout("slow", request=req),
               httpx.RemoteProtocolError("eof", request=req), (200, {"ok": 1}))
    c = make(s, max_attempts=4)
    assert c.get("/x") == {"ok": 1}
    s2 = Script(httpx.ReadTimeout("slow", request=req))
    with pytest.raises(TransportError):
        make(s2, max_attempts=2).get("/x")
    with pytest.raises(TransportError):
        make(Script(httpx.ReadTimeout("slow", request=req)), max_attempts=5).get("/x", retry=False)


def test_auth_called_per_attempt_and_refresh_once_on_401():
    tokens = iter(["tok-old-aaaaaaaa", "tok-new-bbbbbbbb"])
    current = {"t": next(tokens)}

    def refresh():
        current["t"] = next(tokens)
        return True

    auth = BearerAuth(lambda: current["t"], refresh=refresh)
    s = Script((401, {"message": "expired"}), (200, {"ok": 1}))
    c = make(s, auth=auth)
    assert c.get("/x") == {"ok": 1}
    assert s.requests[0].headers["Authorization"] == "Bearer tok-old-aaaaaaaa"
    assert s.requests[1].headers["Authorization"] == "Bearer tok-new-bbbbbbbb"
    # a second 401 after the refresh is final
    s2 = Script((401, {"message": "still bad"}))
    auth2 = BearerAuth("tok-x-cccccccc", refresh=lambda: True)
    with pytest.raises(Unauthorized):
        make(s2, auth=auth2).get("/x")
    assert len(s2.requests) == 2


def test_error_text_never_contains_token():
    body = {"message": f"token {TOKEN} is invalid; Authorization: Bearer {TOKEN}", "access_token": "zzz-secret-123"}
    s = Script((401, body))
    with pytest.raises(Unauthorized) as ei:
        make(s).get("/x", params={"access_token": "query-secret-999"})
    err = ei.value
    for text in (str(err), repr(err), err.message, str(err.details), str(err.url)):
        assert TOKEN not in text and "query-secret-999" not in text and "zzz-secret-123" not in text
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, Unauthorized) and TOKEN not in str(again)


def test_redact_helpers():
    assert TOKEN not in redact(f"Authorization: Bearer {TOKEN}")
    assert "s3cr3t" not in redact("grant_type=refresh_token&refresh_token=s3cr3t&client_secret=abc")
    assert "abc" not in redact('{"client_secret": "abc", "refresh_token":"r"}')
    assert redact('{"code": "VALIDATION_ERROR"}') == '{"code": "VALIDATION_ERROR"}'
    assert "c0de" not in redact("https://x/cb?code=c0de&state=1") and "code=None" in redact("code=None")
    assert redact_headers({"Authorization": "Bearer x", "Accept": "json"})["Authorization"] != "Bearer x"
    assert "pat-na1" not in redact("pat-na1-aaaaaaaa-bbbb")
    assert "redacted" in repr(BearerAuth(TOKEN)).lower() and TOKEN not in repr(BearerAuth(TOKEN))


def test_error_is_connector_error_and_logs_are_redacted(caplog):
    caplog.set_level("DEBUG", logger="renkei.connectors.http")
    s = Script((500, {"message": f"oops {TOKEN}"}))
    with pytest.raises(ConnectorError):
        make(s, max_attempts=2).get("/x", params={"hapikey": "hapi-secret-1"})
    assert TOKEN not in caplog.text and "hapi-secret-1" not in caplog.text


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= parse_retry_after(future) <= 31


class FakeClock:
    def __init__(self):
        self.t = 0.0
        self.lock = threading.Lock()

    def __call__(self):
        return self.t

    def sleep(self, s):
        with self.lock:
            self.t += s


def test_rate_limiter_rolling_window():
    clk = FakeClock()
    rl = RateLimiter({"default": (3, 10.0), "search": (1, 1.0)}, clock=clk, sleep=clk.sleep)
    for _ in range(3):
        assert rl.acquire("default") == 0
    waited = rl.acquire("default")
    assert 10.0 <= waited < 10.1
    rl.acquire("search")
    assert rl.acquire("search") >= 1.0
    # a request that needs two buckets waits for both
    assert rl.try_acquire("default", "search") > 0


def test_rate_limiter_threads_share_allowance():
    rl = RateLimiter({"default": (20, 0.5)})
    times: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(10):
            rl.acquire("default")
            with lock:
                times.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times.sort()
    # 40 acquisitions at 20 / 0.5 s: no 0.5 s window holds more than 20
    for i in range(len(times) - 20):
        assert times[i + 20] - times[i] >= 0.5 - 1e-3
    assert time.monotonic() - t0 < 1.5


def test_cursor_paginator_lazy():
    pages = {None: ({"results": [1, 2], "paging": {"next": {"after": "a"}}}),
             "a": ({"results": [3], "paging": {"next": {"after": "b"}}}),
             "b": ({"results": [4]})}

    def handler(req):
        return httpx.Response(200, json=pages[req.url.params.get("after")])

    c = make(handler)
    it = c.paginate("GET", "/objs", CursorPaginator(), params={"limit": 2})
    first = next(it)
    assert first.items == [1, 2] and first.next_cursor == "a"
    assert [p.items for p in it] == [[3], [4]]


def test_offset_paginator_and_helpers():
    data = list(range(7))

    def handler(req):
        off, lim = int(req.url.params["offset"]), int(req.url.params["limit"])
        return httpx.Response(200, json={"items": data[off:off + lim]})

    c = make(handler)
    got = [p.items for p in c.paginate("GET", "/o", OffsetPaginator(limit=3, items_path="items"))]
    assert got == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(iter_offset_pages(lambda o, n: data[o:o + n], 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    cur = {None: ([1], 1), 1: ([2], None)}
    assert list(iter_cursor_pages(lambda k: cur[k])) == [[1], [2]]
    assert list(chunked(range(5), 2)) == [[0, 1], [2, 3], [4]]


def test_429_gives_rate_limited_after_max_attempts():
    s = Script((429, {"message": "slow", "policyName": "TEN_SECONDLY_ROLLING"}, {"Retry-After": "0"}))
    with pytest.raises(RateLimited) as ei:
        make(s, max_attempts=3).get("/x")
    assert len(s.requests) == 3 and ei.value.retryable and isinstance(ei.value, TransientError)
