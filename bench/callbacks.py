"""Signed ``recording-completed`` callbacks and the emulator recordings they announce.

Every callback names its own recording (distinct ``RecordingSid``), so the endpoint's
de-duplication never short-circuits one. Signatures are computed over
``PUBLIC_BASE_URL + /twilio/room-events``; the web under test is started with that
``PUBLIC_BASE_URL``, so the same signed requests fit a server on any port.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from workers.delivery.dedup import event_id

ACCOUNT_SID = "AC" + "b3" * 16
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
PUBLIC_BASE_URL = "http://roomrec.bench.invalid"
CALLBACK_PATH = "/twilio/room-events"
SIGNED_URL = PUBLIC_BASE_URL + CALLBACK_PATH
RECORDING_SIZE = 105_956  # the Size of a captured recording-completed
EVENT = "recording-completed"


@dataclass(frozen=True, slots=True)
class BenchRecording:
    sid: str
    room_sid: str
    participant_sid: str
    source_sid: str
    track_name: str
    size: int = RECORDING_SIZE

    @property
    def event_id(self) -> str:
        """The id the web gives its ``recording-completed`` (the forward's ``webhook-id``)."""
        return event_id({"RecordingSid": self.sid, "StatusCallbackEvent": EVENT})


def _sid(rng: random.Random, prefix: str) -> str:
    return prefix + f"{rng.getrandbits(128):032x}"


def recordings(
    rng: random.Random, count: int, *, size: int = RECORDING_SIZE
) -> list[BenchRecording]:
    """``count`` distinct video recordings, a few per room as in a real room."""
    found: list[BenchRecording] = []
    room = _sid(rng, "RM")
    for index in range(count):
        if index % 6 == 0:
            room = _sid(rng, "RM")
        source = _sid(rng, "MT")
        found.append(
            BenchRecording(_sid(rng, "RT"), room, _sid(rng, "PA"), source, source, size=size)
        )
    return found


def emulator_fields(recording: BenchRecording) -> dict[str, Any]:
    """What ``EmulatorControl.create_recording`` takes for a completed recording."""
    return {
        "sid": recording.sid,
        "room_sid": recording.room_sid,
        "participant_sid": recording.participant_sid,
        "source_sid": recording.source_sid,
        "track_name": recording.track_name,
        "type": "video",
        "codec": "vp8",
        "container_format": "mkv",
        "status": "completed",
        "size": recording.size,
        "duration": 3,
    }


def timestamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def completed_params(recording: BenchRecording, moment: datetime | None = None) -> dict[str, str]:
    """The parameters of a captured ``recording-completed``, for ``recording``."""
    sid = recording.sid
    return {
        "AccountSid": ACCOUNT_SID,
        "RoomSid": recording.room_sid,
        "RoomName": "1f03d8d2-4837-4c99-b1cf-e279ba097b17",
        "RoomType": "group-small",
        "RecordingSid": sid,
        "StatusCallbackEvent": EVENT,
        "RecordingUri": f"/v1/Recordings/{sid}",
        "SourceSid": recording.source_sid,
        "ParticipantSid": recording.participant_sid,
        "ParticipantIdentity": "ad9d1899-0a48-4cc5-a601-da0b33e4d726",
        "TrackName": recording.track_name,
        "Codec": "vp8",
        "Container": "mkv",
        "OffsetFromTwilioVideoEpoch": "155137307765",
        "Timestamp": timestamp(moment),
        "MediaUri": f"/v1/Recordings/{sid}/Media",
        "Size": str(recording.size),
        "Duration": "3",
    }


@dataclass(frozen=True, slots=True)
class SignedCallback:
    body: str
    signature: str


class Signer:
    def __init__(self, token: str = AUTH_TOKEN, url: str = SIGNED_URL) -> None:
        self.validator = RequestValidator(token)
        self.url = url

    def sign(self, params: dict[str, str]) -> SignedCallback:
        return SignedCallback(urlencode(params), self.validator.compute_signature(self.url, params))

    def headers(self, callback: SignedCallback) -> dict[str, str]:
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": callback.signature,
            "User-Agent": "TwilioProxy/1.1",
        }


def signed_callbacks(items: list[BenchRecording]) -> Iterator[SignedCallback]:
    signer = Signer()
    moment = datetime.now(UTC)
    for recording in items:
        yield signer.sign(completed_params(recording, moment))
