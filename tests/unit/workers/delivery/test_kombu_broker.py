"""workers.delivery.kombu_broker: a RabbitMQ broker (``amqp://``), its own transport options, and
a web that gives up on an unreachable or hung one within its timeout (no RabbitMQ needed: a
closed port, a silent one); the KombuBroker's schedule, enqueue and (absent) ledger on another
Redis database."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from celery.utils.quorum_queues import detect_quorum_queues

from schemas import EventMessage, load_callback
from schemas.settings import DEFAULT_DEDUP_TTL
from tests.support.queues import task_messages
from tests.support.twilio import room_params
from workers.delivery.celery_app import (
    AMQP_EXCHANGE,
    EVENTS_QUEUE,
    HANDLERS_QUEUE,
    PROCESS_EVENT_TASK,
    RUN_HANDLER_TASK,
    is_redis_url,
    make_celery,
)
from workers.delivery.choice import connect, open_broker
from workers.delivery.dedup import dedup_keys, event_id
from workers.delivery.kombu_broker import KombuBroker
from workers.errors import BrokerUnavailable
from workers.state.keys import INFLIGHT_KEY, SEEN_KEY


@pytest.mark.parametrize(
    ("url", "redis_broker"),
    [
        ("redis://localhost:6379/0", True),
        ("rediss://:secret@cache.example.com:6380/1", True),
        ("REDIS://localhost", True),
        ("sentinel://s1:26379;sentinel://s2:26379", True),
        ("redis+socket:///run/redis.sock", True),
        ("amqp://guest:guest@127.0.0.1:5672//", False),
        ("amqps://user:pw@mq.example.com:5671/roomrec", False),
        ("pyamqp://guest@localhost//", False),
        ("amqp://a//;redis://b", False),  # the first of a failover list decides
    ],
)
def test_redis_brokers_are_told_apart_from_amqp(url: str, redis_broker: bool) -> None:
    assert is_redis_url(url) is redis_broker


@pytest.mark.parametrize("timeout", [None, 0.5])
def test_an_amqp_broker_gets_publisher_confirms_and_no_redis_options(
    timeout: float | None,
) -> None:
    app = make_celery("amqp://guest:guest@127.0.0.1:5672//", publish_timeout=timeout)
    options = app.conf.broker_transport_options
    assert options["confirm_publish"] is True
    for redis_only in ("visibility_timeout", "socket_timeout", "health_check_interval"):
        assert redis_only not in options
    if timeout is None:
        assert "read_timeout" not in options  # a worker: heartbeats watch its connection
    else:
        assert options["read_timeout"] == options["write_timeout"] == timeout
        assert options["max_retries"] == 0
        assert app.conf.broker_connection_timeout == timeout
    app.close()


def test_rabbitmq_queues_are_quorum_queues_on_a_topic_exchange() -> None:
    """Quorum queues survive a node's loss; a topic exchange lets Celery's native delayed
    delivery route a due message back to its queue (a direct exchange cannot)."""
    app = make_celery("amqp://guest:guest@127.0.0.1:5672//;amqp://guest:guest@127.0.0.2:5672//")
    queues = app.amqp.queues
    for name in (EVENTS_QUEUE, HANDLERS_QUEUE):
        queue = queues[name]
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        assert (queue.exchange.name, queue.exchange.type, queue.routing_key) == (
            AMQP_EXCHANGE, "topic", name
        )  # fmt: skip
        assert queue.durable and not queue.auto_delete
    assert detect_quorum_queues(app, "amqp") == (True, EVENTS_QUEUE)  # delayed delivery is on
    made = queues["roomrec.elsewhere"]  # a queue Celery would create by itself
    assert made.queue_arguments == {"x-queue-type": "quorum"} and made.exchange.type == "topic"
    assert app.conf.broker_native_delayed_delivery_queue_type == "quorum"
    app.close()


def test_redis_queues_stay_plain_lists() -> None:
    app = make_celery("redis://localhost:6379/0")
    assert all(not queue.queue_arguments for queue in app.amqp.queues.values())
    assert detect_quorum_queues(app, "redis") == (False, "")
    app.close()


def test_a_redis_broker_keeps_its_visibility_timeout() -> None:
    app = make_celery("redis://localhost:6379/0", visibility_timeout=120, publish_timeout=0.5)
    options = app.conf.broker_transport_options
    assert options["visibility_timeout"] == 120
    assert options["socket_timeout"] == 0.5
    assert "confirm_publish" not in options
    app.close()


@pytest.fixture
def closed_amqp_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"amqp://guest:guest@127.0.0.1:{port}//"


@pytest.fixture
def hung_amqp_url() -> Iterator[str]:
    """A server that accepts connections and never says a word (no AMQP handshake)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"amqp://guest:guest@127.0.0.1:{sock.getsockname()[1]}//"


def message() -> EventMessage:
    params = room_params()
    return EventMessage(
        id=event_id(params), event=load_callback(params), received_at=datetime.now(UTC)
    )


@pytest.mark.parametrize("down", ["closed_amqp_url", "hung_amqp_url"])
def test_an_unanswering_rabbitmq_costs_the_web_one_timeout(
    request: pytest.FixtureRequest, redis_url: str, down: str
) -> None:
    enqueuer = connect(request.getfixturevalue(down), redis_url, timeout=0.5,
                       dedup_ttl=DEFAULT_DEDUP_TTL)  # fmt: skip
    queued = message()
    try:
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            enqueuer.ping()
        with pytest.raises(BrokerUnavailable):
            enqueuer.enqueue(queued)
        assert time.monotonic() - started < 2.0  # two calls, about 0.5 s each at most
    finally:
        enqueuer.close()
    client = redis.Redis.from_url(redis_url)
    assert not client.exists(SEEN_KEY.format(queued.id))  # a retry will be queued
    client.close()


def test_task_events_show_the_event_id_not_the_callback(redis_url: str) -> None:
    """Flower shows a task's ``argsrepr``: the id, never the callback's parameters."""
    broker = redis_url.rsplit("/", 1)[0] + "/1"  # a broker apart from REDIS_URL: send_task
    enqueuer = connect(broker, redis_url, timeout=0.5, dedup_ttl=DEFAULT_DEDUP_TTL)
    queued = message()
    try:
        assert enqueuer.enqueue(queued)
    finally:
        enqueuer.close()
    client = redis.Redis.from_url(broker)
    (raw,) = client.lrange(EVENTS_QUEUE, 0, -1)  # type: ignore[misc]
    client.close()
    headers = json.loads(raw)["headers"]
    assert headers["id"] == queued.id
    assert headers["argsrepr"] == queued.id


# --- KombuBroker: another broker than the Redis of REDIS_URL (here its database 1) ---------


@pytest.fixture
def kombu_broker(redis_url: str) -> Iterator[KombuBroker]:
    broker_url = redis_url.rsplit("/", 1)[0] + "/1"
    celery = make_celery(broker_url, publish_timeout=2)
    broker = open_broker(
        celery, redis.Redis.from_url(redis_url), broker_url=broker_url, redis_url=redis_url,
        dedup_ttl=DEFAULT_DEDUP_TTL,
    )  # fmt: skip
    assert isinstance(broker, KombuBroker)
    yield broker
    broker.close()
    celery.close()


def _raw(url: str, queue: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(url)
    try:
        return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]  # type: ignore[union-attr]
    finally:
        client.close()


def test_kombu_schedules_through_celery_with_its_countdown(
    kombu_broker: KombuBroker, redis_url: str
) -> None:
    args = ["forward", "https://hooks.example.com/in?token=s3cr3t", {"id": "evt_1"}]
    kombu_broker.schedule(RUN_HANDLER_TASK, args, task_id="evt_1.forward.0",
                          queue=HANDLERS_QUEUE, retries=3, delay=30)  # fmt: skip
    kombu_broker.schedule(PROCESS_EVENT_TASK, [{"id": "evt_2"}], task_id="evt_2",
                          queue=EVENTS_QUEUE, retries=0, delay=0)  # fmt: skip

    broker_url = str(kombu_broker.celery.conf.broker_url)
    [later] = task_messages(broker_url, HANDLERS_QUEUE)
    assert (later["task"], later["id"], later["args"]) == (RUN_HANDLER_TASK, "evt_1.forward.0",
                                                           args)  # fmt: skip
    [headers] = [message["headers"] for message in _raw(broker_url, HANDLERS_QUEUE)]
    assert headers["retries"] == 3
    eta = datetime.fromisoformat(headers["eta"])
    assert 25 < (eta - datetime.now(UTC)).total_seconds() <= 30  # Celery's countdown
    assert headers["argsrepr"] == "evt_1.forward.0"  # no target URL in task views
    [now] = _raw(broker_url, EVENTS_QUEUE)
    assert now["headers"]["id"] == "evt_2" and now["headers"]["eta"] is None
    # Nothing of it in REDIS_URL: no delayed set, no in-flight ledger.
    client = redis.Redis.from_url(redis_url)
    assert client.keys("roomrec:*") == []
    client.close()


def test_kombu_delays_in_whole_seconds(kombu_broker: KombuBroker) -> None:
    """Native delayed delivery counts in seconds (and refuses less than one): rounded up."""
    kombu_broker.schedule(PROCESS_EVENT_TASK, [{"id": "evt_3"}], task_id="evt_3",
                          queue=EVENTS_QUEUE, retries=1, delay=0.4)  # fmt: skip

    [headers] = [m["headers"] for m in _raw(str(kombu_broker.celery.conf.broker_url), EVENTS_QUEUE)]
    assert 0.5 < (datetime.fromisoformat(headers["eta"]) - datetime.now(UTC)).total_seconds() <= 1


def test_kombu_has_no_ledger_nor_delayed_set_to_pump(
    kombu_broker: KombuBroker, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.hset(INFLIGHT_KEY, "evt_1", "not ours")  # left by a Redis broker before a move

    kombu_broker.attempt_ended("evt_1")

    assert client.hgetall(INFLIGHT_KEY) == {b"evt_1": b"not ours"}  # untouched
    assert kombu_broker.move_due() == 0
    assert kombu_broker.sweep() == 0
    client.close()


def test_kombu_enqueues_once_and_marks_the_token_too(
    kombu_broker: KombuBroker, redis_url: str
) -> None:
    queued = EventMessage(id="evt_1", event=load_callback(room_params()),
                          received_at=datetime.now(UTC), idempotency_token="token-1")  # fmt: skip
    resent = EventMessage(id="evt_2", event=queued.event, received_at=queued.received_at,
                          idempotency_token="token-1")  # fmt: skip

    assert kombu_broker.enqueue(queued) is True
    assert kombu_broker.enqueue(queued) is False  # same id
    assert kombu_broker.enqueue(resent) is False  # same Twilio idempotency token

    broker_url = str(kombu_broker.celery.conf.broker_url)
    assert [m["id"] for m in task_messages(broker_url, EVENTS_QUEUE)] == ["evt_1"]
    client = redis.Redis.from_url(redis_url)
    assert client.exists(*dedup_keys(queued)) == 2
    client.close()
