"""workers.service.reads on a real (private) Redis: archive records as they were written."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import redis

from tests.unit.workers.archive.test_archive_index import RT, record
from workers.archive import ArchiveIndex
from workers.service.reads import archive_record, event_outcomes
from workers.state.keys import ARCHIVES_KEY
from workers.state.outcomes import OutcomeStore


@pytest.fixture(params=[False, True], ids=["bytes", "decoded"])
def client(redis_url: str, request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=request.param)
    yield connection
    connection.close()


def test_the_archive_handler_s_record_in_full(client: redis.Redis) -> None:
    assert archive_record(client, RT) is None

    ArchiveIndex(client).put(record(external=True))

    assert archive_record(client, RT) == record(external=True).to_json()


def test_a_record_is_shown_as_written(client: redis.Redis) -> None:
    written = {"location": "s3://bucket/x.mkv", "unknown_later": [1, 2]}
    client.hset(ARCHIVES_KEY, RT, json.dumps(written))

    assert archive_record(client, RT) == written


@pytest.mark.parametrize("stored", ["not json", "[1, 2]", "null", b"\xff"])
def test_an_unreadable_record_is_none_and_logged(
    client: redis.Redis, stored: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    client.hset(ARCHIVES_KEY, RT, stored)

    with caplog.at_level(logging.WARNING, logger="workers.service"):
        assert archive_record(client, RT) is None

    assert f"unreadable archive record of {RT}" in caplog.text


def test_outcomes_of_an_event(client: redis.Redis) -> None:
    outcomes = OutcomeStore(client, ttl=3600)
    outcomes.record("evt_a", "store", None, "succeeded", attempts=1)
    outcomes.record("evt_a", "log", None, "retrying", attempts=2, error="503")

    found = event_outcomes(client, "evt_a")

    assert [(o["handler"], o["status"], o["attempts"]) for o in found] == [
        ("log", "retrying", 2), ("store", "succeeded", 1),
    ]  # fmt: skip
    assert event_outcomes(client, "evt_b") == []
