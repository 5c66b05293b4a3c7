from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devtools.redis_server import RedisServer

pytest_plugins = [
    "tests.support.emulator",  # emulator, twilio, control
    "tests.support.rabbitmq",  # rabbitmq_node: a private RabbitMQ node
    "tests.support.databases",  # postgres_server (a private PostgreSQL), empty_database
]

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.support.report import COUNTS

    for name, counts in COUNTS.items():
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()))
        terminalreporter.write_line(f"{name}: {kinds}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for the whole session (never the machine's own)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The private Redis, emptied before each test."""
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    client.close()
    yield redis_server.url
