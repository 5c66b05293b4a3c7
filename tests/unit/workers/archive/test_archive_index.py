"""ArchiveIndex and RecordingLock on a real (private) Redis, with and without decoding."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from workers.archive import ArchiveBusy, ArchiveIndex, ArchiveRecord
from workers.archive.lock import RecordingLock
from workers.state.keys import ARCHIVE_LOCK_KEY

RT = "RT" + "a" * 32


def record(**changes: object) -> ArchiveRecord:
    fields: dict[str, object] = {
        "recording_sid": RT, "room_sid": "RM" + "b" * 32, "location": "file:///srv/x.mkv",
        "size": 1000, "sha256": "c" * 64, "sidecar": "file:///srv/x.json", "external": False,
        "archived_at": "2026-11-24T06:00:00.000000Z",
    } | changes  # fmt: skip
    return ArchiveRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture(params=[False, True], ids=["bytes", "decoded"])
def client(redis_url: str, request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=request.param)
    yield connection
    connection.close()


def test_put_then_get(client: redis.Redis) -> None:
    index = ArchiveIndex(client)
    assert index.get(RT) is None

    assert index.put(record()) is True

    assert index.get(RT) == record()


def test_totals_count_each_recording_once(client: redis.Redis) -> None:
    index = ArchiveIndex(client)

    index.put(record())
    index.put(record())  # a redelivered archive
    index.put(record(recording_sid="RT" + "d" * 32, size=500))
    index.put(record(recording_sid="RT" + "e" * 32, size=700, external=True))

    assert index.totals() == {"recordings": 3, "bytes": 1500}


def test_mark_deleted(client: redis.Redis) -> None:
    index = ArchiveIndex(client)
    index.put(record())

    index.mark_deleted(RT)
    index.mark_deleted("RT" + "f" * 32)  # unknown: nothing happens

    stored = index.get(RT)
    assert stored is not None and stored.deleted_from_twilio
    assert index.get("RT" + "f" * 32) is None


def test_the_lock_is_exclusive_and_released(client: redis.Redis) -> None:
    lock = RecordingLock(client, ttl=30)

    with lock.hold(RT):
        with pytest.raises(ArchiveBusy) as caught, lock.hold(RT):
            pass
        assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 30
    with lock.hold(RT):  # released
        pass
    assert not client.exists(ARCHIVE_LOCK_KEY.format(RT))


def test_an_expired_lock_taken_over_is_not_released_by_its_first_holder(
    client: redis.Redis,
) -> None:
    lock = RecordingLock(client, ttl=30)

    with lock.hold(RT):
        client.set(ARCHIVE_LOCK_KEY.format(RT), "another-task")  # as if expired and taken over

    assert client.get(ARCHIVE_LOCK_KEY.format(RT)) in ("another-task", b"another-task")
