"""The status callbacks Twilio sends for one room, planned without any I/O.

Parameter sets per event follow Twilio's room status callbacks. Timestamps are strictly
increasing and end about a second before ``now``; ``SequenceNumber`` counts events in the
order they are planned.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from emulator.model.formats import format_micros, new_sid, video_epoch_offset_ms

CONTAINERS = {"audio": "mka", "video": "mkv"}
FAILED_OPERATIONS = ("RecordingComplete", "RecordingUpload")
SIZE_RANGE = (20_000, 400_000)  # bytes of a recording's media, drawn at random within it


@dataclass(frozen=True)
class PlanOptions:
    participants: int = 3
    record: bool = True
    fail_recordings: int = 0
    size_range: tuple[int, int] = SIZE_RANGE
    video_codec: str = "vp8"
    room_type: str = "group"
    # Base URL of an external S3 location; completed callbacks then carry MediaExternalLocation.
    media_external_location: str | None = None
    # Whether recording-* events carry RoomStatus and SequenceNumber (Twilio leaves this
    # undocumented); None lets the random generator decide once per room.
    recording_room_fields: bool | None = None
    # Parameters Twilio might add without notice, sent with every callback.
    extra_params: Mapping[str, str] = field(default_factory=dict)


@dataclass
class SimulatedRecording:
    sid: str
    room_sid: str
    participant_sid: str
    source_sid: str
    track_name: str
    type: str
    codec: str
    container: str
    offset: int
    status: str = "processing"
    size: int = 0
    duration: int = 0
    failed_operation: str | None = None
    media_external_location: str | None = None


def recording_fields(params: Mapping[str, str]) -> dict[str, Any]:
    """The recording a ``recording-*`` callback describes, in the emulator's field names."""
    return {
        "sid": params["RecordingSid"],
        "room_sid": params["RoomSid"],
        "participant_sid": params["ParticipantSid"],
        "source_sid": params["SourceSid"],
        "track_name": params["TrackName"],
        "type": params["Type"],
        "codec": params["Codec"],
        "container_format": params["Container"],
        "offset": int(params["OffsetFromTwilioVideoEpoch"]),
    }


@dataclass
class _Track:
    sid: str
    kind: str
    name: str
    participant: _Participant
    recording_sid: str | None = None
    recording_started: float = 0.0
    ended: float = 0.0


@dataclass
class _Participant:
    sid: str
    identity: str
    joined: float
    tracks: list[_Track] = field(default_factory=list)


@dataclass
class _Event:
    at: float
    params: dict[str, str]
    offset_at: float | None = None


class _Planner:
    def __init__(self, rng: random.Random, account_sid: str, options: PlanOptions) -> None:
        self.rng = rng
        self.options = options
        self.account_sid = account_sid
        self.room_sid = new_sid("RM", rng)
        self.room_name = self.new_uuid()
        self.room_status = "in-progress"
        self.at = 0.0
        self.sequence = 0
        self.events: list[_Event] = []
        room_fields = options.recording_room_fields
        self.recording_room_fields = rng.random() < 0.5 if room_fields is None else room_fields

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def tick(self, low: float, high: float) -> None:
        self.at += max(0.001, self.rng.uniform(low, high))

    def _next_sequence(self) -> str:
        self.sequence += 1
        return str(self.sequence - 1)

    def room_event(self, event: str, **extra: str) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "RoomName": self.room_name,
            "RoomSid": self.room_sid,
            "RoomStatus": self.room_status,
            "RoomType": self.options.room_type,
            "StatusCallbackEvent": event,
            "Timestamp": "",
            "SequenceNumber": self._next_sequence(),
            **extra,
        }
        self.events.append(_Event(self.at, params))
        return params

    def participant_event(self, event: str, who: _Participant, status: str, **extra: str) -> None:
        self.room_event(
            event,
            ParticipantSid=who.sid,
            ParticipantStatus=status,
            ParticipantIdentity=who.identity,
            **extra,
        )

    def track_event(self, event: str, track: _Track) -> None:
        self.participant_event(
            event, track.participant, "connected", TrackSid=track.sid, TrackKind=track.kind
        )

    def recording_event(self, event: str, track: _Track, **extra: str) -> None:
        assert track.recording_sid is not None
        kind = track.kind
        params = {
            "AccountSid": self.account_sid,
            "RecordingSid": track.recording_sid,
            "Timestamp": "",
            "StatusCallbackEvent": event,
            "RoomSid": self.room_sid,
            "RoomName": self.room_name,
            "RoomType": self.options.room_type,
            "ParticipantSid": track.participant.sid,
            "SourceSid": track.sid,
            "RecordingUri": f"/v1/Recordings/{track.recording_sid}",
            "Container": CONTAINERS[kind],
            "Codec": "opus" if kind == "audio" else self.options.video_codec.lower(),
            "ParticipantIdentity": track.participant.identity,
            "TrackName": track.name,
            "OffsetFromTwilioVideoEpoch": "",
            "Type": kind,
            **extra,
        }
        if self.recording_room_fields:
            params["RoomStatus"] = self.room_status
            params["SequenceNumber"] = self._next_sequence()
        self.events.append(_Event(self.at, params, offset_at=track.recording_started))

    def materialize(self, now: datetime) -> list[dict[str, str]]:
        start = now - timedelta(seconds=self.at + 1)
        result = []
        for event in self.events:
            params = dict(event.params)
            params["Timestamp"] = format_micros(start + timedelta(seconds=event.at))
            if event.offset_at is not None:
                moment = start + timedelta(seconds=event.offset_at)
                params["OffsetFromTwilioVideoEpoch"] = str(video_epoch_offset_ms(moment))
            params.update(self.options.extra_params)
            result.append(params)
        return result


def plan_room(
    rng: random.Random, account_sid: str, options: PlanOptions, *, now: datetime
) -> list[dict[str, str]]:
    """Every callback of one room, in the order Twilio would send them."""
    plan = _Planner(rng, account_sid, options)
    plan.room_event("room-created")
    people: list[_Participant] = []
    for _ in range(options.participants):
        plan.tick(0.5, 4)
        who = _Participant(new_sid("PA", rng), plan.new_uuid(), plan.at)
        people.append(who)
        plan.participant_event("participant-connected", who, "connected")
        for kind in ("audio", "video"):
            plan.tick(0.05, 0.6)
            track = _Track(new_sid("MT", rng), kind, plan.new_uuid(), who)
            who.tracks.append(track)
            plan.track_event("track-added", track)
            if options.record:
                plan.tick(0.01, 0.3)
                track.recording_sid = new_sid("RT", rng)
                track.recording_started = plan.at
                plan.recording_event("recording-started", track)
    for who in people:
        if rng.random() < 0.5:
            track = rng.choice(who.tracks)
            plan.tick(2, 20)
            plan.track_event("track-disabled", track)
            plan.tick(1, 15)
            plan.track_event("track-enabled", track)
    plan.tick(10, 90)
    for who in rng.sample(people, len(people)):
        plan.tick(0.5, 10)
        for track in who.tracks:
            plan.tick(0.01, 0.2)
            track.ended = plan.at
            plan.track_event("track-removed", track)
        plan.tick(0.01, 0.2)
        duration = str(max(1, round(plan.at - who.joined)))
        plan.participant_event(
            "participant-disconnected", who, "disconnected", ParticipantDuration=duration
        )
    plan.tick(1, 5)
    plan.room_status = "completed"
    plan.room_event("room-ended", RoomDuration=str(max(1, round(plan.at))))

    recorded = [t for who in people for t in who.tracks if t.recording_sid is not None]
    failing = {id(t) for t in rng.sample(recorded, min(options.fail_recordings, len(recorded)))}
    for track in recorded:
        plan.tick(0.5, 5)
        if id(track) in failing:
            operation = rng.choice(FAILED_OPERATIONS)
            plan.recording_event("recording-failed", track, FailedOperation=operation)
            continue
        extra = {
            "MediaUri": f"/v1/Recordings/{track.recording_sid}/Media",
            # Twilio reports sub-second tracks as 1 second.
            "Duration": str(max(1, round(track.ended - track.recording_started))),
            "Size": str(rng.randint(*options.size_range)),
        }
        if options.media_external_location:
            base = options.media_external_location.rstrip("/")
            extra["MediaExternalLocation"] = (
                f"{base}/{track.recording_sid}.{CONTAINERS[track.kind]}"
            )
        plan.recording_event("recording-completed", track, **extra)
    return plan.materialize(now)


def recordings_from_callbacks(callbacks: Iterable[Mapping[str, str]]) -> list[SimulatedRecording]:
    """The recordings a list of callbacks describes, in order of first appearance."""
    found: dict[str, SimulatedRecording] = {}
    for params in callbacks:
        event = params.get("StatusCallbackEvent", "")
        if not event.startswith("recording-"):
            continue
        sid = params["RecordingSid"]
        recording = found.get(sid)
        if recording is None:
            fields = recording_fields(params)
            fields["container"] = fields.pop("container_format")
            recording = found[sid] = SimulatedRecording(**fields)
        if event == "recording-completed":
            recording.status = "completed"
            recording.size = int(params["Size"])
            recording.duration = int(params["Duration"])
            recording.media_external_location = params.get("MediaExternalLocation")
        elif event == "recording-failed":
            recording.status = "failed"
            recording.failed_operation = params["FailedOperation"]
    return list(found.values())
