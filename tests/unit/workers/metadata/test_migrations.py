"""The store's schema: Alembic's revisions, checked against the models, applied by the code,
by the Flask command and by Alembic's own command line."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from tests.support.databases import BACKENDS, MakeDatabase
from tests.support.twilio import AUTH_TOKEN, sid
from tests.unit.workers.store_events import Room
from webhooks import create_app
from webhooks.app_state import app_state
from workers.metadata import SchemaNotReady, Store, StoreUnavailable
from workers.metadata.engine import make_engine
from workers.metadata.errors import UPGRADE_COMMAND
from workers.metadata.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    head_revision,
    render_item,
    upgrade,
)
from workers.metadata.models import Base
from workers.metadata.revision import HEAD_REVISION, VERSION_TABLE
from workers.metadata.sqlite import enable_wal

REPO = Path(__file__).resolve().parents[4]
TABLES = {"rooms", "recordings", "events", "alembic_version"}


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, empty_database: MakeDatabase) -> Iterator[str]:
    with empty_database(request.param) as value:
        yield value


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_the_revisions_create_exactly_the_models_tables(engine: Engine) -> None:
    upgrade(engine)

    assert current_revision(engine) == head_revision() is not None
    assert set(inspect(engine).get_table_names()) == TABLES
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_nothing_and_up_again(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) == TABLES


def test_a_sqlite_database_migrates_itself_on_first_use(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/deep/dir/roomrec.db")  # the directory is created
    try:
        assert store.apply(Room().recording("recording-started", sid("RT"), 1)) is True
        assert current_revision(store.engine) == head_revision()
    finally:
        store.close()


def test_concurrent_first_uses_of_a_sqlite_database_migrate_it_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/roomrec.db"
    stores = [Store.open(url) for _ in range(4)]
    errors: list[BaseException] = []

    def first_use(store: Store) -> None:
        try:
            store.ready()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(store,)) for store in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert current_revision(stores[0].engine) == head_revision()
    finally:
        for store in stores:
            store.close()


def test_switching_a_new_database_to_wal_waits_for_another_connections_lock(
    tmp_path: Path,
) -> None:
    # What two workers opening a fresh SQLite store at once hit: changing the journal mode while
    # another connection holds a lock fails at once, whatever the busy timeout.
    path = tmp_path / "roomrec.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    newcomer = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("CREATE TABLE t (a)")
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO t VALUES (1)")
        newcomer.execute("PRAGMA busy_timeout = 15000")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            newcomer.execute("PRAGMA journal_mode = WAL")
        release = threading.Timer(0.2, holder.execute, args=("COMMIT",))
        release.start()
        enable_wal(newcomer, timeout=10)
        release.join()
        assert newcomer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        newcomer.close()
        holder.close()


def test_an_unmigrated_postgresql_database_is_refused_naming_the_command(
    empty_database: MakeDatabase,
) -> None:
    with empty_database("postgresql") as url:
        store = Store.open(url)
        try:
            with pytest.raises(SchemaNotReady, match=UPGRADE_COMMAND):
                store.apply(Room().event("room-created", 0))
            upgrade(store.engine)
            assert store.apply(Room().event("room-created", 0)) is True
        finally:
            store.close()


def test_autogenerate_writes_json_columns_with_sqlalchemys_types(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"render_item": render_item})
        operations = produce_migrations(context, Base.metadata).upgrade_ops
        assert operations is not None
        code = render_python_code(operations, render_item=render_item, migration_context=context)
    json = "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    assert f"sa.Column('links', {json}, nullable=True)" in code
    assert "JSONDocument" not in code


def test_the_head_known_without_alembic_is_alembics() -> None:
    # A new revision in migrations/versions must move workers.metadata.revision.HEAD_REVISION.
    assert HEAD_REVISION == head_revision()


def test_a_sqlite_database_with_an_empty_version_table_migrates_itself(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/roomrec.db"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")  # leaves alembic_version, empty
    engine.dispose()
    store = Store.open(url)
    try:
        store.ready()
        assert current_revision(store.engine) == head_revision()
    finally:
        store.close()


@pytest.mark.parametrize("stored", [None, "0000"])
def test_a_postgresql_database_at_another_revision_is_refused_naming_it(
    empty_database: MakeDatabase, stored: str | None
) -> None:
    with empty_database("postgresql") as url:
        store = Store.open(url)
        try:
            with store.engine.begin() as connection:
                connection.exec_driver_sql(
                    f"CREATE TABLE {VERSION_TABLE} (version_num varchar(32) PRIMARY KEY)"
                )
                if stored is not None:
                    connection.exec_driver_sql(f"INSERT INTO {VERSION_TABLE} VALUES ('{stored}')")
            with pytest.raises(SchemaNotReady, match=UPGRADE_COMMAND) as caught:
                store.ready()
            assert (caught.value.current, caught.value.head) == (stored, head_revision())
        finally:
            store.close()


def test_an_unreachable_database_is_transient(tmp_path: Path) -> None:
    store = Store.open("postgresql+psycopg://postgres@127.0.0.1:1/none")
    try:
        with pytest.raises(StoreUnavailable, match="database unavailable"):
            store.ready()
    finally:
        store.close()


def app_config(url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_url, "DATABASE_URL": url,
        "SPOOL_PATH": str(tmp_path / "spool.sqlite3"), "PUBLIC_BASE_URL": "http://localhost",
    }  # fmt: skip


def test_flask_db_upgrade_and_current(url: str, redis_url: str, tmp_path: Path) -> None:
    config = app_config(url, redis_url, tmp_path)
    app = create_app(config)
    runner = app.test_cli_runner()
    try:
        before = runner.invoke(args=["db", "current"])
        assert before.exit_code == 0, before.output
        assert "no revision" in before.output and UPGRADE_COMMAND in before.output

        first = runner.invoke(args=["db", "upgrade"])
        again = runner.invoke(args=["db", "upgrade"])
        after = runner.invoke(args=["db", "current"])
    finally:
        app_state(app).enqueuer.close()
    assert first.exit_code == 0, first.output
    assert f"upgraded from an empty database to {head_revision()}" in first.output
    assert f"already at {head_revision()}" in again.output
    assert "up to date" in after.output
    engine = make_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_flask_db_upgrade_fails_clearly_without_a_database(redis_url: str, tmp_path: Path) -> None:
    unreachable = "postgresql://nobody:s3cret@127.0.0.1:1/x"
    app = create_app(app_config(unreachable, redis_url, tmp_path))
    try:
        result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    finally:
        app_state(app).enqueuer.close()
    assert result.exit_code == 1
    assert "database unavailable" in result.output
    assert "s3cret" not in result.output


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "FLASK_APP")}
    return subprocess.run(
        args, cwd=REPO, env=clean | env | {"PYTHONPATH": str(REPO)}, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip


def test_the_flask_command_line(redis_url: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    flask = str(Path(sys.executable).parent / "flask")
    done = _run([flask, "--app", "webhooks", "db", "upgrade"], app_config(url, redis_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert head_revision() in done.stdout
    assert Path(url.removeprefix("sqlite:///")).exists()


def test_alembics_own_command_line_reads_database_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    alembic = str(Path(sys.executable).parent / "alembic")
    done = _run([alembic, "upgrade", "head"], {"DATABASE_URL": url})
    assert done.returncode == 0, done.stderr
    engine = make_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_the_revisions_ship_beside_the_packages() -> None:
    assert MIGRATIONS_DIR == REPO / "migrations"
    assert (MIGRATIONS_DIR / "env.py").is_file()
