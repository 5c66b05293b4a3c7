"""workers.delivery.outbox and the KombuBroker's use of it, against a real redis-server (the
broker is its database 1, or a closed RabbitMQ port): the marks and the entry are written
together or not at all, a confirmed publish leaves nothing behind, a failed one takes both back
unless a pump has the entry, and the pump publishes only what a web left for :data:`GRACE` s."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from schemas import EventMessage, load_callback
from tests.support.queues import task_messages
from tests.support.twilio import room_params
from workers.delivery.celery_app import EVENTS_QUEUE, PROCESS_EVENT_TASK, make_celery
from workers.delivery.choice import connect, open_broker
from workers.delivery.dedup import dedup_keys, event_id
from workers.delivery.kombu_broker import KombuBroker
from workers.delivery.outbox import GRACE, Outbox
from workers.errors import BrokerUnavailable
from workers.state.keys import OUTBOX_KEY


def message(token: str | None = None) -> EventMessage:
    params = room_params()
    return EventMessage(id=event_id(params), event=load_callback(params),
                        received_at=datetime.now(UTC), idempotency_token=token)  # fmt: skip


def entry(queued: EventMessage) -> str:
    return json.dumps(queued.to_json(), separators=(",", ":"))


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    found = redis.Redis.from_url(redis_url)
    yield found
    found.close()


@pytest.fixture
def outbox(client: redis.Redis) -> Outbox:
    return Outbox(client, dedup_ttl=600)


def test_admission_marks_and_keeps_an_event_once(outbox: Outbox, client: redis.Redis) -> None:
    first = message(token="token-1")
    resent = EventMessage(id="evt_other", event=first.event, received_at=first.received_at,
                          idempotency_token="token-1")  # fmt: skip
    written = time.time()

    assert outbox.admit(first, entry(first), written=written, client=client) is True
    assert outbox.admit(first, entry(first), written=written, client=client) is False
    assert outbox.admit(resent, entry(resent), written=written, client=client) is False

    assert client.zrange(OUTBOX_KEY, 0, -1, withscores=True) == [(entry(first).encode(), written)]
    assert client.exists(*dedup_keys(first)) == 2
    assert 590 <= client.ttl(dedup_keys(first)[0]) <= 600
    assert client.ttl(OUTBOX_KEY) == -1  # bounded by the work, not by time
    outbox.published(entry(first))
    assert client.exists(OUTBOX_KEY) == 0
    assert client.exists(*dedup_keys(first)) == 2  # the marks stay


def test_a_withdrawal_takes_back_marks_and_entry(outbox: Outbox, client: redis.Redis) -> None:
    queued = message(token="token-1")
    written = time.time()
    outbox.admit(queued, entry(queued), written=written, client=client)

    assert outbox.withdraw(queued, entry(queued), written=written, client=client) is True

    assert client.exists(OUTBOX_KEY, *dedup_keys(queued)) == 0
    assert outbox.admit(queued, entry(queued), written=time.time(), client=client) is True


def test_a_pump_claims_only_old_entries_and_each_once_per_grace(
    outbox: Outbox, client: redis.Redis
) -> None:
    old, fresh = message(), message()
    now = time.time()
    outbox.admit(old, entry(old), written=now - GRACE - 1, client=client)  # a web that crashed
    outbox.admit(fresh, entry(fresh), written=now, client=client)  # a web publishing it now

    assert outbox.claim(now=now) == [entry(old).encode()]
    assert outbox.claim(now=now) == []  # claimed: no other pump takes it meanwhile
    assert outbox.claim(now=now + GRACE) == [entry(fresh).encode()]
    assert sorted(outbox.claim(now=now + 3 * GRACE)) == sorted(
        [entry(old).encode(), entry(fresh).encode()]
    )  # a pump that claimed and died: another one publishes them


def test_a_withdrawal_leaves_a_claimed_or_published_entry_to_the_pump(
    outbox: Outbox, client: redis.Redis
) -> None:
    claimed, published = message(), message()
    written = time.time() - GRACE  # its web took that long to fail
    for queued in (claimed, published):
        outbox.admit(queued, entry(queued), written=written, client=client)
    outbox.claim(now=written + GRACE)
    outbox.published(entry(published))  # the pump got its confirm

    for queued in (claimed, published):
        assert outbox.withdraw(queued, entry(queued), written=written, client=client) is False
        assert client.exists(*dedup_keys(queued)) == 1  # still seen: it is, or will be, queued
    assert client.zcard(OUTBOX_KEY) == 1


# --- KombuBroker on another Redis database: the outbox around Celery's publish ----------------


@pytest.fixture
def kombu_broker(redis_url: str) -> Iterator[KombuBroker]:
    broker_url = redis_url.rsplit("/", 1)[0] + "/1"
    celery = make_celery(broker_url, publish_timeout=2)
    broker = open_broker(
        celery, redis.Redis.from_url(redis_url), broker_url=broker_url, redis_url=redis_url,
        dedup_ttl=600,
    )  # fmt: skip
    assert isinstance(broker, KombuBroker)
    yield broker
    broker.close()
    celery.close()


def test_an_enqueued_event_is_queued_and_leaves_the_outbox_empty(
    kombu_broker: KombuBroker, client: redis.Redis
) -> None:
    queued = message()

    assert kombu_broker.enqueue(queued) is True

    broker_url = str(kombu_broker.celery.conf.broker_url)
    [task] = task_messages(broker_url, EVENTS_QUEUE)
    assert (task["task"], task["id"], task["args"]) == (PROCESS_EVENT_TASK, queued.id,
                                                        [queued.to_json()])  # fmt: skip
    assert client.exists(OUTBOX_KEY) == 0
    assert kombu_broker.sweep(now=time.time() + 2 * GRACE) == 0  # nothing left to publish


def test_the_pump_publishes_what_a_crashed_web_left(
    kombu_broker: KombuBroker, client: redis.Redis
) -> None:
    left = message()
    written = time.time()
    kombu_broker.outbox.admit(left, entry(left), written=written, client=client)  # then died
    broker_url = str(kombu_broker.celery.conf.broker_url)

    assert kombu_broker.sweep(now=written + 1) == 0  # its web may still be publishing it
    assert task_messages(broker_url, EVENTS_QUEUE) == []
    assert kombu_broker.sweep(now=written + GRACE) == 1

    [task] = task_messages(broker_url, EVENTS_QUEUE)
    assert (task["task"], task["id"], task["args"]) == (PROCESS_EVENT_TASK, left.id,
                                                        [left.to_json()])  # fmt: skip
    assert client.exists(OUTBOX_KEY) == 0
    assert kombu_broker.enqueue(left) is False  # seen: a duplicate from now on


@pytest.fixture
def closed_amqp_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"amqp://guest:guest@127.0.0.1:{port}//"


def test_a_failed_publish_leaves_neither_marks_nor_entry(
    closed_amqp_url: str, redis_url: str, client: redis.Redis
) -> None:
    enqueuer = connect(closed_amqp_url, redis_url, timeout=0.5, dedup_ttl=600)
    queued = message(token="token-1")
    try:
        with pytest.raises(BrokerUnavailable):
            enqueuer.enqueue(queued)
        with pytest.raises(BrokerUnavailable):  # not a duplicate: the spool's relay retries it
            enqueuer.enqueue(queued)
        assert isinstance(enqueuer, KombuBroker)
        assert enqueuer.sweep(now=time.time() + 2 * GRACE) == 0  # nothing left for a pump
    finally:
        enqueuer.close()
        enqueuer.celery.close()
    assert client.exists(OUTBOX_KEY, *dedup_keys(queued)) == 0
