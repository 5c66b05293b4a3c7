"""Writing events to the store: the event once, its room and recording merged in.

One transaction per event. The event row is inserted once (its id is unique, so a redelivered
task inserts nothing); the room and recording rows are inserted when new, else locked
(``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers) and merged with :mod:`workers.metadata.merge`, so concurrent workers never lose an
update and a late event never rolls a row back.

Every transaction inserts in the same order (room, recording, event) and then locks in the
same order (room, recording); ``NO KEY UPDATE`` does not conflict with the ``KEY SHARE`` locks
the foreign keys of an inserted event take. So two writers never wait for each other in a
cycle (a ``FOR UPDATE`` here deadlocked under concurrent workers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, Executable, Table, bindparam, select, update
from sqlalchemy.dialects import sqlite

from schemas import HandlerEvent
from workers.metadata.engine import write_transaction
from workers.metadata.errors import translated
from workers.metadata.merge import event_row, merge_recording, merge_room, recording_row, room_row
from workers.metadata.models import Base

ROOMS: Table = Base.metadata.tables["rooms"]
RECORDINGS: Table = Base.metadata.tables["recordings"]
EVENTS: Table = Base.metadata.tables["events"]

WHERE_SID = "where_sid"  # the bound parameter of the row a merge reads and updates

Merge = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]


def apply_event(engine: Engine, event: HandlerEvent) -> bool:
    """Store ``event``; False when it was stored before (nothing is then changed)."""
    callback = event.event
    with translated(f"storing {event.id}"), write_transaction(engine) as connection:
        room = room_row(event)
        room_is_new = _insert_new(connection, ROOMS, room, "sid")
        recording = recording_row(event) if callback.is_recording else None
        recording_is_new = recording is not None and _insert_new(
            connection, RECORDINGS, recording, "sid"
        )
        if not _insert_new(connection, EVENTS, event_row(event), "id"):
            return False
        if not room_is_new:
            _merge(connection, ROOMS, room, merge_room)
        if recording is not None and not recording_is_new:
            _merge(connection, RECORDINGS, recording, merge_recording)
    return True


# Each statement is built once, and the rows are passed to it as parameters: SQLAlchemy then
# compiles it once and only binds values per event. Built per event with ``.values(row)``, each
# statement cost a cache key over every value: about 0.2 ms of CPU per statement, 3 to 6 of them
# per event.


@cache
def _insert_new_statement(dialect: str, table: Table, key: str) -> Executable:
    """``INSERT ... ON CONFLICT (key) DO NOTHING RETURNING key`` into ``table``."""
    insert: Callable[[Table], Any] = sqlite.insert
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # loaded only for a PostgreSQL database

        insert = postgresql.insert
    return insert(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])


@cache
def _locked_row_statement(table: Table) -> Executable:
    """The row whose ``sid`` is ``:where_sid``, locked for the merge."""
    return select(table).where(table.c.sid == bindparam(WHERE_SID)).with_for_update(key_share=True)


@cache
def _update_row_statement(table: Table) -> Executable:
    """``UPDATE table SET ... WHERE sid = :where_sid``: the columns set are the parameters."""
    return update(table).where(table.c.sid == bindparam(WHERE_SID))


def _insert_new(connection: Connection, table: Table, row: Mapping[str, Any], key: str) -> bool:
    """Insert ``row`` unless its ``key`` exists; whether it was inserted."""
    statement = _insert_new_statement(connection.dialect.name, table, key)
    return connection.execute(statement, dict(row)).first() is not None


def _merge(connection: Connection, table: Table, new: Mapping[str, Any], merge: Merge) -> None:
    where = {WHERE_SID: new["sid"]}
    current = connection.execute(_locked_row_statement(table), where).mappings().one()
    changes = merge(dict(current), new)
    if changes:
        connection.execute(_update_row_statement(table), changes | where)
