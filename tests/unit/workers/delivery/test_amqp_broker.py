"""A RabbitMQ broker (``amqp://``): its own transport options, and a web that gives up on an
unreachable or hung one within its timeout (no RabbitMQ needed: a closed port, a silent one)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from schemas import EventMessage, load_callback
from tests.support.twilio import room_params
from workers.delivery.celery_app import EVENTS_QUEUE, is_redis_url, make_celery
from workers.delivery.enqueue import Enqueuer, event_id
from workers.errors import BrokerUnavailable
from workers.state.keys import SEEN_KEY


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
    enqueuer = Enqueuer.from_urls(request.getfixturevalue(down), redis_url, timeout=0.5)
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
    enqueuer = Enqueuer.from_urls(broker, redis_url, timeout=0.5)
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
