"""The Celery tasks. Thin like web views: load the message, call the Twilio client or the
handler, and turn the outcome into done, retry later, or dead letter.

``roomrec.process_event``: one accepted callback. For ``recording-*`` events it fetches the
RoomRecording; then it queues one ``roomrec.run_handler`` per (handler, target), so each handler
runs and is retried on its own.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from celery import Task, shared_task
from marshmallow import ValidationError

from schemas import EventMessage, EventMessageSchema, HandlerEvent, HandlerEventSchema
from workers.celery_app import (
    EVENTS_QUEUE,
    HANDLERS_QUEUE,
    PROCESS_EVENT_TASK,
    RUN_HANDLER_TASK,
)
from workers.errors import NotFoundYet, PermanentError, TargetGone, TransientError
from workers.publish import build_message
from workers.retry import NOT_FOUND_RETRIES, backoff
from workers.runtime import DONE_TTL, Runtime, runtime
from workers.urls import fingerprint, target_label

log = logging.getLogger(__name__)

_event_messages = EventMessageSchema()
_handler_events = HandlerEventSchema()
FETCH_STAGE = "fetch"
QUEUE_OF = {PROCESS_EVENT_TASK: EVENTS_QUEUE, RUN_HANDLER_TASK: HANDLERS_QUEUE}


def done_key(event_id: str, handler: str, target: str | None) -> str:
    """Redis key marking that ``handler`` took effect for ``event_id`` at ``target``."""
    return f"roomrec:done:{event_id}:{handler}:{fingerprint(target) if target else '-'}"


def _retry_or_give_up(
    task: Task, rt: Runtime, exc: Exception, *, limit: int, stage: str, event_id: str,
    target: str | None, message: dict[str, Any],
) -> NoReturn | None:  # fmt: skip
    """Schedule another attempt with backoff, or dead-letter when ``limit`` is reached."""
    attempt = task.request.retries
    handler = stage.removeprefix("handler:") if stage.startswith("handler:") else None
    if attempt >= limit:
        if handler is not None:
            rt.outcomes.record(event_id, handler, target, "dead-lettered", attempts=attempt + 1,
                               error=str(exc))  # fmt: skip
        rt.dead_letters.add(
            event_id=event_id, stage=stage, target=target_label(target), attempts=attempt + 1,
            error=str(exc), message=message,
        )  # fmt: skip
        return None
    if handler is not None:
        rt.outcomes.record(
            event_id, handler, target, "retrying", attempts=attempt + 1, error=str(exc)
        )
    retry_after = exc.retry_after if isinstance(exc, TransientError) else None
    delay = backoff(attempt, cap=rt.settings.retry_backoff_max, retry_after=retry_after)
    log.warning(
        "%s of %s failed (attempt %d of %d), retrying in %.1fs: %s",
        stage, event_id, attempt + 1, limit + 1, delay, exc,
    )  # fmt: skip
    if rt.delayed is None:  # another broker: Celery's own countdown
        raise task.retry(countdown=delay, exc=exc)
    # The same task, one attempt further, waits in Redis until due; this delivery is done.
    queue = (task.request.delivery_info or {}).get("routing_key") or QUEUE_OF[task.name]
    again = build_message(
        task.app, task.name, list(task.request.args or ()), task_id=task.request.id,
        queue=queue, retries=attempt + 1,
    )  # fmt: skip
    rt.delayed.add(queue, again, delay)
    return None


@shared_task(name=PROCESS_EVENT_TASK, bind=True, max_retries=None)
def process_event(self: Task, message: dict[str, Any]) -> None:
    rt = runtime(self.app)
    event_id = str(message.get("id", "?")) if isinstance(message, dict) else "?"
    try:
        queued: EventMessage = _event_messages.load(message)
    except ValidationError as exc:
        rt.dead_letters.add(
            event_id=event_id, stage="validate", target=None, attempts=1,
            error=f"invalid event message: {exc.messages}", message={"raw": message},
        )  # fmt: skip
        return
    event = queued.event
    recording = None
    if event.is_recording:
        recording_sid = event.recording_sid
        assert recording_sid is not None  # the recording schemas require it
        try:
            recording = rt.twilio.fetch_recording(event.room_sid, recording_sid)
        except PermanentError as exc:
            rt.dead_letters.add(
                event_id=queued.id, stage=FETCH_STAGE, target=None,
                attempts=self.request.retries + 1, error=str(exc), message=message,
            )  # fmt: skip
            return
        except TransientError as exc:
            limit = NOT_FOUND_RETRIES if isinstance(exc, NotFoundYet) else rt.settings.max_retries
            _retry_or_give_up(
                self, rt, exc, limit=limit, stage=FETCH_STAGE, event_id=queued.id, target=None,
                message=message,
            )  # fmt: skip
            return
    handled = HandlerEvent(
        id=queued.id, event=event, recording=recording, received_at=queued.received_at
    )
    fan_out(self, rt, handled)


def fan_out(task: Task, rt: Runtime, event: HandlerEvent) -> None:
    """Queue one ``run_handler`` task per (handler, target), with deterministic task ids."""
    body = event.to_json()
    with task.app.producer_or_acquire() as producer:
        for name, handler in rt.handlers.items():
            for index, target in enumerate(handler.targets()):
                task.app.send_task(
                    RUN_HANDLER_TASK,
                    args=[name, target, body],
                    task_id=f"{event.id}.{name}.{index}",
                    producer=producer,
                )
    log.info(
        "processed %s %s room=%s recording=%s -> %d handler(s)",
        event.event.event, event.id, event.event.room_sid, event.event.recording_sid or "-",
        len(rt.handlers),
    )  # fmt: skip


@shared_task(name=RUN_HANDLER_TASK, bind=True, max_retries=None)
def run_handler(self: Task, name: str, target: str | None, message: dict[str, Any]) -> None:
    rt = runtime(self.app)
    event_id = str(message.get("id", "?")) if isinstance(message, dict) else "?"
    stage = f"handler:{name}"
    key = done_key(event_id, name, target)
    if rt.redis.exists(key):
        log.info("%s already took effect for %s; skipping the redelivered task", name, event_id)
        return
    handler = rt.handlers.get(name)
    try:
        if handler is None:
            raise PermanentError(f"handler {name!r} is not in HANDLERS of this worker")
        event: HandlerEvent = _handler_events.load(message)
        handler(event, target)
    except TargetGone as exc:
        log.warning("%s: not retried", exc)
        rt.redis.set(key, 1, ex=DONE_TTL)
        rt.outcomes.record(event_id, name, target, "gone", attempts=self.request.retries + 1)
        return
    except ValidationError as exc:
        rt.dead_letters.add(
            event_id=event_id, stage=stage, target=target_label(target), attempts=1,
            error=f"invalid handler event: {exc.messages}", message=message,
        )  # fmt: skip
        return
    except PermanentError as exc:
        attempts = self.request.retries + 1
        rt.outcomes.record(event_id, name, target, "dead-lettered", attempts=attempts,
                           error=str(exc))  # fmt: skip
        rt.dead_letters.add(
            event_id=event_id, stage=stage, target=target_label(target), attempts=attempts,
            error=str(exc), message=message,
        )  # fmt: skip
        return
    except Exception as exc:  # a handler's own failure: retried, then dead-lettered
        _retry_or_give_up(
            self, rt, exc, limit=rt.settings.max_retries, stage=stage, event_id=event_id,
            target=target, message=message,
        )  # fmt: skip
        return
    rt.redis.set(key, 1, ex=DONE_TTL)
    rt.outcomes.record(event_id, name, target, "succeeded", attempts=self.request.retries + 1)
