"""``archive`` through the real stack: a signed recording-completed callback in; the media
out in a directory or in an S3-compatible server (moto, in its own process), byte-identical."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.client import EmulatorProcess
from emulator.model.media import media_sha256
from tests.integration.conftest import wait_for
from tests.integration.test_pipeline import post, resource
from tests.support.s3 import MotoS3
from tests.support.twilio import recording_params
from workers.archive import ArchiveIndex
from workers.delivery.dedup import event_id
from workers.state.outcomes import outcomes_of

pytestmark = pytest.mark.integration


def completed(twilio: EmulatorProcess, size: int) -> dict[str, str]:
    """A completed recording of ``size`` bytes in the emulator and its signed-to-be callback."""
    params = recording_params("recording-completed", Size=str(size))
    twilio.control.create_recording(
        sid=params["RecordingSid"], room_sid=params["RoomSid"],
        participant_sid=params["ParticipantSid"], source_sid=params["SourceSid"],
        type="audio", codec="opus", container_format="mka", size=size, duration=60,
        status="completed",
    )  # fmt: skip
    return params


def kind(path: str) -> str:
    if path.startswith("/_media/"):
        return "signed"
    return "media" if path.endswith("/Media") else "recording"


def outcome(stack: Any, params: dict[str, str]) -> str | None:
    found = outcomes_of(stack.redis, event_id(params))
    return found[0]["status"] if found else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def test_a_recording_lands_in_the_archive_directory_byte_identical(
    start_stack, twilio, tmp_path
) -> None:
    archive = tmp_path / "archive"
    stack = start_stack(HANDLERS="archive", ARCHIVE_URL=f"file://{archive}")
    size = 6_000_000
    params = completed(twilio, size)
    room, rt = params["RoomSid"], params["RecordingSid"]

    assert post(stack.callback_url, params).status_code == 204
    wait_for(lambda: outcome(stack, params) == "succeeded", 60, f"archive of {rt}")

    media = archive / room / f"{rt}.mka"
    assert sha256_of(media) == media_sha256(rt, size)
    assert json.loads((archive / room / f"{rt}.json").read_text()) == resource(twilio, room, rt)
    assert sorted(p.name for p in (archive / room).iterdir()) == [f"{rt}.json", f"{rt}.mka"]
    record = ArchiveIndex(stack.redis).get(rt)
    assert record is not None and (record.location, record.size) == (media.as_uri(), size)
    assert stack.dead_letters() == []
    assert "Signature=" not in stack.logs()


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[MotoS3]:
    with MotoS3(tmp_path / "moto.log") as server:
        yield server


def test_a_recording_lands_in_s3_and_is_then_deleted_at_twilio(start_stack, twilio, s3) -> None:
    bucket = s3.bucket()
    stack = start_stack(HANDLERS="archive", ARCHIVE_URL=f"s3://{bucket}/recordings",
                        ARCHIVE_DELETE_FROM_TWILIO="1", **s3.env)  # fmt: skip
    size = 10_000_000  # a multipart upload: two parts of 8 MiB
    params = completed(twilio, size)
    room, rt = params["RoomSid"], params["RecordingSid"]

    assert post(stack.callback_url, params).status_code == 204
    wait_for(lambda: outcome(stack, params) == "succeeded", 60, f"archive of {rt}")

    client = s3.client()
    body = client.get_object(Bucket=bucket, Key=f"recordings/{room}/{rt}.mka")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == media_sha256(rt, size)
    sidecar = client.get_object(Bucket=bucket, Key=f"recordings/{room}/{rt}.json")["Body"]
    assert json.loads(sidecar.read())["sid"] == rt
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert twilio.control.get_recording(rt)["status"] == "deleted"
    served = [(e["method"], kind(e["path"])) for e in twilio.control.requests()]
    assert served.index(("DELETE", "recording")) > served.index(("GET", "signed"))
    record = ArchiveIndex(stack.redis).get(rt)
    assert record is not None and record.deleted_from_twilio
    assert "Signature=" not in stack.logs()
