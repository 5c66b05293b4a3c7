"""The ``archive`` handler's part for compositions: on ``composition-available``, the
composition's media (``COMPOSE_ON_ROOM_READY``, :mod:`workers.pipeline.compositions`) is copied to
``ARCHIVE_URL`` as ``{room_sid}/{composition_sid}.{mp4|webm}`` next to a ``.json`` sidecar
holding the Composition, exactly as a recording's is: streamed from the signed URL behind
``/v1/Compositions/{CJ}/Media``, committed only at the composition's ``size``, resumed across
attempts, never downloaded again once stored at its size, and through the same guarded
session (every redirect and connection checked by :mod:`workers.outbound.policy`).

Compositions are not put in the recordings' archive index (``roomrec:archives``): their keys
are fixed by their SIDs, and the recordings' totals stay the recordings'.
"""

from __future__ import annotations

import json
import logging

from schemas import HandlerEvent
from schemas.composition import Composition
from workers.archive import Storage
from workers.archive.lock import RecordingLock
from workers.archive.media import MediaCopier
from workers.errors import NotFoundYet, PermanentError
from workers.observability.redaction import redact
from workers.twilio.client import TwilioClients, TwilioVideo

log = logging.getLogger(__name__)

EVENT = "composition-available"


def media_key(composition: Composition, room_sid: str) -> str:
    return f"{room_sid}/{composition.sid}.{composition.format or 'mp4'}"


def sidecar_key(composition: Composition, room_sid: str) -> str:
    return f"{room_sid}/{composition.sid}.json"


class CompositionArchiver:
    """The archive handler's ``composition-available``: its storage, media copier, Twilio
    clients and lock, shared with the recordings'."""

    def __init__(
        self, storage: Storage, copier: MediaCopier, twilio: TwilioClients, lock: RecordingLock
    ) -> None:
        self.storage = storage
        self.copier = copier
        self.twilio = twilio
        self.lock = lock

    def __call__(self, event: HandlerEvent) -> None:
        room_sid = event.event.room_sid
        twilio = self.twilio.for_account(event.event.account_sid)  # the event's account's
        composition = self._completed(event, twilio)
        if composition.media_external_location:
            log.info("composition %s room=%s is in the account's own storage at %s; not "
                     "downloaded", composition.sid, room_sid,
                     redact(composition.media_external_location))  # fmt: skip
            return
        if composition.size is None:
            raise PermanentError(f"composition {composition.sid} has no size to verify against")
        key = media_key(composition, room_sid)
        with self.lock.hold(composition.sid):
            if self.storage.size_of(key) == composition.size:
                log.info("composition %s room=%s is already archived at %s", composition.sid,
                         room_sid, self.storage.location(key))  # fmt: skip
            else:
                self.copier.copy(
                    key, composition.size, lambda: twilio.composition_media_url(composition.sid),
                    what=f"composition {composition.sid} room={room_sid}",
                )  # fmt: skip
            body = json.dumps(composition.raw, indent=2, sort_keys=True).encode()
            self.storage.put_bytes(sidecar_key(composition, room_sid), body,
                                   content_type="application/json")  # fmt: skip

    def _completed(self, event: HandlerEvent, twilio: TwilioVideo) -> Composition:
        composition = event.composition
        if composition is None:
            raise PermanentError(f"{event.id}: a {EVENT} event without its Composition")
        if composition.status in ("enqueued", "processing"):
            composition = twilio.fetch_composition(composition.sid)
        if composition.status in ("enqueued", "processing"):
            raise NotFoundYet(f"composition {composition.sid} is still {composition.status}")
        if composition.status != "completed":
            raise PermanentError(
                f"composition {composition.sid} is {composition.status} at Twilio: there is no "
                "media to archive"
            )
        return composition
