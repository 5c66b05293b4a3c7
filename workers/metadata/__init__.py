"""The store: rooms, recordings and the history of their events, in SQL (SQLAlchemy 2).

``Store.open(DATABASE_URL)`` gives one process its store: :meth:`Store.apply` writes an event
(the ``store`` handler), :meth:`Store.recordings` and :meth:`Store.recording` read (the web's
read API, :mod:`workers.metadata.queries`). The schema is Alembic's (``migrations/``, see
:mod:`workers.metadata.migrate`); the first use checks it, and migrates a SQLite database.

A worker imports only what writing needs: the read API's queries load on the first read,
Alembic only when the database is not at the revision this code needs
(:mod:`workers.metadata.revision`), PostgreSQL's dialect only for a PostgreSQL database.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from schemas import HandlerEvent
from workers.metadata.engine import make_engine
from workers.metadata.errors import SchemaNotReady, StoreRefused, StoreUnavailable
from workers.metadata.repository import apply_event
from workers.metadata.revision import ensure_schema

if TYPE_CHECKING:
    from workers.metadata.queries import Page, Position, RecordingDetail, RecordingFilters

__all__ = ["SchemaNotReady", "Store", "StoreRefused", "StoreUnavailable"]


class Store:
    """The store of one process (never shared across a fork: build it after)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str) -> Store:
        """The store at ``url``; nothing is connected until first use."""
        return cls(make_engine(url))

    def ready(self) -> None:
        """Check the schema (migrating SQLite) once; raises :class:`SchemaNotReady`."""
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                ensure_schema(self.engine)
                self._ready = True

    def apply(self, event: HandlerEvent) -> bool:
        """Store ``event``; False when it was already stored."""
        self.ready()
        return apply_event(self.engine, event)

    def recordings(
        self, filters: RecordingFilters, *, limit: int, after: Position | None = None
    ) -> Page:
        from workers.metadata.queries import list_recordings

        self.ready()
        return list_recordings(self.engine, filters, limit=limit, after=after)

    def recording(self, sid: str) -> RecordingDetail | None:
        from workers.metadata.queries import get_recording

        self.ready()
        return get_recording(self.engine, sid)

    def close(self) -> None:
        self.engine.dispose()
