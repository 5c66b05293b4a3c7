"""How one event changes the stored rows: pure functions, no database.

Events arrive late, twice, and out of order, so a row is never simply overwritten. Each event
has an order key (:func:`event_key`): its ``Timestamp`` (Twilio's true order; ``SequenceNumber``
is not), then a rank of its kind (a ``recording-completed`` sorts after a ``recording-started``
with the same Timestamp), then its id. A row's state is taken from the event with the greatest
key that carries it; facts that belong to one kind of event (the room's creation and end) are
kept whatever the order. Applying a set of events in any order, with repeats, therefore gives
the rows that applying them sorted gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from schemas import HandlerEvent

# Where each event falls among events with the same Timestamp: the order Twilio sends them in.
RANK = {
    "room-created": 0,
    "participant-connected": 1,
    "track-added": 2,
    "recording-started": 3,
    "track-enabled": 4,
    "track-disabled": 4,
    "track-removed": 5,
    "participant-disconnected": 6,
    "recording-failed": 7,
    "recording-completed": 7,
    "room-ended": 8,
}
# A room's status when the callback has no RoomStatus; other events then say nothing of it.
IMPLIED_ROOM_STATUS = {"room-created": "in-progress", "room-ended": "completed"}
# A recording's status when no RoomRecording was fetched (the resource is the truth otherwise).
IMPLIED_RECORDING_STATUS = {
    "recording-started": "processing",
    "recording-completed": "completed",
    "recording-failed": "failed",
}
RECORDING_COLUMNS = (
    "account_sid", "status", "participant_sid", "source_sid", "type", "codec",
    "container_format", "track_name", "duration", "size", "offset", "date_created",
    "grouping_sids", "media_external_location", "url", "links", "raw", "last_event_at",
    "last_event_key",
)  # fmt: skip


def sortable(moment: datetime) -> str:
    """``moment`` in UTC as fixed-width text, so that text order is time order."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S.%f}Z"


def event_key(event: HandlerEvent) -> str:
    """The order key of ``event``: Timestamp, rank of its kind, id."""
    rank = RANK.get(event.event.event, len(RANK))
    return f"{sortable(event.event.timestamp)}|{rank:02d}|{event.id}"


def event_row(event: HandlerEvent) -> dict[str, Any]:
    callback = event.event
    return {
        "id": event.id,
        "room_sid": callback.room_sid,
        "recording_sid": callback.recording_sid if callback.is_recording else None,
        "participant_sid": callback.participant_sid,
        "type": callback.type,
        "timestamp": callback.timestamp,
        "params": callback.to_json(),
        "received_at": event.received_at,
    }


def room_row(event: HandlerEvent) -> dict[str, Any]:
    """The room as this event alone describes it."""
    callback, params = event.event, event.event.params
    status = params.get("room_status") or IMPLIED_ROOM_STATUS.get(callback.event)
    ended = callback.event == "room-ended"
    return {
        "sid": callback.room_sid,
        "account_sid": callback.account_sid,
        "name": params.get("room_name"),
        "type": params.get("room_type"),
        "status": status,
        "status_key": event_key(event) if status else None,
        "created_at": callback.timestamp if callback.event == "room-created" else None,
        "ended_at": callback.timestamp if ended else None,
        "duration": params.get("room_duration") if ended else None,
        "last_event_at": callback.timestamp,
    }


def merge_room(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of ``current`` that ``new`` (a :func:`room_row`) changes."""
    merged = {
        # A room's name and type never change: the first ones known are kept.
        "name": current["name"] or new["name"],
        "type": current["type"] or new["type"],
        "created_at": _earliest(current["created_at"], new["created_at"]),
        "last_event_at": max(current["last_event_at"], new["last_event_at"]),
    }
    if new["status"] and (current["status_key"] or "") < new["status_key"]:
        merged |= {"status": new["status"], "status_key": new["status_key"]}
    if new["ended_at"] and _end(new) > _end(current):
        merged |= {"ended_at": new["ended_at"], "duration": new["duration"]}
    return {name: value for name, value in merged.items() if current[name] != value}


def recording_row(event: HandlerEvent) -> dict[str, Any]:
    """The recording as this event describes it: the fetched RoomRecording when there is one
    (Twilio's truth, status included), else what the callback says."""
    callback, params, resource = event.event, event.event.params, event.recording
    row: dict[str, Any] = {
        "sid": callback.recording_sid,
        "room_sid": callback.room_sid,
        "last_event_at": callback.timestamp,
        "last_event_key": event_key(event),
    }
    if resource is not None:
        return row | {
            "account_sid": resource.account_sid or callback.account_sid,
            "status": resource.status,
            "participant_sid": resource.participant_sid or callback.participant_sid,
            "source_sid": resource.source_sid, "type": resource.type, "codec": resource.codec,
            "container_format": resource.container_format, "track_name": resource.track_name,
            "duration": resource.duration, "size": resource.size, "offset": resource.offset,
            "date_created": resource.date_created or callback.timestamp,
            "grouping_sids": resource.grouping_sids,
            "media_external_location": resource.media_external_location,
            "url": resource.url, "links": resource.links, "raw": resource.raw,
        }  # fmt: skip
    return row | {
        "account_sid": callback.account_sid,
        "status": IMPLIED_RECORDING_STATUS.get(callback.event, "processing"),
        "participant_sid": callback.participant_sid,
        "source_sid": params.get("source_sid"), "type": params.get("type"),
        "codec": params.get("codec"), "container_format": params.get("container"),
        "track_name": params.get("track_name"), "duration": params.get("duration"),
        "size": params.get("size"), "offset": params.get("offset_from_twilio_video_epoch"),
        "date_created": callback.timestamp, "grouping_sids": None,
        "media_external_location": params.get("media_external_location"),
        "url": None, "links": None, "raw": None,
    }  # fmt: skip


def merge_recording(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of ``current`` that ``new`` (a :func:`recording_row`) changes: all of them
    when ``new`` comes from a newer event, none otherwise. A late ``recording-started`` never
    undoes a ``completed``."""
    if new["last_event_key"] <= current["last_event_key"]:
        return {}
    merged = {name: new[name] for name in RECORDING_COLUMNS}
    if new["raw"] is None and current["raw"] is not None:
        merged["date_created"] = current["date_created"]  # Twilio's, not a callback's time
    return {name: value for name, value in merged.items() if current[name] != value}


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _end(row: Mapping[str, Any]) -> tuple[str, int]:
    ended = row["ended_at"]
    return (sortable(ended) if ended else "", row["duration"] if row["duration"] else -1)
