"""workers.pipeline.tasks: the done marks of an event's inline handlers, against a real
redis-server.

A handler that must not take effect twice has its mark written as soon as it took effect; a
repeatable one's (``repeatable = True``) goes with the next write, or at the end of the event's
handlers: fewer round trips, and what a redelivery may run again changes nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import pytest
import redis
from celery import Celery

from schemas import HandlerEvent
from tests.support.twilio import room_params
from tests.unit.workers.helpers import room_event, worker_settings
from workers.pipeline.fanout import attempt_handler, run_handlers
from workers.runtime.context import Runtime
from workers.state.keys import done_key
from workers.state.outcomes import outcomes_of


class Probe:
    """A handler noting, when it runs, which of the event's handlers Redis knows as done."""

    def __init__(self, name: str, client: redis.Redis, order: list[str], *,
                 repeatable: bool) -> None:  # fmt: skip
        self.name = name
        self.repeatable = repeatable
        self.client = client
        self.order = order
        self.seen_done: list[str] = []

    def targets(self) -> Sequence[str | None]:
        return (None,)

    def __call__(self, event: HandlerEvent, target: str | None) -> None:
        self.seen_done = [n for n in self.order if self.client.exists(done_key(event.id, n, None))]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as found:
        yield found


def runtime_with(redis_url: str, app: Celery, probes: list[Probe]) -> Runtime:
    rt = Runtime.build(worker_settings(REDIS_URL=redis_url, HANDLERS="log"), app)
    return dataclasses.replace(rt, handlers={probe.name: probe for probe in probes})


def transactions(client: redis.Redis) -> int:
    stats = client.info("commandstats").get("cmdstat_exec", {})
    return int(stats.get("calls", 0))


def test_a_repeatable_handlers_mark_waits_for_the_next_write(
    redis_url: str, app: Celery, client: redis.Redis
) -> None:
    order = ["first", "once", "last"]
    first, once, last = (Probe(name, client, order, repeatable=name != "once") for name in order)
    rt = runtime_with(redis_url, app, [first, once, last])
    event = room_event(room_params())
    before = transactions(client)

    run_handlers(rt, event)

    assert first.seen_done == [] and once.seen_done == []  # nothing written before "once" ran
    assert last.seen_done == ["first", "once"]  # "once" wrote its mark with the waiting one
    assert all(client.exists(done_key(event.id, name, None)) for name in order)
    assert {o["handler"]: o["status"] for o in outcomes_of(rt.redis, event.id)} == dict.fromkeys(
        order, "succeeded"
    )
    assert transactions(client) - before == 2  # one per handler before: three
    rt.redis.close()


def test_a_repeatable_handler_in_a_task_of_its_own_writes_its_mark(
    redis_url: str, app: Celery, client: redis.Redis
) -> None:
    probe = Probe("alone", client, ["alone"], repeatable=True)
    rt = runtime_with(redis_url, app, [probe])
    event = room_event(room_params())

    attempt_handler(rt, "alone", None, 0, event, {}, attempt=0)

    assert client.exists(done_key(event.id, "alone", None))
    rt.redis.close()


def test_a_handler_that_ran_is_not_run_again_on_redelivery(
    redis_url: str, app: Celery, client: redis.Redis
) -> None:
    order = ["first", "once"]
    first, once = (Probe(name, client, order, repeatable=name == "first") for name in order)
    rt = runtime_with(redis_url, app, [first, once])
    event = room_event(room_params())
    run_handlers(rt, event)
    first.seen_done = once.seen_done = ["not run"]

    run_handlers(rt, event)  # the same event delivered again

    assert first.seen_done == once.seen_done == ["not run"]
    rt.redis.close()
