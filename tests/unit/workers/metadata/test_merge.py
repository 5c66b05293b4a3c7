from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.support.twilio import sid
from tests.unit.workers.store_events import Room
from workers.metadata.merge import (
    event_key,
    merge_recording,
    merge_room,
    recording_row,
    room_row,
    sortable,
)


def test_sortable_text_orders_as_time_whatever_the_offset() -> None:
    base = datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC)
    moments = [
        base,
        base + timedelta(microseconds=1),
        (base + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=5))),
        datetime(999, 1, 1, tzinfo=UTC),
    ]
    assert sorted(moments) == sorted(moments, key=sortable)
    assert sortable(moments[2]) == "2026-03-01T12:00:01.000005Z"
    assert sortable(moments[3]).startswith("0999-")


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("recording-started", "recording-completed"),
        ("recording-started", "recording-failed"),
        ("room-created", "participant-connected"),
        ("participant-disconnected", "room-ended"),
    ],
)
def test_at_the_same_timestamp_the_later_kind_of_event_sorts_last(first: str, then: str) -> None:
    room, rt = Room(), sid("RT")
    events = []
    for name in (first, then):
        if name.startswith("recording-"):
            events.append(room.recording(name, rt, 5))
        else:
            events.append(room.event(name, 5))
    assert event_key(events[0]) < event_key(events[1])


def test_a_later_timestamp_sorts_last_whatever_the_kind() -> None:
    room, rt = Room(), sid("RT")
    completed = room.recording("recording-completed", rt, 5)
    started = room.recording("recording-started", rt, 5.000001)
    assert event_key(completed) < event_key(started)


def test_a_late_recording_started_changes_nothing_of_a_completed_recording() -> None:
    room, rt = Room(), sid("RT")
    completed = recording_row(room.recording("recording-completed", rt, 60))
    started = recording_row(room.recording("recording-started", rt, 1))

    assert merge_recording(completed, started) == {}
    assert merge_recording(completed, completed) == {}
    changes = merge_recording(started, completed)
    assert changes["status"] == "completed"
    assert changes["last_event_key"] == completed["last_event_key"]


def test_the_fetched_recording_is_the_truth_for_its_status() -> None:
    room, rt = Room(), sid("RT")
    # The worker fetched the resource after it had completed: the started event says so.
    started = recording_row(room.recording("recording-started", rt, 1, status="completed"))
    assert started["status"] == "completed"
    assert started["raw"]["status"] == "completed"


def test_without_a_fetched_recording_the_event_implies_the_status() -> None:
    room, rt = Room(), sid("RT")
    event = room.recording("recording-failed", rt, 1)
    bare = type(event)(id=event.id, event=event.event, recording=None,
                       received_at=event.received_at)  # fmt: skip
    row = recording_row(bare)
    assert row["status"] == "failed" and row["raw"] is None
    assert row["codec"] == "VP8" and row["container_format"] == "mkv"
    assert row["date_created"] == event.event.timestamp


def test_room_status_follows_the_newest_event_that_carries_one() -> None:
    room = Room()
    ended = room_row(room.event("room-ended", 600))
    late_participant = room_row(room.event("participant-connected", 30, RoomStatus="in-progress"))
    created = room_row(room.event("room-created", 0))

    state = dict(ended)
    state |= merge_room(state, late_participant)
    state |= merge_room(state, created)

    assert state["status"] == "completed"
    assert state["created_at"] == created["created_at"]
    assert state["ended_at"] == ended["ended_at"] and state["duration"] == 600
    assert state["last_event_at"] == ended["last_event_at"]


def test_a_recording_event_without_room_status_leaves_the_room_status() -> None:
    room, rt = Room(), sid("RT")
    state = room_row(room.event("room-created", 0))
    started = room_row(room.recording("recording-started", rt, 5))
    assert started["status"] is None
    assert merge_room(state, started) == {"last_event_at": started["last_event_at"]}
