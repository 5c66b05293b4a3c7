"""Reconciliation against the real Twilio emulator and a private Redis: paging, the window,
which recordings are queued, and the stand-in callback each gets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from werkzeug.wrappers import Response

from emulator.client import EmulatorProcess
from schemas import RoomRecordingSchema, load_callback
from schemas.settings import DEFAULT_DEDUP_TTL, WorkerSettings
from tests.support.twilio import ACCOUNT_SID, recording_params, sid
from tests.unit.schemas.factories import resource_for
from tests.unit.webhooks.helpers import queued
from tests.unit.workers.helpers import worker_settings
from workers.delivery.broker import Broker
from workers.delivery.celery_app import make_celery
from workers.delivery.choice import open_broker
from workers.delivery.dedup import event_id
from workers.delivery.redis_broker import RedisBroker
from workers.errors import PermanentError
from workers.recovery.reconcile import Summary, list_recordings, reconcile
from workers.recovery.stand_in import NotReplayable, stand_in_message
from workers.twilio.client import TwilioVideo

NOW = datetime.now(UTC)


@pytest.fixture
def settings(emulator: EmulatorProcess, redis_url: str) -> WorkerSettings:
    return worker_settings(TWILIO_VIDEO_BASE_URL=emulator.url, REDIS_URL=redis_url)


@pytest.fixture
def enqueuer(redis_url: str) -> Iterator[Broker]:
    """A broker as the reconcile task's runtime builds one: atomic on the one Redis."""
    client, celery = redis.Redis.from_url(redis_url), make_celery(redis_url)
    broker = open_broker(celery, client, broker_url=redis_url, redis_url=redis_url,
                         dedup_ttl=DEFAULT_DEDUP_TTL)  # fmt: skip
    assert isinstance(broker, RedisBroker)
    yield broker
    celery.close()
    broker.close()


def create(control: Any, status: str = "completed", age: float = 60, **fields: Any) -> str:
    """A recording created ``age`` seconds ago; returns its SID."""
    created = (NOW - timedelta(seconds=age)).isoformat()
    body = control.create_recording(
        room_sid=sid("RM"), status=status, date_created=created, type="video", size=2048,
        duration=3, **fields,
    )  # fmt: skip
    return str(body["sid"])


# --- the stand-in callback ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "event"), [("completed", "recording-completed"), ("failed", "recording-failed")]
)
def test_the_stand_in_event_has_the_real_callbacks_id(status: str, event: str) -> None:
    real = recording_params(event)
    recording = RoomRecordingSchema().load(resource_for(real, status=status))

    message = stand_in_message(recording, source="reconcile", now=NOW)

    assert message.id == event_id(real)
    loaded = message.event
    assert (loaded.event, loaded.room_sid, loaded.recording_sid) == (
        event, real["RoomSid"], real["RecordingSid"])  # fmt: skip
    assert loaded.raw["RoomrecSource"] == "reconcile"
    assert loaded.params["recording_uri"] == f"/v1/Recordings/{real['RecordingSid']}"
    assert load_callback(dict(loaded.raw)) == loaded  # what the worker validates again
    if status == "completed":
        assert loaded.params["size"] == 105956 and loaded.params["duration"] == 3
        assert loaded.params["codec"] == "VP8" and loaded.params["container"] == "mkv"
        assert loaded.params["media_uri"].endswith("/Media")
    else:
        assert "media_uri" not in loaded.params and "size" not in loaded.params


def test_the_account_level_resource_gives_the_room_from_grouping_sids() -> None:
    real = recording_params()
    resource = resource_for(real)
    del resource["room_sid"]

    message = stand_in_message(RoomRecordingSchema().load(resource), source="replay")

    assert message.event.room_sid == real["RoomSid"]
    assert message.id == event_id(real)


@pytest.mark.parametrize(
    "overrides",
    [{"status": "processing"}, {"status": "deleted"},
     {"room_sid": None, "grouping_sids": {"participant_sid": sid("PA")}}],
)  # fmt: skip
def test_recordings_without_a_final_callback_are_refused(overrides: dict[str, Any]) -> None:
    resource = resource_for(recording_params()) | overrides

    recording = RoomRecordingSchema().load(resource)
    with pytest.raises(NotReplayable):
        stand_in_message(recording, source="reconcile")


def test_a_value_the_callback_schema_refuses_is_left_out() -> None:
    recording = RoomRecordingSchema().load(
        resource_for(recording_params(), source_sid="not-a-track-sid")
    )

    message = stand_in_message(recording, source="reconcile")

    assert "SourceSid" not in message.event.raw
    assert message.event.recording_sid == recording.sid


def test_the_account_sid_falls_back_to_the_configured_one() -> None:
    recording = RoomRecordingSchema().load(resource_for(recording_params(), account_sid=None))

    message = stand_in_message(recording, source="reconcile", account_sid=ACCOUNT_SID)

    assert message.event.account_sid == ACCOUNT_SID


# --- listing ------------------------------------------------------------------------------


def test_listing_follows_every_page(control: Any, settings: WorkerSettings) -> None:
    made = {create(control, age=100 + n) for n in range(25)}
    control.clear_requests()

    listed = list(list_recordings(TwilioVideo(settings), NOW - timedelta(hours=1), page_size=10))

    assert {item["sid"] for item in listed} == made and len(listed) == 25
    pages = [r for r in control.requests() if r["path"] == "/v1/Recordings"]
    assert len(pages) == 3
    assert "DateCreatedAfter=" in pages[0]["query"] and "PageToken=" in pages[2]["query"]


def test_listing_keeps_to_the_window(control: Any, settings: WorkerSettings) -> None:
    inside = create(control, age=600)
    create(control, age=7200)  # before since
    create(control, age=10)  # after until

    since, until = NOW - timedelta(seconds=1800), NOW - timedelta(seconds=60)
    listed = list(list_recordings(TwilioVideo(settings), since, until))

    assert [item["sid"] for item in listed] == [inside]


def page(recordings: list[dict[str, Any]], next_url: str | None) -> Response:
    body = {"recordings": recordings, "meta": {"next_page_url": next_url, "key": "recordings"}}
    return Response(json.dumps(body), mimetype="application/json")


@pytest.mark.parametrize("where", ["elsewhere", "same page"])
def test_a_next_page_elsewhere_or_repeated_is_refused(where: str, local_server: Any) -> None:
    def answer(request: Any, _release: Any) -> Response:
        nxt = "https://evil.example.com/v1/Recordings?Page=1" if where == "elsewhere" else None
        return page([], nxt or f"{request.host_url}v1/Recordings?Page=1")

    server = local_server(answer)
    settings = worker_settings(TWILIO_VIDEO_BASE_URL=server.url)

    with pytest.raises(PermanentError):
        list(list_recordings(TwilioVideo(settings), NOW))
    assert len(server.seen) <= 2  # never followed elsewhere, never looping


def test_an_unreadable_page_is_permanent(local_server: Any) -> None:
    server = local_server(lambda _r, _e: Response("<html>", mimetype="text/html"))
    settings = worker_settings(TWILIO_VIDEO_BASE_URL=server.url)

    with pytest.raises(PermanentError, match="unreadable"):
        list(list_recordings(TwilioVideo(settings), NOW))


# --- reconcile ----------------------------------------------------------------------------


def test_only_final_recordings_never_processed_are_queued(
    control: Any, settings: WorkerSettings, enqueuer: Broker, redis_url: str
) -> None:
    completed, failed = create(control), create(control, "failed")
    processing = create(control, "processing")
    processed = create(control)
    seen = RoomRecordingSchema().load(control.get_recording(processed) | {"status": "completed"})
    assert enqueuer.enqueue(stand_in_message(seen, source="test", account_sid=ACCOUNT_SID))
    before = len(queued(redis_url))
    ticks: list[int] = []

    summary = reconcile(TwilioVideo(settings), enqueuer, NOW - timedelta(hours=1),
                        progress=ticks.append, account_sid=ACCOUNT_SID)  # fmt: skip

    assert (summary.listed, summary.enqueued, summary.already_processed, summary.skipped) == (
        4, 2, 1, 1)  # fmt: skip
    assert (
        sorted(summary.queued) == sorted([completed, failed]) and processing not in summary.queued
    )
    assert ticks == [1, 1, 1, 1]
    messages = queued(redis_url)[before:]
    events = {m["args"][0]["params"]["RecordingSid"]: m["args"][0]["params"] for m in messages}
    assert events[completed]["StatusCallbackEvent"] == "recording-completed"
    assert events[failed]["StatusCallbackEvent"] == "recording-failed"
    assert {p["RoomrecSource"] for p in events.values()} == {"reconcile"}
    assert {m["headers"]["task"] for m in messages} == {"roomrec.process_event"}


def test_a_second_run_queues_nothing(
    control: Any, settings: WorkerSettings, enqueuer: Broker, redis_url: str
) -> None:
    for _ in range(3):
        create(control)
    twilio, since = TwilioVideo(settings), NOW - timedelta(hours=1)
    first = reconcile(twilio, enqueuer, since, account_sid=ACCOUNT_SID)

    second = reconcile(twilio, enqueuer, since, account_sid=ACCOUNT_SID)

    assert (first.enqueued, second.enqueued, second.already_processed) == (3, 0, 3)
    assert len(queued(redis_url)) == 3


def test_an_invalid_resource_is_counted_and_skipped(local_server: Any, enqueuer: Broker) -> None:
    good = resource_for(recording_params())
    server = local_server(lambda _r, _e: page([{"sid": "nonsense"}, good], None))
    settings = worker_settings(TWILIO_VIDEO_BASE_URL=server.url)

    summary = reconcile(TwilioVideo(settings), enqueuer, NOW)

    assert (summary.listed, summary.unusable, summary.enqueued) == (2, 1, 1)


def test_the_summary_is_json() -> None:
    summary = Summary(since=NOW, until=None, listed=2, enqueued=1, queued=["RT1"])

    document = json.loads(json.dumps(summary.to_json()))

    assert document["since"].endswith("Z") and document["until"] is None
    assert document["queued"] == ["RT1"] and document["listed"] == 2
