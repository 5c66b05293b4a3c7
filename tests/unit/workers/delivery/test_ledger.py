"""The in-flight ledger against a real redis-server: what the sweep publishes again, and what
it leaves alone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from schemas import EventMessage, load_callback
from schemas.settings import DEFAULT_DEDUP_TTL
from tests.support.twilio import room_params
from workers.delivery.celery_app import (
    EVENTS_QUEUE,
    HANDLERS_QUEUE,
    QUEUES,
    RUN_HANDLER_TASK,
    make_celery,
)
from workers.delivery.dedup import event_id
from workers.delivery.ledger import MAX_REPUBLISH, InFlight
from workers.delivery.messages import build_message
from workers.delivery.redis_broker import RedisBroker
from workers.state.deadletters import DeadLetterStore
from workers.state.keys import DELAYED_KEY, INFLIGHT_KEY, UNACKED_KEY

APP = make_celery("redis://127.0.0.1:1/0")  # builds messages only: never connects
GRACE = 30.0
TASK_ID = "evt_1.forward.0"
BODY = {"id": "evt_1", "event": {"StatusCallbackEvent": "recording-completed"}}


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def ledger(client: redis.Redis) -> InFlight:
    return InFlight(client, QUEUES, grace=GRACE)


def handler_message(target: str | None = "https://hooks.example.com/in?token=s3cr3t") -> str:
    return build_message(
        APP, RUN_HANDLER_TASK, ["forward", target, BODY], task_id=TASK_ID, queue=HANDLERS_QUEUE
    )


def publish(client: redis.Redis, delay: float = 0) -> tuple[str, float]:
    message = handler_message()
    published = time.time()
    RedisBroker(APP, client, dedup_ttl=DEFAULT_DEDUP_TTL).push(
        HANDLERS_QUEUE, message, task_id=TASK_ID, delay=delay
    )
    return message, published


def lose(client: redis.Redis, queue: str = HANDLERS_QUEUE) -> Any:
    """What a worker killed between kombu's BRPOP and its ``unacked`` write leaves: nothing."""
    popped = client.rpop(queue)
    assert popped is not None
    return popped


def test_a_published_message_is_recorded_with_its_task_id(client, ledger) -> None:
    message, _ = publish(client)

    assert client.lrange(HANDLERS_QUEUE, 0, -1) == [message.encode()]
    assert client.hget(INFLIGHT_KEY, TASK_ID) == message.encode()
    assert ledger.pending() == 1


def test_a_lost_message_is_published_again_once_overdue(client, ledger) -> None:
    message, published = publish(client)
    lose(client)
    dead = DeadLetterStore(client)

    assert ledger.sweep(dead, now=published + GRACE - 1) == 0  # not overdue yet
    assert ledger.sweep(dead, now=published + GRACE + 1) == 1

    assert client.lrange(HANDLERS_QUEUE, 0, -1) == [message.encode()]  # the very same bytes
    assert ledger.sweep(dead, now=published + GRACE + 2) == 0  # queued again: left alone


def test_a_queued_message_is_not_published_twice(client, ledger) -> None:
    _, published = publish(client)

    assert ledger.sweep(DeadLetterStore(client), now=published + GRACE + 1) == 0
    assert client.llen(HANDLERS_QUEUE) == 1


def test_a_reserved_or_running_message_is_left_to_kombu(client, ledger) -> None:
    message, published = publish(client)
    popped = lose(client)
    tag = json.loads(popped)["properties"]["delivery_tag"]
    client.hset(UNACKED_KEY, tag, popped)  # as kombu's QoS.append records it

    assert ledger.sweep(DeadLetterStore(client), now=published + GRACE + 1) == 0
    assert client.llen(HANDLERS_QUEUE) == 0
    assert client.hget(INFLIGHT_KEY, TASK_ID) == message.encode()


def test_a_delayed_retry_is_looked_at_only_after_it_is_due(client, ledger) -> None:
    _, published = publish(client, delay=100)
    dead = DeadLetterStore(client)

    assert client.zcard(DELAYED_KEY.format(HANDLERS_QUEUE)) == 1
    assert client.llen(HANDLERS_QUEUE) == 0
    assert ledger.sweep(dead, now=published + GRACE + 1) == 0
    # Overdue, but still in the delayed set (no pump ran): waiting, not lost.
    assert ledger.sweep(dead, now=published + 100 + GRACE + 1) == 0
    assert client.llen(HANDLERS_QUEUE) == 0


def test_a_message_deep_in_a_backlog_is_looked_at_again_later(client, ledger) -> None:
    _, published = publish(client)
    filler = handler_message("https://other.example.com/in")
    client.lpush(HANDLERS_QUEUE, *[filler] * 200)  # 200 newer ones behind it
    client.rpush(HANDLERS_QUEUE, *[filler] * 400)  # 400 ahead of it
    dead = DeadLetterStore(client)

    now = published + GRACE + 1
    assert ledger.sweep(dead, now=now) == 0
    next_look = client.zscore("roomrec:inflight:due", TASK_ID)
    assert next_look is not None and next_look >= now + 400 / 20 - 1


def test_done_forgets_the_message(client, ledger) -> None:
    _, published = publish(client)
    ledger.done(TASK_ID)
    lose(client)

    assert ledger.pending() == 0
    assert ledger.sweep(DeadLetterStore(client), now=published + GRACE + 1) == 0
    assert client.llen(HANDLERS_QUEUE) == 0


def test_a_message_lost_every_time_ends_in_the_dead_letters(client, ledger) -> None:
    _, published = publish(client)
    dead = DeadLetterStore(client)
    now = published
    for _ in range(MAX_REPUBLISH):
        lose(client)
        now += GRACE + 1
        assert ledger.sweep(dead, now=now) == 1
    lose(client)

    assert ledger.sweep(dead, now=now + GRACE + 1) == 0
    [letter] = dead.list()
    assert letter["stage"] == "handler:forward"
    assert letter["message"] == BODY
    assert letter["attempts"] == MAX_REPUBLISH + 1
    assert letter["target"].startswith("https://hooks.example.com/in")
    assert "s3cr3t" not in json.dumps(letter)  # a label, never the URL's secret
    assert ledger.pending() == 0


def test_the_web_enqueue_records_its_message_atomically(client, ledger, redis_url) -> None:
    params = room_params()
    message = EventMessage(
        id=event_id(params), event=load_callback(params), received_at=datetime.now(UTC)
    )
    enqueuer = RedisBroker(make_celery(redis_url), client, dedup_ttl=DEFAULT_DEDUP_TTL)

    assert enqueuer.enqueue(message) is True
    assert enqueuer.enqueue(message) is False  # a duplicate writes nothing

    queued = client.lrange(EVENTS_QUEUE, 0, -1)
    assert len(queued) == 1
    assert client.hget(INFLIGHT_KEY, message.id) == queued[0]
    assert ledger.pending() == 1


def test_an_entry_whose_message_is_not_for_these_queues_is_forgotten(client, ledger) -> None:
    client.hset(INFLIGHT_KEY, "other", json.dumps({"properties": {"delivery_tag": "t"}}))
    client.zadd("roomrec:inflight:due", {"other": 0})

    assert ledger.sweep(DeadLetterStore(client), now=GRACE + 1) == 0
    assert ledger.pending() == 0
