"""workers.delivery.redis_broker.RedisBroker against a real redis-server: a scheduled attempt
waits in the delayed set until the pump moves it, every publish is in the in-flight ledger, and
an ended attempt leaves it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from schemas import EventMessage, load_callback
from tests.support.queues import task_messages
from tests.support.twilio import room_params
from workers.delivery.celery_app import HANDLERS_QUEUE, RUN_HANDLER_TASK, make_celery
from workers.delivery.dedup import dedup_keys
from workers.delivery.redis_broker import RedisBroker
from workers.state.keys import DELAYED_KEY, INFLIGHT_DUE_KEY, INFLIGHT_KEY

TASK_ID = "evt_1.forward.0"
ARGS = ["forward", "https://hooks.example.com/in", {"id": "evt_1"}]


@pytest.fixture
def broker(redis_url: str) -> Iterator[RedisBroker]:
    celery = make_celery(redis_url)
    built = RedisBroker(celery, redis.Redis.from_url(redis_url), dedup_ttl=600)
    yield built
    built.close()
    celery.close()


def test_a_delayed_attempt_waits_until_the_pump_moves_it(
    broker: RedisBroker, redis_url: str
) -> None:
    scheduled = time.time()
    broker.schedule(RUN_HANDLER_TASK, ARGS, task_id=TASK_ID, queue=HANDLERS_QUEUE, retries=2,
                    delay=30)  # fmt: skip

    client = broker.redis
    [(waiting, due)] = client.zrange(DELAYED_KEY.format(HANDLERS_QUEUE), 0, -1, withscores=True)
    assert scheduled + 30 <= due <= time.time() + 30
    assert client.hget(INFLIGHT_KEY, TASK_ID) == waiting  # in the ledger, due when it is
    assert client.zscore(INFLIGHT_DUE_KEY, TASK_ID) == due
    assert json.loads(waiting)["headers"]["retries"] == 2
    assert task_messages(redis_url, HANDLERS_QUEUE) == []

    assert broker.move_due(now=due - 1) == 0
    assert broker.move_due(now=due) == 1
    assert broker.move_due(now=due + 1) == 0  # moved once

    [queued] = task_messages(redis_url, HANDLERS_QUEUE)
    assert (queued["task"], queued["id"], queued["args"]) == (RUN_HANDLER_TASK, TASK_ID, ARGS)
    assert client.zcard(DELAYED_KEY.format(HANDLERS_QUEUE)) == 0


def test_an_attempt_due_now_is_queued_at_once_and_ledgered(broker: RedisBroker) -> None:
    broker.schedule(RUN_HANDLER_TASK, ARGS, task_id=TASK_ID, queue=HANDLERS_QUEUE, retries=0,
                    delay=0)  # fmt: skip

    [queued] = broker.redis.lrange(HANDLERS_QUEUE, 0, -1)  # type: ignore[misc]
    assert broker.redis.hget(INFLIGHT_KEY, TASK_ID) == queued


def test_an_ended_attempt_leaves_the_ledger(broker: RedisBroker) -> None:
    broker.schedule(RUN_HANDLER_TASK, ARGS, task_id=TASK_ID, queue=HANDLERS_QUEUE, retries=0,
                    delay=0)  # fmt: skip

    broker.attempt_ended(TASK_ID)

    assert broker.ledger.pending() == 0
    assert broker.redis.zcard(INFLIGHT_DUE_KEY) == 0
    broker.redis.delete(HANDLERS_QUEUE)  # lost: nothing publishes it again
    assert broker.sweep(now=time.time() + broker.ledger.grace + 1) == 0


def test_a_message_the_broker_lost_is_swept_back(broker: RedisBroker) -> None:
    broker.schedule(RUN_HANDLER_TASK, ARGS, task_id=TASK_ID, queue=HANDLERS_QUEUE, retries=0,
                    delay=0)  # fmt: skip
    message = broker.redis.rpop(HANDLERS_QUEUE)  # what a worker killed mid-BRPOP leaves

    assert broker.sweep(now=time.time() + broker.ledger.grace + 1) == 1
    assert broker.redis.lrange(HANDLERS_QUEUE, 0, -1) == [message]


def test_marking_a_replayed_event_seen_makes_it_a_duplicate(broker: RedisBroker) -> None:
    message = EventMessage(id="evt_1", event=load_callback(room_params()),
                           received_at=datetime.now(UTC))  # fmt: skip

    broker.mark_seen(message)

    [key] = dedup_keys(message)
    assert 590 < broker.redis.ttl(key) <= 600  # the broker's DEDUP_TTL
    assert broker.enqueue(message) is False
