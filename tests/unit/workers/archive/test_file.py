"""FileStorage on a real temporary directory: atomic commits, resume, size checks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.archive import SizeMismatch, Stored, file_path, open_storage
from workers.archive.file import FileStorage, _WriteBack
from workers.errors import PermanentError, TransientError

KEY = "RM0123/RT4567.mkv"


def blob(size: int, seed: int = 1) -> bytes:
    """``size`` deterministic bytes (SHA-256 in counter mode)."""
    count = size // 32 + 1
    return b"".join(hashlib.sha256(f"{seed}:{n}".encode()).digest() for n in range(count))[:size]


def chunked(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def failing_after(data: bytes, limit: int) -> Iterator[bytes]:
    """Yields ``data`` up to ``limit`` bytes, then breaks off like a dropped connection."""
    sent = 0
    for chunk in chunked(data):
        if sent + len(chunk) > limit:
            raise TransientError("connection dropped")
        sent += len(chunk)
        yield chunk


def names(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def storage(tmp_path: Path) -> FileStorage:
    return FileStorage(tmp_path / "archive")


def test_write_commits_the_bytes_under_the_final_name(storage: FileStorage) -> None:
    data = blob(3_000_000)

    stored = storage.write(KEY, chunked(data), start=0, size=len(data))

    final = storage.root / KEY
    assert final.read_bytes() == data
    assert stored == Stored(final.as_uri(), len(data), hashlib.sha256(data).hexdigest())
    assert names(storage.root) == {KEY}  # no temporary left
    assert storage.size_of(KEY) == len(data)
    assert storage.staged(KEY) == 0


def test_a_failing_stream_leaves_no_final_file_and_keeps_what_was_staged(
    storage: FileStorage,
) -> None:
    data = blob(1_000_000)

    with pytest.raises(TransientError, match="connection dropped"):
        storage.write(KEY, failing_after(data, 400_000), start=0, size=len(data))

    assert storage.size_of(KEY) is None
    assert not (storage.root / KEY).exists()
    staged = storage.staged(KEY)
    assert 0 < staged <= 400_000
    assert (storage.root / f"{KEY}.part").read_bytes() == data[:staged]


def test_a_resumed_write_appends_after_the_staged_bytes(storage: FileStorage) -> None:
    data = blob(1_000_000)
    with pytest.raises(TransientError):
        storage.write(KEY, failing_after(data, 300_000), start=0, size=len(data))
    start = storage.staged(KEY)

    stored = storage.write(KEY, chunked(data[start:]), start=start, size=len(data))

    assert (storage.root / KEY).read_bytes() == data
    assert stored.sha256 == hashlib.sha256(data).hexdigest()  # the staged prefix is hashed too
    assert names(storage.root) == {KEY}


def test_restarting_from_zero_replaces_staged_bytes(storage: FileStorage) -> None:
    data = blob(500_000)
    with pytest.raises(TransientError):
        storage.write(KEY, failing_after(blob(500_000, seed=2), 200_000), start=0, size=len(data))

    storage.write(KEY, chunked(data), start=0, size=len(data))

    assert (storage.root / KEY).read_bytes() == data


@pytest.mark.parametrize("sent", [999_999, 1_000_001, 0])
def test_a_size_mismatch_is_an_error_and_discards_the_staged_bytes(
    storage: FileStorage, sent: int
) -> None:
    with pytest.raises(SizeMismatch) as caught:
        storage.write(KEY, chunked(blob(sent)), start=0, size=1_000_000)

    assert isinstance(caught.value, TransientError)  # retried, then dead-lettered
    assert names(storage.root) == set()
    assert storage.size_of(KEY) is None


def test_committing_fully_staged_bytes_needs_no_stream(storage: FileStorage) -> None:
    data = blob(200_000)
    part = storage.root / f"{KEY}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data)

    storage.write(KEY, (), start=len(data), size=len(data))

    assert (storage.root / KEY).read_bytes() == data


def test_a_final_file_is_replaced_whole_never_truncated(storage: FileStorage) -> None:
    old, new = blob(100_000, seed=3), blob(150_000, seed=4)
    storage.write(KEY, chunked(old), start=0, size=len(old))

    with pytest.raises(TransientError):
        storage.write(KEY, failing_after(new, 50_000), start=0, size=len(new))
    assert (storage.root / KEY).read_bytes() == old

    storage.write(KEY, chunked(new), start=0, size=len(new))
    assert (storage.root / KEY).read_bytes() == new


def test_written_batches_go_to_write_back_then_out_of_the_page_cache(tmp_path: Path) -> None:
    advised: list[tuple[int, int, int]] = []
    with (tmp_path / "media.part").open("wb") as out:
        write_back = _WriteBack(out, start=100, every=1000,
                                advise=lambda fd, offset, length, advice: advised.append(
                                    (fd, offset, length)))  # fmt: skip
        for written in (600, 1100, 1500, 2200, 3500):
            write_back(written)
        fd = out.fileno()

    # Each call starts the new batch's write-back and drops the one before, on disk by then.
    assert advised == [(fd, 100, 1000), (fd, 100, 2100), (fd, 1100, 2400)]


def test_a_write_handed_to_write_back_as_it_goes_keeps_every_byte(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path / "archive", write_back_every=100_000)
    data = blob(1_000_000)
    with pytest.raises(TransientError):
        storage.write(KEY, failing_after(data, 450_000), start=0, size=len(data))
    start = storage.staged(KEY)

    stored = storage.write(KEY, chunked(data[start:], 70_000), start=start, size=len(data))

    assert (storage.root / KEY).read_bytes() == data
    assert stored.sha256 == hashlib.sha256(data).hexdigest()


def test_put_bytes_is_atomic_and_leaves_no_temporary(storage: FileStorage) -> None:
    stored = storage.put_bytes("RM0123/RT4567.json", b'{"sid": "RT4567"}', content_type="x")

    assert (storage.root / "RM0123/RT4567.json").read_bytes() == b'{"sid": "RT4567"}'
    assert stored.size == 17
    assert names(storage.root) == {"RM0123/RT4567.json"}


def test_a_key_cannot_leave_the_directory(storage: FileStorage) -> None:
    with pytest.raises(ValueError, match="leaves"):
        storage.location("../elsewhere.mkv")


def test_a_directory_that_is_a_file_is_permanent(tmp_path: Path) -> None:
    root = tmp_path / "not-a-directory"
    root.write_bytes(b"")

    with pytest.raises(PermanentError, match="archive write of"):
        FileStorage(root).write(KEY, chunked(b"x" * 10), start=0, size=10)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///srv/recordings", "/srv/recordings"),
        ("file://localhost/srv/recordings", "/srv/recordings"),
        ("file://./data/recordings", "./data/recordings"),
        ("file:data/recordings", "data/recordings"),
        ("file:///srv/with%20space", "/srv/with space"),
    ],
)
def test_file_path(url: str, expected: str) -> None:
    assert file_path(url) == Path(expected)


def test_open_storage_resolves_a_relative_directory(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/a/../b")

    assert isinstance(storage, FileStorage)
    assert storage.location("RM1/RT1.mka") == (tmp_path / "b/RM1/RT1.mka").as_uri()


@pytest.mark.parametrize("url", ["http://example.com/x", "ftp://host/x"])
def test_open_storage_refuses_other_schemes(url: str) -> None:
    with pytest.raises(ValueError, match="file:// or s3://"):
        open_storage(url)
