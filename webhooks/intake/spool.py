"""The web host's local spool: accepted callbacks wait here while the queue is unreachable.

SQLite in WAL mode with ``synchronous=FULL``: an append is on disk (fsync'd) before the callback
is answered. A :class:`Relay` thread moves spooled events to the queue, oldest first, as soon as
the queue answers again. Several gunicorn processes share one spool file; one relays at a time
(:meth:`Spool.drain`), and an event relayed twice is absorbed by the queue's de-duplication.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from schemas import EventMessage, EventMessageSchema
from schemas.settings import DEFAULT_SPOOL_MAX_EVENTS
from webhooks.errors import QueueUnavailable, SpoolFull
from workers.service.intake import BrokerUnavailable, enable_wal

log = logging.getLogger(__name__)

_messages = EventMessageSchema()
BUSY_TIMEOUT = 1.0  # longest an append waits for another process's write lock
SETUP_TIMEOUT = 10.0  # longest opening a new spool waits for processes opening it at once


class SpoolError(QueueUnavailable):
    """The spool could not store the event (disk full, read-only, corrupt)."""


# One row per event id: a callback replayed while the queue is down is spooled once. The size
# is kept by triggers in a one-row table, so that the bound check and ``pending()`` (on every
# callback) read one row instead of counting the table.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spool ("
    "seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, message TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS spool_size ("
    "one INTEGER PRIMARY KEY CHECK (one = 1), events INTEGER NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS spool_added AFTER INSERT ON spool "
    "BEGIN UPDATE spool_size SET events = events + 1; END",
    "CREATE TRIGGER IF NOT EXISTS spool_removed AFTER DELETE ON spool "
    "BEGIN UPDATE spool_size SET events = events - 1; END",
)
_UNIQUE_INDEX = "spool_id_unique"


def _set_up(connection: sqlite3.Connection) -> None:
    """WAL mode (kept in the file once set), fsync on commit, the tables. gunicorn's workers
    open a new spool at the same moment: the journal mode is switched with retries
    (:func:`workers.service.intake.enable_wal`), and the tables' transaction waits for the
    others' for up to ``SETUP_TIMEOUT`` rather than an append's ``BUSY_TIMEOUT``."""
    enable_wal(connection, timeout=SETUP_TIMEOUT)
    connection.execute("PRAGMA synchronous=FULL")
    if not _is_current(connection):
        connection.execute(f"PRAGMA busy_timeout = {int(SETUP_TIMEOUT * 1000)}")
        try:
            _migrate(connection)
        finally:
            connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")


def _is_current(connection: sqlite3.Connection) -> bool:
    names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    return {"spool", "spool_size", "spool_added", "spool_removed"} <= names and _unique_id(
        connection
    )


def _unique_id(connection: sqlite3.Connection) -> bool:
    """Whether a unique index covers ``spool.id`` alone (the table's constraint, or the index
    a spool file of an older version gets in :func:`_migrate`)."""
    for _, name, unique, *_ in connection.execute("PRAGMA index_list(spool)").fetchall():
        columns = [row[2] for row in connection.execute(f"PRAGMA index_info('{name}')")]
        if unique and columns == ["id"]:
            return True
    return False


def _migrate(connection: sqlite3.Connection) -> None:
    """Create the tables, or bring a spool file of an older version up to date: its table has
    no unique ``id`` (keep the oldest row of each id, then index it) and no size table. One
    write transaction, so processes opening the file at once do it once."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            connection.execute(statement)
        if not _unique_id(connection):
            removed = connection.execute(
                "DELETE FROM spool WHERE seq NOT IN (SELECT min(seq) FROM spool GROUP BY id)"
            ).rowcount
            connection.execute(f"CREATE UNIQUE INDEX {_UNIQUE_INDEX} ON spool (id)")
            log.info("spool upgraded: one row per event id (%d duplicate row(s) removed)", removed)
        connection.execute(
            "INSERT OR IGNORE INTO spool_size (one, events) SELECT 1, count(*) FROM spool"
        )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


class Spool:
    """The spool file at ``path``, holding at most ``max_events`` events."""

    def __init__(self, path: Path, *, max_events: int = DEFAULT_SPOOL_MAX_EVENTS) -> None:
        self.path = path
        self.max_events = max_events
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

    def append(self, message: EventMessage) -> bool:
        """Store ``message`` durably, once per event id: False when it is spooled already.
        :class:`SpoolFull` when the spool holds ``max_events``, :class:`SpoolError` when the
        disk refuses."""
        try:
            connection = self._connect()
            added = connection.execute(
                "INSERT OR IGNORE INTO spool (id, message) SELECT ?, ? "
                "WHERE (SELECT events FROM spool_size) < ?",
                (message.id, json.dumps(message.to_json()), self.max_events),
            ).rowcount
            if added:
                return True
            if connection.execute("SELECT 1 FROM spool WHERE id = ?", (message.id,)).fetchone():
                return False
        except (sqlite3.Error, OSError) as exc:
            raise SpoolError(
                "The event could be neither queued nor spooled; retry later.",
                reason=f"spool {self.path} unwritable: {exc}",
            ) from exc
        raise SpoolFull(
            "The queue is unavailable and the local spool is full; retry later.",
            reason=f"spool {self.path} holds SPOOL_MAX_EVENTS={self.max_events} events",
        )

    def pending(self) -> int:
        """How many events wait in the spool (one row read, not a count)."""
        try:
            row = self._connect().execute("SELECT events FROM spool_size").fetchone()
        except (sqlite3.Error, OSError):
            return 0
        return int(row[0]) if row else 0

    def drain(self, enqueue: Callable[[EventMessage], bool], *, batch: int = 200) -> int:
        """Queue spooled events oldest first, removing each once queued; stop at the first
        failure (:class:`BrokerUnavailable` propagates). Returns how many were moved: 0 while
        another process relays. One relay at a time, because with RabbitMQ as the broker an
        enqueue answering "seen already" may mean another relay's enqueue of the same event is
        under way, which can still fail and take its marks back: a second relay deleting its
        row on that answer would lose the event."""
        with self._relaying() as alone:
            if not alone:
                return 0
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

    @contextmanager
    def _relaying(self) -> Iterator[bool]:
        """An exclusive lock on ``<spool>.relay-lock`` if no other process holds it: whether
        this one got it (released on exit, or when the process dies)."""
        with open(f"{self.path}.relay-lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True


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
