"""The web host's local spool: accepted callbacks wait here while the queue is unreachable.

SQLite in WAL mode with ``synchronous=FULL``: an append is on disk (fsync'd) before the callback
is answered. A :class:`Relay` thread moves spooled events to the queue, oldest first, as soon as
the queue answers again. Several gunicorn processes share one spool file; each may relay, and an
event relayed twice is absorbed by the queue's de-duplication.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from schemas import EventMessage, EventMessageSchema
from webhooks.errors import QueueUnavailable
from workers.errors import BrokerUnavailable

log = logging.getLogger(__name__)

_messages = EventMessageSchema()
BUSY_TIMEOUT = 1.0  # longest an append waits for another process's write lock
SETUP_TIMEOUT = 10.0  # longest opening a new spool waits for processes opening it at once


class SpoolError(QueueUnavailable):
    """The spool could not store the event (disk full, read-only, corrupt)."""


def _set_up(connection: sqlite3.Connection) -> None:
    """WAL mode (kept in the file once set), fsync on commit, the table. gunicorn's workers
    open a new spool at the same moment; switching the journal mode needs a lock SQLite's busy
    timeout does not wait for, so a locked first-time setup is tried again for a while."""
    deadline = time.monotonic() + SETUP_TIMEOUT
    while True:
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS spool ("
                "seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, message TEXT NOT NULL)"
            )
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connect()  # fail at start-up, naming the path, if it cannot be opened

    def _connect(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            _set_up(connection)
            self._local.connection = connection
        return connection

    def append(self, message: EventMessage) -> None:
        """Store ``message`` durably; :class:`SpoolError` when that is impossible."""
        try:
            self._connect().execute(
                "INSERT INTO spool (id, message) VALUES (?, ?)",
                (message.id, json.dumps(message.to_json())),
            )
        except (sqlite3.Error, OSError) as exc:
            raise SpoolError(
                "The event could be neither queued nor spooled; retry later.",
                reason=f"spool {self.path} unwritable: {exc}",
            ) from exc

    def pending(self) -> int:
        try:
            row = self._connect().execute("SELECT count(*) FROM spool").fetchone()
        except (sqlite3.Error, OSError):
            return 0
        return int(row[0])

    def drain(self, enqueue: Callable[[EventMessage], bool], *, batch: int = 200) -> int:
        """Queue spooled events oldest first, removing each once queued; stop at the first
        failure (:class:`BrokerUnavailable` propagates). Returns how many were moved."""
        connection = self._connect()
        rows = connection.execute(
            "SELECT seq, message FROM spool ORDER BY seq LIMIT ?", (batch,)
        ).fetchall()
        moved = 0
        for seq, text in rows:
            try:
                message: EventMessage = _messages.load(json.loads(text))
            except ValueError as exc:  # cannot happen for rows this code wrote; keep them
                log.error("spooled row %s is unreadable, left in %s: %s", seq, self.path, exc)
                continue
            enqueue(message)
            connection.execute("DELETE FROM spool WHERE seq = ?", (seq,))
            moved += 1
        return moved


class Relay:
    """A daemon thread in each web process moving spooled events to the queue."""

    IDLE_INTERVAL = 0.5
    FAILING_INTERVAL = 1.0

    def __init__(self, spool: Spool, enqueue: Callable[[EventMessage], bool]) -> None:
        self.spool = spool
        self.enqueue = enqueue
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        """Start the thread in this process if it is not running (after a fork, it is not)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name="roomrec-spool-relay", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        failing = False
        while not self.stopping.is_set():
            try:
                moved = self.spool.drain(self.enqueue)
            except BrokerUnavailable as exc:
                if not failing:
                    log.warning("spool relay waiting for the queue: %s", exc)
                failing = True
                self.wake.wait(self.FAILING_INTERVAL)
                self.wake.clear()
                continue
            except Exception:  # keep relaying whatever happens; never lose the thread
                log.exception("spool relay failed; retrying")
                self.wake.wait(self.FAILING_INTERVAL)
                continue
            if moved:
                log.info("spool relay queued %d spooled event(s)", moved)
            if failing and moved:
                failing = False
            if not moved:
                self.wake.wait(self.IDLE_INTERVAL)
                self.wake.clear()
