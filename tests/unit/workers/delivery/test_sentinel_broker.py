"""A Sentinel-managed broker: kombu's sentinel transport gets the master's name, and a broker
that is the very Sentinel master and database of ``REDIS_URL`` is the RedisBroker."""

from __future__ import annotations

import pytest
import redis
from kombu.transport.redis import Channel, SentinelChannel
from redis.sentinel import SentinelConnectionPool

from schemas.settings import DEFAULT_DEDUP_TTL, RedisSentinel
from workers.delivery.broker import Broker
from workers.delivery.celery_app import make_celery
from workers.delivery.choice import connect, open_broker
from workers.delivery.kombu_broker import KombuBroker
from workers.delivery.redis_broker import RedisBroker
from workers.state.keys import UNACKED_KEY
from workers.state.redis_client import redis_client

SENTINEL = RedisSentinel("mymaster", "sentinel-pw")
GROUP = "sentinel://:pw@127.0.0.1:6390/0;sentinel://127.0.0.1:6391/0"  # never connected to


def test_kombus_sentinel_transport_keeps_the_keys_of_its_redis_transport() -> None:
    # The ledger and the queue depth read kombu's own keys: the sentinel channel inherits them.
    assert SentinelChannel.unacked_key == Channel.unacked_key == UNACKED_KEY
    for name in ("unacked_index_key", "unacked_mutex_key", "sep", "priority_steps"):
        assert getattr(SentinelChannel, name) == getattr(Channel, name)
    assert SentinelChannel._q_for_pri is Channel._q_for_pri
    assert SentinelChannel.global_keyprefix == ""


@pytest.mark.parametrize("publish_timeout", [None, 0.5])
def test_a_sentinel_broker_gets_the_masters_name_and_the_sentinels_password(
    publish_timeout: float | None,
) -> None:
    app = make_celery(GROUP, visibility_timeout=120, publish_timeout=publish_timeout,
                      sentinel=SENTINEL)  # fmt: skip
    options = app.conf.broker_transport_options
    assert options["master_name"] == "mymaster"
    assert options["sentinel_kwargs"]["password"] == "sentinel-pw"
    assert options["sentinel_kwargs"]["socket_timeout"] == (publish_timeout or 5.0)
    assert options["visibility_timeout"] == 120  # a Redis broker's options all the same
    app.close()


@pytest.mark.parametrize(
    ("broker_url", "redis_url", "chosen"),
    [
        (GROUP, GROUP, RedisBroker),
        # The same sentinels in another order, other credentials: the same master.
        ("sentinel://127.0.0.1:6391/0;sentinel://:x@127.0.0.1:6390", GROUP, RedisBroker),
        (GROUP.replace("/0", "/1"), GROUP, KombuBroker),  # another database
        ("sentinel://127.0.0.1:6390/0", GROUP, KombuBroker),  # other sentinels
        ("redis://127.0.0.1:6390/0", GROUP, KombuBroker),
        (GROUP, "redis://127.0.0.1:6390/0", KombuBroker),
    ],
)
def test_the_broker_is_redis_when_it_is_the_sentinel_master_and_database_of_redis_url(
    broker_url: str, redis_url: str, chosen: type[Broker]
) -> None:
    celery = make_celery(broker_url, sentinel=SENTINEL)
    client = redis_client(redis_url, sentinel=SENTINEL)
    broker = open_broker(celery, client, broker_url=broker_url, redis_url=redis_url,
                         dedup_ttl=DEFAULT_DEDUP_TTL)  # fmt: skip

    assert type(broker) is chosen
    broker.close()
    client.close()
    celery.close()


def test_the_web_publishes_on_the_master_through_the_sentinels() -> None:
    broker = connect(GROUP, GROUP, timeout=0.25, dedup_ttl=600, sentinel=SENTINEL)

    assert type(broker) is RedisBroker  # the Lua enqueue, on the master
    pool = broker.redis.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.connection_kwargs["socket_timeout"] == 0.25
    assert broker.celery.conf.broker_transport_options["master_name"] == "mymaster"
    with pytest.raises(redis.ConnectionError):
        broker.redis.ping()  # no sentinel answers: fails fast, like a Redis that is down
    broker.close()
