"""What a request learns about its callback once the view has read the parameters: the event
(a bounded metrics label) and the identifiers bound to every log line of the request."""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask import g

from schemas import CALLBACK_SCHEMAS
from workers.service.observability import bind

UNKNOWN = "unknown"
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")


def event_label(name: object) -> str:
    return name if isinstance(name, str) and name in CALLBACK_SCHEMAS else UNKNOWN


def note_callback(pairs: Iterable[tuple[str, str]]) -> None:
    """Label this request's metrics with the callback's event and bind its identifiers to every
    log line of the request (undone when the request ends, see :mod:`webhooks.metrics`)."""
    params = dict(pairs)
    g.roomrec_event = event_label(params.get("StatusCallbackEvent"))
    fields: dict[str, str] = {}
    if g.roomrec_event != UNKNOWN:
        fields["event"] = g.roomrec_event
    for key, name in (("RoomSid", "room_sid"), ("RecordingSid", "recording_sid")):
        value = params.get(key)
        if value and _SID.fullmatch(value):
            fields[name] = value
    g.roomrec_log = bind(**fields)
