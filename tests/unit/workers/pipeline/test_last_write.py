"""workers.pipeline.tasks: the Redis round trips of one ``recording-completed`` in its task, as
a worker runs it (with a task id, after the web's enqueue put it in the in-flight ledger),
against the Twilio emulator, a forward target and the private Redis.

The task reads its done marks once, writes them before a handler follows one that must not
take effect twice, and writes what is left with the room's update, which also releases the
task's ledger entry when nothing follows it: two round trips for ``log,forward``, three for
``log,forward,store``. A room's last event (the room is ready: it emits) keeps its entry until
the task returned, as every other task does."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

import workers.pipeline.tasks  # noqa: F401  (registers roomrec.process_event on every app)
from devtools.receiver import ForwardTarget
from emulator.client import EmulatorProcess
from schemas import EventMessage, load_callback
from tests.support.twilio import recording_params, room_params, sid
from tests.unit.workers.helpers import worker_settings
from workers.delivery.celery_app import PROCESS_EVENT_TASK
from workers.delivery.dedup import event_id
from workers.metadata import Store
from workers.pipeline.tasks import _attempt_ended
from workers.runtime.context import Runtime, runtime
from workers.state.keys import INFLIGHT_DUE_KEY, INFLIGHT_KEY, done_key
from workers.state.outcomes import outcomes_of
from workers.state.rooms import UPDATE

MakeRuntime = Callable[..., Runtime]


class Counting(redis.Connection):
    """A connection counting what it sends: one send is one round trip (a command, or a whole
    pipeline or transaction)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)


@pytest.fixture
def make_runtime(
    redis_url: str, app: Celery, twilio: EmulatorProcess, forward_target: ForwardTarget
) -> Iterator[MakeRuntime]:
    built: list[Runtime] = []

    def make(**env: str) -> Runtime:
        settings = worker_settings(
            REDIS_URL=redis_url, TWILIO_VIDEO_BASE_URL=twilio.url,
            FORWARD_URLS=forward_target.url, **env,
        )  # fmt: skip
        # The task's own Redis traffic goes through a connection that counts it.
        counted = redis.Redis(connection_pool=redis.ConnectionPool.from_url(
            redis_url, decode_responses=True, connection_class=Counting,
        ))  # fmt: skip
        rt = dataclasses.replace(Runtime.build(settings, app), redis=counted)
        counted.script_load(UPDATE)  # steady state: a worker's first event loads the script
        app._roomrec_runtime = rt  # what runtime(app) builds in a worker process
        built.append(rt)
        return rt

    yield make
    for rt in built:
        rt.redis.close()
        rt.broker.close()


def queued(rt: Runtime, params: dict[str, str]) -> EventMessage:
    """The callback ``params`` accepted as the web accepts it: queued, in the ledger."""
    message = EventMessage(id=event_id(params), event=load_callback(params),
                           received_at=datetime.now(UTC))  # fmt: skip
    assert rt.broker.enqueue(message)
    return message


def run(app: Celery, message: EventMessage) -> tuple[int, Any]:
    """``roomrec.process_event`` as a worker's tracer runs it (``run`` under a request with its
    id, then ``task_postrun``); the round trips the task itself made, and its request."""
    task = app.tasks[PROCESS_EVENT_TASK]
    task.push_request(id=message.id, retries=0)
    try:
        runtime(app).redis.ping()  # connected (a worker's connection is, after its first task)
        before = Counting.sent
        task.run(message.to_json())
        sent = Counting.sent - before
        request = task.request
        _attempt_ended(sender=task, task_id=message.id, state="SUCCESS")
    finally:
        task.pop_request()
    return sent, request


def completed(twilio: EmulatorProcess, **params: str) -> dict[str, str]:
    callback = recording_params("recording-completed", **params)
    twilio.control.create_recording(
        sid=callback["RecordingSid"], room_sid=callback["RoomSid"], type="audio", size=4096,
        duration=3, status="completed",
    )  # fmt: skip
    return callback


@pytest.mark.parametrize(("handlers", "round_trips"), [("log,forward", 2),
                                                       ("log,forward,store", 3)])  # fmt: skip
def test_a_recording_event_costs_its_round_trips_and_leaves_the_ledger(
    make_runtime: MakeRuntime, app: Celery, twilio: EmulatorProcess,
    forward_target: ForwardTarget, tmp_path: Path, handlers: str, round_trips: int,
) -> None:  # fmt: skip
    database = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    Store.open(database).ready()
    rt = make_runtime(HANDLERS=handlers, DATABASE_URL=database)
    message = queued(rt, completed(twilio))
    assert rt.redis.hexists(INFLIGHT_KEY, message.id)

    sent, request = run(app, message)

    assert sent == round_trips
    assert request.roomrec_released  # with the last write: task_postrun had nothing to do
    assert not rt.redis.hexists(INFLIGHT_KEY, message.id)
    assert rt.redis.zscore(INFLIGHT_DUE_KEY, message.id) is None
    names = handlers.split(",")
    target = {"forward": forward_target.url}
    assert all(rt.redis.exists(done_key(message.id, n, target.get(n))) for n in names)
    assert sorted(o["handler"] for o in outcomes_of(rt.redis, message.id)) == sorted(names)
    assert [d.webhook_id for d in forward_target.deliveries] == [message.id]
    assert rt.dead_letters.list() == []


def test_without_room_completion_the_marks_and_the_release_share_a_transaction(
    make_runtime: MakeRuntime, app: Celery, twilio: EmulatorProcess
) -> None:
    rt = make_runtime(HANDLERS="log,forward", ROOM_READY_EVENTS="0")
    message = queued(rt, completed(twilio))

    sent, request = run(app, message)

    assert sent == 2 and request.roomrec_released
    assert not rt.redis.hexists(INFLIGHT_KEY, message.id)


def test_the_event_that_makes_its_room_ready_keeps_its_entry_until_it_returned(
    make_runtime: MakeRuntime, app: Celery, twilio: EmulatorProcess,
    forward_target: ForwardTarget,
) -> None:  # fmt: skip
    rt = make_runtime(HANDLERS="log,forward")
    room = sid("RM")
    twilio.control.create_room(sid=room)
    recording = twilio.control.create_recording(room_sid=room, type="audio")["sid"]  # processing
    ended = queued(rt, room_params("room-ended", RoomSid=room, RoomDuration="60"))
    _, request = run(app, ended)  # lists the room's recordings: one still processing
    assert not getattr(request, "roomrec_released", False)  # it listed after its update ...
    assert not rt.redis.hexists(INFLIGHT_KEY, ended.id)  # ... and task_postrun released it
    twilio.control.update_recording(recording, status="completed", size=100, duration=1)
    message = queued(rt, recording_params("recording-completed", RoomSid=room,
                                          RecordingSid=recording))  # fmt: skip
    rt.redis.hset(INFLIGHT_KEY, "probe", "kept")  # another task's entry stays whatever happens

    sent, request = run(app, message)

    assert not getattr(request, "roomrec_released", False)  # it emitted after its update ...
    assert not rt.redis.hexists(INFLIGHT_KEY, message.id)  # ... and task_postrun released it
    assert rt.redis.hget(INFLIGHT_KEY, "probe") == "kept"
    types = [delivery.body["type"] for delivery in forward_target.deliveries]
    assert types == ["room.ended", "recording.completed", "room.recordings_ready"]


def test_on_another_broker_there_is_no_ledger_to_release(
    make_runtime: MakeRuntime, app: Celery, twilio: EmulatorProcess, redis_url: str
) -> None:
    other_database = redis_url.rsplit("/", 1)[0] + "/1"  # a KombuBroker: no in-flight ledger
    rt = make_runtime(HANDLERS="log,forward", CELERY_BROKER_URL=other_database)
    assert rt.broker.hold("evt_x") is None
    params = completed(twilio)
    message = EventMessage(id=event_id(params), event=load_callback(params),
                           received_at=datetime.now(UTC))  # fmt: skip

    sent, request = run(app, message)

    assert sent == 2  # the marks read, then written with the room's update
    assert not getattr(request, "roomrec_released", False)  # attempt_ended: nothing to do
    assert rt.redis.hlen(INFLIGHT_KEY) == 0
    assert rt.redis.exists(done_key(message.id, "forward", rt.settings.forward_urls[0]))
