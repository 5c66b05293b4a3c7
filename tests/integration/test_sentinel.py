"""Redis Sentinel, for real: a private primary, replica and three sentinels
(:mod:`tests.support.sentinel`), the primary SIGKILLed mid-run and the replica promoted. The
same clients, web and worker carry on by themselves, with nothing lost nor duplicated."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import wait_for
from tests.integration.test_pipeline import post
from tests.support.sentinel import SentinelGroup, running_group
from tests.support.twilio import room_params
from workers.delivery.dedup import event_id
from workers.state.keys import SEEN_KEY
from workers.state.redis_client import redis_client

pytestmark = pytest.mark.integration


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    with running_group(tmp_path / "sentinel") as group:
        yield group


def until_written(client: redis.Redis, key: str, timeout: float = 30) -> int:
    """SET ``key`` until it succeeds; how many attempts failed first."""
    failed = 0
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.set(key, "1")
            return failed
        except redis.ConnectionError:
            failed += 1
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_one_client_follows_a_failover_by_itself(sentinel_group: SentinelGroup) -> None:
    group = sentinel_group
    client = redis_client(
        group.url(db=1), sentinel=group.settings, socket_timeout=1, socket_connect_timeout=1,
        retry=None, decode_responses=True,
    )  # fmt: skip
    try:
        client.set("before", "1")
        assert client.connection_pool.get_master_address()[1] == group.primary.port
        with group.primary.client() as primary:  # the URL's database and the master's password
            primary.select(1)
            assert primary.get("before") == "1"
            assert primary.wait(1, 5000) == 1  # the replica has it too

        group.primary.kill()
        until_written(client, "after")
        took = group.wait_for_failover()

        assert client.connection_pool.get_master_address()[1] == group.replica.port
        assert client.mget("before", "after") == ["1", "1"]  # replicated, then written there
        assert took < 20
    finally:
        client.close()


def test_a_failover_loses_nothing_end_to_end(
    sentinel_group: SentinelGroup, start_stack, twilio, forward_target
) -> None:
    group = sentinel_group
    env = group.env()  # REDIS_URL and (by default) CELERY_BROKER_URL: the Sentinel group
    stack = start_stack(redis=group.primary, web_overrides=env, **env)
    before = room_params()
    assert post(stack.callback_url, before).status_code == 204
    wait_for(lambda: len(forward_target.deliveries) == 1, 30, "an event before the failover")
    with group.primary.client() as primary:  # queued by the Lua enqueue on the master
        assert primary.exists(SEEN_KEY.format(event_id(before)))

    group.primary.kill()
    during = room_params()  # queued on the promoted replica, or spooled until it is
    assert post(stack.callback_url, during).status_code == 204
    group.wait_for_failover()
    after = room_params()
    assert post(stack.callback_url, after).status_code == 204

    expected = {event_id(params) for params in (before, during, after)}
    wait_for(lambda: {d.webhook_id for d in forward_target.deliveries} == expected, 60,
             "every event delivered after the failover")  # fmt: skip
    time.sleep(1)  # a duplicate, if any, would arrive now
    assert sorted(d.webhook_id for d in forward_target.deliveries) == sorted(expected)
    for process in (stack.web, stack.worker):  # no restart: the same processes carried on
        assert process.process is not None and process.process.poll() is None
    with group.replica.client() as promoted:
        assert promoted.info("replication")["role"] == "master"
        assert all(promoted.exists(SEEN_KEY.format(ident)) for ident in expected)
