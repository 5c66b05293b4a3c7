"""workers.state.redis_client: the one Redis client factory, plain URLs and Sentinel ones."""

from __future__ import annotations

import time

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from schemas.settings import RedisSentinel
from workers.state.redis_client import (
    SENTINEL_PORT,
    SENTINEL_TIMEOUT,
    SentinelUrl,
    is_sentinel_url,
    parse_sentinel_url,
    redis_client,
    sentinel_kwargs,
)
from workers.state.redis_policy import redis_targets

SENTINEL = RedisSentinel("mymaster", "sentinel-pw")


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("sentinel://s1:26380", SentinelUrl((("s1", 26380),))),
        ("sentinel://s1", SentinelUrl((("s1", SENTINEL_PORT),))),  # kombu's default port
        (
            "sentinel://:pw@s1:26379/2;sentinel://s2:26380/2; sentinel://10.0.0.3",
            SentinelUrl((("s1", 26379), ("s2", 26380), ("10.0.0.3", 26379)), 2, None, "pw"),
        ),
        (  # the first URL's credentials and database are the master's, as for kombu
            "sentinel://user:p%40ss@s1/3;sentinel://:other@s2/5",
            SentinelUrl((("s1", 26379), ("s2", 26379)), 3, "user", "p@ss"),
        ),
        ("SENTINEL://s1/", SentinelUrl((("s1", 26379),))),
    ],
)
def test_a_sentinel_url_is_read_as_kombu_reads_it(url: str, parsed: SentinelUrl) -> None:
    assert is_sentinel_url(url)
    assert parse_sentinel_url(url) == parsed


@pytest.mark.parametrize(
    "url",
    [
        "sentinel://",  # no host
        "sentinel://s1:port",
        "sentinel://s1/zero",
        "sentinel://s1;redis://s2",  # every part is a sentinel
        ";",
    ],
)
def test_a_malformed_sentinel_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_sentinel_url(url)


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379/0", "rediss://h/1", "unix:///run/redis.sock", "amqp://h//"]
)
def test_other_urls_are_not_sentinel_ones(url: str) -> None:
    assert not is_sentinel_url(url)


def test_a_plain_url_gives_redis_pys_own_client() -> None:
    client = redis_client("redis://:pw@127.0.0.1:6390/4", socket_timeout=2, decode_responses=True)
    kwargs = client.connection_pool.connection_kwargs
    assert type(client.connection_pool) is redis.ConnectionPool
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
        "127.0.0.1", 6390, 4, "pw",
    )  # fmt: skip
    assert kwargs["socket_timeout"] == 2 and kwargs["decode_responses"] is True
    client.close()


def test_a_sentinel_url_gives_a_client_on_the_master_the_sentinels_name() -> None:
    client = redis_client(
        "sentinel://:master-pw@127.0.0.1:1/3;sentinel://127.0.0.1:2/3", sentinel=SENTINEL,
        socket_timeout=0.5, retry=None, decode_responses=True,
    )  # fmt: skip
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "mymaster"
    master = pool.connection_kwargs  # what each connection to the master is made with
    assert (master["db"], master["password"], master["socket_timeout"]) == (3, "master-pw", 0.5)
    assert master["decode_responses"] is True
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [1, 2]
    own = sentinels[0].connection_pool.connection_kwargs  # the sentinels' own password
    assert (own["password"], own["socket_timeout"]) == ("sentinel-pw", 0.5)
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):  # nothing listens: no master to be found
        client.ping()
    assert time.monotonic() - started < 1  # each dead sentinel passed over, not retried
    client.close()


def test_a_sentinel_url_needs_the_masters_name() -> None:
    with pytest.raises(ValueError, match="REDIS_SENTINEL_MASTER"):
        redis_client("sentinel://127.0.0.1:1")


def test_the_sentinels_get_timeouts_even_when_the_master_has_none() -> None:
    assert sentinel_kwargs(RedisSentinel("m"), {}) == {
        "socket_timeout": SENTINEL_TIMEOUT, "socket_connect_timeout": SENTINEL_TIMEOUT,
        "retry": None,
    }  # fmt: skip
    assert sentinel_kwargs(SENTINEL, {"socket_timeout": 2, "socket_connect_timeout": 1}) == {
        "socket_timeout": 2, "socket_connect_timeout": 1, "retry": None,
        "password": "sentinel-pw",
    }  # fmt: skip


def test_the_policy_check_reads_a_sentinel_master_once_per_group() -> None:
    urls = {
        "REDIS_URL": "sentinel://s1:26379/0;sentinel://s2:26379/0",
        "CELERY_BROKER_URL": "sentinel://s2:26379/1;sentinel://s1:26379/1",  # the same group
    }
    assert redis_targets(urls, sentinel=SENTINEL) == {"REDIS_URL": urls["REDIS_URL"]}
    assert redis_targets(urls) == {}  # without the master's name there is nothing to read
