"""A private Redis Sentinel group for tests: a primary, a replica of it (``--replicaof``) and
three sentinels (``redis-server --sentinel`` with a generated config), each a ``redis-server``
on a free loopback port, never the machine's.

The sentinels declare the primary down after :data:`DOWN_AFTER_MS` without an answer, and two
of them (the quorum) suffice to fail over: with the primary SIGKILLed the replica is promoted
within a few seconds. The data servers require :data:`MASTER_PASSWORD` and the sentinels their
own :data:`SENTINEL_PASSWORD`, so both of roomrec's passwords are exercised.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from devtools.redis_server import RedisServer, free_port, redis_binary
from schemas.settings import RedisSentinel

MASTER_NAME = "roomrec-test"
MASTER_PASSWORD = "master-secret"
SENTINEL_PASSWORD = "sentinel-secret"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
QUORUM = 2

_CONFIG = """\
port {port}
bind 127.0.0.1
daemonize no
dir {directory}
logfile {directory}/sentinel.log
requirepass {sentinel_password}
sentinel monitor {name} 127.0.0.1 {primary} {quorum}
sentinel auth-pass {name} {master_password}
sentinel down-after-milliseconds {name} {down_after}
sentinel failover-timeout {name} {failover_timeout}
sentinel parallel-syncs {name} 1
"""


class SentinelNode:
    """One sentinel: ``redis-server <config> --sentinel`` (it rewrites its config as it learns
    the group, hence a file of its own)."""

    def __init__(self, directory: Path, primary_port: int) -> None:
        self.directory = directory
        self.primary_port = primary_port
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"
        config.write_text(_CONFIG.format(
            port=self.port, directory=self.directory, name=MASTER_NAME, primary=self.primary_port,
            quorum=QUORUM, master_password=MASTER_PASSWORD, sentinel_password=SENTINEL_PASSWORD,
            down_after=DOWN_AFTER_MS, failover_timeout=FAILOVER_TIMEOUT_MS,
        ))  # fmt: skip
        binary = redis_binary()
        self.process = subprocess.Popen(
            [binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL
        )
        with self.client() as client:
            _wait(client.ping, self.process, f"sentinel on {self.port}")

    def client(self) -> redis.Redis:
        return redis.Redis(
            port=self.port, password=SENTINEL_PASSWORD, socket_timeout=1, decode_responses=True
        )

    def master(self) -> dict[str, Any]:
        """What this sentinel knows of the master (``SENTINEL MASTER <name>``)."""
        with self.client() as client:
            found: dict[str, Any] = client.sentinel_master(MASTER_NAME)
            return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class SentinelGroup:
    """The primary, its replica and three sentinels watching them."""

    def __init__(self, directory: Path) -> None:
        self.primary = RedisServer(directory / "primary", password=MASTER_PASSWORD)
        self.replica = RedisServer(
            directory / "replica", password=MASTER_PASSWORD,
            extra_args=("--replicaof", "127.0.0.1", str(self.primary.port)),
        )  # fmt: skip
        self.sentinels = [
            SentinelNode(directory / f"sentinel-{n}", self.primary.port) for n in range(3)
        ]
        self.settings = RedisSentinel(MASTER_NAME, SENTINEL_PASSWORD)

    def url(self, db: int = 0) -> str:
        """``REDIS_URL`` / ``CELERY_BROKER_URL`` for the group, in kombu's format."""
        return ";".join(
            f"sentinel://:{MASTER_PASSWORD}@127.0.0.1:{node.port}/{db}" for node in self.sentinels
        )

    def env(self, db: int = 0) -> dict[str, str]:
        """The variables a web or worker needs to use the group as ``REDIS_URL`` and broker."""
        return {
            "REDIS_URL": self.url(db),
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            "REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD,
        }

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        with self.replica.client() as replica:
            _wait(lambda: replica.info("replication")["master_link_status"] == "up",
                  self.replica.process, "the replica in sync")  # fmt: skip
        for node in self.sentinels:
            node.start()
        for node in self.sentinels:  # each sees the replica and the two other sentinels
            _wait(lambda node=node: _knows_everyone(node.master()), node.process,
                  f"sentinel on {node.port} to discover the group")  # fmt: skip

    def master_port(self) -> int:
        """The port of the master, as the first sentinel answering names it."""
        for node in self.sentinels:
            try:
                with node.client() as client:
                    _, port = client.sentinel_get_master_addr_by_name(MASTER_NAME)
                    return int(port)
            except redis.RedisError:
                continue
        raise RuntimeError("no sentinel answered")

    def wait_for_failover(self, timeout: float = 30) -> float:
        """Wait until the sentinels name the replica the master; the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while self.master_port() != self.replica.port:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no failover within {timeout} s")
            time.sleep(0.1)
        with self.replica.client() as replica:  # promoted: takes writes
            _wait(lambda: replica.info("replication")["role"] == "master", None, "promotion")
        return time.monotonic() - started

    def stop(self) -> None:
        for node in self.sentinels:
            node.stop()
        self.replica.stop()
        self.primary.stop()


def _knows_everyone(master: dict[str, Any]) -> bool:
    return int(master["num-slaves"]) == 1 and int(master["num-other-sentinels"]) == 2


def _wait(
    condition: Callable[[], object], process: subprocess.Popen[bytes] | None, what: str
) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            if condition():
                return
        except redis.RedisError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def running_group(directory: Path) -> Iterator[SentinelGroup]:
    """A started :class:`SentinelGroup`, stopped afterwards."""
    group = SentinelGroup(directory)
    try:
        group.start()
        yield group
    finally:
        group.stop()
