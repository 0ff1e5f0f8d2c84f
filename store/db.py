"""Engine and sessions. ``migrate()`` brings a database to the head revision with alembic."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def sqlite_file(url: str) -> Path | None:
    """The database file of a plain SQLite URL (``sqlite:///PATH``, query string dropped), whose folder Renkei
    creates. None for other databases, ``:memory:``, and the URI form (``sqlite:///file:PATH?mode=ro&uri=true``):
    SQLite opens such a URI itself — often read-only —, and taking it for a path made a folder named
    ``file:`` in the working directory."""
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    path = parsed.database or ""
    if not path or path == ":memory:" or path.startswith("file:") or \
            str(parsed.query.get("uri", "")).lower() in ("true", "1"):
        return None
    return Path(path)


def make_engine(url: str) -> Engine:
    """Engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys, and the folder of its file is
    created (never for a URI-form URL: :func:`sqlite_file`)."""
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every sqlite test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            # WAL is a property of the database file: switch once. Switching needs the database to
            # itself, so processes connecting at the same moment must not all ask ("database is locked").
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                for attempt in range(50):
                    try:
                        cur.execute("PRAGMA journal_mode=WAL")
                        break
                    except sqlite3.OperationalError:
                        if attempt == 49:
                            raise
                        time.sleep(0.1)
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    return make_engine(url)


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (creates it when empty)."""
    from alembic import command

    if url.startswith("sqlite"):
        make_engine(url).dispose()  # creates the folder
    command.upgrade(alembic_config(url), revision)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise
