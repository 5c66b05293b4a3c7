"""Databases for the store's tests: a SQLite file, or a private schema on the local
PostgreSQL server (127.0.0.1:5432, trust auth, database ``test``) when it answers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

POSTGRES_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=2"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")

_reachable: dict[str, str | None] = {}


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can); asked once per session."""
    if "reason" not in _reachable:
        try:
            import psycopg

            with psycopg.connect(POSTGRES_DSN) as connection:
                connection.execute("SELECT 1")
            _reachable["reason"] = None
        except Exception as exc:  # any failure means: skip, saying why
            _reachable["reason"] = f"no PostgreSQL at 127.0.0.1:5432 (db test): {exc}"
    return _reachable["reason"]


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose tables live in a new, uniquely named schema, dropped afterwards."""
    import psycopg

    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    name = f"roomrec_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{name}" CASCADE')


@contextmanager
def database_url(backend: str, directory: Path, name: str = "roomrec") -> Iterator[str]:
    """An empty database of ``backend`` (``sqlite`` or ``postgresql``)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'{name}.db'}"
    elif backend == "postgresql":
        with postgres_schema() as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r}")
