"""Room completion in the worker: what each event tells the tracker, the ready event, and the
flow of ``after_event`` against the Twilio emulator and the private Redis."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from marshmallow import ValidationError

from emulator.client import EmulatorProcess
from schemas import EventMessageSchema, HandlerEvent, HandlerEventSchema, load_callback
from schemas.internal import ROOM_RECORDINGS_READY, load_internal
from tests.support.emulator import twilio_fixture
from tests.support.twilio import ACCOUNT_SID, recording_params, room_params, sid
from tests.unit.workers import sample_handlers
from tests.unit.workers.helpers import recording_event, room_event, worker_settings
from workers.delivery.celery_app import ROOM_RECORDINGS_TASK
from workers.delivery.dedup import event_id
from workers.handlers.forward import payload
from workers.handlers.stream import entry_fields
from workers.metadata import Store
from workers.pipeline import rooms
from workers.runtime.context import Runtime
from workers.state.keys import DELAYED_KEY
from workers.state.rooms import RoomState, room_state

MakeRuntime = Callable[..., Runtime]


# --- what each event tells ------------------------------------------------------------------


def test_room_ended_marks_the_room_ended() -> None:
    params = room_params("room-ended", RoomDuration="60")
    update = rooms.update_of(room_event(params))

    assert update is not None
    assert (update.room_sid, update.caller, update.ended) == (params["RoomSid"], event_id(params),
                                                               True)  # fmt: skip
    assert (update.account_sid, update.room_name) == (ACCOUNT_SID, "daily-standup")
    assert update.recordings == ()


@pytest.mark.parametrize(
    ("event", "fetched", "status"),
    [("recording-started", "processing", "processing"),
     ("recording-started", "completed", "completed"),  # fetched after it completed
     ("recording-completed", "processing", "completed"),  # the resource lags the callback
     ("recording-completed", "completed", "completed"),
     ("recording-failed", "failed", "failed"),
     ("recording-completed", "deleted", "deleted")],
)  # fmt: skip
def test_a_recording_event_tells_the_most_advanced_status(event: str, fetched: str, status: str):
    handled = recording_event(recording_params(event), status=fetched)
    update = rooms.update_of(handled)

    assert update is not None and not update.ended
    [seen] = update.recordings
    assert (seen.recording_sid, seen.status) == (handled.event.recording_sid, status)
    assert handled.recording is not None and seen.resource == handled.recording.raw
    assert seen.resource_status == fetched


@pytest.mark.parametrize("event", ["room-created", "participant-connected", "track-added"])
def test_other_events_tell_nothing(event: str) -> None:
    params = room_params(event, ParticipantSid=sid("PA"), TrackSid=sid("MT"), TrackKind="audio")
    assert rooms.update_of(room_event(params)) is None


# --- the ready event ------------------------------------------------------------------------


def ready_state(room: str, **changes: Any) -> RoomState:
    first, second = sid("RT"), sid("RT")
    resources = {
        first: {"sid": first, "status": "completed", "room_sid": room, "size": 10,
                "date_created": "2020-08-20T01:00:00Z"},
        second: {"sid": second, "status": "failed", "room_sid": room,
                 "date_created": "2020-08-20T00:59:00Z"},
    }  # fmt: skip
    base: dict[str, Any] = {
        "room_sid": room, "account_sid": ACCOUNT_SID, "room_name": "daily", "ended": True,
        "listed": True, "ready_by": "evt_x", "ready_at": "2020-08-20T01:05:00.000001Z",
        "statuses": {first: "completed", second: "failed"}, "resources": resources,
    }  # fmt: skip
    return RoomState(**(base | changes))


def test_the_ready_event_carries_every_recording_in_creation_order() -> None:
    room = sid("RM")
    state = ready_state(room)

    event = rooms.ready_event(state, ACCOUNT_SID)

    assert (event.id, event.type) == (rooms.ready_event_id(room), "room.recordings_ready")
    assert event.event.event == ROOM_RECORDINGS_READY and event.recording is None
    assert event.recordings is not None
    assert [r.raw for r in event.recordings] == sorted(
        state.resources.values(), key=lambda r: r["date_created"]
    )
    assert event.event.params["recording_count"] == 2
    assert event.event.params["room_name"] == "daily"
    assert event.received_at == datetime(2020, 8, 20, 1, 5, 0, 1, tzinfo=UTC)


def test_a_recording_known_without_its_resource_is_described_by_its_status() -> None:
    room = sid("RM")
    state = ready_state(room, resources={})

    recordings = rooms.ready_event(state, ACCOUNT_SID).recordings

    assert recordings is not None
    assert {(r.sid, r.status) for r in recordings} == set(state.statuses.items())


def test_the_ready_event_id_is_stable_per_room() -> None:
    room = sid("RM")
    assert rooms.ready_event_id(room) == rooms.ready_event_id(room)
    assert rooms.ready_event_id(room) != rooms.ready_event_id(sid("RM"))
    assert rooms.ready_event_id(room).startswith("evt_")


def test_the_ready_event_survives_the_queue_to_a_handler_task() -> None:
    event = rooms.ready_event(ready_state(sid("RM")), ACCOUNT_SID)

    loaded = HandlerEventSchema().load(json.loads(json.dumps(event.to_json())))

    assert loaded == event
    assert loaded.recordings is not None and event.recordings is not None
    assert [r.raw for r in loaded.recordings] == [r.raw for r in event.recordings]


def test_forward_and_stream_carry_the_ready_event() -> None:
    room = sid("RM")
    event = rooms.ready_event(ready_state(room), ACCOUNT_SID)
    assert event.recordings is not None

    body = payload(event)

    assert body["type"] == "room.recordings_ready"
    assert body["timestamp"] == "2020-08-20T01:05:00.000001Z"
    assert body["data"]["event"]["room_sid"] == room
    assert body["data"]["recordings"] == [r.raw for r in event.recordings]
    assert "recording" not in body["data"]
    assert entry_fields(event)["type"] == "room.recordings_ready"


def test_the_store_keeps_the_ready_event_once(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/roomrec.db")
    event = rooms.ready_event(ready_state(sid("RM")), ACCOUNT_SID)

    assert store.apply(event) is True
    assert store.apply(event) is False  # redelivered


def test_internal_events_are_refused_as_callbacks() -> None:
    params = {"AccountSid": ACCOUNT_SID, "RoomSid": sid("RM"), "Timestamp": "2020-08-20T01:05:00Z",
              "StatusCallbackEvent": ROOM_RECORDINGS_READY}  # fmt: skip
    with pytest.raises(ValidationError):
        load_callback(params)
    message = {"v": 1, "id": "evt_1", "params": params, "received_at": "2020-08-20T01:05:00Z"}
    with pytest.raises(ValidationError) as caught:
        EventMessageSchema().load(message)
    assert "StatusCallbackEvent" in caught.value.messages["params"]  # type: ignore[index]
    assert load_internal(params).type == "room.recordings_ready"


# --- the flow, against the emulator ---------------------------------------------------------


twilio = twilio_fixture(compositions_by_hand=True)


@pytest.fixture
def make_runtime(redis_url: str, app: Celery, twilio: EmulatorProcess) -> Iterator[MakeRuntime]:
    built: list[Runtime] = []
    sample_handlers.CALLS.clear()

    def make(**env: str) -> Runtime:
        defaults = {"ROOM_READY_EVENTS": "1", "TASK_MAX_RETRIES": "2",
                    "HANDLERS": "tests.unit.workers.sample_handlers:record"}  # fmt: skip
        settings = worker_settings(
            REDIS_URL=redis_url, TWILIO_VIDEO_BASE_URL=twilio.url, **(defaults | env)
        )
        runtime = Runtime.build(settings, app)
        built.append(runtime)
        return runtime

    yield make
    for runtime in built:
        runtime.redis.close()
    sample_handlers.CALLS.clear()


class Room:
    """A room in the emulator and the handled events of its callbacks."""

    def __init__(self, twilio: EmulatorProcess, recordings: int = 2) -> None:
        self.control = twilio.control
        self.sid = sid("RM")
        self.control.create_room(sid=self.sid)
        self.recordings = [
            self.control.create_recording(room_sid=self.sid, type="audio")["sid"]
            for _ in range(recordings)
        ]

    def recording(self, rt: Runtime, event: str, recording: str, **fields: Any) -> HandlerEvent:
        if fields:
            self.control.update_recording(recording, **fields)
        params = recording_params(event, RoomSid=self.sid, RecordingSid=recording)
        fetched = rt.twilio.main.fetch_recording(self.sid, recording)
        return HandlerEvent(id=event_id(params), event=load_callback(params), recording=fetched,
                            received_at=datetime.now(UTC))  # fmt: skip

    def ended(self) -> HandlerEvent:
        return room_event(room_params("room-ended", RoomSid=self.sid, RoomDuration="60"))


def ready_calls() -> list[HandlerEvent]:
    return [event for event, _ in sample_handlers.CALLS if event.type == "room.recordings_ready"]


def delayed_tasks(rt: Runtime) -> list[str]:
    messages = rt.redis.zrange(DELAYED_KEY.format("roomrec.events"), 0, -1)
    return [json.loads(message)["headers"]["task"] for message in messages]


def test_a_room_is_ready_when_its_recordings_complete_after_it_ended(
    make_runtime: MakeRuntime, twilio: EmulatorProcess
) -> None:
    rt = make_runtime()
    room = Room(twilio)
    first, second = room.recordings
    for recording in room.recordings:
        rooms.after_event(rt, room.recording(rt, "recording-started", recording))
    rooms.after_event(rt, room.ended())
    listings = [
        r for r in twilio.control.requests() if r["path"].endswith(f"{room.sid}/Recordings")
    ]
    assert len(listings) == 1
    done = room.recording(rt, "recording-completed", first, status="completed", size=2048)
    rooms.after_event(rt, done)
    assert ready_calls() == []

    last = room.recording(rt, "recording-failed", second, status="failed")
    rooms.after_event(rt, last)

    [ready] = ready_calls()
    assert ready.id == rooms.ready_event_id(room.sid)
    assert ready.recordings is not None
    assert {(r.sid, r.status) for r in ready.recordings} == {(first, "completed"),
                                                              (second, "failed")}  # fmt: skip
    rooms.after_event(rt, last)  # redelivered: emits again, the handler is done already
    rooms.after_event(rt, room.recording(rt, "recording-completed", first))  # a late one
    assert len(ready_calls()) == 1


def test_recordings_whose_callbacks_never_came_are_learnt_from_the_listing(
    make_runtime: MakeRuntime, twilio: EmulatorProcess
) -> None:
    rt = make_runtime()
    room = Room(twilio, recordings=3)
    for recording in room.recordings:
        twilio.control.update_recording(recording, status="completed", size=100, duration=1)

    rooms.after_event(rt, room.ended())

    [ready] = ready_calls()
    assert ready.recordings is not None
    assert sorted(r.sid for r in ready.recordings) == sorted(room.recordings)


def test_nothing_is_tracked_unless_configured(
    make_runtime: MakeRuntime, twilio: EmulatorProcess
) -> None:
    rt = make_runtime(ROOM_READY_EVENTS="0")
    room = Room(twilio, recordings=0)

    rooms.after_event(rt, room.ended())

    assert ready_calls() == [] and twilio.control.requests() == []
    assert rt.redis.keys("roomrec:room:*") == []


def test_a_failed_listing_is_retried_apart_then_completes_the_room(
    make_runtime: MakeRuntime, twilio: EmulatorProcess
) -> None:
    rt = make_runtime()
    room = Room(twilio, recordings=1)
    twilio.control.update_recording(room.recordings[0], status="completed", size=100, duration=1)
    twilio.control.add_fault(f"{room.sid}/Recordings$", "status", status=503, count=1)
    ended = room.ended()

    rooms.after_event(rt, ended)

    assert ready_calls() == []
    assert delayed_tasks(rt) == [ROOM_RECORDINGS_TASK]
    rooms.list_recordings(rt, room.sid, ended.id, attempt=1)  # the retry
    assert len(ready_calls()) == 1


def test_a_refused_listing_is_dead_lettered(
    make_runtime: MakeRuntime, twilio: EmulatorProcess
) -> None:
    rt = make_runtime()
    room = Room(twilio, recordings=1)
    twilio.control.add_fault(f"{room.sid}/Recordings$", "status", status=403)
    ended = room.ended()

    rooms.after_event(rt, ended)

    [letter] = rt.dead_letters.list()
    assert (letter["stage"], letter["event_id"]) == (rooms.LIST_STAGE, ended.id)
    assert "403" in letter["error"] and delayed_tasks(rt) == []
    assert room_state(rt.redis, room.sid).ready_by is None
