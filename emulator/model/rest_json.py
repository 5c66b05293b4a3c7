"""Recordings and rooms rendered as Twilio's REST JSON, with absolute URLs."""

from __future__ import annotations

from typing import Any

from emulator.model.formats import format_seconds
from emulator.model.rooms import Recording, Room


def room_recording_path(recording: Recording) -> str:
    return f"/v1/Rooms/{recording.room_sid}/Recordings/{recording.sid}"


def recording_path(recording: Recording) -> str:
    return f"/v1/Recordings/{recording.sid}"


def _common(recording: Recording, account_sid: str) -> dict[str, Any]:
    grouping: dict[str, str] = {"room_sid": recording.room_sid}
    if recording.participant_sid is not None:
        grouping["participant_sid"] = recording.participant_sid
    return {
        "account_sid": account_sid,
        "status": recording.status,
        "date_created": format_seconds(recording.date_created),
        "sid": recording.sid,
        "source_sid": recording.source_sid,
        "size": recording.size,
        "url": None,
        "type": recording.type,
        "duration": recording.duration,
        "container_format": recording.container_format,
        "codec": recording.codec,
        "grouping_sids": grouping,
        "track_name": recording.track_name,
        "offset": recording.offset,
        "media_external_location": recording.media_external_location,
    }


def render_room_recording(recording: Recording, account_sid: str, base_url: str) -> dict[str, Any]:
    """The ``video.v1.room.room_recording`` JSON of ``recording``."""
    url = base_url + room_recording_path(recording)
    body = _common(recording, account_sid)
    body["url"] = url
    body["room_sid"] = recording.room_sid
    body["links"] = {"media": f"{url}/Media"}
    return body


def render_recording(recording: Recording, account_sid: str, base_url: str) -> dict[str, Any]:
    """The account-level ``video.v1.recording`` JSON of ``recording`` (no ``room_sid``)."""
    url = base_url + recording_path(recording)
    body = _common(recording, account_sid)
    body["url"] = url
    body["status_callback"] = recording.status_callback
    body["status_callback_method"] = recording.status_callback_method
    body["links"] = {"media": f"{url}/Media"}
    return body


def render_room(room: Room, account_sid: str, base_url: str) -> dict[str, Any]:
    """A ``video.v1.room`` JSON with plausible defaults for settings the emulator ignores."""
    url = f"{base_url}/v1/Rooms/{room.sid}"
    return {
        "sid": room.sid,
        "status": room.status,
        "date_created": format_seconds(room.date_created),
        "date_updated": format_seconds(room.date_updated),
        "account_sid": account_sid,
        "enable_turn": True,
        "unique_name": room.unique_name,
        "status_callback": room.status_callback,
        "status_callback_method": room.status_callback_method,
        "end_time": format_seconds(room.end_time) if room.end_time else None,
        "duration": room.duration,
        "type": room.type,
        "max_participants": 50,
        "max_participant_duration": 14400,
        "max_concurrent_published_tracks": 170,
        "record_participants_on_connect": True,
        "video_codecs": ["VP8", "H264"],
        "media_region": "us1",
        "audio_only": False,
        "empty_room_timeout": 5,
        "unused_room_timeout": 5,
        "large_room": False,
        "url": url,
        "links": {
            "participants": f"{url}/Participants",
            "recordings": f"{url}/Recordings",
            "recording_rules": f"{url}/RecordingRules",
        },
    }
