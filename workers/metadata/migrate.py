"""The schema of the store, applied with Alembic (the revisions are in ``migrations/``).

PostgreSQL is migrated by the operator, once per deployment: ``flask --app webhooks db
upgrade``; until then the store refuses to work with :class:`SchemaNotReady`, which names that
command. A SQLite database is migrated by whichever process opens it first: the upgrade runs in
one ``BEGIN IMMEDIATE`` transaction, so concurrent workers wait for each other and the later
ones find the schema up to date.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from workers.metadata.engine import is_sqlite, shown, write_transaction
from workers.metadata.errors import SchemaNotReady, translated
from workers.metadata.models import JSONDocument

log = logging.getLogger(__name__)

# migrations/ sits beside the packages, in a checkout as in an installed tree.
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# Alembic keeps the running migration in module globals (alembic.context): one at a time.
_alembic_lock = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an ini file; ``connection`` is the one to migrate."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with translated("reading the schema revision"), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision``, in one transaction."""
    with _alembic_lock, translated("migrating the database"):
        with write_transaction(engine) as connection:
            command.upgrade(alembic_config(connection), revision)


def render_item(kind: str, item: Any, context: AutogenContext) -> str | Literal[False]:
    """How ``alembic revision --autogenerate`` writes a JSON column: as SQLAlchemy's own types,
    as it did before :class:`JSONDocument` replaced ``JSON().with_variant(JSONB(), ...)``."""
    if kind == "type" and isinstance(item, JSONDocument):
        context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False


def ensure_schema(engine: Engine) -> None:
    """Make sure the tables are those this code expects: a SQLite database is upgraded, any
    other raises :class:`SchemaNotReady` unless it is up to date. Reached only through
    :func:`workers.metadata.revision.ensure_schema`, when the database is not at the head."""
    head, current = head_revision(), current_revision(engine)
    if current == head:
        return
    if not is_sqlite(engine.url):
        raise SchemaNotReady(current, head)
    log.info("migrating %s from %s to %s", shown(engine.url), current or "empty", head)
    upgrade(engine)
