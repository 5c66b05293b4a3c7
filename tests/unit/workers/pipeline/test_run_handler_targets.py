"""roomrec.run_handler runs only what this worker is configured to run: a message naming a
target that is not one of the handler's (a URL not in FORWARD_URLS) or a handler not in
HANDLERS is dead-lettered, and nothing is sent. Called as a worker calls the task, on a real
Redis, with real receivers on loopback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from celery import Celery

import workers.pipeline.tasks  # noqa: F401  (registers roomrec.run_handler on every app)
from devtools.receiver import ForwardTarget
from tests.support.twilio import room_params
from tests.unit.workers.helpers import LocalServer, room_event, worker_settings
from workers.delivery.celery_app import RUN_HANDLER_TASK
from workers.runtime.context import Runtime
from workers.state.outcomes import outcomes_of

Start = Callable[..., LocalServer]


@pytest.fixture
def rt(redis_url: str, app: Celery, forward_target: ForwardTarget) -> Iterator[Runtime]:
    """The runtime of a worker forwarding to ``forward_target`` only."""
    built = Runtime.build(worker_settings(
        REDIS_URL=redis_url, HANDLERS="log,forward", FORWARD_URLS=forward_target.url,
    ), app)  # fmt: skip
    app._roomrec_runtime = built  # what runtime(app) builds in a worker process
    yield built
    built.redis.close()


@pytest.fixture
def stranger(local_server: Start) -> LocalServer:
    """A receiver no worker is configured for: it records whatever arrives."""
    from werkzeug.wrappers import Response

    return local_server(lambda request, release: Response(b"", status=204))


def run(app: Celery, name: str, target: str | None) -> str:
    event = room_event(room_params("room-created"))
    app.tasks[RUN_HANDLER_TASK](name, target, event.to_json())
    return event.id


def test_a_configured_target_is_delivered_to(
    app: Celery, rt: Runtime, forward_target: ForwardTarget
) -> None:
    run(app, "forward", forward_target.url)

    assert len(forward_target.deliveries) == 1
    assert rt.dead_letters.list() == []


@pytest.mark.parametrize("extra", ["", "?token=s3cr3t"])
def test_a_target_not_configured_is_dead_lettered_and_sent_nothing(
    app: Celery, rt: Runtime, forward_target: ForwardTarget, stranger: LocalServer,
    caplog: pytest.LogCaptureFixture, extra: str,
) -> None:  # fmt: skip
    target = f"{stranger.url}/hooks{extra}"

    with caplog.at_level(logging.ERROR, logger="workers"):
        event_id = run(app, "forward", target)

    assert stranger.seen == []
    assert forward_target.attempts == []
    [entry] = rt.dead_letters.list()
    assert (entry["event_id"], entry["stage"]) == (event_id, "handler:forward")
    assert f"target {stranger.url}/hooks#" in entry["error"]
    assert "not one of forward's configured targets" in entry["error"]
    assert "s3cr3t" not in entry["error"] and "s3cr3t" not in caplog.text
    assert "not one of forward's configured targets" in caplog.text
    [outcome] = outcomes_of(rt.redis, event_id)
    assert (outcome["handler"], outcome["status"]) == ("forward", "dead-lettered")


def test_no_target_for_a_handler_with_targets_is_dead_lettered(
    app: Celery, rt: Runtime, forward_target: ForwardTarget
) -> None:
    run(app, "forward", None)

    assert forward_target.attempts == []
    [entry] = rt.dead_letters.list()
    assert "target - is not one of forward's configured targets" in entry["error"]


def test_an_unknown_handler_is_dead_lettered(
    app: Celery, rt: Runtime, forward_target: ForwardTarget
) -> None:
    run(app, "nope", forward_target.url)

    assert forward_target.attempts == []
    [entry] = rt.dead_letters.list()
    assert entry["stage"] == "handler:nope"
    assert "handler 'nope' is not in HANDLERS" in entry["error"]
