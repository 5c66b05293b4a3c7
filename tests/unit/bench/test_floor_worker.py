"""The drain floor's task does what the issue's floor is: one GET of the recording, then one
POST of it signed as the Standard Webhooks spec asks, verified here by a receiver that checks
every signature with the ``standardwebhooks`` library."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from bench.floor_worker import fetch_and_forward
from devtools.receiver import ForwardTarget
from emulator.client import EmulatorProcess
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, sid

SECRET = "whsec_" + base64.b64encode(b"roomrec-floor-test-secret").decode()


@pytest.fixture
def target() -> Iterator[ForwardTarget]:
    found = ForwardTarget(SECRET)
    yield found
    found.stop()


def test_the_floor_fetches_then_posts_a_signed_delivery(
    twilio: EmulatorProcess, target: ForwardTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    room, recording = sid("RM"), sid("RT")
    twilio.control.create_room(sid=room)
    twilio.control.create_recording(sid=recording, room_sid=room, type="audio",
                                    status="completed", size=100, duration=1)  # fmt: skip
    for name, value in {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                        "TWILIO_VIDEO_BASE_URL": twilio.url, "FORWARD_URLS": target.url,
                        "FORWARD_SECRET": SECRET}.items():  # fmt: skip
        monkeypatch.setenv(name, value)

    fetch_and_forward(room, recording, "evt_floor")
    fetch_and_forward(room, recording, "evt_floor_again")  # on the kept connections

    assert target.invalid == []
    first, second = target.deliveries
    assert (first.webhook_id, second.webhook_id) == ("evt_floor", "evt_floor_again")
    assert first.body["sid"] == recording and first.body["room_sid"] == room
    served = [r["path"] for r in twilio.control.requests()]
    assert served == [f"/v1/Rooms/{room}/Recordings/{recording}"] * 2
    assert json.loads(json.dumps(first.body)) == first.body
