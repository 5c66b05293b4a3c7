"""``store``: every event into the database (``DATABASE_URL``), for the read API and for
anyone who queries it: one row per room, per recording and per event.

Redelivered and out-of-order events are harmless: an event is stored once, and a row only
changes for an event newer than the one it last took (see :mod:`workers.metadata.merge`). Until
a PostgreSQL database is migrated (``flask --app webhooks db upgrade``) every event is
retried, naming that command; a SQLite database is migrated on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from schemas import HandlerEvent
from workers.handlers import HandlerContext, builtin
from workers.metadata import Store

log = logging.getLogger(__name__)


class StoreHandler:
    name = "store"
    repeatable = True  # an event already stored is not stored again

    def __init__(self, store: Store) -> None:
        self.store = store

    def targets(self) -> Sequence[str | None]:
        return (None,)

    def __call__(self, event: HandlerEvent, target: str | None) -> None:
        stored = self.store.apply(event)
        log.info(
            "%s %s %s room=%s recording=%s",
            "stored" if stored else "already stored:", event.event.event, event.id,
            event.event.room_sid, event.event.recording_sid or "-",
        )  # fmt: skip


@builtin("store")
def make_store_handler(context: HandlerContext) -> StoreHandler:
    return StoreHandler(Store.open(context.settings.database_url))
