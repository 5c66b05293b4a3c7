"""The Celery tasks, thin like web views: load the message, call the Twilio client or the
fan-out, and turn each outcome into done, retry later (:mod:`workers.pipeline.retry`), or dead
letter. Task names are stable (:mod:`workers.delivery.celery_app`): queued messages outlive
refactors.

- ``roomrec.process_event``: one accepted callback. For ``recording-*`` events it fetches the
  RoomRecording (``composition-available``: the Composition), then hands the event to the
  handlers (:mod:`workers.pipeline.fanout`) and to room completion
  (:mod:`workers.pipeline.rooms`). On its success path a ``recording-completed`` costs two
  Redis round trips in the task with ``HANDLERS=log,forward`` (three with ``store``): the
  read of its done marks, then its last marks with the room's update and the release of its
  ledger entry; a handler that must not take effect twice and is followed by another adds a
  write of the marks in between. ``python -m bench roundtrips`` counts them.
- ``roomrec.run_handler``: one handler at one target, when it could not run inline.
- ``roomrec.room_recordings``: an ended room's recordings listed at Twilio, retried apart.
- ``roomrec.compose_room``: a ready room's composition created, retried apart.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task, states
from celery.signals import task_postrun
from marshmallow import ValidationError

from schemas import EventMessage, EventMessageSchema, HandlerEvent, HandlerEventSchema
from workers.delivery.celery_app import (
    COMPOSE_TASK,
    EVENTS_QUEUE,
    FETCH_STAGE,
    PROCESS_EVENT_TASK,
    ROOM_RECORDINGS_TASK,
    RUN_HANDLER_TASK,
)
from workers.errors import PermanentError, TransientError
from workers.observability.redaction import target_label
from workers.pipeline import compositions, rooms
from workers.pipeline.fanout import DoneMarks, attempt_handler, run_handlers
from workers.pipeline.retry import Attempt, give_up, retry_or_give_up
from workers.runtime.context import runtime
from workers.twilio.client import UnknownAccount

LEDGERED_PREFIX = "roomrec."  # tasks whose messages are published through the ledger

_event_messages = EventMessageSchema()
_handler_events = HandlerEventSchema()


@task_postrun.connect
def _attempt_ended(
    sender: Task | None = None, task_id: str | None = None, state: str | None = None,
    **_: Any,
) -> None:  # fmt: skip
    """A task of this service returned: unless it scheduled its own next attempt (under the
    same id, which replaced the entry), its attempt ended, and its message leaves the broker's
    in-flight ledger (:mod:`workers.delivery.ledger`, on Redis). One that raised keeps its
    entry, to be published again. One that released its entry itself (``process_event``, with
    its last write) leaves nothing to do."""
    if sender is None or task_id is None or not sender.name.startswith(LEDGERED_PREFIX):
        return
    if state != states.SUCCESS or getattr(sender.request, "roomrec_rescheduled", False):
        return
    if getattr(sender.request, "roomrec_released", False):  # with the task's last write
        return
    runtime(sender.app).broker.attempt_ended(task_id)


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
        except (TransientError, PermanentError) as exc:  # anything else is a bug: it propagates
            fetched = event.recording_sid or event.params.get("composition_sid")
            retry_or_give_up(rt, Attempt(
                PROCESS_EVENT_TASK, [message], task_id=queued.id, queue=EVENTS_QUEUE,
                number=attempt, stage=FETCH_STAGE, event_id=queued.id, message=message,
                what=f"fetch of {fetched} for {queued.id}", lagging_404=True,
            ), exc)  # fmt: skip
            return
    handled = HandlerEvent(
        id=queued.id, event=event, recording=recording, received_at=queued.received_at,
        composition=composition,
    )  # fmt: skip
    marks = DoneMarks(rt)
    run_handlers(rt, handled, marks)  # leaves the last marks to the event's last write:
    # room completion (workers/pipeline/rooms.py), which also releases the ledger entry when
    # nothing follows it
    hold = rt.broker.hold(self.request.id) if self.request.id else None  # None: called directly
    if rooms.after_event(rt, handled, marks, hold):
        self.request.roomrec_released = True


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
    attempt_handler(rt, name, target, index, event, message, attempt=self.request.retries)


@shared_task(name=ROOM_RECORDINGS_TASK, bind=True, max_retries=None)
def room_recordings(self: Task, room_sid: str, caller: str, account_sid: str | None = None) -> None:
    rooms.list_recordings(runtime(self.app), room_sid, caller, attempt=self.request.retries,
                          account_sid=account_sid)  # fmt: skip


@shared_task(name=COMPOSE_TASK, bind=True, max_retries=None)
def compose_room(self: Task, room_sid: str, account_sid: str | None = None) -> None:
    compositions.compose(runtime(self.app), room_sid, attempt=self.request.retries,
                         account_sid=account_sid)  # fmt: skip
