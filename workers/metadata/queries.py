"""Reading the store for the API: recordings filtered and paged, one recording in full."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, or_, select
from sqlalchemy.orm import Session

from workers.metadata.errors import translated
from workers.metadata.models import Event, Recording, Room


@dataclass(frozen=True, slots=True)
class RecordingFilters:
    room_sid: str | None = None
    status: str | None = None
    type: str | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ends: recordings are listed newest first, by (date_created, sid)."""

    date_created: datetime
    sid: str


@dataclass(frozen=True, slots=True)
class Page:
    recordings: list[Recording]
    next: Position | None  # None on the last page


@dataclass(frozen=True, slots=True)
class RecordingDetail:
    recording: Recording
    room: Room
    events: list[Event]  # ordered by Timestamp


def list_recordings(
    engine: Engine, filters: RecordingFilters, *, limit: int, after: Position | None = None
) -> Page:
    """Up to ``limit`` recordings matching ``filters``, newest first, after ``after``."""
    query = select(Recording)
    if filters.room_sid:
        query = query.where(Recording.room_sid == filters.room_sid)
    if filters.status:
        query = query.where(Recording.status == filters.status)
    if filters.type:
        query = query.where(Recording.type == filters.type)
    if filters.created_after:
        query = query.where(Recording.date_created >= filters.created_after)
    if filters.created_before:
        query = query.where(Recording.date_created < filters.created_before)
    if after is not None:
        query = query.where(
            or_(
                Recording.date_created < after.date_created,
                and_(Recording.date_created == after.date_created, Recording.sid < after.sid),
            )
        )
    query = query.order_by(Recording.date_created.desc(), Recording.sid.desc()).limit(limit + 1)
    with translated("listing recordings"), Session(engine) as session:
        rows = list(session.scalars(query))
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if more else None
    return Page(page, Position(last.date_created, last.sid) if last else None)


def get_recording(engine: Engine, sid: str) -> RecordingDetail | None:
    """The recording ``sid`` with its room and events; None when it is not stored."""
    with translated(f"reading {sid}"), Session(engine) as session:
        recording = session.get(Recording, sid)
        if recording is None:
            return None
        room = session.get_one(Room, recording.room_sid)
        events = session.scalars(
            select(Event).where(Event.recording_sid == sid).order_by(Event.timestamp, Event.id)
        ).all()
        return RecordingDetail(recording, room, list(events))
