"""The real stack: a private redis-server, the Twilio emulator, gunicorn serving the web app,
a Celery worker (prefork) and a forward target verifying Standard Webhooks signatures."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from redis import Redis

from devtools.processes import ManagedProcess, celery_worker, gunicorn_web
from devtools.receiver import ForwardTarget
from devtools.redis_server import RedisServer, free_port
from emulator.client import EmulatorProcess
from tests.support import rabbitmq
from tests.support.deploy import stop_all
from tests.support.emulator import emulator_fixture
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN

FORWARD_SECRET = "whsec_" + base64.b64encode(b"roomrec-integration-tests-key-32b").decode()
T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 30, message: str = "") -> T:
    """Poll ``condition`` until it returns something truthy; fail with ``message`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s: {message}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def rabbitmq_vhost(rabbitmq_node: rabbitmq.RabbitNode) -> Iterator[str]:
    """A private vhost for this module on the session's private RabbitMQ node."""
    with rabbitmq.private_vhost(rabbitmq_node) as url:
        yield url


@pytest.fixture
def amqp_url(rabbitmq_vhost: str) -> str:
    rabbitmq.purge(rabbitmq_vhost)
    return rabbitmq_vhost


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    """The test runs once with each broker."""
    return redis_url if request.param == "redis" else str(request.getfixturevalue("amqp_url"))


@pytest.fixture
def processes() -> Iterator[list[ManagedProcess]]:
    """Processes to stop after the test: all signalled at once (a worker takes seconds)."""
    started: list[ManagedProcess] = []
    yield started
    stop_all(started)


# One emulator for the whole suite (a module may replace it); ``twilio`` empties it per test.
emulator = emulator_fixture("session")


@pytest.fixture
def forward_target() -> Iterator[ForwardTarget]:
    target = ForwardTarget(FORWARD_SECRET)
    yield target
    target.stop()


@dataclass
class Stack:
    web_url: str
    web: ManagedProcess
    worker: ManagedProcess
    redis: Redis
    worker_config: dict[str, str]
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def callback_url(self) -> str:
        return f"{self.web_url}/twilio/room-events"

    def dead_letters(self) -> list[dict[str, Any]]:
        from workers.state.deadletters import DeadLetterStore

        return DeadLetterStore(self.redis).list()

    def logs(self) -> str:
        return "\n".join(process.log() for process in self.processes)


@pytest.fixture
def start_stack(
    redis_server: RedisServer,
    redis_url: str,
    twilio: EmulatorProcess,
    forward_target: ForwardTarget,
    tmp_path: Path,
) -> Iterator[Callable[..., Stack]]:
    """Start web and worker with the given worker settings on top of sensible test defaults."""
    stacks: list[Stack] = []

    def start(
        *,
        web_workers: int = 2,
        concurrency: int = 2,
        redis: RedisServer | None = None,
        web_overrides: dict[str, str] | None = None,
        **worker_overrides: str,
    ) -> Stack:
        """``redis``: another private Redis than the session's (e.g. append-only);
        ``web_overrides``: the web's settings on top of its defaults."""
        server = redis or redis_server
        redis_url = server.url
        web_config = {
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "REDIS_URL": redis_url,
            "SPOOL_PATH": str(tmp_path / f"spool-{len(stacks)}.sqlite3"),
        } | (web_overrides or {})
        worker_config = {
            "REDIS_URL": redis_url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_VIDEO_BASE_URL": twilio.url,
            "TWILIO_TIMEOUT": "2",
            "HANDLERS": "log,forward",
            "FORWARD_URLS": forward_target.url,
            "FORWARD_SECRET": FORWARD_SECRET,
            "FORWARD_ALLOW_HTTP": "1",
            "FORWARD_TIMEOUT": "2",
            "MEDIA_ALLOWED_NETWORKS": "127.0.0.0/8",  # the emulator's media is on loopback
            "RETRY_BACKOFF_MAX": "2",
            "TASK_MAX_RETRIES": "4",
            "METRICS_PORT": "0",  # several workers share this host in some tests
        } | worker_overrides
        port = free_port()
        if not {"PUBLIC_BASE_URL", "ALLOWED_HOSTS", "DEV_MODE"} & web_config.keys():
            web_config["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"  # the URL tests sign for
        web = gunicorn_web(web_config, tmp_path / "web.log", port, workers=web_workers)
        try:
            worker = celery_worker(worker_config, tmp_path / "worker.log", concurrency=concurrency)
        except BaseException:
            web.stop()
            raise
        stack = Stack(
            web_url=f"http://127.0.0.1:{port}",
            web=web,
            worker=worker,
            redis=Redis(port=server.port, decode_responses=True),
            worker_config=worker_config,
            processes=[web, worker],
        )
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        for process in stack.processes:
            process.stop()
        stack.redis.close()
