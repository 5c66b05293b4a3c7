"""Recordings whose informational fields marshmallow's Url refused (an S3 bucket of a legacy
name with an underscore, a key with a space, odd ``url`` and ``links``) are fetched, listed and
forwarded, each field as Twilio sent it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from devtools.receiver import ForwardTarget
from emulator.client import EmulatorProcess
from tests.support.twilio import sid
from tests.unit.workers.helpers import recording_event, worker_settings
from workers.handlers import HandlerContext, resolve
from workers.handlers.forward import ForwardHandler
from workers.twilio.client import TwilioVideo

UNDERSCORE = "https://my_bucket.s3.amazonaws.com/recordings/RT.mka"
SPACE = "https://bucket.s3.amazonaws.com/rooms/my room/RT 1.mka"


@pytest.fixture
def twilio(emulator: EmulatorProcess) -> Iterator[TwilioVideo]:
    emulator.control.reset()
    yield TwilioVideo(worker_settings(TWILIO_VIDEO_BASE_URL=emulator.url, TWILIO_TIMEOUT="5"))
    emulator.control.reset()


@pytest.mark.parametrize("location", [UNDERSCORE, SPACE])
def test_the_room_listing_and_the_fetch_keep_an_external_location_verbatim(
    emulator: EmulatorProcess, twilio: TwilioVideo, location: str
) -> None:
    room = sid("RM")
    made = emulator.control.create_recording(
        room_sid=room, status="completed", size=10_000, media_external_location=location
    )
    other = emulator.control.create_recording(room_sid=room, status="completed", size=10)

    listed = {recording.sid: recording for recording in twilio.list_room_recordings(room)}

    assert set(listed) == {made["sid"], other["sid"]}  # the listing is not refused
    assert listed[made["sid"]].media_external_location == location
    assert listed[made["sid"]].raw["media_external_location"] == location
    fetched = twilio.fetch_recording(room, made["sid"])
    assert fetched.media_external_location == location


def test_odd_fields_are_forwarded_as_twilio_sent_them(
    make_context: Callable[..., HandlerContext], forward_target: ForwardTarget
) -> None:
    handler = resolve("forward")(make_context(FORWARD_URLS=forward_target.url))
    assert isinstance(handler, ForwardHandler)
    odd = {
        "media_external_location": SPACE.replace("bucket", "my_bucket"),
        "url": "https://video.twilio.com/v1/Rooms/RM x/Recordings/RT",
        "links": {"media": "https://my_bucket.example/a b", "extra": {"nested": [1]}},
    }
    event = recording_event(**odd)

    handler(event, forward_target.url)

    [delivery] = forward_target.deliveries
    sent = delivery.body["data"]["recording"]
    assert {name: sent[name] for name in odd} == odd
    assert sent == json.loads(json.dumps(event.recording.raw if event.recording else None))
