"""The Celery tasks. Thin like web views: load the message, call the Twilio client or the
handlers, and turn each outcome into done, retry later, or dead letter.

``roomrec.process_event``: one accepted callback. For ``recording-*`` events it fetches the
RoomRecording, then runs the handlers, each once per target. Handlers run inline, in this task,
as long as they succeed: one task per event is what keeps a burst cheap. A handler that fails is
not retried here: it gets a ``roomrec.run_handler`` task of its own, retried on its own
schedule, so it neither blocks nor re-runs the others. Handlers marked ``inline = False``
(long ones, such as ``archive``) always get their own task, and so does whatever is left when
the inline pass has used its time budget.

Every handler's success is marked in Redis (:func:`done_key`): a redelivered task (after a
worker crash) skips the handlers that already took effect.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery, Task, current_task, shared_task, states
from celery.signals import task_postrun
from marshmallow import ValidationError

from schemas import EventMessage, EventMessageSchema, HandlerEvent, HandlerEventSchema
from workers import metrics, rooms
from workers.celery_app import (
    EVENTS_QUEUE,
    FETCH_STAGE,
    HANDLERS_QUEUE,
    PROCESS_EVENT_TASK,
    RUN_HANDLER_TASK,
    task_time_limit,
)
from workers.errors import NotFoundYet, Paused, PermanentError, TargetGone, TransientError
from workers.publish import build_message
from workers.retry import NOT_FOUND_RETRIES, backoff
from workers.runtime import Runtime, runtime
from workers.twilio_api import UnknownAccount
from workers.urls import fingerprint, target_label

log = logging.getLogger(__name__)
LEDGERED_PREFIX = "roomrec."  # tasks whose messages are published through the ledger

_event_messages = EventMessageSchema()
_handler_events = HandlerEventSchema()


def done_key(event_id: str, handler: str, target: str | None) -> str:
    """Redis key marking that ``handler`` took effect for ``event_id`` at ``target``."""
    return f"roomrec:done:{event_id}:{handler}:{fingerprint(target) if target else '-'}"


def handler_task_id(event_id: str, handler: str, index: int) -> str:
    return f"{event_id}.{handler}.{index}"


def schedule(
    app: Celery, rt: Runtime, task_name: str, args: list[Any], *, task_id: str, queue: str,
    retries: int, delay: float,
) -> None:  # fmt: skip
    """Publish attempt number ``retries`` of a task after ``delay`` seconds. On the Redis of
    ``REDIS_URL`` it waits in a sorted set (see :mod:`workers.publish`); with another broker
    Celery's own countdown is used."""
    if rt.delayed is None:
        app.send_task(
            task_name, args=args, task_id=task_id, countdown=delay or None, retries=retries,
            argsrepr=task_id,  # task views (Flower) show this: no target URL, no payload
        )  # fmt: skip
        return
    message = build_message(app, task_name, args, task_id=task_id, queue=queue, retries=retries)
    rt.delayed.add(queue, message, delay, task_id=task_id)
    if current_task and current_task.request.id == task_id:  # this task's own next attempt
        current_task.request.roomrec_rescheduled = True


@task_postrun.connect
def _attempt_ended(
    sender: Task | None = None, task_id: str | None = None, state: str | None = None,
    **_: Any,
) -> None:  # fmt: skip
    """A task of this service returned: unless it scheduled its own next attempt (under the
    same id, which replaced the entry), its message leaves the in-flight ledger
    (:mod:`workers.inflight`). One that raised keeps its entry, to be published again."""
    if sender is None or task_id is None or not sender.name.startswith(LEDGERED_PREFIX):
        return
    if state != states.SUCCESS or getattr(sender.request, "roomrec_rescheduled", False):
        return
    rt = runtime(sender.app)
    if rt.inflight is not None:
        rt.inflight.done(task_id)


def give_up(
    rt: Runtime, *, event_id: str, stage: str, handler: str | None, target: str | None,
    attempts: int, error: str, message: dict[str, Any],
) -> None:  # fmt: skip
    if handler is not None:
        rt.outcomes.record(event_id, handler, target, "dead-lettered", attempts=attempts,
                           error=error)  # fmt: skip
    metrics.dead_lettered(stage)
    rt.dead_letters.add(
        event_id=event_id, stage=stage, target=target_label(target), attempts=attempts,
        error=error, message=message,
    )  # fmt: skip


@shared_task(name=PROCESS_EVENT_TASK, bind=True, max_retries=None)
def process_event(self: Task, message: dict[str, Any]) -> None:
    rt = runtime(self.app)
    attempt = self.request.retries
    try:
        queued: EventMessage = _event_messages.load(message)
    except ValidationError as exc:
        event_id = str(message.get("id", "?")) if isinstance(message, dict) else "?"
        give_up(
            rt, event_id=event_id, stage="validate", handler=None, target=None, attempts=1,
            error=f"invalid event message: {exc.messages}", message={"raw": message},
        )  # fmt: skip
        return
    event = queued.event
    try:
        twilio = rt.twilio.for_account(event.account_sid)  # the event's account's credentials
    except UnknownAccount as exc:  # not served here: nothing of it is fetched nor handled
        give_up(
            rt, event_id=queued.id, stage=FETCH_STAGE, handler=None, target=None,
            attempts=attempt + 1, error=str(exc), message=message,
        )  # fmt: skip
        return
    recording = None
    composition = None
    if event.is_recording or event.event == "composition-available":
        try:
            if event.is_recording:
                assert event.recording_sid is not None  # the recording schemas require it
                recording = twilio.fetch_recording(event.room_sid, event.recording_sid)
            else:  # composition-available: the Composition, for the archive handler
                composition = twilio.fetch_composition(event.params["composition_sid"])
        except (TransientError, PermanentError) as exc:
            limit = NOT_FOUND_RETRIES if isinstance(exc, NotFoundYet) else rt.settings.max_retries
            if isinstance(exc, PermanentError) or attempt >= limit:
                give_up(
                    rt, event_id=queued.id, stage=FETCH_STAGE, handler=None, target=None,
                    attempts=attempt + 1, error=str(exc), message=message,
                )  # fmt: skip
                return
            assert isinstance(exc, TransientError)
            delay = backoff(attempt, cap=rt.settings.retry_backoff_max, retry_after=exc.retry_after)
            log.warning(
                "fetch of %s for %s failed (attempt %d of %d), retrying in %.1fs: %s",
                event.recording_sid or event.params.get("composition_sid"), queued.id,
                attempt + 1, limit + 1, delay, exc,
            )  # fmt: skip
            metrics.retry_scheduled(FETCH_STAGE)
            schedule(
                self.app, rt, PROCESS_EVENT_TASK, [message], task_id=queued.id,
                queue=EVENTS_QUEUE, retries=attempt + 1, delay=delay,
            )  # fmt: skip
            return
    handled = HandlerEvent(
        id=queued.id, event=event, recording=recording, received_at=queued.received_at,
        composition=composition,
    )  # fmt: skip
    run_handlers(self.app, rt, handled)
    rooms.after_event(self.app, rt, handled)  # room completion: workers/rooms.py


def run_handlers(app: Celery, rt: Runtime, event: HandlerEvent) -> None:
    """Run every (handler, target) for ``event``: inline while the time budget lasts, the rest
    (and handlers that are never inline) as tasks of their own."""
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
    marks = DoneMarks(rt)
    for (name, handler, target, index), was_done in zip(runs, done, strict=True):
        if was_done:
            log.info("%s already took effect for %s; not run again", name, event.id)
        elif getattr(handler, "inline", True) and time.monotonic() - started < budget:
            attempt_handler(app, rt, name, target, index, event, body, attempt=0, checked=True,
                            marks=marks)  # fmt: skip
        else:
            deferred.append((name, target, index))
    marks.write()
    for name, target, index in deferred:
        schedule(
            app, rt, RUN_HANDLER_TASK, [name, target, body],
            task_id=handler_task_id(event.id, name, index), queue=HANDLERS_QUEUE, retries=0,
            delay=0,
        )  # fmt: skip
    log.info(
        "processed %s %s room=%s recording=%s (%d handler(s), %d queued apart)",
        event.event.event, event.id, event.event.room_sid, event.event.recording_sid or "-",
        len(rt.handlers), len(deferred),
    )  # fmt: skip


def attempt_handler(
    app: Celery, rt: Runtime, name: str, target: str | None, index: int, event: HandlerEvent,
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
        run.outcome = _attempt(app, rt, name, target, index, event, body, attempt=attempt,
                               marks=pending)  # fmt: skip
        if marks is None:  # a task of its own: nothing comes after it to write its mark
            pending.write()


def _attempt(
    app: Celery, rt: Runtime, name: str, target: str | None, index: int, event: HandlerEvent,
    body: dict[str, Any], *, attempt: int, marks: DoneMarks,
) -> str:  # fmt: skip
    """The attempt itself; returns its outcome (for metrics)."""
    stage = f"handler:{name}"
    handler = rt.handlers.get(name)
    try:
        if handler is None:
            raise PermanentError(f"handler {name!r} is not in HANDLERS of this worker")
        handler(event, target)
    except TargetGone as exc:
        log.warning("%s: not retried", exc)
        marks.add(event.id, name, target, "gone", attempt + 1)
        marks.write()
        return "gone"
    except PermanentError as exc:
        give_up(
            rt, event_id=event.id, stage=stage, handler=name, target=target,
            attempts=attempt + 1, error=str(exc), message=body,
        )  # fmt: skip
        return "dead-lettered"
    except Paused as exc:  # progress made: carry on in a new task, same attempt number
        log.info("%s of %s paused, continuing: %s", stage, event.id, exc)
        schedule(
            app, rt, RUN_HANDLER_TASK, [name, target, body],
            task_id=handler_task_id(event.id, name, index), queue=HANDLERS_QUEUE,
            retries=attempt, delay=0,
        )  # fmt: skip
        return "paused"
    except Exception as exc:  # a handler's own failure: retried on its own, then dead-lettered
        if attempt >= rt.settings.max_retries:
            give_up(
                rt, event_id=event.id, stage=stage, handler=name, target=target,
                attempts=attempt + 1, error=str(exc), message=body,
            )  # fmt: skip
            return "dead-lettered"
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        delay = backoff(attempt, cap=rt.settings.retry_backoff_max, retry_after=retry_after)
        rt.outcomes.record(event.id, name, target, "retrying", attempts=attempt + 1,
                           error=str(exc))  # fmt: skip
        log.warning(
            "%s of %s failed (attempt %d of %d), retrying in %.1fs: %s",
            stage, event.id, attempt + 1, rt.settings.max_retries + 1, delay, exc,
        )  # fmt: skip
        schedule(
            app, rt, RUN_HANDLER_TASK, [name, target, body],
            task_id=handler_task_id(event.id, name, index), queue=HANDLERS_QUEUE,
            retries=attempt + 1, delay=delay,
        )  # fmt: skip
        metrics.retry_scheduled(stage)
        return "retrying"
    marks.add(event.id, name, target, "succeeded", attempt + 1)
    if not getattr(handler, "repeatable", False):
        marks.write()  # at once: this handler must not take effect twice
    return "succeeded"


class DoneMarks:
    """Done marks with their outcomes, written together in one round trip (a transaction).

    A mark is what keeps a handler from running again when its event's task is delivered
    again. A handler that must not take effect twice has its mark written as soon as it took
    effect (with the marks waiting before it); a repeatable one's may wait for the next write,
    or for the end of the event's handlers, since running it again changes nothing.
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.pending: list[tuple[str, str, str | None, str, int]] = []

    def add(self, event_id: str, name: str, target: str | None, outcome: str,
            attempts: int) -> None:  # fmt: skip
        self.pending.append((event_id, name, target, outcome, attempts))

    def write(self) -> None:
        if not self.pending:
            return
        with self.rt.redis.pipeline(transaction=True) as pipe:
            for event_id, name, target, outcome, attempts in self.pending:
                pipe.set(done_key(event_id, name, target), 1, ex=self.rt.marks_ttl)
                self.rt.outcomes.record(event_id, name, target, outcome, attempts=attempts,
                                        pipe=pipe)  # fmt: skip
            pipe.execute()
        self.pending = []


@shared_task(name=RUN_HANDLER_TASK, bind=True, max_retries=None)
def run_handler(self: Task, name: str, target: str | None, message: dict[str, Any]) -> None:
    rt = runtime(self.app)
    try:
        event: HandlerEvent = _handler_events.load(message)
    except ValidationError as exc:
        event_id = str(message.get("id", "?")) if isinstance(message, dict) else "?"
        give_up(
            rt, event_id=event_id, stage=f"handler:{name}", handler=name, target=target,
            attempts=1, error=f"invalid handler event: {exc.messages}", message=message,
        )  # fmt: skip
        return
    # The message names the handler and the target; neither is trusted: a message naming a URL
    # not configured here must never get a delivery (signed with FORWARD_SECRET, for forward).
    handler = rt.handlers.get(name)
    targets = list(handler.targets()) if handler is not None else []
    if handler is None or target not in targets:
        error = (
            f"handler {name!r} is not in HANDLERS of this worker" if handler is None else
            f"target {target_label(target) or '-'} is not one of {name}'s configured targets "
            "(e.g. FORWARD_URLS); not run"
        )  # fmt: skip
        give_up(
            rt, event_id=event.id, stage=f"handler:{name}", handler=name, target=target,
            attempts=self.request.retries + 1, error=error, message=message,
        )  # fmt: skip
        return
    index = targets.index(target)
    attempt_handler(self.app, rt, name, target, index, event, message, attempt=self.request.retries)
