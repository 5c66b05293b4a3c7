"""``flask --app webhooks db upgrade``: migrate the store's database (``DATABASE_URL``) to
the schema this code needs; ``db current`` shows where it is. Run it once per deployment,
before the workers with the ``store`` handler (a SQLite database migrates itself)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from webhooks.app_state import app_state
from webhooks.cli.support import failures
from workers.service import operations

db = AppGroup("db", help="The store's database (DATABASE_URL).")


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision.")
def upgrade_command(revision: str) -> None:
    """Apply the migrations (Alembic) up to REVISION."""
    with failures():
        done = operations.upgrade_database(app_state().settings.database_url, revision)
    if done.before == done.after:
        click.echo(f"{done.database}: already at {done.after}")
    else:
        click.echo(
            f"{done.database}: upgraded from {done.before or 'an empty database'} to {done.after}"
        )


@db.command("current")
def current_command() -> None:
    """Show the database's revision and the one this code needs."""
    with failures():
        found = operations.database_revision(app_state().settings.database_url)
    state = "up to date" if found.up_to_date else "needs `flask --app webhooks db upgrade`"
    click.echo(
        f"{found.database}: at {found.current or 'no revision'}, code needs {found.head} ({state})"
    )
