from __future__ import annotations

import pytest
import redis

from tests.unit.workers.helpers import worker_settings
from workers.state.keys import OUTCOMES_KEY
from workers.state.outcomes import OutcomeStore, outcomes_of


def test_the_latest_outcome_per_handler_and_target_is_kept(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    ttl = worker_settings().marks_ttl  # what a worker's runtime gives its store
    store = OutcomeStore(client, ttl=ttl)
    store.record("evt_1", "forward", "https://a.example/h?token=s3cret", "retrying",
                 attempts=1, error="503")  # fmt: skip
    store.record("evt_1", "forward", "https://a.example/h?token=s3cret", "succeeded", attempts=2)
    store.record("evt_1", "forward", "https://b.example/h", "gone", attempts=1)
    store.record("evt_1", "log", None, "succeeded", attempts=1)
    store.record("evt_2", "log", None, "dead-lettered", attempts=3, error="boom")

    outcomes = outcomes_of(client, "evt_1")
    assert [(o["handler"], o["status"], o["attempts"]) for o in outcomes] == [
        ("forward", "succeeded", 2),
        ("forward", "gone", 1),
        ("log", "succeeded", 1),
    ]
    assert "s3cret" not in str(outcomes)
    assert outcomes[0]["target"].startswith("https://a.example/h#")
    assert ttl - 10 < client.ttl(OUTCOMES_KEY.format("evt_1")) <= ttl
    assert outcomes_of(client, "evt_3") == []


def test_unknown_statuses_are_refused(redis_url: str) -> None:
    store = OutcomeStore(redis.Redis.from_url(redis_url), ttl=60)
    with pytest.raises(ValueError, match="unknown outcome"):
        store.record("evt_1", "log", None, "maybe", attempts=1)
