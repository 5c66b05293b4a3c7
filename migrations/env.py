"""Alembic's environment for roomrec's store.

The database is, in order: the connection handed in by :func:`workers.metadata.migrate.upgrade`
(``config.attributes["connection"]``), ``sqlalchemy.url`` if set, else ``DATABASE_URL``
(default ``sqlite:///./data/roomrec.db``).
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from schemas.settings import DEFAULT_DATABASE_URL
from workers.metadata.engine import database_url, make_engine, write_transaction
from workers.metadata.migrate import render_item
from workers.metadata.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name)

target_metadata = Base.metadata
# Held for the migration's transaction: two `db upgrade` runs on PostgreSQL do not race.
ADVISORY_LOCK_ID = 0x726F6F6D726563  # "roomrec"


def _url() -> str:
    return (
        config.get_main_option("sqlalchemy.url")
        or os.environ.get("DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )


def _migrate(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_ID})")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    url = database_url(_url())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = make_engine(_url())
    try:
        with write_transaction(engine) as own:
            _migrate(own)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
