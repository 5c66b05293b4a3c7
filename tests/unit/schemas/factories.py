"""Realistic payloads for the schema and worker unit tests: a captured ``recording-completed``,
participant and track callbacks, and the RoomRecording resource Twilio answers with."""

from __future__ import annotations

from typing import Any

from tests.support.twilio import ACCOUNT_SID, recording_params, room_params, sid

# The recording-completed callback of a captured payload (it has no ``Type``).
CAPTURED_RECORDING_COMPLETED = {
    "AccountSid": "AC88c0e76737ac477de3a4700666b63186",
    "RoomSid": "RM5b9970c25fb6f31a7da94fe683be0957",
    "RoomName": "1f03d8d2-4837-4c99-b1cf-e279ba097b17",
    "RoomType": "group-small",
    "RecordingSid": "RT2c3f5a84328cb488376b45c221f27998",
    "StatusCallbackEvent": "recording-completed",
    "RecordingUri": "/v1/Recordings/RT2c3f5a84328cb488376b45c221f27998",
    "MediaUri": "/v1/Recordings/RT2c3f5a84328cb488376b45c221f27998/Media",
    "SourceSid": "MT863e43b23ad81723cc410f548045c6e3",
    "ParticipantSid": "PAec462533b0a659b7eb122a7ff9e2312e",
    "ParticipantIdentity": "ad9d1899-0a48-4cc5-a601-da0b33e4d726",
    "TrackName": "6ec82db2-390d-47d2-aec8-0e6606f15c51",
    "Codec": "vp8",
    "Container": "mkv",
    "Size": "105956",
    "Duration": "3",
    "OffsetFromTwilioVideoEpoch": "155137307765",
    "Timestamp": "2020-08-20T01:42:05.839174Z",
}

ROOM_EVENTS = ("room-created", "room-ended")
PARTICIPANT_EVENTS = ("participant-connected", "participant-disconnected")
TRACK_EVENTS = ("track-added", "track-removed", "track-enabled", "track-disabled")
RECORDING_EVENT_NAMES = ("recording-started", "recording-completed", "recording-failed")
COMPOSITION_EVENTS = (
    "composition-enqueued", "composition-hook-failed", "composition-started",
    "composition-progress", "composition-available", "composition-failed",
)  # fmt: skip


def composition_params(event: str = "composition-available", **extra: str) -> dict[str, str]:
    """A composition status callback (no RoomName/RoomStatus: Twilio documents none)."""
    composition = sid("CJ")
    params = {
        "AccountSid": ACCOUNT_SID, "RoomSid": sid("RM"), "StatusCallbackEvent": event,
        "Timestamp": "2020-08-20T01:42:05.839174Z", "CompositionSid": composition,
        "CompositionUri": f"/v1/Compositions/{composition}",
    }  # fmt: skip
    if event == "composition-progress":
        params |= {"PercentageDone": "50", "SecondsRemaining": "30"}
    elif event == "composition-available":
        params |= {"MediaUri": f"/v1/Compositions/{composition}/Media", "Size": "1234567",
                   "Duration": "1800"}  # fmt: skip
    elif event in ("composition-failed", "composition-hook-failed"):
        params |= {"FailedOperation": "Composition", "ErrorMessage": "No media"}
    if event == "composition-hook-failed":
        params["HookSid"] = sid("HK")
    params.update(extra)
    return params


def participant_params(event: str = "participant-connected", **extra: str) -> dict[str, str]:
    params = room_params(
        event,
        ParticipantSid=sid("PA"),
        ParticipantStatus="connected" if event != "participant-disconnected" else "disconnected",
        ParticipantIdentity="alice",
    )
    if event == "participant-disconnected":
        params["ParticipantDuration"] = "42"
    params.update(extra)
    return params


def track_params(event: str = "track-added", **extra: str) -> dict[str, str]:
    params = participant_params("participant-connected")
    params |= {"StatusCallbackEvent": event, "TrackSid": sid("MT"), "TrackKind": "video"}
    params.update(extra)
    return params


def callback_params(event: str, **extra: str) -> dict[str, str]:
    """Realistic parameters for any of the eleven room status callback events."""
    if event in ROOM_EVENTS:
        params = room_params(event)
        if event == "room-ended":
            params |= {"RoomStatus": "completed", "RoomDuration": "1800"}
        params.update(extra)
        return params
    if event in PARTICIPANT_EVENTS:
        return participant_params(event, **extra)
    if event in TRACK_EVENTS:
        return track_params(event, **extra)
    if event in COMPOSITION_EVENTS:
        return composition_params(event, **extra)
    return recording_params(event, **extra)


def recording_resource(
    room_sid: str | None = None, recording_sid: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A room-level RoomRecording as ``GET /v1/Rooms/{RM}/Recordings/{RT}`` returns it."""
    room = room_sid or sid("RM")
    recording = recording_sid or sid("RT")
    url = f"https://video.twilio.com/v1/Rooms/{room}/Recordings/{recording}"
    resource: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "codec": "vp8",
        "container_format": "mkv",
        "date_created": "2020-08-20T01:42:05Z",
        "duration": 3,
        "grouping_sids": {"room_sid": room, "participant_sid": sid("PA")},
        "links": {"media": f"{url}/Media"},
        "media_external_location": None,
        "offset": 155137307765,
        "room_sid": room,
        "sid": recording,
        "size": 105956,
        "source_sid": sid("MT"),
        "status": "completed",
        "track_name": "6ec82db2-390d-47d2-aec8-0e6606f15c51",
        "type": "video",
        "url": url,
    }
    resource.update(overrides)
    return resource


def resource_for(params: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """The resource of the recording a recording callback announced."""
    return recording_resource(params["RoomSid"], params["RecordingSid"], **overrides)
