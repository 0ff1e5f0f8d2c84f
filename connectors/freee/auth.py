"""freee OAuth2: single-use refresh-token rotation that is safe across threads and processes.

freee access tokens live 6 hours and refresh tokens 90 days; **a refresh token can be used only once**:
each refresh returns a new refresh token that must be stored, and presenting an already-used one gives
``invalid_grant`` (freee-and-moneyforward-api.md §1.2). Two workers that refresh with the same token
therefore lock one of them (and, on the next run, everybody) out until a human re-authorises the app.

The rules this module keeps:

1. **One refresher at a time.** Every refresh happens inside :meth:`TokenStore.locked`, an exclusive lock
   held across threads (``threading.Lock``) *and* processes (``fcntl.flock`` on a lock file) — or, with
   :class:`DbTokenStore`, across hosts (a row lock in the state store).
2. **Re-read under the lock.** Whoever waited for the lock reloads the store first: if the winner already
   rotated the token (the stored access token differs from the one we found stale and is still fresh),
   the loser uses it and sends nothing to freee.
3. **Persist before use.** The rotated refresh token (and the new access token) is written atomically
   (temp file, ``fsync``, ``os.replace``) *before* the new access token is returned to anybody.
4. **Never blindly retry a refresh.** A refresh whose request may have reached freee (read timeout,
   500) is not repeated: the token may already be burnt. Only failures that prove the request was not
   processed (connection refused, 429/502/503/504) are retried.
5. **Secrets never leak.** :class:`TokenSet` and the stores redact their ``repr``; error messages carry
   freee's error *code* only; nothing here logs a token.

The initial refresh token (from the ``RENKEI_FREEE_REFRESH_TOKEN`` setting, obtained once through the
authorization-code flow) only *seeds* an empty store: once the store holds a rotated token the setting is
stale and is ignored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from renkei.connectors.http import ConnectorError, Unauthorized, register_secret

log = logging.getLogger(__name__)

DEFAULT_TOKEN_URL = "https://accounts.secure.freee.co.jp/public_api/token"

# ---------------------------------------------------------------------------------------------------
# errors


class FreeeAuthError(ConnectorError):
    """Base for authentication failures (never carries a token in its message). Not retried by the
    HTTP layer: a refresh is never repeated blindly."""


class RefreshTokenRejected(FreeeAuthError, Unauthorized):
    """freee refused the refresh token (``invalid_grant``): it was used twice, revoked or expired.

    Permanent: somebody must re-run the authorization-code flow and seed a new refresh token
    (``RENKEI_FREEE_REFRESH_TOKEN`` into an *emptied* store).
    """


class NoRefreshToken(FreeeAuthError, Unauthorized):
    """The token store is empty and no initial refresh token was configured."""


class RefreshUncertain(FreeeAuthError):
    """The refresh request may or may not have been processed (timeout after sending, 500).

    Not retried automatically: the refresh token may be burnt. The next run re-reads the store; if
    freee did rotate the token and we never saw the answer, re-authorisation is needed.
    """


# ---------------------------------------------------------------------------------------------------
# token set


@dataclass(frozen=True)
class TokenSet:
    """What the store keeps. ``expires_at`` is epoch seconds (client clock); ``generation`` counts
    rotations, so tests and operators can see that each refresh token was used exactly once."""

    refresh_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    generation: int = 0
    company_id: int | None = None

    def __repr__(self) -> str:  # never print a secret
        return (f"TokenSet(access_token={'***' if self.access_token else None}, refresh_token=***, "
                f"expires_at={self.expires_at}, generation={self.generation})")

    __str__ = __repr__

    def fresh(self, now: float, margin_s: float) -> bool:
        """An access token that is present and not within ``margin_s`` of its expiry."""
        return bool(self.access_token) and self.expires_at is not None and now < self.expires_at - margin_s

    def to_json(self) -> str:
        return json.dumps({"refresh_token": self.refresh_token, "access_token": self.access_token,
                           "expires_at": self.expires_at, "generation": self.generation,
                           "company_id": self.company_id})

    @classmethod
    def from_json(cls, text: str) -> TokenSet:
        d = json.loads(text)
        return cls(refresh_token=d["refresh_token"], access_token=d.get("access_token"),
                   expires_at=d.get("expires_at"), generation=int(d.get("generation") or 0),
                   company_id=d.get("company_id"))


# ---------------------------------------------------------------------------------------------------
# stores


@runtime_checkable
class TokenStore(Protocol):
    """Persistent home of the current :class:`TokenSet`.

    ``load``/``save`` are only called inside ``locked()`` when a refresh may follow; ``save`` must be
    atomic (a reader sees the old or the new set, never half of one) and durable before it returns.
    """

    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...

    def locked(self) -> contextlib.AbstractContextManager[None]: ...


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(key: str) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(key, threading.Lock())


def _reset_locks_after_fork() -> None:  # a forked child must not inherit a lock held by a parent thread
    global _THREAD_LOCKS_GUARD
    _THREAD_LOCKS_GUARD = threading.Lock()
    _THREAD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_after_fork)


@contextlib.contextmanager
def file_lock(lock_path: str | os.PathLike[str]) -> Iterator[None]:
    """Exclusive lock across threads of this process *and* across processes on this host.

    ``flock`` locks belong to an open file description, so a second ``open()`` in the same process
    would also block — but a per-path ``threading.Lock`` is taken first so threads queue cheaply and a
    process never deadlocks against itself.
    """
    import fcntl

    lock_path = os.path.abspath(os.fspath(lock_path))
    tlock = _thread_lock(lock_path)
    with tlock:
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class FileTokenStore:
    """Token set in a 0600 JSON file; lock file ``<path>.lock`` beside it.

    Safe across threads and processes on one host (and on a shared filesystem whose ``flock`` is
    honoured, e.g. local disks; NFS only with lock support). Writes go to a temp file in the same
    directory, are fsynced and ``os.replace``-d over the old file.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).absolute()
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.path)!r})"

    def locked(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.lock_path)

    def load(self) -> TokenSet | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        return TokenSet.from_json(text)

    def save(self, tokens: TokenSet) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(tokens.to_json())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename durable
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def fernet_key(secret: bytes | str) -> bytes:
    """A Fernet key derived from a data key of any length (HKDF-SHA256, context ``renkei-credential``)."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"renkei-credential").derive(raw)
    return base64.urlsafe_b64encode(derived)


class DbTokenStore:
    """Token set in the state store (table ``credential``, one row per ``name``), shared by every worker
    on every host that uses the same database.

    * **One refresher at a time, across hosts.** On PostgreSQL :meth:`locked` opens a transaction that
      holds the row (``SELECT … FOR UPDATE``); ``load``/``save`` inside it use that transaction and the lock
      is released by the commit that makes the rotated token durable — so the new refresh token is stored
      before anybody uses the new access token, and a waiter re-reads the winner's token. A SQLite file is
      on one host: the lock is a file lock beside the database (so the database write lock is not held
      during the HTTP refresh) and ``save`` commits its own ``BEGIN IMMEDIATE`` transaction.
    * **Encrypted at rest.** The row keeps the token set as a Fernet token (AES-128-CBC + HMAC) under a
      key derived from ``data_key`` (``RENKEI_DATA_KEY`` or the generated key file); only the generation
      number is in clear. Losing the key means re-authorising the app, nothing worse.
    * ``fallback`` (optional, e.g. the former :class:`FileTokenStore`) is read while the row is still
      empty: the first refresh moves an existing file store into the database.

    Threads of one process may share an instance: the held transaction is per thread.
    """

    def __init__(self, engine: Any, *, data_key: bytes | str, name: str = "freee",
                 fallback: TokenStore | None = None):
        from cryptography.fernet import Fernet

        self.engine = engine
        self.name = name
        self._fernet = Fernet(fernet_key(data_key))
        self.fallback = fallback
        self._held = threading.local()

    def __repr__(self) -> str:
        return f"DbTokenStore({self.name!r})"

    # -- sql helpers --------------------------------------------------------------------------------

    def _ensure_row(self) -> None:
        from sqlalchemy import text

        with self.engine.begin() as conn:
            conn.execute(text("INSERT INTO credential (name, ciphertext, generation, updated_at) "
                              "VALUES (:n, NULL, 0, CURRENT_TIMESTAMP) ON CONFLICT (name) DO NOTHING"),
                         {"n": self.name})

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        from sqlalchemy import text

        if getattr(self._held, "conn", None) is not None:
            raise RuntimeError("DbTokenStore.locked() is not re-entrant")
        self._ensure_row()
        db_file = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if db_file and db_file != ":memory:":
            # A SQLite file lives on one host: a lock file beside it serialises refreshers without holding the
            # database write lock (and stalling every other writer) during the HTTP call; load/save then run
            # in their own short BEGIN IMMEDIATE transactions, durable when save returns.
            with file_lock(os.path.abspath(db_file) + f".{self.name.replace(':', '-')}.lock"):
                yield
            return
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # in-memory database: the write lock, held until commit
                conn.execute(text("SELECT generation FROM credential WHERE name = :n"), {"n": self.name})
            else:
                conn.execute(text("SELECT generation FROM credential WHERE name = :n FOR UPDATE"),
                             {"n": self.name})
            self._held.conn = conn
            try:
                yield
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                self._held.conn = None

    def _read(self, conn: Any) -> TokenSet | None:
        from sqlalchemy import text

        row = conn.execute(text("SELECT ciphertext FROM credential WHERE name = :n"), {"n": self.name}).first()
        if row is None or not row[0]:
            return None
        from cryptography.fernet import InvalidToken

        try:
            return TokenSet.from_json(self._fernet.decrypt(row[0].encode("ascii")).decode("utf-8"))
        except InvalidToken:
            raise FreeeAuthError(f"the stored token set {self.name!r} cannot be decrypted with the "
                                 "configured RENKEI_DATA_KEY (key changed?): restore the key, or clear the "
                                 "row and seed a new refresh token") from None

    # -- TokenStore ---------------------------------------------------------------------------------

    def load(self) -> TokenSet | None:
        conn = getattr(self._held, "conn", None)
        if conn is not None:
            tokens = self._read(conn)
        else:
            with self.engine.connect() as c:
                tokens = self._read(c)
        if tokens is None and self.fallback is not None:
            tokens = self.fallback.load()
        return tokens

    def save(self, tokens: TokenSet) -> None:
        from sqlalchemy import text

        stmt = text("UPDATE credential SET ciphertext = :c, generation = :g, updated_at = CURRENT_TIMESTAMP "
                    "WHERE name = :n")
        params = {"c": self._fernet.encrypt(tokens.to_json().encode("utf-8")).decode("ascii"),
                  "g": tokens.generation, "n": self.name}
        conn = getattr(self._held, "conn", None)
        if conn is not None:
            conn.execute(stmt, params)  # durable at the commit that ends locked()
            return
        self._ensure_row()
        with self.engine.connect() as c:
            if c.dialect.name == "sqlite":
                c.exec_driver_sql("BEGIN IMMEDIATE")
            c.execute(stmt, params)
            c.commit()

    def generation(self) -> int:
        """Rotations so far, read without decrypting."""
        from sqlalchemy import text

        with self.engine.connect() as c:
            row = c.execute(text("SELECT generation FROM credential WHERE name = :n"), {"n": self.name}).first()
        return int(row[0]) if row else 0


class MemoryTokenStore:
    """In-process store (tests, one-off scripts). Thread-safe; not shared across processes."""

    def __init__(self, tokens: TokenSet | None = None):
        self._tokens = tokens
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "MemoryTokenStore()"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    def load(self) -> TokenSet | None:
        return self._tokens

    def save(self, tokens: TokenSet) -> None:
        self._tokens = tokens


# ---------------------------------------------------------------------------------------------------
# the refresher


class FreeeAuth:
    """Hands out a valid access token, refreshing (and rotating the refresh token) when needed.

    * :meth:`access_token` — cached; refreshed proactively ``refresh_margin_s`` before expiry.
    * :meth:`invalidate` — after a 401 with token ``t``: the next :meth:`access_token` refreshes unless
      another worker already replaced ``t``. The HTTP layer refreshes at most once per request.
    * :meth:`headers` — ``{"Authorization": "Bearer …"}`` for the per-attempt auth hook.

    ``on_refresh`` (optional) is called with the new generation number after each refresh that this
    instance performed (a metric hook; it never sees a token).
    """

    # What differs between OAuth servers that rotate refresh tokens (subclasses override; see
    # connectors.moneyforward.auth): the name in messages, the setting that seeds the store, the lifetime
    # assumed when ``expires_in`` is missing, and whether every refresh answer must carry a new refresh token.
    vendor = "freee"
    refresh_token_setting = "RENKEI_FREEE_REFRESH_TOKEN"
    default_expires_in_s = 6 * 3600
    refresh_token_required = True
    request_id_header = "x-freee-request-id"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        store: TokenStore,
        token_url: str = DEFAULT_TOKEN_URL,
        initial_refresh_token: str | None = None,
        refresh_margin_s: float = 300.0,
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        http: httpx.Client | None = None,
        on_refresh: Callable[[int], None] | None = None,
        connect_retries: int = 3,
    ):
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        register_secret(client_secret)  # connectors.http.redact() now scrubs it from any text
        register_secret(initial_refresh_token)
        self.store = store
        self._initial_refresh_token = initial_refresh_token
        self.refresh_margin_s = refresh_margin_s
        self._clock = clock
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=timeout_s)
        self._on_refresh = on_refresh
        self._connect_retries = connect_retries
        self._cached: TokenSet | None = None
        self._invalidated: str | None = None  # access token known bad (401) until replaced
        self._cache_lock = threading.Lock()
        self.refresh_count = 0  # refreshes performed by this instance

    def __repr__(self) -> str:
        return f"FreeeAuth(client_id={self.client_id!r}, token_url={self.token_url!r}, store={self.store!r})"

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    # -- public -------------------------------------------------------------------------------------

    def access_token(self) -> str:
        now = self._clock()
        cached = self._cached
        if cached is not None and cached.fresh(now, self.refresh_margin_s):
            return cached.access_token  # type: ignore[return-value]
        invalid = self._invalidated
        if invalid is not None:  # after invalidate(): that token must not be handed out again
            return self._refresh(stale=invalid, force=True).access_token  # type: ignore[return-value]
        return self._refresh(stale=cached.access_token if cached else None).access_token  # type: ignore[return-value]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token()}"}

    def invalidate(self, access_token: str | None = None) -> None:
        """Forget ``access_token`` (or the cached one) after a 401."""
        with self._cache_lock:
            if self._cached is not None and (access_token is None or self._cached.access_token == access_token):
                self._invalidated = self._cached.access_token
                self._cached = replace(self._cached, expires_at=0.0)

    def force_refresh(self, stale_access_token: str | None = None) -> str:
        """Refresh now unless another worker already replaced ``stale_access_token`` (401 path)."""
        self.invalidate(stale_access_token)
        return self._refresh(stale=stale_access_token or (self._cached.access_token if self._cached else None),
                             force=True).access_token  # type: ignore[return-value]

    def current_generation(self) -> int:
        tokens = self.store.load()
        return tokens.generation if tokens else 0

    # -- internals ----------------------------------------------------------------------------------

    def _refresh(self, *, stale: str | None, force: bool = False) -> TokenSet:
        with self.store.locked():
            current = self.store.load()
            if current is not None:
                register_secret(current.refresh_token)
                register_secret(current.access_token)
            if current is None:
                if not self._initial_refresh_token:
                    raise NoRefreshToken(
                        f"the {self.vendor} token store is empty and no initial refresh token is configured "
                        f"(set {self.refresh_token_setting} once after authorising the app)")
                current = TokenSet(refresh_token=self._initial_refresh_token)
                self.store.save(current)  # seed only when empty
            now = self._clock()
            # Somebody else refreshed while we waited (or before we looked): use theirs.
            if current.fresh(now, self.refresh_margin_s) and (not force or current.access_token != stale):
                self._set_cache(current)
                return current
            new = self._grant(current)
            self.store.save(new)  # persist the rotated refresh token BEFORE anybody uses the new access token
            self.refresh_count += 1
        self._set_cache(new)
        log.info("%s token refreshed (generation %s)", self.vendor, new.generation)
        if self._on_refresh:
            self._on_refresh(new.generation)
        return new

    def _set_cache(self, tokens: TokenSet) -> None:
        with self._cache_lock:
            self._cached = tokens
            if tokens.access_token != self._invalidated:
                self._invalidated = None

    def _grant(self, current: TokenSet) -> TokenSet:
        data = {"grant_type": "refresh_token", "client_id": self.client_id,
                "client_secret": self._client_secret, "refresh_token": current.refresh_token}
        sent_at = self._clock()
        resp = self._post_token(data)
        if resp.status_code >= 400:
            code = _oauth_error_code(resp)
            rid = resp.headers.get(self.request_id_header, "")
            if resp.status_code in (400, 401) and code in ("invalid_grant", "invalid_request", "unauthorized_client",
                                                          "invalid_client"):
                raise RefreshTokenRejected(
                    f"{self.vendor} rejected the refresh token ({resp.status_code} {code}; request id {rid or '-'}); "
                    "re-authorise the app and seed a new refresh token")
            raise RefreshUncertain(f"{self.vendor} token endpoint answered {resp.status_code} {code or ''} "
                                   f"(request id {rid or '-'}); refresh not retried")
        try:
            body = resp.json()
            access = body["access_token"]
            # a server that does not rotate may leave the refresh token out: keep the one we hold
            refresh = body["refresh_token"] if self.refresh_token_required else (
                body.get("refresh_token") or current.refresh_token)
        except (ValueError, KeyError, TypeError):
            raise RefreshUncertain(f"{self.vendor} token endpoint returned an unreadable body; "
                                   "refresh not retried") from None
        register_secret(access)
        register_secret(refresh)
        expires_in = body.get("expires_in")
        expires_at = sent_at + float(expires_in) if expires_in is not None else sent_at + self.default_expires_in_s
        return TokenSet(refresh_token=refresh, access_token=access, expires_at=expires_at,
                        generation=current.generation + 1,
                        company_id=body.get("company_id") or current.company_id)

    def _post_token(self, data: dict[str, str]) -> httpx.Response:
        """POST to the token endpoint, retrying only when freee provably did not process the request."""
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._http.post(self.token_url, data=data, headers={"Accept": "application/json"})
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never reached freee
                if attempt > self._connect_retries:
                    raise RefreshUncertain(f"cannot reach the {self.vendor} token endpoint ({type(exc).__name__})") from None
                time.sleep(min(0.2 * 2 ** attempt, 5.0))
                continue
            except httpx.HTTPError as exc:  # sent, answer lost: may be burnt
                raise RefreshUncertain(f"{self.vendor} token request failed after sending ({type(exc).__name__}); "
                                       "not retried because the refresh token may already be used") from None
            if resp.status_code in (429, 502, 503, 504) and attempt <= self._connect_retries:
                time.sleep(min(_retry_after(resp) or 0.2 * 2 ** attempt, 5.0))
                continue
            return resp


def _oauth_error_code(resp: httpx.Response) -> str:
    try:
        body: Any = resp.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        code = body.get("error")
        if isinstance(code, str):
            return code[:64]
    return ""


def _retry_after(resp: httpx.Response) -> float | None:
    v = resp.headers.get("retry-after")
    try:
        return float(v) if v else None
    except ValueError:
        return None
