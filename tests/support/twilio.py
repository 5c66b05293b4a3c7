"""Realistic Twilio callback parameters and their signatures, for tests."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC88c0e76737ac477de3a4700666b63186"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def timestamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def room_params(event: str = "room-created", **extra: str) -> dict[str, str]:
    params = {
        "AccountSid": ACCOUNT_SID,
        "RoomName": "daily-standup",
        "RoomSid": sid("RM"),
        "RoomStatus": "in-progress",
        "RoomType": "group",
        "StatusCallbackEvent": event,
        "Timestamp": timestamp(),
        "SequenceNumber": "0",
    }
    params.update(extra)
    return params


def recording_params(event: str = "recording-completed", **extra: str) -> dict[str, str]:
    """A recording callback with the parameters of a captured ``recording-completed``."""
    recording = extra.pop("RecordingSid", None) or sid("RT")
    params = {
        "AccountSid": ACCOUNT_SID,
        "RoomSid": sid("RM"),
        "RoomName": "1f03d8d2-4837-4c99-b1cf-e279ba097b17",
        "RoomType": "group-small",
        "RecordingSid": recording,
        "StatusCallbackEvent": event,
        "RecordingUri": f"/v1/Recordings/{recording}",
        "SourceSid": sid("MT"),
        "ParticipantSid": sid("PA"),
        "ParticipantIdentity": "ad9d1899-0a48-4cc5-a601-da0b33e4d726",
        "TrackName": "6ec82db2-390d-47d2-aec8-0e6606f15c51",
        "Codec": "vp8",
        "Container": "mkv",
        "OffsetFromTwilioVideoEpoch": "155137307765",
        "Timestamp": timestamp(),
    }
    if event == "recording-completed":
        params |= {
            "MediaUri": f"/v1/Recordings/{recording}/Media",
            "Size": "105956",
            "Duration": "3",
        }
    if event == "recording-failed":
        params["FailedOperation"] = "RecordingUpload"
    params.update(extra)
    return params


def sign(url: str, params: dict[str, str] | None, token: str = AUTH_TOKEN) -> str:
    """``X-Twilio-Signature`` for a POST of ``params`` to ``url`` (a GET signs the URL alone)."""
    return RequestValidator(token).compute_signature(url, params or {})


def get_url(url: str, params: dict[str, str]) -> str:
    return f"{url}?{urlencode(params)}"
