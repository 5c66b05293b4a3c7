"""workers.delivery.choice.open_broker: the one place that decides which Broker a process uses."""

from __future__ import annotations

import pytest
import redis

from schemas.settings import DEFAULT_DEDUP_TTL
from tests.unit.workers.helpers import worker_settings
from workers.delivery.broker import Broker
from workers.delivery.celery_app import make_celery
from workers.delivery.choice import connect, open_broker
from workers.delivery.kombu_broker import KombuBroker
from workers.delivery.ledger import grace_for
from workers.delivery.redis_broker import RedisBroker
from workers.runtime.context import Runtime

REDIS_URL = "redis://127.0.0.1:6390/0"  # never connected to


@pytest.mark.parametrize(
    ("broker_url", "redis_url", "chosen"),
    [
        (REDIS_URL, REDIS_URL, RedisBroker),
        ("redis://127.0.0.1:6390", REDIS_URL, RedisBroker),  # database 0 by default
        ("redis://127.0.0.1:6390/", REDIS_URL, RedisBroker),
        ("redis://:secret@127.0.0.1:6390/0", REDIS_URL, RedisBroker),  # credentials aside
        ("redis://localhost", "redis://localhost:6379/0", RedisBroker),  # the default port
        ("rediss://cache.example.com:6380/2", "rediss://cache.example.com:6380/2", RedisBroker),
        ("redis://127.0.0.1:6390/1", REDIS_URL, KombuBroker),  # another database
        ("redis://127.0.0.1:6391/0", REDIS_URL, KombuBroker),  # another server
        ("redis://10.0.0.5:6390/0", REDIS_URL, KombuBroker),
        ("rediss://127.0.0.1:6390/0", REDIS_URL, KombuBroker),  # another scheme: another port
        ("amqp://guest:guest@127.0.0.1:5672//", REDIS_URL, KombuBroker),
        ("amqps://user:pw@mq.example.com:5671/roomrec", REDIS_URL, KombuBroker),
        ("sentinel://127.0.0.1:6390;sentinel://127.0.0.1:6391", REDIS_URL, KombuBroker),
        ("redis://127.0.0.1:6390/1;redis://127.0.0.1:6391/1", REDIS_URL, KombuBroker),
        ("redis://127.0.0.1:6390/0;redis://127.0.0.1:6391/0", REDIS_URL, RedisBroker),  # 1st
    ],
)
def test_the_broker_is_redis_only_when_it_is_the_very_database_of_redis_url(
    broker_url: str, redis_url: str, chosen: type[Broker]
) -> None:
    celery = make_celery(broker_url)
    client = redis.Redis.from_url(redis_url)
    broker = open_broker(celery, client, broker_url=broker_url, redis_url=redis_url,
                         dedup_ttl=DEFAULT_DEDUP_TTL)  # fmt: skip

    assert type(broker) is chosen
    assert (broker.celery, broker.redis) == (celery, client)
    broker.close()
    celery.close()


@pytest.mark.parametrize(
    ("broker_url", "chosen"),
    [(REDIS_URL, RedisBroker), ("amqp://guest:guest@127.0.0.1:5672//", KombuBroker)],
)
def test_the_web_gets_its_broker_from_the_same_choice(
    broker_url: str, chosen: type[Broker]
) -> None:
    broker = connect(broker_url, REDIS_URL, timeout=0.25, dedup_ttl=600)

    assert type(broker) is chosen
    assert broker.dedup_ttl == 600
    assert broker.redis.connection_pool.connection_kwargs["socket_timeout"] == 0.25
    assert broker.celery.conf.broker_connection_timeout == 0.25  # a publishing app
    broker.close()


@pytest.mark.parametrize(
    ("broker_url", "chosen"),
    [(None, RedisBroker), ("redis://127.0.0.1:6390/1", KombuBroker),
     ("amqp://guest:guest@127.0.0.1:5672//", KombuBroker)],
)  # fmt: skip
def test_a_worker_runtime_holds_the_broker_of_its_settings(
    broker_url: str | None, chosen: type[Broker]
) -> None:
    env = {"REDIS_URL": REDIS_URL, "HANDLERS": "log", "VISIBILITY_TIMEOUT": "120"}
    settings = worker_settings(**env, **({"CELERY_BROKER_URL": broker_url} if broker_url else {}))
    app = make_celery(settings.broker_url, visibility_timeout=settings.visibility_timeout)
    rt = Runtime.build(settings, app)

    assert type(rt.broker) is chosen
    assert rt.broker.celery is app and rt.broker.redis is rt.redis
    assert rt.broker.dedup_ttl == settings.dedup_ttl
    if isinstance(rt.broker, RedisBroker):
        assert rt.broker.ledger.grace == grace_for(120) == 40
    rt.redis.close()
    app.close()
