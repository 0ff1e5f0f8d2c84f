"""freee OAuth: token store, rotation rules, and the refresh-token race (threads and processes)."""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
import threading
import time
import urllib.parse

import httpx
import pytest

from renkei.connectors.freee.auth import (
    FileTokenStore,
    FreeeAuth,
    MemoryTokenStore,
    NoRefreshToken,
    DbTokenStore,
    FreeeAuthError,
    RefreshTokenRejected,
    RefreshUncertain,
    TokenSet,
)
from renkei.connectors.http import ConnectorError, Unauthorized, redact

# ---------------------------------------------------------------------------------------------------
# a scripted token endpoint (unit tests; the race tests below use the real sandbox over HTTP)


class FakeTokenEndpoint:
    """Single-use refresh tokens, like freee; counts grants."""

    def __init__(self, first: str = "rt-0", ttl: int = 21600):
        self.valid = {first}
        self.used: set[str] = set()
        self.n = 0
        self.ttl = ttl
        self.lock = threading.Lock()
        self.fail_with: list[Exception | int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            if self.fail_with:
                f = self.fail_with.pop(0)
                if isinstance(f, Exception):
                    raise f
                return httpx.Response(f, json={"error": "server_error"})
            form = dict(urllib.parse.parse_qsl(request.content.decode()))
            assert form["grant_type"] == "refresh_token" and form["client_secret"] == "s3cret-value"
            rt = form["refresh_token"]
            if rt not in self.valid or rt in self.used:
                return httpx.Response(401, json={"error": "invalid_grant", "error_description": "used"})
            self.used.add(rt)
            self.n += 1
            new_rt = f"rt-{self.n}-secretvalue"
            self.valid.add(new_rt)
            return httpx.Response(200, json={"access_token": f"at-{self.n}-secretvalue", "refresh_token": new_rt,
                                             "expires_in": self.ttl, "token_type": "bearer", "company_id": 1})


def _auth(endpoint: FakeTokenEndpoint, store, **kw) -> FreeeAuth:
    return FreeeAuth(client_id="cid", client_secret="s3cret-value", store=store, token_url="https://x/public_api/token",
                     http=httpx.Client(transport=httpx.MockTransport(endpoint)), **kw)


def test_file_store_is_private_atomic_and_redacted(tmp_path):
    store = FileTokenStore(tmp_path / "secrets" / "freee.json")
    assert store.load() is None
    ts = TokenSet(refresh_token="rt-secret-1", access_token="at-secret-1", expires_at=123.0, generation=4)
    store.save(ts)
    assert store.load() == ts
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["freee.json"]  # no temp file left
    for text in (repr(ts), str(ts), repr(store)):
        assert "rt-secret" not in text and "at-secret" not in text
    with store.locked():  # re-entrant across instances would deadlock; a second store on the same path waits
        got = []
        t = threading.Thread(target=lambda: got.append(FileTokenStore(store.path).locked().__enter__()))
        t.start()
        t.join(0.2)
        assert t.is_alive() and not got
    t.join(2)
    assert not t.is_alive()


def test_seed_only_when_empty_and_refresh_persists_before_use(tmp_path):
    ep = FakeTokenEndpoint(first="rt-seed")
    store = FileTokenStore(tmp_path / "t.json")
    saved_before_return = []

    class SpyStore(FileTokenStore):
        def save(self, tokens):
            super().save(tokens)
            saved_before_return.append(tokens.access_token)

    spy = SpyStore(store.path)
    auth = _auth(ep, spy, initial_refresh_token="rt-seed")
    token = auth.access_token()
    assert token == "at-1-secretvalue" and saved_before_return[-1] == token  # stored before handed out
    assert spy.load().refresh_token == "rt-1-secretvalue" and spy.load().generation == 1
    # a second worker configured with the (now stale) seed does not use it: the store is not empty
    auth2 = _auth(ep, FileTokenStore(store.path), initial_refresh_token="rt-seed")
    assert auth2.access_token() == token and ep.n == 1
    with pytest.raises(NoRefreshToken):
        _auth(ep, MemoryTokenStore()).access_token()


def test_proactive_refresh_before_expiry_and_401_path():
    ep = FakeTokenEndpoint(ttl=600)
    now = [1000.0]
    auth = _auth(ep, MemoryTokenStore(), initial_refresh_token="rt-0", clock=lambda: now[0], refresh_margin_s=60)
    assert auth.access_token() == "at-1-secretvalue"
    now[0] += 500  # 100 s left, more than the 60 s margin: cached
    assert auth.access_token() == "at-1-secretvalue" and ep.n == 1
    now[0] += 50  # inside the margin: refreshed early
    assert auth.access_token() == "at-2-secretvalue" and ep.n == 2
    # a 401 with a token that was already replaced refreshes nothing
    assert auth.force_refresh("at-1-secretvalue") == "at-2-secretvalue" and ep.n == 2
    # a 401 with the current token refreshes once
    assert auth.force_refresh("at-2-secretvalue") == "at-3-secretvalue" and ep.n == 3
    # invalidate() (a 401 seen elsewhere): the next access_token() refreshes even though the store says fresh
    auth.invalidate("at-3-secretvalue")
    assert auth.access_token() == "at-4-secretvalue" and ep.n == 4
    assert auth.access_token() == "at-4-secretvalue" and ep.n == 4
    auth.invalidate("at-1-secretvalue")  # an old token: nothing to do
    assert auth.access_token() == "at-4-secretvalue" and ep.n == 4


def test_refresh_is_never_retried_blindly(monkeypatch):
    ep = FakeTokenEndpoint()
    ep.fail_with = [httpx.ReadTimeout("sent, no answer")]
    store = MemoryTokenStore()
    auth = _auth(ep, store, initial_refresh_token="rt-0")
    with pytest.raises(RefreshUncertain) as info:
        auth.access_token()
    assert isinstance(info.value, ConnectorError) and not info.value.retryable
    assert "rt-0" not in str(info.value) and "s3cret" not in str(info.value)
    assert store.load().refresh_token == "rt-0"  # nothing rotated locally
    # connection refused / 503 prove nothing was processed: retried
    ep.fail_with = [httpx.ConnectError("refused"), 503]
    auth2 = _auth(ep, store, initial_refresh_token="rt-0")
    import renkei.connectors.freee.auth as mod

    monkeypatch.setattr(mod.time, "sleep", lambda s: None)
    assert auth2.access_token() == "at-1-secretvalue" and ep.n == 1


def test_rejected_refresh_token_is_permanent_and_secret_free():
    ep = FakeTokenEndpoint(first="rt-other")
    auth = _auth(ep, MemoryTokenStore(TokenSet(refresh_token="rt-burnt-secret")))
    with pytest.raises(RefreshTokenRejected) as info:
        auth.access_token()
    err = info.value
    assert isinstance(err, Unauthorized) and not err.retryable
    for text in (str(err), repr(err), redact(err)):
        assert "rt-burnt-secret" not in text and "s3cret-value" not in text
    assert "invalid_grant" in str(err)
    assert "s3cret" not in repr(auth)


def test_threads_sharing_a_file_store_refresh_once(tmp_path):
    ep = FakeTokenEndpoint()
    path = tmp_path / "t.json"
    FileTokenStore(path).save(TokenSet(refresh_token="rt-0", access_token="at-old", expires_at=0.0))
    barrier = threading.Barrier(12)
    tokens = []

    def worker():
        auth = _auth(ep, FileTokenStore(path))  # one FreeeAuth per worker, like separate clients
        barrier.wait()
        tokens.append(auth.access_token())

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert ep.n == 1 and set(tokens) == {"at-1-secretvalue"}


def _db_store(url: str, **kw):
    from renkei.store.db import make_engine, migrate

    migrate(url)
    return DbTokenStore(make_engine(url), data_key="test-data-key", **kw)


def test_db_store_is_encrypted_locked_and_migrates_a_file_store(db_url, tmp_path):
    import sqlalchemy

    legacy = FileTokenStore(tmp_path / "freee-token.json")
    old = TokenSet(refresh_token="rt-from-file-secret", access_token="at-from-file", expires_at=1.0, generation=7)
    legacy.save(old)
    store = _db_store(db_url, name="freee:1", fallback=legacy)
    assert store.load() == old  # empty row: the file store still answers
    endpoint = FakeTokenEndpoint(first="rt-from-file-secret")
    auth = _auth(endpoint, store, initial_refresh_token="rt-ignored")
    assert auth.access_token() == "at-1-secretvalue" and endpoint.used == {"rt-from-file-secret"}
    assert store.load().generation == 8 and store.generation() == 8
    with store.engine.connect() as c:
        (cipher,) = c.execute(sqlalchemy.text("select ciphertext from credential where name='freee:1'")).one()
    assert "secretvalue" not in cipher and "rt-" not in cipher  # never in clear at rest
    assert "secret" not in repr(store)
    other_key = DbTokenStore(store.engine, data_key="another-key", name="freee:1")
    with pytest.raises(FreeeAuthError, match="RENKEI_DATA_KEY"):
        other_key.load()
    with store.locked():  # a second holder waits for the first (row lock / write lock)
        store.save(TokenSet(refresh_token="x", generation=9))
        got = []
        t = threading.Thread(target=lambda: (got.append(1), _locked_once(DbTokenStore(store.engine,
                                                                   data_key="test-data-key", name="freee:1"))))
        t.start()
        time.sleep(0.5)
        assert got == [1] and t.is_alive()
    t.join(10)
    assert not t.is_alive() and store.load().generation == 9


def _locked_once(store) -> None:
    with store.locked():
        store.load()


# ---------------------------------------------------------------------------------------------------
# the refresh-token race against the sandbox over real HTTP

sandbox_app = pytest.importorskip("renkei.sandboxes.freee.app", reason="the freee sandbox app is not available")

RACE_CLIENT_ID = "renkei-race-client"
RACE_SECRET = "renkei-race-secret-1f0c7d"
RACE_REFRESH = "sbx-rt-race-initial-5e2a90"
RACE_TTL = 3600


@pytest.fixture
def race_box():
    from renkei.sandboxes.common import Clock, ServerThread
    from renkei.sandboxes.freee.config import FreeeSandboxConfig

    clock = Clock()
    cfg = FreeeSandboxConfig(client_id=RACE_CLIENT_ID, client_secret=RACE_SECRET, refresh_token=RACE_REFRESH,
                             access_token_ttl_s=RACE_TTL, clock=clock, seed="none", print_refresh_token=False)
    app = sandbox_app.create_app(cfg)
    server = ServerThread(app).start()
    yield server.url, app, clock
    server.stop()


def _race_store(where: str):
    """``where`` is a token file path or a database URL (the shared DbTokenStore)."""
    if "://" in where:
        from renkei.store.db import make_engine

        return DbTokenStore(make_engine(where), data_key="race-key", name="freee:1")
    return FileTokenStore(where)


def _race_client(url: str, store_path):
    from renkei.connectors.freee.testing import sandbox_client

    return sandbox_client(url, client_id=RACE_CLIENT_ID, client_secret=RACE_SECRET, company_id=1,
                          store=_race_store(str(store_path)), refresh_token=RACE_REFRESH)


def _race_process(url: str, store_path: str, n_threads: int, start, results) -> None:
    """One worker process: ``n_threads`` threads, each with its own client on the shared token file,
    all firing a request at the same moment (``start`` event)."""
    out: list[tuple[str, str]] = []
    lock = threading.Lock()

    def thread_main():
        client = _race_client(url, store_path)
        try:
            start.wait(30)
            client.list_walletables()
            token = client.auth.access_token()
            with lock:
                out.append(("ok", token))
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            with lock:
                out.append(("error", f"{type(exc).__name__}: {exc}"))
        finally:
            client.close()

    threads = [threading.Thread(target=thread_main) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    results.put(out)


def test_refresh_race_threads_share_one_file_store(race_box, tmp_path):
    url, app, clock = race_box
    path = tmp_path / "token.json"
    clients = [_race_client(url, path) for _ in range(10)]
    try:
        for round_no in range(1, 4):
            barrier = threading.Barrier(len(clients))
            results: list = []

            def run(c):
                barrier.wait()
                try:
                    c.list_walletables()
                    results.append(("ok", c.auth.access_token()))
                except Exception as exc:  # noqa: BLE001
                    results.append(("error", repr(exc)))

            threads = [threading.Thread(target=run, args=(c,)) for c in clients]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert [r for r in results if r[0] == "error"] == []
            assert len({tok for _, tok in results}) == 1  # everyone ends with the same valid token
            assert app.state.auth.refresh_count == round_no  # exactly one refresh burnt each token
            assert FileTokenStore(path).load().generation == round_no
            clock.advance((RACE_TTL + 1) * 1000)  # every access token expires server-side: 401 → refresh
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("kind", ["file", "postgresql", "sqlite"])
def test_refresh_race_across_processes(race_box, tmp_path, request, kind):
    """4 processes × 3 threads race to refresh: each refresh token is burnt exactly once — on one host with
    the file store, and through the state store's row lock (as workers on several hosts would)."""
    url, app, clock = race_box
    if kind == "file":
        path = str(tmp_path / "token.json")
    else:
        from renkei.store.db import migrate

        path = request.getfixturevalue("pg_url") if kind == "postgresql" else f"sqlite:///{tmp_path / 'r.db'}"
        migrate(path)
    ctx = mp.get_context("fork")  # children inherit the test module; the server thread stays in the parent
    for round_no in range(1, 3):
        start = ctx.Event()
        results = ctx.Queue()
        procs = [ctx.Process(target=_race_process, args=(url, path, 3, start, results)) for _ in range(4)]
        for p in procs:
            p.start()
        time.sleep(0.3)  # let every worker reach the start line
        start.set()
        outcomes = [item for _ in procs for item in results.get(timeout=60)]
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        errors = [o for o in outcomes if o[0] == "error"]
        assert errors == [], errors  # in particular no invalid_grant (RefreshTokenRejected)
        assert len(outcomes) == 12 and len({tok for _, tok in outcomes}) == 1
        assert app.state.auth.refresh_count == round_no
        checker = _race_store(path)
        stored = checker.load()
        if isinstance(checker, DbTokenStore):
            checker.engine.dispose()  # no open SQLite connection may be inherited by the next round's forks
        assert stored.generation == round_no and stored.access_token == outcomes[0][1]
        clock.advance((RACE_TTL + 1) * 1000)
