"""The errors of the store. Which of SQLAlchemy's errors are worth retrying (a locked or
unreachable database) and which are not (a statement the database refuses) is decided by
:func:`workers.errors.translate`; :func:`translated` raises them as the store's classes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from workers.errors import PermanentError, TransientError, classify, translate

UPGRADE_COMMAND = "flask --app webhooks db upgrade"


class StoreUnavailable(TransientError):
    """The database did not answer, was locked too long or dropped the connection."""


class StoreRefused(PermanentError):
    """The database refused a statement for what it contains: retrying cannot help."""


class SchemaNotReady(TransientError):
    """The database's tables are missing or older than this code: run the migrations."""

    def __init__(self, current: str | None, head: str | None) -> None:
        have = current or "no tables"
        super().__init__(
            f"the database schema is not up to date ({have}, this code needs {head}): "
            f"run `{UPGRADE_COMMAND}` with the same DATABASE_URL"
        )
        self.current = current
        self.head = head


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run a block of database work, its errors translated; ``what`` names it in messages.
    Errors the map does not know (a bug, not the database) pass unchanged."""
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        if classify(exc) is None:
            raise
        raise translate(exc, what, transient=StoreUnavailable, permanent=StoreRefused) from exc
