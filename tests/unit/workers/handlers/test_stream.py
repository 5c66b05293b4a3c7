"""The ``stream`` handler against the private Redis."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
import redis

from schemas.settings import ConfigurationError
from tests.support.twilio import sid
from tests.unit.workers.helpers import worker_settings
from tests.unit.workers.store_events import T0, Room
from workers.errors import TransientError
from workers.handlers import HandlerContext, resolve
from workers.handlers.stream import StreamHandler, entry_fields
from workers.state.keys import STREAM_MARKER_KEY

MakeContext = Callable[..., HandlerContext]
KEY = "roomrec:events"


def streamer(make_context: MakeContext, **env: str) -> StreamHandler:
    handler = resolve("stream")(make_context(HANDLERS="stream", **env))
    assert isinstance(handler, StreamHandler)
    assert list(handler.targets()) == [None]
    return handler


def entries(redis_url: str, key: str = KEY) -> list[tuple[str, dict[str, str]]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return [(entry_id, fields) for entry_id, fields in client.xrange(key)]
    finally:
        client.close()


def test_a_recording_event_becomes_one_entry_with_its_recording(
    make_context: MakeContext, redis_url: str
) -> None:
    room, rt = Room(), sid("RT")
    event = room.recording("recording-completed", rt, 30)
    assert event.recording is not None

    streamer(make_context)(event, None)

    ((_, fields),) = entries(redis_url)
    assert fields["id"] == event.id
    assert fields["type"] == "recording.completed"
    assert (fields["room_sid"], fields["recording_sid"]) == (room.sid, rt)
    assert datetime.fromisoformat(fields["timestamp"]) == T0 + timedelta(seconds=30)
    assert json.loads(fields["event"]) == event.event.to_json()
    assert json.loads(fields["recording"]) == event.recording.raw
    assert fields["received_at"].endswith("Z")


def test_a_room_event_has_no_recording_fields(make_context: MakeContext, redis_url: str) -> None:
    event = Room().event("participant-connected", 3)

    streamer(make_context)(event, None)

    ((_, fields),) = entries(redis_url)
    assert fields["type"] == "participant.connected"
    assert "recording" not in fields and "recording_sid" not in fields
    assert set(fields) == set(entry_fields(event))


@pytest.mark.parametrize("decode", [True, False])
def test_a_redelivered_event_adds_no_second_entry(
    make_context: MakeContext, redis_url: str, decode: bool
) -> None:
    handler = streamer(make_context)
    if decode:  # as in the worker, whose Redis client decodes
        decoding = redis.Redis.from_url(redis_url, decode_responses=True)
        handler = StreamHandler(decoding, KEY, 100, marker_ttl=handler.marker_ttl)
    event = Room().event("room-created", 0)

    for _ in range(3):
        handler(event, None)

    ((entry_id, _),) = entries(redis_url)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert client.get(STREAM_MARKER_KEY.format(event.id)) == entry_id
        assert 0 < client.ttl(STREAM_MARKER_KEY.format(event.id)) <= handler.marker_ttl
    finally:
        client.close()


def test_the_stream_is_trimmed_to_about_maxlen(make_context: MakeContext, redis_url: str) -> None:
    handler = streamer(make_context, STREAM_KEY="test:stream", STREAM_MAXLEN="50")
    room = Room()
    events = [room.event("participant-connected", second) for second in range(400)]

    for event in events:
        handler(event, None)

    kept = entries(redis_url, "test:stream")
    # "~": Redis trims whole nodes (100 entries each by default), never below MAXLEN.
    assert 50 <= len(kept) < 400
    assert kept[-1][1]["id"] == events[-1].id  # the newest are kept


def test_a_consumer_group_reads_every_event(make_context: MakeContext, redis_url: str) -> None:
    handler = streamer(make_context)
    room = Room()
    events = [room.event("room-created", 0), room.recording("recording-started", sid("RT"), 2)]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.xgroup_create(KEY, "archiver", id="0", mkstream=True)
        for event in events:
            handler(event, None)

        read = client.xreadgroup("archiver", "consumer-1", {KEY: ">"}, count=10, block=1000)
        ((stream, messages),) = read
        assert stream == KEY
        assert [fields["id"] for _, fields in messages] == [e.id for e in events]
        assert client.xack(KEY, "archiver", *[entry_id for entry_id, _ in messages]) == 2
        assert client.xpending(KEY, "archiver")["pending"] == 0
    finally:
        client.close()


def test_an_unreachable_redis_is_retried(make_context: MakeContext) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = redis.Redis(port=port, socket_connect_timeout=1, retry=None)
    handler = StreamHandler(client, KEY, 100, marker_ttl=60)

    with pytest.raises(TransientError, match="stream roomrec:events"):
        handler(Room().event("room-created", 0), None)


def test_the_defaults(make_context: MakeContext) -> None:
    handler = streamer(make_context)
    assert (handler.key, handler.maxlen) == ("roomrec:events", 100_000)


@pytest.mark.parametrize(("name", "value"), [("STREAM_MAXLEN", "0"), ("STREAM_MAXLEN", "many")])
def test_a_bad_stream_setting_stops_the_worker_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        worker_settings(HANDLERS="stream", **{name: value})


def test_the_room_ready_entry_carries_the_rooms_recordings() -> None:
    from dataclasses import replace

    base = Room().recording("recording-completed", sid("RT"), 30)
    assert base.recording is not None
    ready = replace(base, recordings=(base.recording,))
    fields = entry_fields(ready)
    assert [r["sid"] for r in json.loads(fields["recordings"])] == [base.recording.sid]
    assert "recordings" not in entry_fields(base)


def test_the_marker_outlives_every_delivery_the_settings_allow(make_context: MakeContext) -> None:
    context = make_context(HANDLERS="stream", DEDUP_TTL="86400", TASK_MAX_RETRIES="3")
    handler = resolve("stream")(context)
    assert isinstance(handler, StreamHandler)
    settings = context.settings
    horizon = settings.dedup_ttl + 3 * settings.retry_backoff_max + settings.visibility_timeout
    assert handler.marker_ttl == horizon != worker_settings().marks_ttl  # not the defaults'
