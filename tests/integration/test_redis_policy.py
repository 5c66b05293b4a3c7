"""A real ``celery worker`` on a Redis whose maxmemory-policy evicts logs one WARNING once it
is ready, naming the policy, what it loses and ``noeviction``; it still starts and runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.processes import celery_worker
from devtools.redis_server import RedisServer
from tests.support.redis_memory import set_policy
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN


@pytest.fixture
def evicting(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    set_policy(server, "allkeys-lru")
    yield server
    server.stop()


def test_a_worker_warns_at_start_up_about_an_evicting_redis(
    evicting: RedisServer, tmp_path: Path
) -> None:
    config = {
        "REDIS_URL": evicting.url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "HANDLERS": "log", "METRICS_PORT": "0",
    }  # fmt: skip
    worker = celery_worker(config, tmp_path / "worker.log", concurrency=1)
    try:
        worker.wait_for_log("maxmemory-policy", timeout=15)
    finally:
        worker.stop()
    lines = [line for line in worker.log().splitlines() if "maxmemory-policy" in line]
    assert len(lines) == 1
    (line,) = lines
    assert "WARNING" in line and "REDIS_URL" in line
    assert "'allkeys-lru'" in line and "'noeviction'" in line and "queued events" in line
