"""Databases for the store's tests: a SQLite file, or a new schema on a private PostgreSQL.

As a pytest plugin (``tests/conftest.py`` registers it) this module gives:

- ``postgres_server``: the session's own PostgreSQL, started by the first test that needs it:
  initdb in a temporary directory, then pg_ctl on a free loopback port (pytest-postgresql's
  executor), from the machine's binaries (:func:`pg_ctl`). Run as root, the server runs as the
  ``postgres`` user, since PostgreSQL refuses root. A test that needs it and cannot have it
  fails saying why.
- ``empty_database``: ``with empty_database(backend, name) as url:``, an empty database of a
  backend of :data:`BACKENDS`: a SQLite file in the test's ``tmp_path``, or a new schema on the
  private server, dropped afterwards.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from mirakuru.exceptions import ExecutorError
from pytest_postgresql.exceptions import PostgreSQLUnsupported
from pytest_postgresql.executors import PostgreSQLExecutor

from devtools.redis_server import free_port

BACKENDS = ("sqlite", "postgresql")
HOST = "127.0.0.1"
DBNAME = "postgres"  # initdb's own database: the server is ours alone
DEBIAN_VERSIONS = Path("/usr/lib/postgresql")
MISSING = "make test installs Debian's postgresql when run as root; else apt-get install it"

MakeDatabase = Callable[..., AbstractContextManager[str]]


def _version(bindir: Path) -> int:
    name = bindir.parent.name
    return int(name) if name.isdigit() else 0


def pg_ctl() -> Path | None:
    """The machine's pg_ctl (with initdb beside it): in ``pg_config --bindir``, else in the
    newest of Debian's /usr/lib/postgresql/*/bin, else on PATH."""
    candidates = []
    try:
        reported = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        candidates.append(Path(reported))
    except (OSError, subprocess.SubprocessError):
        pass  # no pg_config: the client's dev package is optional
    candidates += sorted(DEBIAN_VERSIONS.glob("*/bin"), key=_version, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("pg_ctl", "initdb")):
            return bindir / "pg_ctl"
    return None


def _as_postgres_user(ctl: Path, directory: Path, server: Path) -> Path:
    """A pg_ctl in ``directory`` that runs the real one as the ``postgres`` user, who is given
    ``server`` (the data, the log and the socket)."""
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("run as root, with no postgres user to run PostgreSQL as") from None
    os.chown(server, user.pw_uid, user.pw_gid)
    wrapper = directory / "pg_ctl"
    as_user = f"setpriv --reuid={user.pw_uid} --regid={user.pw_gid} --init-groups"
    wrapper.write_text(f'#!/bin/sh\ncd "{server}" && exec {as_user} -- "{ctl}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def start_postgres(directory: Path) -> PostgreSQLExecutor:
    """A started server keeping everything in ``directory`` (which others must be able to
    enter when the server runs as the postgres user)."""
    ctl = pg_ctl()
    if ctl is None:
        raise RuntimeError(f"no pg_ctl and initdb: not in pg_config --bindir, {DEBIAN_VERSIONS}"
                           f"/*/bin nor on PATH ({MISSING})")  # fmt: skip
    server = directory / "server"
    server.mkdir()
    if os.geteuid() == 0:
        directory.chmod(0o755)
        ctl = _as_postgres_user(ctl, directory, server)
    executor = PostgreSQLExecutor(
        executable=str(ctl), host=HOST, port=free_port(), datadir=str(server / "data"),
        unixsocketdir=str(server), logfile=str(server / "postgresql.log"), startparams="-w",
        dbname=DBNAME,
    )  # fmt: skip
    executor.start()
    return executor


def postgres_dsn(server: PostgreSQLExecutor) -> str:
    return f"host={HOST} port={server.port} dbname={DBNAME} user={server.user} connect_timeout=5"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgreSQLExecutor]:
    """The session's private PostgreSQL (see the module's docstring)."""
    # Not in pytest's tmp_path: its base is private to this user, so no postgres user gets in.
    with tempfile.TemporaryDirectory(prefix="roomrec-postgresql-") as name:
        directory = Path(name)
        try:
            server = start_postgres(directory)
        except (RuntimeError, OSError, subprocess.SubprocessError, ExecutorError,
                PostgreSQLUnsupported) as exc:  # fmt: skip
            log = directory / "server" / "postgresql.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            pytest.fail(f"this test needs PostgreSQL: {exc}\n{tail}", pytrace=False)
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def postgres_schema(server: PostgreSQLExecutor) -> Iterator[str]:
    """A URL whose tables live in a new, uniquely named schema, dropped afterwards."""
    import psycopg

    name = f"roomrec_test_{secrets.token_hex(6)}"
    dsn = postgres_dsn(server)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')
    try:
        url = f"postgresql+psycopg://{server.user}@{HOST}:{server.port}/{DBNAME}"
        yield f"{url}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> MakeDatabase:
    """``empty_database(backend, name="roomrec")``: a context manager giving the URL of an
    empty database of ``backend``; PostgreSQL's server is started only when first asked for."""

    @contextmanager
    def make(backend: str, name: str = "roomrec") -> Iterator[str]:
        if backend == "sqlite":
            yield f"sqlite:///{tmp_path / f'{name}.db'}"
        elif backend == "postgresql":
            with postgres_schema(request.getfixturevalue("postgres_server")) as url:
                yield url
        else:
            raise ValueError(f"unknown backend {backend!r}")

    return make
