"""``stream``: every event, with its recording, appended to a Redis stream (``STREAM_KEY``)
for other services to consume with consumer groups (``XREADGROUP``).

Each entry's fields: ``id`` (the event's stable id), ``type`` (``recording.completed``),
``room_sid``, ``recording_sid`` (recording events only), ``timestamp`` (the callback's, ISO
8601 UTC), ``received_at``, ``event`` (the callback's parameters as JSON, snake_case, typed)
and ``recording`` (the RoomRecording JSON, recording events only), ``recordings`` (the room's
RoomRecordings, ``room.recordings_ready`` only), ``composition`` (``composition-available``
only). The stream is trimmed to
about ``STREAM_MAXLEN`` entries (``MAXLEN ~``).

An event is appended once: a script adds the entry and a marker (``roomrec:stream:{id}``,
holding the entry's id) atomically, and does nothing when the marker exists, so a redelivered
task adds no second entry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import redis

from schemas import HandlerEvent
from schemas.fields import iso8601
from workers.errors import translate
from workers.handlers import HandlerContext, builtin
from workers.state.keys import STREAM_MARKER_KEY

log = logging.getLogger(__name__)

# KEYS: stream, marker. ARGV: maxlen, marker ttl, then field, value, field, value ...
APPEND_ONCE = """
local existing = redis.call('GET', KEYS[2])
if existing then return {0, existing} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[2], id, 'EX', ARGV[2])
return {1, id}
"""


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def entry_fields(event: HandlerEvent) -> dict[str, str]:
    """The stream entry of ``event``; absent values are left out (Redis has no null)."""
    callback = event.event
    fields = {
        "id": event.id,
        "type": event.type,
        "room_sid": callback.room_sid,
        "recording_sid": callback.recording_sid if callback.is_recording else None,
        "timestamp": iso8601(callback.timestamp),
        "received_at": iso8601(event.received_at),
        "event": json.dumps(callback.to_json(), separators=(",", ":")),
        "recording": None if event.recording is None else _json(event.recording.raw),
        "recordings": None
        if event.recordings is None
        else _json([recording.raw for recording in event.recordings]),
        "composition": None if event.composition is None else _json(event.composition.raw),
    }
    return {name: value for name, value in fields.items() if value is not None}


class StreamHandler:
    name = "stream"
    repeatable = True  # the marker keeps an event off the stream twice

    def __init__(self, client: redis.Redis, key: str, maxlen: int, *, marker_ttl: int) -> None:
        self.key = key
        self.maxlen = maxlen
        self.marker_ttl = marker_ttl  # WorkerSettings.marks_ttl: outlives every delivery of it
        self.append_once = client.register_script(APPEND_ONCE)

    def targets(self) -> Sequence[str | None]:
        return (None,)

    def __call__(self, event: HandlerEvent, target: str | None) -> None:
        args: list[str | int] = [self.maxlen, self.marker_ttl]
        for name, value in entry_fields(event).items():
            args += [name, value]
        try:
            added, entry_id = self.append_once(keys=[self.key, STREAM_MARKER_KEY.format(event.id)],
                                               args=args)  # fmt: skip
        except redis.RedisError as exc:
            raise translate(exc, f"stream {self.key}") from exc
        entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        log.info(
            "%s %s %s on %s as %s",
            "appended" if added else "already on the stream:", event.event.event, event.id,
            self.key, entry,
        )  # fmt: skip


@builtin("stream")
def make_stream_handler(context: HandlerContext) -> StreamHandler:
    settings = context.settings
    return StreamHandler(
        context.redis, settings.stream_name, settings.stream_maxlen,
        marker_ttl=settings.marks_ttl,
    )  # fmt: skip
