"""The errors of the store. SQLAlchemy's are translated here, in one place, into the worker's
transient / permanent distinction: a locked or unreachable database is worth retrying, a
statement the database refuses is not."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from workers.errors import PermanentError, TransientError

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
    """Run a block of database work, its errors translated; ``what`` names it in messages."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as exc:
        raise StoreUnavailable(f"{what}: database unavailable: {_reason(exc)}") from exc
    except (sa_exc.IntegrityError, sa_exc.DataError, sa_exc.ProgrammingError) as exc:
        raise StoreRefused(f"{what}: refused by the database: {_reason(exc)}") from exc


def _reason(exc: sa_exc.SQLAlchemyError) -> str:
    # The driver's own message: never the URL (hence never a password), no parameters.
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip().splitlines()
    return f"{type(original or exc).__name__}: {text[0] if text else ''}"
