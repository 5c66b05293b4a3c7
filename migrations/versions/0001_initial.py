"""Rooms, recordings and the events of each.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SID = sa.String(34)
KEY = sa.String(300)
JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def utc_datetime() -> sa.DateTime:
    """The models' UTCDateTime as the database sees it."""
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("sid", SID, primary_key=True),
        sa.Column("account_sid", SID, nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("status_key", KEY, nullable=True),
        sa.Column("created_at", utc_datetime(), nullable=True),
        sa.Column("ended_at", utc_datetime(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("last_event_at", utc_datetime(), nullable=False),
    )
    op.create_table(
        "recordings",
        sa.Column("sid", SID, primary_key=True),
        sa.Column("room_sid", SID, sa.ForeignKey("rooms.sid"), nullable=False),
        sa.Column("account_sid", SID, nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("participant_sid", SID, nullable=True),
        sa.Column("source_sid", sa.Text(), nullable=True),
        sa.Column("type", sa.String(16), nullable=True),
        sa.Column("codec", sa.String(16), nullable=True),
        sa.Column("container_format", sa.String(16), nullable=True),
        sa.Column("track_name", sa.Text(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("offset", sa.BigInteger(), nullable=True),
        sa.Column("date_created", utc_datetime(), nullable=False),
        sa.Column("grouping_sids", JSONDocument, nullable=True),
        sa.Column("media_external_location", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("links", JSONDocument, nullable=True),
        sa.Column("raw", JSONDocument, nullable=True),
        sa.Column("last_event_at", utc_datetime(), nullable=False),
        sa.Column("last_event_key", KEY, nullable=False),
    )
    op.create_index("ix_recordings_date_created_sid", "recordings", ["date_created", "sid"])
    op.create_index("ix_recordings_room_sid", "recordings", ["room_sid"])
    op.create_index("ix_recordings_status", "recordings", ["status"])
    op.create_table(
        "events",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("room_sid", SID, sa.ForeignKey("rooms.sid"), nullable=False),
        sa.Column("recording_sid", SID, sa.ForeignKey("recordings.sid"), nullable=True),
        sa.Column("participant_sid", SID, nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("timestamp", utc_datetime(), nullable=False),
        sa.Column("params", JSONDocument, nullable=False),
        sa.Column("received_at", utc_datetime(), nullable=False),
    )
    op.create_index("ix_events_room_sid_timestamp", "events", ["room_sid", "timestamp"])
    op.create_index("ix_events_recording_sid_timestamp", "events", ["recording_sid", "timestamp"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("recordings")
    op.drop_table("rooms")
