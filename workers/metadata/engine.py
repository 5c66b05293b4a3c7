"""Connecting to the store: one engine per process, SQLite tuned for several writers.

``DATABASE_URL`` is ``sqlite:///path`` (the default, ``sqlite:///./data/roomrec.db``; the
directory is created) or ``postgresql+psycopg://user:password@host/db`` (``postgresql://``
and ``postgres://`` mean the same: psycopg 3 is the driver).

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE``: it takes the write lock at once (waiting up to the busy timeout) instead
of failing half-way when another worker wrote in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from workers.metadata.sqlite import enable_wal

SQLITE_BUSY_TIMEOUT_MS = 15_000
POSTGRES_CONNECT_TIMEOUT = 5
WRITE_OPTION = "roomrec_write"  # execution option: this connection's transactions write


class DatabaseUrlError(ValueError):
    """``DATABASE_URL`` names a database or driver the store does not support."""


def database_url(text: str) -> URL:
    """``text`` parsed, with psycopg 3 as the PostgreSQL driver."""
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise DatabaseUrlError("not a database URL") from exc
    if url.drivername in ("postgres", "postgresql", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        return url
    raise DatabaseUrlError(
        f"unsupported database {url.drivername!r}: use sqlite:///path or postgresql+psycopg://"
    )


def shown(url: URL) -> str:
    """The URL as it may be logged: without its password."""
    return url.render_as_string(hide_password=True)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL; None for an in-memory database."""
    name = url.database
    if not name or name == ":memory:" or name.startswith("file::memory:"):
        return None
    return Path(name)


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url``; a SQLite file's directory is created."""
    parsed = database_url(url) if isinstance(url, str) else url
    if not is_sqlite(parsed):
        connect_args = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT}
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    path = sqlite_file(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, **kwargs)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that writes, committed when the block ends."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module: it would start a deferred
    # transaction on its own. _sqlite_begin starts each one instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        enable_wal(dbapi_connection, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
