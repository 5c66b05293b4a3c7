"""``flask --app webhooks db upgrade``: migrate the store's database (``DATABASE_URL``) to
the schema this code needs; ``db current`` shows where it is. Run it once per deployment,
before the workers with the ``store`` handler (a SQLite database migrates itself)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from webhooks.app_state import roomrec

db = AppGroup("db", help="The store's database (DATABASE_URL).")


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision.")
def upgrade_command(revision: str) -> None:
    """Apply the migrations (Alembic) up to REVISION."""
    # SQLAlchemy and Alembic load here, not in every web process that imports the CLI.
    from workers.metadata.engine import make_engine, shown
    from workers.metadata.errors import StoreRefused, StoreUnavailable
    from workers.metadata.migrate import current_revision, upgrade

    engine = make_engine(roomrec().settings.database_url)
    try:
        before = current_revision(engine)
        upgrade(engine, revision)
        after = current_revision(engine)
    except (StoreUnavailable, StoreRefused) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    where = shown(engine.url)
    if before == after:
        click.echo(f"{where}: already at {after}")
    else:
        click.echo(f"{where}: upgraded from {before or 'an empty database'} to {after}")


@db.command("current")
def current_command() -> None:
    """Show the database's revision and the one this code needs."""
    from workers.metadata.engine import make_engine, shown
    from workers.metadata.errors import StoreUnavailable
    from workers.metadata.migrate import current_revision, head_revision

    engine = make_engine(roomrec().settings.database_url)
    try:
        current = current_revision(engine)
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    head = head_revision()
    state = "up to date" if current == head else "needs `flask --app webhooks db upgrade`"
    click.echo(f"{shown(engine.url)}: at {current or 'no revision'}, code needs {head} ({state})")
