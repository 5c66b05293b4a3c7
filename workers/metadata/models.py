"""The tables of the store: rooms, their recordings, and the history of events of each.

Every timestamp is stored in UTC and read back as an aware datetime, on SQLite (which has no
time zones) as on PostgreSQL. ``last_event_key`` orders the events that changed a row: the
event's ``Timestamp``, then a rank of its kind, then its id (see :mod:`workers.metadata.merge`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

SID_LENGTH = 34
KEY_LENGTH = 300  # timestamp (27) + rank + event id (<= 200)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored as UTC (naive on SQLite, ``timestamptz`` on PostgreSQL)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JSONDocument(TypeDecorator[Any]):
    """JSON, ``jsonb`` on PostgreSQL. Not ``JSON().with_variant(JSONB(), "postgresql")``: that
    imports PostgreSQL's dialect (about 2 MiB) into every process, whatever its database."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDocument()}


class Room(Base):
    __tablename__ = "rooms"

    sid: Mapped[str] = mapped_column(String(SID_LENGTH), primary_key=True)
    account_sid: Mapped[str] = mapped_column(String(SID_LENGTH))
    name: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text)
    # The key of the newest event that carried a RoomStatus.
    status_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    created_at: Mapped[datetime | None]  # Timestamp of room-created
    ended_at: Mapped[datetime | None]  # Timestamp of room-ended
    duration: Mapped[int | None] = mapped_column(Integer)  # RoomDuration, seconds
    last_event_at: Mapped[datetime]


class Recording(Base):
    __tablename__ = "recordings"
    __table_args__ = (
        Index("ix_recordings_date_created_sid", "date_created", "sid"),
        Index("ix_recordings_room_sid", "room_sid"),
        Index("ix_recordings_status", "status"),
    )

    sid: Mapped[str] = mapped_column(String(SID_LENGTH), primary_key=True)
    room_sid: Mapped[str] = mapped_column(String(SID_LENGTH), ForeignKey("rooms.sid"))
    account_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH))
    status: Mapped[str] = mapped_column(String(32))
    participant_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH))
    source_sid: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(String(16))
    codec: Mapped[str | None] = mapped_column(String(16))
    container_format: Mapped[str | None] = mapped_column(String(16))
    track_name: Mapped[str | None] = mapped_column(Text)
    duration: Mapped[int | None] = mapped_column(Integer)
    size: Mapped[int | None] = mapped_column(BigInteger)
    offset: Mapped[int | None] = mapped_column(BigInteger)
    # Twilio's date_created; the first event's Timestamp until a resource says otherwise.
    date_created: Mapped[datetime]
    grouping_sids: Mapped[dict[str, Any] | None]
    media_external_location: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    links: Mapped[dict[str, Any] | None]
    raw: Mapped[dict[str, Any] | None]  # the RoomRecording JSON as Twilio returned it
    last_event_at: Mapped[datetime]
    last_event_key: Mapped[str] = mapped_column(String(KEY_LENGTH))


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_room_sid_timestamp", "room_sid", "timestamp"),
        Index("ix_events_recording_sid_timestamp", "recording_sid", "timestamp"),
    )

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # HandlerEvent.id
    room_sid: Mapped[str] = mapped_column(String(SID_LENGTH), ForeignKey("rooms.sid"))
    recording_sid: Mapped[str | None] = mapped_column(
        String(SID_LENGTH), ForeignKey("recordings.sid")
    )
    participant_sid: Mapped[str | None] = mapped_column(String(SID_LENGTH))
    type: Mapped[str] = mapped_column(String(64))  # dotted: recording.completed
    timestamp: Mapped[datetime]
    params: Mapped[dict[str, Any]]  # the callback's parameters, typed, snake_case
    received_at: Mapped[datetime]
