"""The ``archive`` handler against a real Twilio emulator, real Redis and a real directory
(or a real S3-compatible server): the media it stores must be the emulator's, byte for byte."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from emulator.client import EmulatorProcess
from emulator.model.media import media_sha256
from schemas import HandlerEvent, RoomRecordingSchema, load_callback
from tests.support.s3 import MotoS3
from tests.support.twilio import recording_params, room_params
from tests.unit.workers.helpers import room_event
from workers.archive import ArchiveBusy, ArchiveIndex, ArchivePaused, SizeMismatch
from workers.archive.lock import RecordingLock
from workers.delivery.dedup import event_id
from workers.errors import NotFoundYet, PermanentError, TransientError
from workers.handlers import HandlerContext, resolve
from workers.handlers.archive import ArchiveHandler

MakeContext = Callable[..., HandlerContext]
SIZE = 5_000_000


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    return tmp_path / "archive"


@pytest.fixture
def context(
    make_context: MakeContext, twilio: EmulatorProcess, archive_dir: Path
) -> Callable[..., HandlerContext]:
    def make(**env: str) -> HandlerContext:
        base = {"HANDLERS": "archive", "TWILIO_VIDEO_BASE_URL": twilio.url,
                "TWILIO_TIMEOUT": "5", "ARCHIVE_URL": f"file://{archive_dir}"}  # fmt: skip
        return make_context(**(base | env))

    return make


def archiver(context: HandlerContext) -> ArchiveHandler:
    handler = resolve("archive")(context)
    assert isinstance(handler, ArchiveHandler)
    return handler


def seed(twilio: EmulatorProcess, *, size: int = SIZE, **fields: Any) -> HandlerEvent:
    """A recording in the emulator, and the processed recording-completed event for it."""
    params = recording_params("recording-completed", Size=str(size))
    resource = twilio.control.create_recording(**{
        "sid": params["RecordingSid"], "room_sid": params["RoomSid"],
        "participant_sid": params["ParticipantSid"], "source_sid": params["SourceSid"],
        "type": "video", "codec": "vp8", "container_format": "mkv", "size": size,
        "duration": 3, "status": "completed", **fields,
    })  # fmt: skip
    return event_of(params, resource)


def event_of(params: dict[str, str], resource: dict[str, Any]) -> HandlerEvent:
    return HandlerEvent(
        id=event_id(params), event=load_callback(params),
        recording=RoomRecordingSchema().load(resource), received_at=datetime.now(UTC),
    )  # fmt: skip


def with_size(event: HandlerEvent, size: int) -> HandlerEvent:
    assert event.recording is not None
    return event_of(dict(event.event.raw), event.recording.raw | {"size": size})


def sids(event: HandlerEvent) -> tuple[str, str]:
    assert event.event.recording_sid is not None
    return event.event.room_sid, event.event.recording_sid


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def served(twilio: EmulatorProcess) -> list[tuple[str, str, int | None]]:
    """(method, kind, status) of each request the emulator served, oldest first."""
    kinds = []
    for entry in twilio.control.requests():
        path = entry["path"]
        kind = ("signed" if path.startswith("/_media/") else
                "media" if path.endswith("/Media") else "recording")  # fmt: skip
        kinds.append((entry["method"], kind, entry["status"]))
    return kinds


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_a_completed_recording_is_archived_byte_for_byte(context, twilio, archive_dir) -> None:
    event = seed(twilio)
    room, rt = sids(event)
    assert event.recording is not None

    archiver(context())(event, None)

    media = archive_dir / room / f"{rt}.mkv"
    assert media.stat().st_size == SIZE
    assert sha256_of(media) == media_sha256(rt, SIZE)
    assert json.loads((archive_dir / room / f"{rt}.json").read_text()) == event.recording.raw
    assert files(archive_dir) == {f"{room}/{rt}.mkv", f"{room}/{rt}.json"}
    assert served(twilio) == [("GET", "media", 302), ("GET", "signed", 200)]


def test_where_it_went_is_indexed_in_redis(context, twilio, archive_dir) -> None:
    event = seed(twilio)
    room, rt = sids(event)
    made = context()

    archiver(made)(event, None)

    record = ArchiveIndex(made.redis).get(rt)
    assert record is not None
    assert record.location == (archive_dir / room / f"{rt}.mkv").as_uri()
    assert record.sidecar == (archive_dir / room / f"{rt}.json").as_uri()
    assert (record.size, record.sha256) == (SIZE, media_sha256(rt, SIZE))
    assert (record.room_sid, record.external, record.deleted_from_twilio) == (room, False, False)
    assert ArchiveIndex(made.redis).totals() == {"recordings": 1, "bytes": SIZE}


@pytest.mark.parametrize(
    "params",
    [recording_params("recording-started"), room_params("room-ended"),
     room_params("participant-connected", ParticipantSid="PA" + "0" * 32)],
)  # fmt: skip
def test_other_events_are_ignored(context, twilio, archive_dir, params) -> None:
    event = room_event(params)

    archiver(context())(event, None)

    assert served(twilio) == []
    assert not archive_dir.exists()


def test_a_redelivered_event_is_not_downloaded_again(context, twilio, archive_dir) -> None:
    event = seed(twilio)
    room, rt = sids(event)
    handler = archiver(context())
    handler(event, None)
    (archive_dir / room / f"{rt}.json").unlink()

    handler(event, None)

    assert [kind for _, kind, _ in served(twilio)].count("signed") == 1
    assert (archive_dir / room / f"{rt}.json").exists()  # the sidecar is written again
    assert ArchiveIndex(handler.index.redis).totals() == {"recordings": 1, "bytes": SIZE}
    record = handler.index.get(rt)
    assert record is not None and record.sha256 == media_sha256(rt, SIZE)


def test_a_recording_still_processing_is_retried_until_completed(context, twilio, archive_dir):
    event = seed(twilio, status="processing")
    room, rt = sids(event)
    handler = archiver(context())

    with pytest.raises(NotFoundYet, match="still processing"):
        handler(event, None)
    assert served(twilio) == [("GET", "recording", 200)]  # fetched again, no media asked

    twilio.control.update_recording(rt, status="completed")
    handler(event, None)  # the same (stale) event: the recording is fetched again

    assert sha256_of(archive_dir / room / f"{rt}.mkv") == media_sha256(rt, SIZE)


def test_media_404_is_retried(context, twilio, archive_dir) -> None:
    event = seed(twilio)
    room, rt = sids(event)
    twilio.control.add_fault(r"/Media$", status=404, count=1)
    handler = archiver(context())

    with pytest.raises(NotFoundYet):
        handler(event, None)
    assert not (archive_dir / room / f"{rt}.mkv").exists()

    handler(event, None)
    assert sha256_of(archive_dir / room / f"{rt}.mkv") == media_sha256(rt, SIZE)


@pytest.mark.parametrize(
    ("path", "fault"),
    [(r"^/_media/", {"status": 403}), (r"^/_media/", {"status": 503}),
     (r"^/_media/", {"action": "drop"}), (r"/Media$", {"status": 500})],
)  # fmt: skip
def test_failures_are_transient_and_never_show_the_signed_url(
    context, twilio, archive_dir, caplog, path, fault
) -> None:
    caplog.set_level(logging.DEBUG)
    event = seed(twilio)
    room, rt = sids(event)
    twilio.control.add_fault(path, count=1, **fault)
    handler = archiver(context())

    with pytest.raises(TransientError) as caught:
        handler(event, None)

    assert not isinstance(caught.value, PermanentError)
    assert "Signature=" not in str(caught.value)
    handler(event, None)  # the next attempt gets a new signed URL
    assert sha256_of(archive_dir / room / f"{rt}.mkv") == media_sha256(rt, SIZE)
    assert "Signature=" not in caplog.text
    assert "/_media/" in caplog.text  # urllib3 did log the request, without its query


def test_deleted_at_twilio_only_after_a_verified_archive(context, twilio, archive_dir) -> None:
    event = seed(twilio)
    room, rt = sids(event)
    made = context(ARCHIVE_DELETE_FROM_TWILIO="1")

    archiver(made)(event, None)

    assert served(twilio) == [("GET", "media", 302), ("GET", "signed", 200),
                              ("DELETE", "recording", 204)]  # fmt: skip
    assert twilio.control.get_recording(rt)["status"] == "deleted"
    record = ArchiveIndex(made.redis).get(rt)
    assert record is not None and record.deleted_from_twilio
    assert sha256_of(archive_dir / room / f"{rt}.mkv") == media_sha256(rt, SIZE)


def test_a_redelivered_event_after_the_delete_changes_nothing(context, twilio) -> None:
    event = seed(twilio)
    handler = archiver(context(ARCHIVE_DELETE_FROM_TWILIO="1"))
    handler(event, None)
    twilio.control.clear_requests()

    handler(event, None)

    assert served(twilio) == []


def test_a_size_mismatch_stores_nothing_and_deletes_nothing(context, twilio, archive_dir):
    event = with_size(seed(twilio), SIZE + 1)  # Twilio's size disagrees with its media
    room, rt = sids(event)
    made = context(ARCHIVE_DELETE_FROM_TWILIO="1")

    with pytest.raises(SizeMismatch):
        archiver(made)(event, None)

    assert not any(method == "DELETE" for method, _, _ in served(twilio))
    assert twilio.control.get_recording(rt)["status"] == "completed"
    assert not archive_dir.exists() or files(archive_dir) == set()
    assert ArchiveIndex(made.redis).get(rt) is None


def test_an_external_recording_is_indexed_not_downloaded(context, twilio, archive_dir) -> None:
    external = "https://my-bucket.s3.amazonaws.com/recordings/RT1.mkv"
    event = seed(twilio, media_external_location=external)
    room, rt = sids(event)
    made = context(ARCHIVE_DELETE_FROM_TWILIO="1")

    archiver(made)(event, None)

    assert served(twilio) == []  # no media request, and no DELETE either
    record = ArchiveIndex(made.redis).get(rt)
    assert record is not None
    assert (record.location, record.external, record.size) == (external, True, SIZE)
    assert files(archive_dir) == {f"{room}/{rt}.json"}


@pytest.mark.parametrize("status", ["failed", "deleted"])
def test_a_recording_without_media_is_permanent(context, twilio, status) -> None:
    event = seed(twilio, status=status)

    with pytest.raises(PermanentError, match=f"is {status} at Twilio"):
        archiver(context())(event, None)


def test_a_long_download_pauses_in_time_and_the_next_attempt_resumes(
    context, twilio, archive_dir
) -> None:
    size = 12_000_000
    event = seed(twilio, size=size)
    room, rt = sids(event)
    ticks = itertools.count(0, 10)  # every look at the clock: 10 s later
    paused = ArchiveHandler(context(), clock=lambda: float(next(ticks)))
    assert paused.copier.budget == 30  # VISIBILITY_TIMEOUT 90: a 60 s task limit

    with pytest.raises(ArchivePaused, match="paused at byte"):
        paused(event, None)
    staged = (archive_dir / room / f"{rt}.mkv.part").stat().st_size
    assert 0 < staged < size
    assert not (archive_dir / room / f"{rt}.mkv").exists()

    archiver(context())(event, None)

    assert sha256_of(archive_dir / room / f"{rt}.mkv") == media_sha256(rt, size)
    assert [status for _, kind, status in served(twilio) if kind == "signed"] == [200, 206]
    assert files(archive_dir) == {f"{room}/{rt}.mkv", f"{room}/{rt}.json"}


def test_one_archive_at_a_time_per_recording(context, twilio) -> None:
    event = seed(twilio)
    made = context()
    _, rt = sids(event)

    with RecordingLock(made.redis, ttl=60).hold(rt), pytest.raises(ArchiveBusy):
        archiver(made)(event, None)
    assert served(twilio) == []


def test_memory_stays_flat_whatever_the_size(context, twilio, archive_dir) -> None:
    size = 40_000_000
    event = seed(twilio, size=size)
    handler = archiver(context())

    tracemalloc.start()
    try:
        handler(event, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    room, rt = sids(event)
    assert (archive_dir / room / f"{rt}.mkv").stat().st_size == size
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte recording"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    with MotoS3(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


def test_archived_to_s3_as_a_multipart_upload(context, twilio, s3) -> None:
    bucket = s3.bucket()
    size = 11_000_000  # two parts of the default 8 MiB
    event = seed(twilio, size=size)
    room, rt = sids(event)
    made = context(ARCHIVE_URL=f"s3://{bucket}/rec", **s3.env)

    archiver(made)(event, None)

    body = s3.client().get_object(Bucket=bucket, Key=f"rec/{room}/{rt}.mkv")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == media_sha256(rt, size)
    sidecar = s3.client().get_object(Bucket=bucket, Key=f"rec/{room}/{rt}.json")["Body"].read()
    assert event.recording is not None and json.loads(sidecar) == event.recording.raw
    record = ArchiveIndex(made.redis).get(rt)
    assert record is not None and record.location == f"s3://{bucket}/rec/{room}/{rt}.mkv"


def test_an_s3_archive_paused_mid_way_resumes_after_its_whole_parts(context, twilio, s3) -> None:
    bucket = s3.bucket()
    size = 20_000_000
    event = seed(twilio, size=size)
    room, rt = sids(event)
    env = {"ARCHIVE_URL": f"s3://{bucket}", **s3.env}
    ticks = itertools.count(0, 3)  # 30 s of budget: paused after 11 chunks of 1 MiB
    paused = ArchiveHandler(context(**env), clock=lambda: float(next(ticks)))

    with pytest.raises(ArchivePaused):
        paused(event, None)
    client = s3.client()
    assert client.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert paused.storage.staged(f"{room}/{rt}.mkv") == 8 * 1024 * 1024  # one whole part

    archiver(context(**env))(event, None)

    body = client.get_object(Bucket=bucket, Key=f"{room}/{rt}.mkv")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == media_sha256(rt, size)
    assert [status for _, kind, status in served(twilio) if kind == "signed"] == [200, 206]
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
