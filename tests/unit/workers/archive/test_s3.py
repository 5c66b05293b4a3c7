"""S3Storage against a real S3-compatible server (moto in server mode on loopback)."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.s3 import MotoS3
from tests.unit.workers.archive.test_file import blob, chunked, failing_after
from tests.unit.workers.helpers import worker_settings
from workers.archive import SizeMismatch, open_storage
from workers.archive.s3 import MIN_PART_SIZE, S3Storage
from workers.errors import PermanentError, TransientError

KEY = "RM0123/RT4567.mkv"
PART = MIN_PART_SIZE  # 5 MiB: several parts from files of a few MB


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    with MotoS3(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture
def bucket(s3: MotoS3) -> str:
    return s3.bucket()


@pytest.fixture
def storage(s3: MotoS3, bucket: str) -> S3Storage:
    return S3Storage(s3.client(), bucket, "archive/", part_size=PART)


def content(s3: MotoS3, bucket: str, name: str) -> bytes:
    body: bytes = s3.client().get_object(Bucket=bucket, Key=name)["Body"].read()
    return body


def open_uploads(s3: MotoS3, bucket: str) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = (
        s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    )
    return uploads


def objects(s3: MotoS3, bucket: str) -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(item["Key"] for item in listed)


@pytest.mark.parametrize("size", [1_000_000, PART, 12_000_000])
def test_write_stores_the_object_whole(
    s3: MotoS3, bucket: str, storage: S3Storage, size: int
) -> None:
    data = blob(size)

    stored = storage.write(KEY, chunked(data, 1024 * 1024), start=0, size=size)

    assert content(s3, bucket, f"archive/{KEY}") == data
    assert stored.location == f"s3://{bucket}/archive/{KEY}"
    assert stored.size == size
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert storage.size_of(KEY) == size
    assert open_uploads(s3, bucket) == []
    head = s3.client().head_object(Bucket=bucket, Key=f"archive/{KEY}")
    assert head["ContentType"] == "video/x-matroska"


def test_a_failing_stream_leaves_no_object_and_the_next_attempt_resumes(
    s3: MotoS3, bucket: str, storage: S3Storage
) -> None:
    data = blob(12_000_000)

    with pytest.raises(TransientError, match="connection dropped"):
        storage.write(KEY, failing_after(data, 11_000_000), start=0, size=len(data))

    assert objects(s3, bucket) == []  # nothing under the final name
    assert len(open_uploads(s3, bucket)) == 1
    start = storage.staged(KEY)
    assert start == 2 * PART  # the whole parts sent before the failure

    stored = storage.write(KEY, chunked(data[start:]), start=start, size=len(data))

    assert content(s3, bucket, f"archive/{KEY}") == data
    assert stored.sha256 is None  # bytes sent by an earlier attempt are not read back
    assert open_uploads(s3, bucket) == []
    assert storage.staged(KEY) == 0


def test_a_failing_small_upload_leaves_nothing(s3: MotoS3, bucket: str, storage: S3Storage) -> None:
    data = blob(2_000_000)

    with pytest.raises(TransientError):
        storage.write(KEY, failing_after(data, 1_000_000), start=0, size=len(data))

    assert objects(s3, bucket) == []
    assert open_uploads(s3, bucket) == []


@pytest.mark.parametrize("sent", [12_000_000 - 1, 12_000_000 + 1, 3_000_000, 2 * PART])
def test_a_size_mismatch_stores_nothing_and_aborts_the_upload(
    s3: MotoS3, bucket: str, storage: S3Storage, sent: int
) -> None:
    with pytest.raises(SizeMismatch):
        storage.write(KEY, chunked(blob(sent)), start=0, size=12_000_000)

    assert objects(s3, bucket) == []
    assert open_uploads(s3, bucket) == []


def test_starting_over_aborts_a_stale_upload(s3: MotoS3, bucket: str, storage: S3Storage) -> None:
    data = blob(11_000_000)
    with pytest.raises(TransientError):
        storage.write(KEY, failing_after(blob(11_000_000, seed=9), 6_000_000), start=0,
                      size=len(data))  # fmt: skip

    storage.write(KEY, chunked(data), start=0, size=len(data))

    assert content(s3, bucket, f"archive/{KEY}") == data
    assert open_uploads(s3, bucket) == []


def test_resuming_at_a_byte_nothing_was_staged_for_is_a_mismatch(storage: S3Storage) -> None:
    with pytest.raises(SizeMismatch, match="staged upload"):
        storage.write(KEY, chunked(blob(PART)), start=PART, size=3 * PART)


def test_discard_aborts_open_uploads(s3: MotoS3, bucket: str, storage: S3Storage) -> None:
    with pytest.raises(TransientError):
        storage.write(KEY, failing_after(blob(12_000_000), 7_000_000), start=0,
                      size=12_000_000)  # fmt: skip
    assert storage.staged(KEY) == PART

    storage.discard(KEY)

    assert open_uploads(s3, bucket) == []
    assert storage.staged(KEY) == 0


def test_put_bytes_and_size_of(s3: MotoS3, bucket: str, storage: S3Storage) -> None:
    assert storage.size_of("RM0123/RT4567.json") is None

    stored = storage.put_bytes("RM0123/RT4567.json", b'{"a": 1}', content_type="application/json")

    assert stored.location == f"s3://{bucket}/archive/RM0123/RT4567.json"
    assert storage.size_of("RM0123/RT4567.json") == 8
    head = s3.client().head_object(Bucket=bucket, Key="archive/RM0123/RT4567.json")
    assert head["ContentType"] == "application/json"


def test_memory_stays_bounded_by_the_part_size(storage: S3Storage) -> None:
    size = 30 * 1024 * 1024

    def stream() -> Iterator[bytes]:
        chunk = b"\x5a" * (1024 * 1024)
        for _ in range(size // len(chunk)):
            yield chunk

    tracemalloc.start()
    try:
        storage.write(KEY, stream(), start=0, size=size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * PART, f"peak {peak} bytes for a {size}-byte upload"


def test_open_storage_uses_the_endpoint_and_keys_from_settings(s3: MotoS3, bucket: str) -> None:
    settings = worker_settings(ARCHIVE_URL=f"s3://{bucket}/rec/x", **s3.env)

    storage = open_storage(settings.archive_url, settings)
    storage.put_bytes("RM1/RT1.json", b"{}", content_type="application/json")

    assert isinstance(storage, S3Storage)
    assert objects(s3, bucket) == ["rec/x/RM1/RT1.json"]


def test_a_missing_bucket_is_permanent(s3: MotoS3) -> None:
    storage = S3Storage(s3.client(), "roomrec-no-such-bucket")

    with pytest.raises(PermanentError, match="NoSuchBucket"):
        storage.write(KEY, chunked(b"x" * 10), start=0, size=10)


def test_an_unreachable_endpoint_is_transient() -> None:
    settings = worker_settings(
        ARCHIVE_URL="s3://roomrec-bucket", S3_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", AWS_REGION="us-east-1",
    )  # fmt: skip
    storage = open_storage(settings.archive_url, settings)

    with pytest.raises(TransientError, match="S3 request failed on head of RM1/RT1.mka"):
        storage.size_of("RM1/RT1.mka")
