"""SQLite files that several processes open at once: the store's database and the web's spool.

No SQLAlchemy here: the web's spool uses the ``sqlite3`` module alone.
"""

from __future__ import annotations

import sqlite3
import time


def enable_wal(connection: sqlite3.Connection, *, timeout: float) -> None:
    """Put the database of ``connection`` in WAL mode.

    The mode is kept in the file, so only the first connection to a new database changes it.
    That change needs a lock SQLite's busy timeout does not wait for: processes opening a new
    database at the same moment get "database is locked" at once. It is tried again for up to
    ``timeout`` seconds; a database already in WAL mode costs one read of the mode.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            connection.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
