"""Compositions as the emulator keeps them: the ``POST /v1/Compositions`` parameters checked as
Twilio checks them, the ``video.v1.composition`` JSON, and a thread-safe store.

A composition moves ``enqueued`` -> ``processing`` -> ``completed`` (or ``failed``); see
:mod:`emulator.model.composition_flow` for what moves it and the callbacks it sends. Its media,
like a recording's, depends only on its SID and size (:mod:`emulator.model.media`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from emulator.errors import TwilioApiError
from emulator.model.formats import format_seconds, is_sid, new_sid
from emulator.model.rooms import Recording, Room

STATUSES = ("enqueued", "processing", "completed", "deleted", "failed")
FORMATS = ("mp4", "webm")
CONTENT_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}
DEFAULT_AUTO_ADVANCE_MS = 200
MIN_MEDIA_SIZE = 4096


@dataclass
class Composition:
    sid: str
    room_sid: str
    status: str
    date_created: datetime
    audio_sources: list[str] = field(default_factory=list)
    audio_sources_excluded: list[str] = field(default_factory=list)
    video_layout: dict[str, Any] = field(default_factory=dict)
    resolution: str = "640x480"
    trim: bool = True
    format: str = "webm"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    date_completed: datetime | None = None
    date_deleted: datetime | None = None
    size: int = 0
    duration: int = 0
    # Every status callback sent: event, status answered (None when it failed), error, params.
    callbacks: list[dict[str, Any]] = field(default_factory=list)

    def sort_key(self) -> tuple[datetime, str]:
        return (self.date_created, self.sid)

    @property
    def bitrate(self) -> int:
        """Average kilobits per second of the media, as Twilio reports it."""
        return self.size * 8 // 1000 // self.duration if self.duration else 0


def _bad(message: str) -> TwilioApiError:
    return TwilioApiError.bad_parameter(message)


def _single(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = form.get(name) or []
    return values[-1] if values else None


def parse_create(
    form: Mapping[str, Sequence[str]], room: Room | None, *, now: datetime
) -> Composition:
    """A new composition from ``POST /v1/Compositions`` form parameters (each name with all of
    its values); a 400 TwilioApiError for what Twilio refuses."""
    room_sid = _single(form, "RoomSid")
    if not room_sid or not is_sid(room_sid, "RM"):
        raise _bad(f"Invalid RoomSid: {room_sid}")
    if room is None:
        raise _bad(f"Room {room_sid} not found")
    audio = [value for value in form.get("AudioSources") or [] if value]
    layout_text = _single(form, "VideoLayout")
    layout: dict[str, Any] = {}
    if layout_text:
        try:
            layout = json.loads(layout_text)
        except ValueError:
            layout = None  # type: ignore[assignment]
        if not isinstance(layout, dict):
            raise _bad("Invalid VideoLayout: not a JSON object")
    if not audio and not layout:
        raise _bad("Either AudioSources or VideoLayout is required")
    media_format = _single(form, "Format") or "webm"
    if media_format not in FORMATS:
        raise _bad(f"Invalid Format: {media_format}")
    method = (_single(form, "StatusCallbackMethod") or "POST").upper()
    if method not in ("GET", "POST"):
        raise _bad(f"Invalid StatusCallbackMethod: {method}")
    trim = (_single(form, "Trim") or "true").lower()
    if trim not in ("true", "false"):
        raise _bad(f"Invalid Trim: {trim}")
    return Composition(
        sid=new_sid("CJ"),
        room_sid=room.sid,
        status="enqueued",
        date_created=now,
        audio_sources=audio,
        audio_sources_excluded=[v for v in form.get("AudioSourcesExcluded") or [] if v],
        video_layout=layout,
        resolution=_single(form, "Resolution") or "640x480",
        trim=trim == "true",
        format=media_format,
        status_callback=_single(form, "StatusCallback") or None,
        status_callback_method=method,
    )


def media_of(room: Room | None, recordings: Sequence[Recording]) -> tuple[int, int] | None:
    """``(size, duration)`` of the composed media: derived from the room's completed
    recordings, so the same room composes alike; None when there is nothing to compose."""
    done = [r for r in recordings if r.status == "completed" and r.size > 0]
    if not done:
        return None
    room_duration = (room.duration or 0) if room is not None else 0
    duration = max([r.duration for r in done] + [room_duration])
    return max(MIN_MEDIA_SIZE, sum(r.size for r in done) // 2), max(1, duration)


def render_composition(composition: Composition, account_sid: str, base_url: str) -> dict[str, Any]:
    """The ``video.v1.composition`` JSON."""
    url = f"{base_url}/v1/Compositions/{composition.sid}"

    def moment(value: datetime | None) -> str | None:
        return format_seconds(value) if value is not None else None

    return {
        "account_sid": account_sid,
        "status": composition.status,
        "date_created": format_seconds(composition.date_created),
        "date_completed": moment(composition.date_completed),
        "date_deleted": moment(composition.date_deleted),
        "sid": composition.sid,
        "room_sid": composition.room_sid,
        "audio_sources": list(composition.audio_sources),
        "audio_sources_excluded": list(composition.audio_sources_excluded),
        "video_layout": composition.video_layout,
        "resolution": composition.resolution,
        "trim": composition.trim,
        "format": composition.format,
        "bitrate": composition.bitrate,
        "size": composition.size,
        "duration": composition.duration,
        "media_external_location": None,
        "status_callback": composition.status_callback,
        "status_callback_method": composition.status_callback_method,
        "url": url,
        "links": {"media": f"{url}/Media"},
    }


class CompositionStore:
    """Compositions by SID, and how they progress (``auto_advance_ms``: the delay between
    steps; None leaves them to ``POST /_emulator/compositions/{CJ}/advance``).

    ``generation`` changes on every :meth:`clear`, so work started before a reset (a timer, a
    queued callback) can tell that its composition is gone."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._items: dict[str, Composition] = {}
        self.auto_advance_ms: int | None = DEFAULT_AUTO_ADVANCE_MS
        self.generation = 0

    def clear(self) -> None:
        with self.lock:
            self._items.clear()
            self.auto_advance_ms = DEFAULT_AUTO_ADVANCE_MS
            self.generation += 1

    def add(self, composition: Composition) -> Composition:
        with self.lock:
            self._items[composition.sid] = composition
            return replace(composition, callbacks=list(composition.callbacks))

    def get(self, sid: str) -> Composition | None:
        with self.lock:
            found = self._items.get(sid)
            return None if found is None else replace(found, callbacks=list(found.callbacks))

    def live(self, sid: str) -> Composition | None:
        """The stored object itself, to change under :attr:`lock`."""
        return self._items.get(sid)

    def all(self) -> list[Composition]:
        with self.lock:
            items = [replace(c, callbacks=list(c.callbacks)) for c in self._items.values()]
        return sorted(items, key=Composition.sort_key)
