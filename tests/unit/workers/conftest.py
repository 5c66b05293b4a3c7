from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from celery import Celery

from devtools.receiver import ForwardTarget
from tests.unit.workers.helpers import FORWARD_SECRET, Answer, LocalServer, worker_settings
from workers.delivery.celery_app import make_celery
from workers.handlers import HandlerContext
from workers.outbound.http import Pool


@pytest.fixture
def app(redis_url: str) -> Iterator[Celery]:
    """A Celery app on the private Redis: what tasks and publishing code are handed."""
    celery = make_celery(redis_url)
    yield celery
    celery.close()


@pytest.fixture
def local_server() -> Iterator[Callable[[Answer], LocalServer]]:
    """``local_server(answer)`` starts a real HTTP server; all are stopped after the test."""
    started: list[LocalServer] = []

    def start(answer: Answer) -> LocalServer:
        server = LocalServer(answer)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def _forward_target_server() -> Iterator[ForwardTarget]:
    target = ForwardTarget(FORWARD_SECRET)
    yield target
    target.stop()  # takes up to 0.5 s, hence one receiver for the session


@pytest.fixture
def forward_target(_forward_target_server: ForwardTarget) -> ForwardTarget:
    """A receiver that verifies every delivery's Standard Webhooks signature; empty per test."""
    target = _forward_target_server
    with target.lock:
        target.answers.clear()
        target.attempts.clear()
        target.invalid.clear()
    return target


@pytest.fixture
def make_context(redis_url: str) -> Iterator[Callable[..., HandlerContext]]:
    """``make_context(**env)``: a HandlerContext on the private Redis and a real HTTP pool."""
    opened: list[HandlerContext] = []

    def make(**env: str) -> HandlerContext:
        context = HandlerContext(
            settings=worker_settings(REDIS_URL=redis_url, **env),
            redis=redis.Redis.from_url(redis_url),
            http=Pool(),
        )
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.http.close()
        context.redis.close()
