"""``log``: one structured line per event on the ``roomrec.events`` logger: JSON with the
event's fields as keys (``LOG_FORMAT=json``, the default off a terminal), or text."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from schemas import HandlerEvent
from workers.handlers import HandlerContext, builtin
from workers.observability.logs import bind

events_log = logging.getLogger("roomrec.events")


class LogHandler:
    name = "log"
    repeatable = True  # again, it logs the line again: nothing else

    def targets(self) -> Sequence[str | None]:
        return (None,)

    def __call__(self, event: HandlerEvent, target: str | None) -> None:
        line: dict[str, object] = {
            "event": event.type,
            "event_id": event.id,
            "timestamp": event.event.to_json()["timestamp"],
            "room_sid": event.event.room_sid,
        }
        for name in ("participant_sid", "track_sid", "recording_sid"):
            if event.event.params.get(name):
                line[name] = event.event.params[name]
        if event.recording is not None:
            recording = event.recording
            line |= {
                "status": recording.status,
                "type": recording.type,
                "codec": recording.codec,
                "container_format": recording.container_format,
                "duration": recording.duration,
                "size": recording.size,
            }
        # The fields go on the line as fields (JSON keys, or [name=value] in text), not as a
        # JSON string inside the message.
        with bind(**line):
            events_log.info("%s %s", event.type, event.id)


@builtin("log")
def make_log_handler(context: HandlerContext) -> LogHandler:
    return LogHandler()
