"""Room completion: one ``room.recordings_ready`` event per room, once it has ended and every
one of its recordings has reached a final status (``ROOM_READY_EVENTS=1``); and, with
``COMPOSE_ON_ROOM_READY=1``, one Twilio Composition of the room
(:mod:`workers.pipeline.compositions`).

``roomrec.process_event`` calls :func:`after_event` once its handlers ran, with the done
marks they left to write and its ledger entry: the marks go in one transaction with the
tracker's update, and the entry is released by the update itself when its decision leaves
nothing to follow (``wait``, ``done``); without an update, marks and release go in one
transaction. Each
``recording-*`` event tells the :class:`workers.state.rooms.RoomTracker` what it knows of its
recording (the callback's status and the RoomRecording fetched); ``room-ended`` marks the room
ended and then lists the room's recordings at Twilio (``GET /v1/Rooms/{RM}/Recordings``, every
page), so recordings whose callbacks are late or never came are known too. The update that
finds the room ready emits: the ready event runs through the handlers like any other event
(:func:`workers.pipeline.fanout.run_handlers`), with a stable id per room. A redelivered task
emits again and the handlers' done marks keep that from taking effect twice.

A listing that fails is retried on its own (``roomrec.room_recordings``) with backoff, then
dead-lettered (stage ``room-recordings``); the room is then never ready.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError

from schemas import HandlerEvent, RoomRecording, RoomRecordingSchema
from schemas.fields import iso8601
from schemas.internal import ROOM_RECORDINGS_READY, load_internal
from schemas.settings import WorkerSettings
from workers.delivery.celery_app import EVENTS_QUEUE, ROOM_RECORDINGS_TASK
from workers.errors import PermanentError, TransientError
from workers.pipeline import compositions
from workers.pipeline.fanout import DoneMarks, run_handlers
from workers.pipeline.retry import Attempt, retry_or_give_up
from workers.runtime.context import Runtime
from workers.state.holds import Hold
from workers.state.rooms import (
    DONE,
    EMIT,
    LIST,
    WAIT,
    Observation,
    RoomState,
    RoomTracker,
    Update,
    final_status,
    room_state,
)

log = logging.getLogger(__name__)

LIST_STAGE = "room-recordings"
IMPLIED_STATUS = {
    "recording-started": "processing",
    "recording-completed": "completed",
    "recording-failed": "failed",
}
_recordings = RoomRecordingSchema()


def enabled(settings: WorkerSettings) -> bool:
    return settings.room_ready_events or settings.compose_on_room_ready


def ready_event_id(room_sid: str) -> str:
    """The id of a room's ``room.recordings_ready`` event: the same on every emission."""
    basis = json.dumps([room_sid, ROOM_RECORDINGS_READY])
    return "evt_" + hashlib.sha256(basis.encode()).hexdigest()[:32]


def update_of(event: HandlerEvent) -> Update | None:
    """What ``event`` tells the tracker; None for events that say nothing of completion."""
    callback = event.event
    params = callback.params
    common: dict[str, Any] = {
        "room_sid": callback.room_sid, "caller": event.id,
        "account_sid": callback.account_sid, "room_name": params.get("room_name"),
    }  # fmt: skip
    if callback.event == "room-ended":
        return Update(**common, ended=True)
    implied = IMPLIED_STATUS.get(callback.event)
    if implied is None or callback.recording_sid is None:
        return None
    recording = event.recording
    seen = Observation(
        recording_sid=callback.recording_sid,
        status=final_status(implied, recording.status if recording else None),
        resource=None if recording is None else recording.raw,
        resource_status=None if recording is None else recording.status,
    )
    return Update(**common, recordings=(seen,))


def listed(room_sid: str, caller: str, recordings: list[RoomRecording]) -> Update:
    return Update(
        room_sid=room_sid, caller=caller, listed=True,
        recordings=[Observation(r.sid, r.status, r.raw, r.status) for r in recordings],
    )  # fmt: skip


def after_event(
    rt: Runtime, event: HandlerEvent, marks: DoneMarks | None = None, hold: Hold | None = None
) -> bool:
    """The call site at the end of ``roomrec.process_event``: what ``event`` tells of its room,
    written with ``marks`` (the event's last done marks); True when ``hold`` (the task's
    ledger entry) was released with them, nothing being left to do."""
    update = update_of(event) if enabled(rt.settings) else None
    if update is None:
        if marks is not None:
            marks.write(hold)
        return marks is not None and hold is not None
    tracker = RoomTracker(rt.redis, ttl=rt.settings.marks_ttl)
    if marks is None:
        outcome = tracker.update(update, _now())
    else:
        outcome = tracker.update(update, _now(), before=marks.queue, release=hold)
        marks.clear()
    if outcome.decision == LIST:
        list_recordings(rt, update.room_sid, update.caller, attempt=0,
                        account_sid=update.account_sid)  # fmt: skip
    elif outcome.decision == EMIT:
        emit(rt, update.room_sid)
    return marks is not None and hold is not None and outcome.decision in (WAIT, DONE)


def list_recordings(
    rt: Runtime, room_sid: str, caller: str, *, attempt: int, account_sid: str | None = None
) -> None:
    """One attempt at listing the room's recordings and merging them; retried apart. The
    listing uses the credentials of the room's account (``account_sid``, else the one its
    callbacks named, kept by the tracker)."""
    if account_sid is None:  # a replayed dead letter, or a task queued before accounts
        account_sid = room_state(rt.redis, room_sid).account_sid
    try:
        recordings = rt.twilio.for_account(account_sid).list_room_recordings(room_sid)
    except (TransientError, PermanentError) as exc:  # anything else is a bug: it propagates
        retry_or_give_up(rt, Attempt(
            ROOM_RECORDINGS_TASK, [room_sid, caller, account_sid], task_id=f"{caller}.rooms",
            queue=EVENTS_QUEUE, number=attempt, stage=LIST_STAGE, event_id=caller,
            message={"room_sid": room_sid, "caller": caller, "account_sid": account_sid},
            what=f"listing the recordings of room {room_sid} (for {caller})", lagging_404=True,
        ), exc)  # fmt: skip
        return
    log.info("room %s ended: Twilio lists %d recording(s)", room_sid, len(recordings))
    outcome = RoomTracker(rt.redis, ttl=rt.settings.marks_ttl).update(
        listed(room_sid, caller, recordings), _now()
    )
    if outcome.decision == EMIT:
        emit(rt, room_sid)


def ready_event(state: RoomState, account_sid: str) -> HandlerEvent:
    """The ``room.recordings_ready`` event of a ready room, its recordings by creation."""
    assert state.ready_at is not None
    recordings = tuple(
        sorted((_recording(state, sid) for sid in state.statuses),
               key=lambda r: (r.raw.get("date_created") or "", r.sid))
    )  # fmt: skip
    params = {
        "AccountSid": state.account_sid or account_sid,
        "RoomSid": state.room_sid,
        "StatusCallbackEvent": ROOM_RECORDINGS_READY,
        "Timestamp": state.ready_at,
        "RecordingCount": str(len(recordings)),
    }
    if state.room_name:
        params["RoomName"] = state.room_name
    return HandlerEvent(
        id=ready_event_id(state.room_sid), event=load_internal(params), recording=None,
        received_at=datetime.fromisoformat(state.ready_at), recordings=recordings,
    )  # fmt: skip


def emit(rt: Runtime, room_sid: str) -> None:
    """Hand the ready room to the handlers and, when configured, have it composed."""
    state = room_state(rt.redis, room_sid)
    event = ready_event(state, rt.settings.twilio_account_sid)
    assert event.recordings is not None
    log.info("room %s is ready: %d recording(s) final (%s)", room_sid, len(event.recordings),
             event.id)  # fmt: skip
    if rt.settings.room_ready_events:
        run_handlers(rt, event)
    if rt.settings.compose_on_room_ready:
        if "completed" in state.statuses.values():
            account = state.account_sid or rt.settings.twilio_account_sid
            compositions.compose(rt, room_sid, attempt=0, account_sid=account)
        else:
            log.info("room %s has no completed recording: nothing to compose", room_sid)


def _recording(state: RoomState, sid: str) -> RoomRecording:
    status = state.statuses[sid]
    raw = state.resources.get(sid) or {"sid": sid, "status": status, "room_sid": state.room_sid}
    try:
        recording: RoomRecording = _recordings.load(raw)
    except ValidationError as exc:  # it was validated before it was stored
        raise PermanentError(f"stored recording {sid} room={state.room_sid}: {exc}") from exc
    return recording


def _now() -> str:
    return iso8601(datetime.now(UTC))
