"""Private redis-servers configured as production ones sometimes are: an evicting
``maxmemory-policy``, a ``noeviction`` one full to its ``maxmemory``, CONFIG renamed away (as
managed Redis services do). Each test starts its own: the session's Redis is shared."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from devtools.redis_server import RedisServer


def set_policy(server: RedisServer, policy: str, maxmemory: str = "2mb") -> None:
    client = redis.Redis(port=server.port)
    try:
        client.config_set("maxmemory", maxmemory)
        client.config_set("maxmemory-policy", policy)
    finally:
        client.close()


def fill_to_oom(server: RedisServer) -> None:
    """Make a ``noeviction`` Redis full: it holds data past its ``maxmemory``, so it refuses
    every write with OOM (filling to the limit is not enough: a refused write's own buffer is
    freed after it, which leaves room for the next small one)."""
    client = redis.Redis(port=server.port)
    try:
        client.config_set("maxmemory-policy", "noeviction")
        for number in range(8):
            client.set(f"filler:{number}", b"x" * (64 * 1024))
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", str(used - 256 * 1024))
        try:
            client.set("probe", b"x")
        except redis.exceptions.OutOfMemoryError:
            return
        raise AssertionError("Redis did not answer OOM")
    finally:
        client.close()


@contextmanager
def redis_without_config(directory: Path, policy: str) -> Iterator[int]:
    """A redis-server with ``policy`` whose CONFIG command is renamed away; yields its port."""
    server = RedisServer(directory, extra_args=(
        "--maxmemory", "2mb", "--maxmemory-policy", policy, "--rename-command", "CONFIG", "",
    ))  # fmt: skip
    server.start()
    try:
        yield server.port
    finally:
        server.stop()
