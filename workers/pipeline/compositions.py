"""One Twilio Composition per ready room (``COMPOSE_ON_ROOM_READY=1``): all audio, the video in
a grid, as mp4, reporting its progress to ``PUBLIC_BASE_URL/twilio/room-events``.

``POST /v1/Compositions`` is not idempotent at Twilio, and the room's ready event may be
emitted again (a redelivered task). So the composition's SID is kept in Redis once created
(``roomrec:room:{RM…}:composition``) and nothing is created while it is there; creating holds
a lock, so two tasks never create at once; and a creation whose SID was never recorded (the
worker died right after the POST) is found again by listing the room's compositions at Twilio
(``GET /v1/Compositions?RoomSid=…``) and adopted when its status callback is this service's.

Its callbacks (``composition-*``) come back through the web like a room's. For
``composition-available`` the worker fetches the Composition and the ``archive`` handler
stores its media. A creation that keeps failing is retried (``roomrec.compose_room``), then
dead-lettered (stage ``compose``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from workers.delivery.celery_app import COMPOSE_TASK, EVENTS_QUEUE, task_time_limit
from workers.errors import TransientError
from workers.pipeline.retry import Attempt, retry_or_give_up
from workers.runtime.context import Runtime
from workers.state.keys import COMPOSING_LOCK_KEY, COMPOSITION_KEY
from workers.state.rooms import room_state
from workers.twilio.client import TwilioVideo

log = logging.getLogger(__name__)

COMPOSE_STAGE = "compose"
CALLBACK_PATH = "/twilio/room-events"
GRID_LAYOUT = {"grid": {"video_sources": ["*"]}}


def callback_url(public_base_url: str) -> str:
    return public_base_url.rstrip("/") + CALLBACK_PATH


def composition_form(room_sid: str, status_callback: str) -> dict[str, str]:
    """The ``POST /v1/Compositions`` parameters: every audio track, every video track in a
    grid, mp4, and the status callbacks to this service."""
    return {
        "RoomSid": room_sid,
        "AudioSources": "*",
        "VideoLayout": json.dumps(GRID_LAYOUT, separators=(",", ":")),
        "Format": "mp4",
        "StatusCallback": status_callback,
        "StatusCallbackMethod": "POST",
    }


class ComposerBusy(TransientError):
    """Another task is creating this room's composition right now."""


class Composer:
    """Creates a room's composition at most once. Its marker (the SID) lives ``marker_ttl``
    seconds (a worker's ``WorkerSettings.marks_ttl``): it outlives any room-ended delivered
    again."""

    def __init__(
        self, twilio: TwilioVideo, client: redis.Redis, status_callback: str, *, lock_ttl: int,
        marker_ttl: int,
    ) -> None:  # fmt: skip
        self.twilio = twilio
        self.redis = client
        self.status_callback = status_callback
        self.lock_ttl = lock_ttl
        self.marker_ttl = marker_ttl

    def created(self, room_sid: str) -> str | None:
        """The SID of the room's composition, once created."""
        value: Any = self.redis.get(COMPOSITION_KEY.format(room_sid))
        return value.decode() if isinstance(value, bytes) else value

    def ensure(self, room_sid: str) -> tuple[str, bool]:
        """The room's composition SID, and whether this call created it."""
        known = self.created(room_sid)
        if known:
            return known, False
        key = COMPOSING_LOCK_KEY.format(room_sid)
        lock = self.redis.lock(key, timeout=self.lock_ttl, blocking=False)
        if not lock.acquire():
            raise ComposerBusy(f"the composition of room {room_sid} is being created by another "
                               "task", retry_after=float(self.lock_ttl))  # fmt: skip
        try:
            known = self.created(room_sid)
            if known:
                return known, False
            adopted = self._adoptable(room_sid)
            sid = (
                adopted
                or self.twilio.create_composition(
                    composition_form(room_sid, self.status_callback)
                ).sid
            )
            self.redis.set(COMPOSITION_KEY.format(room_sid), sid, ex=self.marker_ttl)
            return sid, adopted is None
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:  # expired meanwhile: nothing to release
                log.warning("the composition lock of room %s expired before release", room_sid)

    def _adoptable(self, room_sid: str) -> str | None:
        """A composition of the room this service asked for before without recording it."""
        for composition in self.twilio.list_compositions(room_sid):
            if composition.status_callback == self.status_callback:
                log.info("composition %s of room %s was created before; adopted",
                         composition.sid, room_sid)  # fmt: skip
                return composition.sid
        return None


def composer(rt: Runtime, account_sid: str | None = None) -> Composer:
    """The composer of a room of ``account_sid`` (None: the main account), with that account's
    client; raises :class:`workers.twilio.client.UnknownAccount` for an account not served."""
    assert rt.settings.public_base_url is not None  # WorkerSettingsSchema requires it
    limit = task_time_limit(rt.settings.visibility_timeout)
    twilio = rt.twilio.for_account(account_sid)
    return Composer(twilio, rt.redis, callback_url(rt.settings.public_base_url),
                    lock_ttl=limit + 30, marker_ttl=rt.settings.marks_ttl)  # fmt: skip


def compose(rt: Runtime, room_sid: str, *, attempt: int, account_sid: str | None = None) -> None:
    """One attempt at creating the room's composition with the credentials of its account
    (``account_sid``, else the one the room's callbacks named); retried apart, then
    dead-lettered."""
    if account_sid is None:  # a replayed dead letter, or a task queued before accounts
        account_sid = room_state(rt.redis, room_sid).account_sid
    try:
        sid, created = composer(rt, account_sid).ensure(room_sid)
    except Exception as exc:  # Twilio's transient answers, Redis: retried
        retry_or_give_up(rt, Attempt(
            COMPOSE_TASK, [room_sid, account_sid], task_id=f"compose.{room_sid}",
            queue=EVENTS_QUEUE, number=attempt, stage=COMPOSE_STAGE,
            event_id=f"compose.{room_sid}", message={"room_sid": room_sid},
            what=f"creating the composition of room {room_sid}",
        ), exc)  # fmt: skip
        return
    log.info("composition %s of room %s %s", sid, room_sid,
             "created" if created else "already exists")  # fmt: skip
