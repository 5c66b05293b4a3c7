"""The room simulator against a real callback receiver and the real emulator."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from typing import Any

import pytest
import requests

from emulator.client import RoomSimulator
from emulator.client.process import REPO_ROOT

TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

# Parameter sets per event, from Twilio's room status callback documentation.
COMMON = {
    "AccountSid", "RoomName", "RoomSid", "RoomStatus", "RoomType", "StatusCallbackEvent",
    "Timestamp", "SequenceNumber",
}  # fmt: skip
PARTICIPANT = COMMON | {"ParticipantSid", "ParticipantStatus", "ParticipantIdentity"}
TRACK = PARTICIPANT | {"TrackSid", "TrackKind"}
RECORDING = {
    "AccountSid", "RecordingSid", "Timestamp", "StatusCallbackEvent", "RoomSid", "RoomName",
    "RoomType", "ParticipantSid", "SourceSid", "RecordingUri", "Container", "Codec",
    "ParticipantIdentity", "TrackName", "OffsetFromTwilioVideoEpoch", "Type",
}  # fmt: skip
RECORDING_OPTIONAL = {"RoomStatus", "SequenceNumber"}
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    "room-created": (COMMON, set()),
    "room-ended": (COMMON | {"RoomDuration"}, set()),
    "participant-connected": (PARTICIPANT, set()),
    "participant-disconnected": (PARTICIPANT | {"ParticipantDuration"}, set()),
    "track-added": (TRACK, set()),
    "track-removed": (TRACK, set()),
    "track-enabled": (TRACK, set()),
    "track-disabled": (TRACK, set()),
    "recording-started": (RECORDING, RECORDING_OPTIONAL),
    "recording-completed": (
        RECORDING | {"MediaUri", "Duration", "Size"},
        RECORDING_OPTIONAL | {"MediaExternalLocation"},
    ),
    "recording-failed": (RECORDING | {"FailedOperation"}, RECORDING_OPTIONAL),
}


def _simulator(
    emulator: Any, receiver: Any, creds: Any, seed: int, **options: Any
) -> RoomSimulator:
    return RoomSimulator(
        emulator.control,
        receiver.url,
        creds.account_sid,
        creds.auth_token,
        rng=random.Random(seed),
        **options,
    )


def _watch_emulator(receiver: Any, control: Any) -> None:
    """Record the emulator's view of each recording when its callback arrives."""

    def inspect(params: dict[str, str]) -> Any:
        sid = params.get("RecordingSid")
        return control.get_recording(sid) if sid else None

    receiver.inspect = inspect


def _check_parameter_sets(params: dict[str, str]) -> None:
    required, optional = EXPECTED[params["StatusCallbackEvent"]]
    assert required <= set(params), required - set(params)
    assert set(params) <= required | optional, set(params) - required - optional


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_play_sends_signed_realistic_callbacks(
    twilio: Any, receiver: Any, creds: Any, api: Any, method: str
) -> None:
    _watch_emulator(receiver, twilio.control)
    with _simulator(twilio, receiver, creds, seed=7, method=method) as simulator:
        room = simulator.play(participants=3, size_range=(1_000, 5_000))

    assert room.all_acknowledged()
    received = receiver.received
    assert [r.params for r in received] == [c.params for c in room.callbacks]
    for callback in received:
        assert callback.method == method
        assert callback.signature_valid, callback.url
        assert callback.user_agent.startswith("TwilioProxy")
        if method == "POST":
            assert callback.content_type == "application/x-www-form-urlencoded"
            assert "?" not in callback.url
        _check_parameter_sets(callback.params)
        assert callback.params["AccountSid"] == creds.account_sid
        assert callback.params["RoomSid"] == room.room_sid
        assert TIMESTAMP_RE.match(callback.params["Timestamp"])
    stamps = [r.params["Timestamp"] for r in received]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)

    events = [r.params["StatusCallbackEvent"] for r in received]
    assert events[0] == "room-created"
    assert events.count("participant-connected") == events.count("participant-disconnected") == 3
    assert events.count("track-added") == events.count("recording-started") == 6
    assert events.count("recording-completed") == 6
    assert events.index("room-ended") < events.index("recording-completed")
    room_events = [
        r.params for r in received if not r.params["StatusCallbackEvent"].startswith("recording-")
    ]
    assert [int(p["SequenceNumber"]) for p in room_events] == sorted(
        int(p["SequenceNumber"]) for p in room_events
    )

    for callback in received:
        params = callback.params
        event = params["StatusCallbackEvent"]
        if not event.startswith("recording-"):
            continue
        sid = params["RecordingSid"]
        assert params["RecordingUri"] == f"/v1/Recordings/{sid}"
        assert (params["Type"], params["Codec"], params["Container"]) in {
            ("audio", "opus", "mka"),
            ("video", "vp8", "mkv"),
        }
        seen = callback.observed
        if event == "recording-started":
            assert seen["status"] == "processing"  # created before the callback was sent
        else:
            assert params["MediaUri"] == f"/v1/Recordings/{sid}/Media"
            # Completed in the emulator before the callback arrived.
            assert (seen["status"], seen["size"], seen["duration"]) == (
                "completed",
                int(params["Size"]),
                int(params["Duration"]),
            )
            fetched = api.get(f"{twilio.url}{params['RecordingUri']}", timeout=5).json()
            assert fetched["size"] == int(params["Size"])
            assert fetched["offset"] == int(params["OffsetFromTwilioVideoEpoch"])
            assert (fetched["codec"], fetched["container_format"]) == (
                params["Codec"],
                params["Container"],
            )
            media = api.get(f"{twilio.url}{params['MediaUri']}", allow_redirects=False)
            assert media.status_code == 302

    assert {r.sid for r in room.recordings} == {
        r.params["RecordingSid"] for r in received if "RecordingSid" in r.params
    }
    assert all(r.status == "completed" for r in room.recordings)
    assert api.get(f"{twilio.url}/v1/Rooms/{room.room_sid}").json()["status"] == "completed"


def test_failed_recordings(twilio: Any, receiver: Any, creds: Any) -> None:
    with _simulator(twilio, receiver, creds, seed=3) as simulator:
        room = simulator.play(participants=2, fail_recordings=2)
    failed = [c.params for c in room.callbacks if c.event == "recording-failed"]
    assert len(failed) == 2
    assert all(p["FailedOperation"] in {"RecordingComplete", "RecordingUpload"} for p in failed)
    for params in failed:
        _check_parameter_sets(params)
        assert twilio.control.get_recording(params["RecordingSid"])["status"] == "failed"
    assert sorted(r.status for r in room.recordings) == [
        "completed",
        "completed",
        "failed",
        "failed",
    ]


def test_plan_is_deterministic_and_replayable_shuffled(
    twilio: Any, receiver: Any, creds: Any
) -> None:
    with _simulator(twilio, receiver, creds, seed=11) as first:
        planned = first.plan(participants=2)
    with _simulator(twilio, receiver, creds, seed=11) as second:
        again = second.plan(participants=2)
    timeless = ("Timestamp", "OffsetFromTwilioVideoEpoch")  # anchored to the clock
    assert [{k: v for k, v in p.items() if k not in timeless} for p in planned] == [
        {k: v for k, v in p.items() if k not in timeless} for p in again
    ]
    assert receiver.received == []  # planning sends nothing

    shuffled = planned + planned[3:6]  # duplicates, as a retrying sender would produce
    random.Random(5).shuffle(shuffled)
    with _simulator(twilio, receiver, creds, seed=0) as simulator:
        answers = [simulator.send(params) for params in shuffled]
    assert [a.status for a in answers] == [204] * len(shuffled)
    assert all(r.signature_valid for r in receiver.received)
    assert len(receiver.received) == len(shuffled)
    # Whatever the order, every recording ends completed in the emulator.
    recordings = {p["RecordingSid"] for p in planned if "RecordingSid" in p}
    stored = {r["sid"]: r["status"] for r in twilio.control.recordings()}
    assert stored == dict.fromkeys(recordings, "completed")


def test_media_external_location_and_extra_params(twilio: Any, receiver: Any, creds: Any) -> None:
    with _simulator(
        twilio,
        receiver,
        creds,
        seed=5,
        media_external_location="https://bucket.s3.amazonaws.com/rooms/",
        extra_params={"TwilioAddedThis": "1"},
    ) as simulator:
        room = simulator.play(participants=1)
    assert all(r.signature_valid and r.params["TwilioAddedThis"] == "1" for r in receiver.received)
    completed = [c.params for c in room.callbacks if c.event == "recording-completed"]
    assert all(
        p["MediaExternalLocation"]
        == f"https://bucket.s3.amazonaws.com/rooms/{p['RecordingSid']}.{p['Container']}"
        for p in completed
    )


def test_unreachable_callback_url_is_reported(twilio: Any, creds: Any) -> None:
    with requests.Session() as session:
        simulator = RoomSimulator(
            twilio.control,
            "http://127.0.0.1:9/unreachable",
            creds.account_sid,
            creds.auth_token,
            rng=random.Random(1),
            session=session,
            timeout=2,
        )
        room = simulator.play(participants=0)
    assert [c.event for c in room.callbacks] == ["room-created", "room-ended"]
    assert all(c.status is None and c.error for c in room.callbacks)
    assert not room.all_acknowledged()


def test_simulate_cli(twilio: Any, receiver: Any, creds: Any) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "emulator", "simulate",
            "--emulator", twilio.url, "--callback-url", receiver.url,
            "--account-sid", creds.account_sid, "--auth-token", creds.auth_token,
            "--participants", "2", "--seed", "1", "--method", "GET",
        ],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(receiver.received) > 0
    assert all(line.endswith("-> 204") for line in lines)
    assert all(r.method == "GET" and r.signature_valid for r in receiver.received)
