"""workers.runtime.signals: what Celery's task signals bind to the log lines and count.

The signals are sent as Celery's tracer sends them, around a real task of a real app; a whole
worker is run by tests/integration/test_observability.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, Task, signals
from prometheus_client import REGISTRY

from tests.unit.workers.helpers import worker_settings
from workers.delivery.celery_app import PROCESS_EVENT_TASK, RUN_HANDLER_TASK, make_celery
from workers.observability.logs import bound_fields
from workers.runtime import signals as observability
from workers.runtime.signals import stage_of, task_fields

PARAMS = {"StatusCallbackEvent": "recording-completed", "RoomSid": "RM1", "RecordingSid": "RT1"}
MESSAGE = {"v": 1, "id": "evt_1", "params": PARAMS}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def app() -> Iterator[Celery]:
    app = make_celery("memory://")

    @app.task(name=RUN_HANDLER_TASK, bind=True, shared=False)  # never on other tests' apps
    def run_handler(self: Task, name: str, target: str | None, message: dict[str, Any]) -> None:
        pass

    @app.task(name=PROCESS_EVENT_TASK, bind=True, shared=False)
    def process_event(self: Task, message: dict[str, Any]) -> None:
        pass

    observability.install(worker_settings(HANDLERS="log"))
    yield app
    app.close()


def _run(task: Task, args: list[Any], *, retries: int = 0, state: str = "SUCCESS") -> Any:
    """Send the signals around one run of ``task``; return the fields bound during it."""
    task.push_request(id="task-1", retries=retries, args=args)
    try:
        signals.task_prerun.send(sender=task, task_id="task-1", task=task, args=args, kwargs={})
        during = dict(bound_fields())
        signals.task_postrun.send(
            sender=task, task_id="task-1", task=task, args=args, kwargs={}, retval=None,
            state=state,
        )  # fmt: skip
    finally:
        task.pop_request()
    return during


def test_a_handler_run_binds_its_fields_and_unbinds_them(app: Celery) -> None:
    during = _run(app.tasks[RUN_HANDLER_TASK], ["log", None, MESSAGE], retries=2)
    assert during == {
        "task_id": "task-1", "attempt": 3, "handler": "log", "event": "recording-completed",
        "room_sid": "RM1", "recording_sid": "RT1", "event_id": "evt_1",
    }  # fmt: skip
    assert dict(bound_fields()) == {}


def test_a_task_run_is_timed_and_counted_by_its_state(app: Celery) -> None:
    labels = {"task": RUN_HANDLER_TASK, "outcome": "failed"}
    before = sample("roomrec_tasks_total", **labels)
    timed = sample("roomrec_task_duration_seconds_count", task=RUN_HANDLER_TASK)
    _run(app.tasks[RUN_HANDLER_TASK], ["log", None, MESSAGE], state="FAILURE")
    assert sample("roomrec_tasks_total", **labels) == before + 1
    assert sample("roomrec_task_duration_seconds_count", task=RUN_HANDLER_TASK) == timed + 1


def test_celery_retry_signal_counts_the_stage(app: Celery) -> None:
    task = app.tasks[RUN_HANDLER_TASK]
    before = sample("roomrec_retries_total", stage="handler:log")
    task.push_request(id="task-2", retries=0, args=["log", None, MESSAGE])
    try:
        signals.task_prerun.send(sender=task, task_id="task-2", task=task, args=[], kwargs={})
        signals.task_retry.send(sender=task, request=task.request, reason="boom", einfo=None)
        signals.task_postrun.send(sender=task, task_id="task-2", task=task, args=[], kwargs={},
                                  retval=None, state="RETRY")  # fmt: skip
    finally:
        task.pop_request()
    assert sample("roomrec_retries_total", stage="handler:log") == before + 1


def test_installing_again_replaces_the_receivers(app: Celery) -> None:
    observability.install(worker_settings(HANDLERS="log"))
    before = sample("roomrec_tasks_total", task=PROCESS_EVENT_TASK, outcome="succeeded")
    _run(app.tasks[PROCESS_EVENT_TASK], [MESSAGE])
    assert sample("roomrec_tasks_total", task=PROCESS_EVENT_TASK, outcome="succeeded") == before + 1


@pytest.mark.parametrize(
    ("task", "args", "expected"),
    [
        (PROCESS_EVENT_TASK, [MESSAGE], {"event": "recording-completed", "room_sid": "RM1",
                                        "recording_sid": "RT1", "event_id": "evt_1"}),
        (RUN_HANDLER_TASK, ["forward", "https://x", {"id": 5}], {"handler": "forward"}),
        (PROCESS_EVENT_TASK, ["not a message"], {}),
        (PROCESS_EVENT_TASK, [{"params": {"RoomSid": 7}}], {}),
        ("roomrec.reconcile", [], {}),
    ],
)  # fmt: skip
def test_task_fields(task: str, args: list[Any], expected: dict[str, str]) -> None:
    assert task_fields(task, args) == expected


def test_task_fields_are_cut_to_a_bounded_length() -> None:
    fields = task_fields(PROCESS_EVENT_TASK, [{"id": "e" * 10_000}])
    assert len(fields["event_id"]) == 100


@pytest.mark.parametrize(
    ("task", "args", "stage"),
    [(PROCESS_EVENT_TASK, [MESSAGE], "fetch"), (RUN_HANDLER_TASK, ["log", None, {}], "handler:log"),
     ("roomrec.reconcile", [], "roomrec.reconcile")],
)  # fmt: skip
def test_stage_of_a_retry(task: str, args: list[Any], stage: str) -> None:
    assert stage_of(task, args) == stage
