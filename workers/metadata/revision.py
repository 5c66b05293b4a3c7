"""The schema revision this code needs, and the one a database is at, read without Alembic.

Alembic (with mako: about 8 MiB in every worker process) loads only when it has work. A
database at :data:`HEAD_REVISION` is checked with one plain ``SELECT`` of Alembic's version
table; any other (no table, an older or unknown revision, several) is handed to
:func:`workers.metadata.migrate.ensure_schema`, which migrates a SQLite database and refuses any
other one, as it always did.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from workers.metadata.errors import translated

# The head of migrations/versions: move it with every new revision. A test compares it with
# Alembic's own head, which stays the authority: a database not at this one goes to Alembic.
HEAD_REVISION = "0001"
VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps


def stored_revisions(engine: Engine) -> tuple[str, ...]:
    """The revisions in the database's version table; none without the table."""
    with translated("reading the schema revision"), engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return ()
        rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
        return tuple(row[0] for row in rows)


def ensure_schema(engine: Engine) -> None:
    """Make sure the tables are those this code expects: a SQLite database is upgraded, any
    other raises :class:`~workers.metadata.errors.SchemaNotReady` unless it is up to date."""
    if stored_revisions(engine) == (HEAD_REVISION,):
        return
    from workers.metadata import migrate  # Alembic, now that there is something to check or run

    migrate.ensure_schema(engine)
