"""workers.service.operations called directly (the CLI's tests run them through the commands):
dead letters found, refused and purged, and the store's database seen and migrated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from workers.errors import PermanentError
from workers.metadata.migrate import head_revision
from workers.service import operations
from workers.state.deadletters import DeadLetterStore


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def add(client: redis.Redis, event_id: str) -> str:
    return DeadLetterStore(client).add(
        event_id=event_id, stage="fetch", target=None, attempts=3, error="boom",
        message={"v": 1, "id": event_id},
    )  # fmt: skip


def test_a_dead_letter_by_id_or_prefix(client: redis.Redis) -> None:
    first, second = add(client, "evt_a1"), add(client, "evt_b1")

    assert operations.dead_letter(client, first)["id"] == first
    assert operations.dead_letter(client, "evt_b")["id"] == second
    assert [entry["id"] for entry in operations.dead_letters(client)] == [first, second]


@pytest.mark.parametrize(("text", "says"), [("evt_nope", "no dead letter 'evt_nope'"),
                                            ("evt_", "'evt_' names 2 dead letters")])  # fmt: skip
def test_a_dead_letter_needs_exactly_one_match(client: redis.Redis, text: str, says: str) -> None:
    add(client, "evt_a1")
    add(client, "evt_b1")

    with pytest.raises(operations.NoSuchDeadLetter, match=says) as raised:
        operations.dead_letter(client, text)

    assert isinstance(raised.value, PermanentError)  # the CLI's one-line failure, exit 1


def test_purge_one_then_all(client: redis.Redis) -> None:
    first = add(client, "evt_a1")
    add(client, "evt_b1")
    add(client, "evt_c1")

    assert operations.purge_dead_letters(client, first) == 1
    assert operations.purge_dead_letters(client, first) == 0
    assert operations.purge_dead_letters(client) == 2
    assert operations.dead_letters(client) == []


def test_a_database_seen_then_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/roomrec.db"

    empty = operations.database_revision(url)
    assert (empty.current, empty.head, empty.up_to_date) == (None, head_revision(), False)

    first = operations.upgrade_database(url)
    again = operations.upgrade_database(url)

    assert (first.before, first.after) == (None, head_revision())
    assert again.before == again.after == head_revision()
    assert operations.database_revision(url).up_to_date
    assert first.database == empty.database == url
