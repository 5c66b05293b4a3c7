"""Fan-out: every configured (handler, target) runs once per event.

Handlers run inline, in the event's task, as long as they succeed and the time budget lasts:
one task per event is what keeps a burst cheap. A handler that fails is not retried inline:
it gets a ``roomrec.run_handler`` task of its own, retried on its own schedule, so it neither
blocks nor re-runs the others. Handlers marked ``inline = False`` (long ones, such as
``archive``) always get their own task, and so does whatever is left when the inline pass has
used its time budget.

Every handler's success is marked in Redis (:func:`done_key`): a redelivered task (after a
worker crash) skips the handlers that already took effect. The marks go in as few round trips
as that allows (:class:`DoneMarks`): one read of them all (``MGET``), and a write before the
next handler starts (or anything else takes effect) whenever one that must not take effect
twice has succeeded. What is left at the end goes with the event's last write:
``roomrec.process_event`` hands it to room completion (:func:`workers.pipeline.rooms.after_event`),
so that ``log,forward`` costs two round trips in all.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

from schemas import HandlerEvent
from workers.delivery.celery_app import HANDLERS_QUEUE, RUN_HANDLER_TASK, task_time_limit
from workers.errors import Paused, PermanentError, TargetGone
from workers.observability import metrics
from workers.pipeline.retry import Attempt, retry_or_give_up, schedule
from workers.runtime.context import Runtime
from workers.state.holds import Hold
from workers.state.keys import done_key

log = logging.getLogger(__name__)


def handler_task_id(event_id: str, handler: str, index: int) -> str:
    return f"{event_id}.{handler}.{index}"


def run_handlers(rt: Runtime, event: HandlerEvent, marks: DoneMarks | None = None) -> None:
    """Run every (handler, target) for ``event``: inline while the time budget lasts, the rest
    (and handlers that are never inline) as tasks of their own. ``marks``: the caller's, which
    it writes once it returns (what is left of them was not urgent); without, they are
    written here before it returns."""
    body = event.to_json()
    budget = task_time_limit(rt.settings.visibility_timeout) / 3
    started = time.monotonic()
    deferred: list[tuple[str, str | None, int]] = []
    runs = [
        (name, handler, target, index)
        for name, handler in rt.handlers.items()
        for index, target in enumerate(handler.targets())
    ]
    # Which already took effect (a redelivered task): one round trip for all of them.
    done = rt.redis.mget([done_key(event.id, name, target) for name, _, target, _ in runs])
    pending = DoneMarks(rt) if marks is None else marks
    for (name, handler, target, index), was_done in zip(runs, done, strict=True):
        if was_done:
            log.info("%s already took effect for %s; not run again", name, event.id)
        elif getattr(handler, "inline", True) and time.monotonic() - started < budget:
            if pending.urgent:  # before this one can take effect
                pending.write()
            attempt_handler(rt, name, target, index, event, body, attempt=0, checked=True,
                            marks=pending)  # fmt: skip
        else:
            deferred.append((name, target, index))
    if marks is None or deferred:  # a deferred handler's task may run at once, elsewhere
        pending.write()
    for name, target, index in deferred:
        schedule(
            rt, RUN_HANDLER_TASK, [name, target, body],
            task_id=handler_task_id(event.id, name, index), queue=HANDLERS_QUEUE, retries=0,
            delay=0,
        )  # fmt: skip
    log.info(
        "processed %s %s room=%s recording=%s (%d handler(s), %d queued apart)",
        event.event.event, event.id, event.event.room_sid, event.event.recording_sid or "-",
        len(rt.handlers), len(deferred),
    )  # fmt: skip


def attempt_handler(
    rt: Runtime, name: str, target: str | None, index: int, event: HandlerEvent,
    body: dict[str, Any], *, attempt: int, checked: bool = False, marks: DoneMarks | None = None,
) -> None:  # fmt: skip
    """One attempt of one handler at one target: done, gone, dead-lettered or scheduled again.
    ``checked``: the caller already found it not done. ``marks``: the event's pending done
    marks, which a repeatable handler's joins (else its mark is written at once)."""
    key = done_key(event.id, name, target)
    if not checked and rt.redis.exists(key):
        log.info("%s already took effect for %s; not run again", name, event.id)
        return
    with metrics.handler_run(name) as run:
        pending = DoneMarks(rt) if marks is None else marks
        run.outcome = _attempt(rt, name, target, index, event, body, attempt=attempt,
                               marks=pending)  # fmt: skip
        if marks is None:  # a task of its own: nothing comes after it to write its mark
            pending.write()


def _attempt(
    rt: Runtime, name: str, target: str | None, index: int, event: HandlerEvent,
    body: dict[str, Any], *, attempt: int, marks: DoneMarks,
) -> str:  # fmt: skip
    """The attempt itself; returns its outcome (for metrics)."""
    stage = f"handler:{name}"
    handler = rt.handlers.get(name)
    task_id = handler_task_id(event.id, name, index)
    try:
        if handler is None:
            raise PermanentError(f"handler {name!r} is not in HANDLERS of this worker")
        handler(event, target)
    except TargetGone as exc:
        log.warning("%s of %s: %s: not retried", stage, event.id, exc)
        marks.add(event.id, name, target, "gone", attempt + 1)
        marks.write()
        return "gone"
    except Paused as exc:  # progress made: carry on in a new task, same attempt number
        log.info("%s of %s paused, continuing: %s", stage, event.id, exc)
        schedule(
            rt, RUN_HANDLER_TASK, [name, target, body], task_id=task_id, queue=HANDLERS_QUEUE,
            retries=attempt, delay=0,
        )  # fmt: skip
        return "paused"
    except Exception as exc:  # a handler's own failure: retried on its own, then dead-lettered
        return retry_or_give_up(rt, Attempt(
            RUN_HANDLER_TASK, [name, target, body], task_id=task_id, queue=HANDLERS_QUEUE,
            number=attempt, stage=stage, event_id=event.id, message=body,
            what=f"{stage} of {event.id}", handler=name, target=target,
        ), exc)  # fmt: skip
    marks.add(event.id, name, target, "succeeded", attempt + 1)
    if not getattr(handler, "repeatable", False):
        marks.urgent = True  # must not take effect twice: written before anything else does
    return "succeeded"


class DoneMarks:
    """Done marks with their outcomes, written together in one round trip (a transaction).

    A mark is what keeps a handler from running again when its event's task is delivered
    again. A handler that must not take effect twice makes the marks ``urgent`` once it took
    effect: they are written (with those waiting before it) before the next handler starts, or
    anything else can take effect. A repeatable one's may wait for the next write, or for the
    event's last write, since running it again changes nothing.
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.pending: list[tuple[str, str, str | None, str, int]] = []
        self.urgent = False

    def add(self, event_id: str, name: str, target: str | None, outcome: str,
            attempts: int) -> None:  # fmt: skip
        self.pending.append((event_id, name, target, outcome, attempts))

    def queue(self, pipe: redis.client.Pipeline) -> None:
        """Queue the pending marks on ``pipe`` (a transaction the caller executes, then
        calls :meth:`clear`)."""
        for event_id, name, target, outcome, attempts in self.pending:
            pipe.set(done_key(event_id, name, target), 1, ex=self.rt.settings.marks_ttl)
            self.rt.outcomes.record(event_id, name, target, outcome, attempts=attempts,
                                    pipe=pipe)  # fmt: skip

    def clear(self) -> None:
        self.pending = []
        self.urgent = False

    def write(self, release: Hold | None = None) -> None:
        """Write the pending marks, and release ``release`` in the same transaction."""
        if not self.pending and release is None:
            return
        with self.rt.redis.pipeline(transaction=True) as pipe:
            self.queue(pipe)
            if release is not None:
                release.queue(pipe)
            pipe.execute()
        self.clear()
