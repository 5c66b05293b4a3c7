"""Every mark of an effect (done marks, outcomes, room state, the composition marker) lives as
long as :attr:`schemas.settings.WorkerSettings.marks_ttl` says, which follows ``DEDUP_TTL``:
against the private Redis and the Twilio emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery

from emulator.client import EmulatorProcess
from schemas.settings import DEFAULT_DEDUP_TTL
from tests.support.twilio import room_params, sid
from tests.unit.workers import sample_handlers
from tests.unit.workers.helpers import room_event, worker_settings
from workers.pipeline import rooms
from workers.pipeline.compositions import composer
from workers.runtime.context import Runtime
from workers.state.keys import COMPOSITION_KEY, ROOM_RECORDINGS_KEY, ROOM_STATE_KEY

# 2 retries backing off at most 60 s, a 90 s visibility timeout: 120 + 90 s past DEDUP_TTL.
ENV = {"DEDUP_TTL": "86400", "TASK_MAX_RETRIES": "2", "RETRY_BACKOFF_MAX": "60",
       "VISIBILITY_TIMEOUT": "90"}  # fmt: skip
EXPECTED = 86400 + 2 * 60 + 90


def test_the_marks_outlive_dedup_ttl_and_every_retry() -> None:
    assert worker_settings(**ENV).marks_ttl == EXPECTED
    longer = worker_settings(**(ENV | {"DEDUP_TTL": "3600000"}))
    assert longer.marks_ttl == 3600000 + 2 * 60 + 90
    defaults = worker_settings()  # 7 days, 15 retries of up to 30 min, 90 s
    assert defaults.marks_ttl == 7 * 24 * 3600 + 15 * 1800 + 90 > DEFAULT_DEDUP_TTL


@pytest.fixture
def runtime(redis_url: str, app: Celery, twilio: EmulatorProcess) -> Iterator[Runtime]:
    sample_handlers.CALLS.clear()
    settings = worker_settings(
        REDIS_URL=redis_url, TWILIO_VIDEO_BASE_URL=twilio.url, ROOM_READY_EVENTS="1",
        HANDLERS="tests.unit.workers.sample_handlers:record", **ENV,
    )  # fmt: skip
    built = Runtime.build(settings, app)
    yield built
    built.redis.close()
    sample_handlers.CALLS.clear()


def _assert_lives_marks_ttl(rt: Runtime, key: str) -> None:
    ttl = rt.redis.ttl(key)
    assert EXPECTED - 10 < ttl <= EXPECTED, (key, ttl)


def test_a_room_ended_twice_emits_once_and_every_mark_follows_dedup_ttl(
    runtime: Runtime, emulator: EmulatorProcess
) -> None:
    room = sid("RM")
    emulator.control.create_room(sid=room)
    recording = emulator.control.create_recording(room_sid=room, type="audio")["sid"]
    emulator.control.update_recording(recording, status="completed", size=100, duration=1)
    ended = room_event(room_params("room-ended", RoomSid=room, RoomDuration="60"))
    # Another room-ended of the same room (another Timestamp: another event id), and the
    # first one redelivered.
    again = room_event(room_params("room-ended", RoomSid=room, RoomDuration="61"))

    for event in (ended, again, ended):
        rooms.after_event(runtime, event)

    ready = [e for e, _ in sample_handlers.CALLS if e.type == "room.recordings_ready"]
    assert len(ready) == 1
    assert runtime.settings.marks_ttl == EXPECTED
    for key in (ROOM_STATE_KEY.format(room), ROOM_RECORDINGS_KEY.format(room)):
        _assert_lives_marks_ttl(runtime, key)
    ready_id = rooms.ready_event_id(room)
    [done] = runtime.redis.keys(f"roomrec:done:{ready_id}:*")
    _assert_lives_marks_ttl(runtime, str(done))  # decode_responses: already text
    _assert_lives_marks_ttl(runtime, f"roomrec:outcomes:{ready_id}")


def test_the_composition_marker_follows_dedup_ttl(
    redis_url: str, app: Celery, emulator: EmulatorProcess
) -> None:
    emulator.control.reset()
    emulator.control.set_composition_settings(auto_advance_ms=None)
    settings = worker_settings(
        REDIS_URL=redis_url, TWILIO_VIDEO_BASE_URL=emulator.url, COMPOSE_ON_ROOM_READY="1",
        PUBLIC_BASE_URL="https://roomrec.example.com", **ENV,
    )  # fmt: skip
    rt = Runtime.build(settings, app)
    try:
        room = sid("RM")
        emulator.control.create_room(sid=room)
        composer(rt).ensure(room)
        _assert_lives_marks_ttl(rt, COMPOSITION_KEY.format(room))
    finally:
        rt.redis.close()
        emulator.control.reset()
