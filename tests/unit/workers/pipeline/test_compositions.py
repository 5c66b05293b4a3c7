"""Compositions from the worker's side, against the Twilio emulator and the private Redis: one
per room whatever happens, the Twilio calls, and the archive of their media."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from emulator.client import EmulatorProcess
from emulator.model.media import media_sha256
from schemas import HandlerEvent, HandlerEventSchema, load_callback
from schemas.settings import ConfigurationError
from tests.support.emulator import twilio_fixture
from tests.support.twilio import ACCOUNT_SID, room_params, sid
from tests.unit.workers.helpers import worker_settings
from workers.delivery.celery_app import COMPOSE_TASK
from workers.delivery.dedup import event_id
from workers.errors import NotFoundYet, PermanentError
from workers.handlers import HandlerContext
from workers.handlers.archive import ArchiveHandler
from workers.handlers.forward import payload
from workers.pipeline import compositions, rooms
from workers.pipeline.compositions import Composer, ComposerBusy, composition_form
from workers.runtime.context import Runtime
from workers.state.keys import COMPOSING_LOCK_KEY, COMPOSITION_KEY, DELAYED_KEY
from workers.twilio.client import TwilioVideo, load_composition

PUBLIC = "https://rec.example.com"
STATUS_CALLBACK = f"{PUBLIC}/twilio/room-events"


twilio = twilio_fixture(compositions_by_hand=True)


@pytest.fixture
def runtime(redis_url: str, app: Celery, twilio: EmulatorProcess) -> Iterator[Runtime]:
    settings = worker_settings(
        REDIS_URL=redis_url, TWILIO_VIDEO_BASE_URL=twilio.url, HANDLERS="log",
        COMPOSE_ON_ROOM_READY="1", PUBLIC_BASE_URL=PUBLIC + "/", TASK_MAX_RETRIES="2",
    )  # fmt: skip
    built = Runtime.build(settings, app)
    yield built
    built.redis.close()


def ended_room(twilio: EmulatorProcess, recordings: int = 2) -> str:
    room = sid("RM")
    twilio.control.create_room(sid=room, status="completed", duration=60)
    for _ in range(recordings):
        twilio.control.create_recording(room_sid=room, status="completed", size=30_000,
                                        duration=7)  # fmt: skip
    return room


def posts(twilio: EmulatorProcess) -> list[dict[str, Any]]:
    return [r for r in twilio.control.requests()
            if r["method"] == "POST" and r["path"] == "/v1/Compositions"]  # fmt: skip


def of_room(twilio: EmulatorProcess, room: str) -> list[dict[str, Any]]:
    return [c for c in twilio.control.compositions() if c["room_sid"] == room]


def delayed_tasks(rt: Runtime) -> list[str]:
    messages = rt.redis.zrange(DELAYED_KEY.format("roomrec.events"), 0, -1)
    return [json.loads(message)["headers"]["task"] for message in messages]


# --- creating once --------------------------------------------------------------------------


def test_the_request_asks_for_all_audio_a_video_grid_and_callbacks_here() -> None:
    form = composition_form("RM" + "1" * 32, STATUS_CALLBACK)

    assert form["RoomSid"] == "RM" + "1" * 32 and form["AudioSources"] == "*"
    assert json.loads(form["VideoLayout"]) == {"grid": {"video_sources": ["*"]}}
    assert (form["Format"], form["StatusCallbackMethod"]) == ("mp4", "POST")
    assert form["StatusCallback"] == STATUS_CALLBACK


def test_a_ready_room_gets_one_composition_however_often_it_is_emitted(
    runtime: Runtime, twilio: EmulatorProcess
) -> None:
    room = ended_room(twilio)
    ended = room_params("room-ended", RoomSid=room, RoomDuration="60")
    handled = HandlerEvent(id=event_id(ended), event=load_callback(ended), recording=None,
                           received_at=datetime.now(UTC))  # fmt: skip

    rooms.after_event(runtime, handled)
    rooms.after_event(runtime, handled)  # redelivered: emits again
    compositions.compose(runtime, room, attempt=0)  # a retry that was queued anyway

    [composition] = of_room(twilio, room)
    assert len(posts(twilio)) == 1
    assert composition["status_callback"] == STATUS_CALLBACK
    assert composition["audio_sources"] == ["*"] and composition["format"] == "mp4"
    assert composition["video_layout"] == {"grid": {"video_sources": ["*"]}}
    assert runtime.redis.get(COMPOSITION_KEY.format(room)) == composition["sid"]


def test_a_creation_never_recorded_is_adopted_not_repeated(
    runtime: Runtime, twilio: EmulatorProcess
) -> None:
    room = ended_room(twilio)
    compositions.compose(runtime, room, attempt=0)
    [first] = of_room(twilio, room)
    runtime.redis.delete(COMPOSITION_KEY.format(room))  # the worker died right after the POST

    compositions.compose(runtime, room, attempt=0)

    assert [c["sid"] for c in of_room(twilio, room)] == [first["sid"]]
    assert runtime.redis.get(COMPOSITION_KEY.format(room)) == first["sid"]


def test_a_composition_someone_else_made_is_not_adopted(
    runtime: Runtime, twilio: EmulatorProcess
) -> None:
    room = ended_room(twilio)
    video = TwilioVideo(runtime.settings)
    other = video.create_composition(composition_form(room, "https://elsewhere.example/cb"))
    composer = Composer(video, runtime.redis, STATUS_CALLBACK, lock_ttl=30,
                        marker_ttl=runtime.settings.marks_ttl)  # fmt: skip

    created, new = composer.ensure(room)

    assert new and created != other.sid
    assert len(of_room(twilio, room)) == 2


def test_creating_waits_while_another_task_holds_the_lock(
    runtime: Runtime, twilio: EmulatorProcess
) -> None:
    room = ended_room(twilio)
    runtime.redis.set(COMPOSING_LOCK_KEY.format(room), "another-task", ex=30)
    composer = Composer(TwilioVideo(runtime.settings), runtime.redis, STATUS_CALLBACK,
                        lock_ttl=30, marker_ttl=runtime.settings.marks_ttl)  # fmt: skip

    with pytest.raises(ComposerBusy):
        composer.ensure(room)
    compositions.compose(runtime, room, attempt=0)

    assert of_room(twilio, room) == []
    assert delayed_tasks(runtime) == [COMPOSE_TASK]


def test_twilio_5xx_is_retried_and_a_refusal_dead_lettered(
    runtime: Runtime, twilio: EmulatorProcess
) -> None:
    room = ended_room(twilio)
    twilio.control.add_fault("^/v1/Compositions$", "status", method="POST", status=503, count=1)
    compositions.compose(runtime, room, attempt=0)
    assert delayed_tasks(runtime) == [COMPOSE_TASK]
    compositions.compose(runtime, room, attempt=1)
    assert len(of_room(twilio, room)) == 1

    unknown = sid("RM")  # Twilio answers 400: no such room
    compositions.compose(runtime, unknown, attempt=0)

    [letter] = runtime.dead_letters.list()
    assert (letter["stage"], letter["message"]) == ("compose", {"room_sid": unknown})
    assert "400" in letter["error"]


def test_a_room_without_completed_recordings_is_not_composed(
    runtime: Runtime, twilio: EmulatorProcess
) -> None:
    room = sid("RM")
    twilio.control.create_room(sid=room)
    twilio.control.create_recording(room_sid=room, status="failed")
    ended = room_params("room-ended", RoomSid=room, RoomDuration="60")

    rooms.after_event(runtime, HandlerEvent(
        id=event_id(ended), event=load_callback(ended), recording=None,
        received_at=datetime.now(UTC),
    ))  # fmt: skip

    assert of_room(twilio, room) == [] and posts(twilio) == []


# --- the Twilio calls -----------------------------------------------------------------------


def test_fetch_list_and_media_of_a_composition(runtime: Runtime, twilio: EmulatorProcess) -> None:
    room = ended_room(twilio)
    video = TwilioVideo(runtime.settings)
    created = video.create_composition(composition_form(room, STATUS_CALLBACK))
    with pytest.raises(NotFoundYet):
        video.composition_media_url(created.sid)  # no media before it completes
    twilio.control.advance_composition(created.sid, to="completed")

    fetched = video.fetch_composition(created.sid)

    assert (fetched.sid, fetched.status, fetched.room_sid) == (created.sid, "completed", room)
    assert fetched.size == 30_000 and fetched.duration == 60  # the room lasted 60 s
    assert [c.sid for c in video.list_compositions(room)] == [created.sid]
    assert video.list_compositions(sid("RM")) == []
    assert "/_media/compositions/" in video.composition_media_url(created.sid)


@pytest.mark.parametrize(
    "body", ['{"sid": "RT123", "status": "completed"}', '{"status": "enqueued"}', "[]", "{"]
)
def test_an_invalid_composition_is_permanent(body: str) -> None:
    with pytest.raises(PermanentError):
        load_composition(body, "a test")


# --- the composition-available event and its archive ----------------------------------------


def available_event(runtime: Runtime, composition_sid: str, room: str) -> HandlerEvent:
    params = {
        "AccountSid": ACCOUNT_SID, "RoomSid": room, "CompositionSid": composition_sid,
        "CompositionUri": f"/v1/Compositions/{composition_sid}",
        "StatusCallbackEvent": "composition-available", "Timestamp": "2020-08-20T01:42:05Z",
        "MediaUri": f"/v1/Compositions/{composition_sid}/Media", "Size": "1", "Duration": "1",
    }  # fmt: skip
    return HandlerEvent(
        id=event_id(params), event=load_callback(params), recording=None,
        received_at=datetime.now(UTC),
        composition=TwilioVideo(runtime.settings).fetch_composition(composition_sid),
    )  # fmt: skip


@pytest.fixture
def archive(
    make_context: Callable[..., HandlerContext], twilio: EmulatorProcess, tmp_path: Path
) -> ArchiveHandler:
    context = make_context(HANDLERS="archive", TWILIO_VIDEO_BASE_URL=twilio.url,
                           ARCHIVE_URL=(tmp_path / "archive").as_uri())  # fmt: skip
    return ArchiveHandler(context)


def test_an_available_composition_is_archived_byte_identical_once(
    runtime: Runtime, twilio: EmulatorProcess, archive: ArchiveHandler, tmp_path: Path
) -> None:
    room = ended_room(twilio, recordings=3)
    video = TwilioVideo(runtime.settings)
    created = video.create_composition(composition_form(room, STATUS_CALLBACK))
    twilio.control.advance_composition(created.sid, to="completed")
    event = available_event(runtime, created.sid, room)
    assert event.composition is not None and event.composition.size == 45_000

    archive(event, None)
    archive(event, None)  # again: already there

    media = tmp_path / "archive" / room / f"{created.sid}.mp4"
    assert hashlib.sha256(media.read_bytes()).hexdigest() == media_sha256(created.sid, 45_000)
    sidecar = json.loads((tmp_path / "archive" / room / f"{created.sid}.json").read_text())
    assert sidecar == event.composition.raw
    downloads = [r for r in twilio.control.requests() if r["path"].startswith("/_media/")]
    assert len(downloads) == 1


@pytest.mark.parametrize(("to", "error"), [(None, NotFoundYet), ("failed", PermanentError)])
def test_a_composition_without_media_is_not_archived(
    runtime: Runtime, twilio: EmulatorProcess, archive: ArchiveHandler, to: str | None,
    error: type[Exception],
) -> None:  # fmt: skip
    room = ended_room(twilio)
    created = TwilioVideo(runtime.settings).create_composition(
        composition_form(room, STATUS_CALLBACK)
    )
    twilio.control.advance_composition(created.sid, **({"to": to} if to else {}))

    with pytest.raises(error):
        archive(available_event(runtime, created.sid, room), None)


def test_the_composition_travels_to_handler_tasks_and_forward(
    runtime: Runtime, twilio: EmulatorProcess
) -> None:
    room = ended_room(twilio)
    created = TwilioVideo(runtime.settings).create_composition(
        composition_form(room, STATUS_CALLBACK)
    )
    event = available_event(runtime, created.sid, room)

    loaded = HandlerEventSchema().load(json.loads(json.dumps(event.to_json())))

    assert loaded == event and loaded.composition is not None
    assert event.composition is not None and loaded.composition.raw == event.composition.raw
    body = payload(event)
    assert body["type"] == "composition.available"
    assert body["data"]["composition"] == event.composition.raw
    assert body["data"]["event"]["composition_sid"] == created.sid


# --- settings -------------------------------------------------------------------------------


def test_composing_needs_the_public_base_url() -> None:
    with pytest.raises(ConfigurationError, match="PUBLIC_BASE_URL"):
        worker_settings(COMPOSE_ON_ROOM_READY="1")

    settings = worker_settings(COMPOSE_ON_ROOM_READY="1", PUBLIC_BASE_URL="https://rec.example/")
    assert settings.public_base_url == "https://rec.example"
    composing_only = worker_settings(
        COMPOSE_ON_ROOM_READY="1", PUBLIC_BASE_URL="https://rec.example/", ROOM_READY_EVENTS="0"
    )
    assert not composing_only.room_ready_events  # composing without emitting ready events
    assert worker_settings().room_ready_events  # on by default
    assert not worker_settings().compose_on_room_ready
