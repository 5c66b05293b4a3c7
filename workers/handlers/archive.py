"""``archive``: copy each completed recording's media to ``ARCHIVE_URL`` before Twilio's links
expire, as ``{room_sid}/{recording_sid}.{mka|mkv}`` next to a ``.json`` sidecar holding the
RoomRecording, and note where it went in :class:`workers.archive.ArchiveIndex`.

Acts on ``recording-completed`` (and on ``composition-available``, for a composition's media:
:mod:`workers.handlers.composition_archive`). The media is streamed from the signed URL behind
``…/Media`` into storage that commits it only once the byte count equals the recording's
``size``. A recording already stored at its size is not downloaded again. An attempt stops
streaming before the worker's task time limit and the next attempt resumes after the bytes
already staged, so a recording of any size gets there across several attempts. With
``ARCHIVE_DELETE_FROM_TWILIO`` the recording is deleted at Twilio after, and only after, the
archive is verified. Recordings Twilio already wrote to the account's own S3 bucket
(``media_external_location``) are indexed as such, not downloaded.

Media is read through a session of its own (:class:`workers.outbound.http.GuardedSession`):
the signed URL and every redirect after it must be ``https`` (``http`` too with an ``http``
``TWILIO_VIDEO_BASE_URL``) and reach a public address or one of ``MEDIA_ALLOWED_NETWORKS``
(:mod:`workers.outbound.policy`); a refused one is dead-lettered, nothing is written.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from schemas import HandlerEvent, RoomRecording
from schemas.fields import iso8601
from workers.archive import ArchiveIndex, ArchiveRecord, Storage, Stored, open_storage
from workers.archive.lock import RecordingLock
from workers.archive.media import MediaCopier, redact_urllib3_logs
from workers.delivery.celery_app import task_time_limit
from workers.errors import NotFoundYet, PermanentError
from workers.handlers import HandlerContext, builtin
from workers.handlers.composition_archive import EVENT as COMPOSITION_EVENT
from workers.handlers.composition_archive import CompositionArchiver
from workers.observability.redaction import redact
from workers.outbound.http import GuardedSession
from workers.outbound.policy import OutboundPolicy
from workers.twilio.client import TwilioClients, TwilioVideo

log = logging.getLogger(__name__)

# Seconds kept free at the end of an attempt: commit, sidecar, index and the DELETE.
COMMIT_MARGIN = 15.0
MIN_BUDGET = 5.0


def media_key(recording: RoomRecording, room_sid: str) -> str:
    return f"{room_sid}/{recording.sid}.{recording.container_format or 'bin'}"


def sidecar_key(recording: RoomRecording, room_sid: str) -> str:
    return f"{room_sid}/{recording.sid}.json"


class ArchiveHandler:
    name = "archive"
    inline = False  # may take long: always a task of its own, never holding other handlers

    def __init__(
        self, context: HandlerContext, *, storage: Storage | None = None,
        twilio: TwilioClients | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        settings = context.settings
        self.storage = storage or open_storage(settings.archive_url, settings)
        # Each event's media URL and delete go with the credentials of the event's account.
        self.twilio = twilio if twilio is not None else TwilioClients(settings, http=context.http)
        self.index = ArchiveIndex(context.redis)
        self.delete_from_twilio = settings.archive_delete_from_twilio
        # Every attempt must end before the task time limit, which derives from the
        # visibility timeout: stream for a budget, keep a margin to commit.
        limit = task_time_limit(settings.visibility_timeout)
        read_timeout = min(settings.archive_timeout, limit / 4)
        self.copier = MediaCopier(
            self.storage,
            # Not context.http: media URLs come from Twilio's answers, so their destinations
            # are checked (the forward handler's targets are the operator's own configuration).
            GuardedSession(OutboundPolicy.for_media(settings)),
            clock=clock, budget=max(MIN_BUDGET, limit - read_timeout - COMMIT_MARGIN),
            read_timeout=read_timeout,
        )  # fmt: skip
        self.lock = RecordingLock(context.redis, ttl=limit + 30)
        redact_urllib3_logs()
        self.compositions = CompositionArchiver(self.storage, self.copier, self.twilio, self.lock)

    def targets(self) -> Sequence[str | None]:
        return (None,)

    def __call__(self, event: HandlerEvent, target: str | None) -> None:
        if event.event.event == COMPOSITION_EVENT:  # see composition_archive.py
            self.compositions(event)
            return
        if event.event.event != "recording-completed":
            return
        room_sid = event.event.room_sid
        twilio = self.twilio.for_account(event.event.account_sid)
        recording = self._completed(event, room_sid, twilio)
        if recording is None:
            return
        if recording.media_external_location:
            self._index_external(recording, room_sid)
            return
        with self.lock.hold(recording.sid):
            record = self._archive(recording, room_sid, twilio)
        if self.delete_from_twilio and not record.deleted_from_twilio:
            gone = twilio.delete_recording(room_sid, recording.sid)
            self.index.mark_deleted(recording.sid)
            log.info(
                "deleted recording %s room=%s at Twilio after archiving it%s", recording.sid,
                room_sid, "" if gone else " (it was already gone)",
            )  # fmt: skip

    def _completed(
        self, event: HandlerEvent, room_sid: str, twilio: TwilioVideo
    ) -> RoomRecording | None:
        """The recording, fetched again while Twilio still processes it; None when it is
        no longer at Twilio but already archived."""
        recording = event.recording
        if recording is None:
            raise PermanentError(f"{event.id}: a recording event without its RoomRecording")
        if recording.status == "processing":
            recording = twilio.fetch_recording(room_sid, recording.sid)
        if recording.status == "processing":
            raise NotFoundYet(f"recording {recording.sid} room={room_sid} is still processing")
        if recording.status == "completed":
            return recording
        if self.index.get(recording.sid) is not None:
            log.info("recording %s room=%s is %s and already archived", recording.sid, room_sid,
                     recording.status)  # fmt: skip
            return None
        raise PermanentError(
            f"recording {recording.sid} room={room_sid} is {recording.status} at Twilio: "
            "there is no media to archive"
        )

    def _archive(
        self, recording: RoomRecording, room_sid: str, twilio: TwilioVideo
    ) -> ArchiveRecord:
        if recording.size is None:
            raise PermanentError(f"recording {recording.sid} has no size to verify against")
        key = media_key(recording, room_sid)
        previous = self.index.get(recording.sid)
        if self.storage.size_of(key) == recording.size:
            stored = Stored(self.storage.location(key), recording.size,
                            previous.sha256 if previous else None)  # fmt: skip
            log.info("recording %s room=%s is already archived at %s (%d bytes)",
                     recording.sid, room_sid, stored.location, stored.size)  # fmt: skip
        else:
            stored = self.copier.copy(
                key, recording.size, lambda: twilio.media_url(room_sid, recording.sid),
                what=f"recording {recording.sid} room={room_sid}",
            )  # fmt: skip
        sidecar = self._write_sidecar(recording, room_sid)
        record = ArchiveRecord(
            recording_sid=recording.sid, room_sid=room_sid, location=stored.location,
            size=stored.size, sha256=stored.sha256, sidecar=sidecar.location, external=False,
            archived_at=previous.archived_at if previous else iso8601(datetime.now(UTC)),
            deleted_from_twilio=previous.deleted_from_twilio if previous else False,
        )  # fmt: skip
        self.index.put(record)
        return record

    def _write_sidecar(self, recording: RoomRecording, room_sid: str) -> Stored:
        body = json.dumps(recording.raw, indent=2, sort_keys=True).encode()
        return self.storage.put_bytes(sidecar_key(recording, room_sid), body,
                                      content_type="application/json")  # fmt: skip

    def _index_external(self, recording: RoomRecording, room_sid: str) -> None:
        location = recording.media_external_location
        assert location is not None
        sidecar = self._write_sidecar(recording, room_sid)
        previous = self.index.get(recording.sid)
        self.index.put(ArchiveRecord(
            recording_sid=recording.sid, room_sid=room_sid, location=location,
            size=recording.size, sha256=None, sidecar=sidecar.location, external=True,
            archived_at=previous.archived_at if previous else iso8601(datetime.now(UTC)),
        ))  # fmt: skip
        log.info("recording %s room=%s is in the account's own storage at %s; not downloaded",
                 recording.sid, room_sid, redact(location))  # fmt: skip


@builtin("archive")
def make_archive_handler(context: HandlerContext) -> ArchiveHandler:
    return ArchiveHandler(context)
