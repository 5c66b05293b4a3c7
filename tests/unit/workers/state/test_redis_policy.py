"""Reading Redis's maxmemory-policy: CONFIG GET, INFO where CONFIG is renamed, cached, a
WARNING once per evicting policy, never an exception when Redis is down."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from devtools.redis_server import RedisServer
from tests.support.redis_memory import redis_without_config, set_policy
from workers.state.redis_policy import PolicyCheck, read_policy, redis_targets, warn_at_startup


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    started = RedisServer(tmp_path / "redis")
    started.start()
    yield started
    started.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_policy_is_read_with_config_get(server: RedisServer) -> None:
    set_policy(server, "allkeys-lru")
    for decode in (False, True):
        client = redis.Redis(port=server.port, decode_responses=decode)
        assert read_policy(client) == "allkeys-lru"
        client.close()


def test_the_policy_is_read_from_info_where_config_is_renamed(tmp_path: Path) -> None:
    with redis_without_config(tmp_path / "managed", "volatile-lru") as port:
        client = redis.Redis(port=port)
        with pytest.raises(redis.ResponseError):
            client.config_get("maxmemory-policy")  # really gone
        assert read_policy(client) == "volatile-lru"
        client.close()


def test_an_evicting_policy_is_warned_about_once_naming_it_and_noeviction(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    set_policy(server, "allkeys-lru")
    clock = Clock()
    check = PolicyCheck.for_urls({"REDIS_URL": server.url}, timeout=1, clock=clock)
    caplog.set_level(logging.INFO, logger="workers.state.redis_policy")

    first = check.report()
    clock.now += 61
    second = check.report()  # read again, not warned again

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "REDIS_URL" in text and "'allkeys-lru'" in text and "'noeviction'" in text
    assert "de-duplication marks" in text and "queued events" in text
    assert first == second
    assert first.policies == {"REDIS_URL": "allkeys-lru"}
    assert first.to_json() == {"maxmemory_policy": {"REDIS_URL": "allkeys-lru"},
                               "warnings": [text]}  # fmt: skip
    check.close()


def test_noeviction_is_not_warned_about(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    report = warn_at_startup({"REDIS_URL": server.url})
    assert report.to_json() == {"maxmemory_policy": {"REDIS_URL": "noeviction"}}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_policy_is_cached_for_a_minute(server: RedisServer) -> None:
    clock = Clock()
    check = PolicyCheck.for_urls({"REDIS_URL": server.url}, timeout=1, clock=clock)
    assert check.report().policies["REDIS_URL"] == "noeviction"
    set_policy(server, "allkeys-random")
    clock.now += 59
    assert check.report().policies["REDIS_URL"] == "noeviction"  # cached: no round trip
    clock.now += 2
    assert check.report().policies["REDIS_URL"] == "allkeys-random"
    check.close()


def test_a_redis_that_is_down_gives_no_verdict_and_is_read_again_when_back(
    tmp_path: Path,
) -> None:
    later = RedisServer(tmp_path / "later")
    check = PolicyCheck.for_urls({"REDIS_URL": later.url}, timeout=0.5, clock=Clock())
    assert check.report().policies == {"REDIS_URL": None}  # no exception
    later.start()
    try:
        set_policy(later, "allkeys-lfu")
        assert check.report().policies == {"REDIS_URL": "allkeys-lfu"}  # failure not cached
    finally:
        check.close()
        later.stop()


def test_targets_are_the_distinct_redis_servers() -> None:
    assert redis_targets({
        "REDIS_URL": "redis://cache:6379/0",
        "CELERY_BROKER_URL": "redis://cache:6379/1;redis://other:6379/0",
    }) == {"REDIS_URL": "redis://cache:6379/0"}  # fmt: skip
    assert redis_targets({"REDIS_URL": "redis://a/0", "CELERY_BROKER_URL": "redis://b:6380/0"}) == {
        "REDIS_URL": "redis://a/0",
        "CELERY_BROKER_URL": "redis://b:6380/0",
    }
    assert redis_targets({"CELERY_BROKER_URL": "amqp://guest@rabbit//"}) == {}
    assert redis_targets({"CELERY_BROKER_URL": "sentinel://s:26379"}) == {}


class _Broken(redis.Redis):
    """A client whose every command fails with something other than a RedisError (as a
    client closed under a background thread may)."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        raise RuntimeError("client closed")


def test_the_background_read_logs_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    check = PolicyCheck({"REDIS_URL": _Broken()})
    with pytest.raises(RuntimeError):
        check.report()
    caplog.set_level(logging.DEBUG, logger="workers.state.redis_policy")
    check.report_quietly()
    assert "could not read maxmemory-policy: RuntimeError" in caplog.text
