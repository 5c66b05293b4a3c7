"""Recordings and rooms as the emulator stores them, and validation of control-API fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from emulator.errors import ValidationError
from emulator.model.formats import (
    format_micros,
    is_sid,
    new_sid,
    parse_datetime,
    video_epoch_offset_ms,
)

RECORDING_STATUSES = ("processing", "completed", "deleted", "failed")
TRACK_TYPES = ("audio", "video", "data")
CODECS = ("vp8", "h264", "opus", "pcmu")
CONTAINERS = ("mka", "mkv")
ROOM_STATUSES = ("in-progress", "completed", "failed")
ROOM_TYPES = ("group", "go", "peer-to-peer", "group-small")
CALLBACK_METHODS = ("GET", "POST")
_DEFAULTS_BY_TYPE: dict[str, tuple[str | None, str | None]] = {
    "audio": ("opus", "mka"),
    "video": ("vp8", "mkv"),
    "data": (None, None),
}


@dataclass(kw_only=True)
class _Resource:
    """What a recording and a room both have: where their status callbacks go, and whose they
    are."""

    status_callback: str | None = None
    status_callback_method: str | None = None
    account_sid: str | None = None  # None: the emulator's main account

    def to_raw(self) -> dict[str, Any]:
        """Every field, its datetimes as Twilio writes them."""
        raw = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: format_micros(v) if isinstance(v, datetime) else v for k, v in raw.items()}


@dataclass
class Recording(_Resource):
    """One track recording; ``size`` is also the length of its media."""

    sid: str
    room_sid: str
    participant_sid: str | None
    source_sid: str
    track_name: str
    type: str
    codec: str | None
    container_format: str | None
    status: str
    size: int
    duration: int
    offset: int
    date_created: datetime
    media_external_location: str | None = None

    def sort_key(self) -> tuple[datetime, str]:
        return (self.date_created, self.sid)


@dataclass
class Room(_Resource):
    sid: str
    unique_name: str
    status: str
    type: str
    date_created: datetime
    date_updated: datetime
    end_time: datetime | None = None
    duration: int | None = None


def _sid(prefix: str) -> Callable[[str, Any], str]:
    def parse(name: str, value: Any) -> str:
        if not is_sid(value, prefix):
            raise ValidationError(f"{name}: expected a {prefix} SID, got {value!r}")
        return str(value)

    return parse


def _any_sid(name: str, value: Any) -> str:
    if not is_sid(value):
        raise ValidationError(f"{name}: expected a SID, got {value!r}")
    return str(value)


def _choice(options: tuple[str, ...], *, lower: bool = False) -> Callable[[str, Any], str]:
    def parse(name: str, value: Any) -> str:
        text = value.lower() if lower and isinstance(value, str) else value
        if text not in options:
            raise ValidationError(f"{name}: expected one of {options}, got {value!r}")
        return str(text)

    return parse


def _nullable(parse: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    def wrapped(name: str, value: Any) -> Any:
        return None if value is None else parse(name, value)

    return wrapped


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{name}: expected a non-negative integer, got {value!r}")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{name}: expected a non-empty string, got {value!r}")
    return value


def _moment(name: str, value: Any) -> datetime:
    try:
        return parse_datetime(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name}: expected an ISO 8601 datetime, got {value!r}") from exc


_RECORDING_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "sid": _sid("RT"),
    "room_sid": _sid("RM"),
    "participant_sid": _nullable(_sid("PA")),
    "source_sid": _any_sid,
    "track_name": _text,
    "type": _choice(TRACK_TYPES),
    "codec": _nullable(_choice(CODECS, lower=True)),
    "container_format": _nullable(_choice(CONTAINERS, lower=True)),
    "status": _choice(RECORDING_STATUSES),
    "size": _count,
    "duration": _count,
    "offset": _count,
    "date_created": _moment,
    "media_external_location": _nullable(_text),
    "status_callback": _nullable(_text),
    "status_callback_method": _nullable(_choice(CALLBACK_METHODS)),
    "account_sid": _nullable(_sid("AC")),
}
_IMMUTABLE_RECORDING_FIELDS = frozenset({"sid", "room_sid", "account_sid"})

_ROOM_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "sid": _sid("RM"),
    "unique_name": _text,
    "status": _choice(ROOM_STATUSES),
    "type": _choice(ROOM_TYPES),
    "date_created": _moment,
    "end_time": _nullable(_moment),
    "duration": _nullable(_count),
    "status_callback": _nullable(_text),
    "status_callback_method": _nullable(_choice(CALLBACK_METHODS)),
    "account_sid": _nullable(_sid("AC")),
}


def _parse(
    data: Mapping[str, Any], parsers: Mapping[str, Callable[[str, Any], Any]]
) -> dict[str, Any]:
    unknown = sorted(set(data) - set(parsers))
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(unknown)}")
    return {name: parsers[name](name, value) for name, value in data.items()}


def build_recording(data: Mapping[str, Any], *, now: datetime) -> Recording:
    """A new recording from control-API fields; ``room_sid`` is required."""
    values = _parse(data, _RECORDING_FIELDS)
    if "room_sid" not in values:
        raise ValidationError("room_sid: required")
    kind = values.get("type", "audio")
    codec, container = _DEFAULTS_BY_TYPE[kind]
    source_sid = values.get("source_sid") or new_sid("MT")
    created = values.get("date_created", now)
    return Recording(
        sid=values.get("sid") or new_sid("RT"),
        room_sid=values["room_sid"],
        participant_sid=values.get("participant_sid", new_sid("PA")),
        source_sid=source_sid,
        # Twilio uses the source SID when a track has no name.
        track_name=values.get("track_name", source_sid),
        type=kind,
        codec=values.get("codec", codec),
        container_format=values.get("container_format", container),
        status=values.get("status", "processing"),
        size=values.get("size", 0),
        duration=values.get("duration", 0),
        offset=values.get("offset", video_epoch_offset_ms(created)),
        date_created=created,
        media_external_location=values.get("media_external_location"),
        status_callback=values.get("status_callback"),
        status_callback_method=values.get("status_callback_method"),
        account_sid=values.get("account_sid"),
    )


def update_recording(recording: Recording, data: Mapping[str, Any]) -> None:
    """Apply control-API fields to ``recording`` (``sid``/``room_sid`` may only repeat)."""
    values = _parse(data, _RECORDING_FIELDS)
    for name in _IMMUTABLE_RECORDING_FIELDS & set(values):
        if values.pop(name) != getattr(recording, name):
            raise ValidationError(f"{name}: cannot be changed")
    for name, value in values.items():
        setattr(recording, name, value)


def build_room(data: Mapping[str, Any], *, now: datetime) -> Room:
    values = _parse(data, _ROOM_FIELDS)
    sid = values.get("sid") or new_sid("RM")
    return Room(
        sid=sid,
        unique_name=values.get("unique_name", sid),
        status=values.get("status", "in-progress"),
        type=values.get("type", "group"),
        date_created=values.get("date_created", now),
        date_updated=now,
        end_time=values.get("end_time"),
        duration=values.get("duration"),
        status_callback=values.get("status_callback"),
        status_callback_method=values.get("status_callback_method", "POST"),
        account_sid=values.get("account_sid"),
    )


def update_room(room: Room, data: Mapping[str, Any], *, now: datetime) -> None:
    values = _parse(data, _ROOM_FIELDS)
    if values.pop("sid", room.sid) != room.sid:
        raise ValidationError("sid: cannot be changed")
    if values.pop("account_sid", room.account_sid) != room.account_sid:
        raise ValidationError("account_sid: cannot be changed")
    for name, value in values.items():
        setattr(room, name, value)
    room.date_updated = now
