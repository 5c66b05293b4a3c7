"""What the operator's commands do (``flask --app webhooks …``): list, purge and replay dead
letters, fetch and replay recordings, reconcile, and see or migrate the store's database.

Each is a function over the worker's settings and the clients the caller opened (a Redis
client, a publishing Celery app from :func:`publisher`), returning plain results: the command
line parses options, opens and closes the clients, and prints. Long runs call ``progress(1)``
per item. Failures are :mod:`workers.errors`' (:class:`TransientError`,
:class:`PermanentError`, :class:`BrokerUnavailable`) or redis-py's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
from celery import Celery

from schemas import RoomRecording
from schemas.settings import RedisSentinel, WorkerSettings
from workers.delivery.celery_app import make_celery
from workers.delivery.choice import connect, open_broker
from workers.errors import NotFoundYet, PermanentError, TransientError
from workers.state.deadletters import DeadLetterStore

if TYPE_CHECKING:
    from workers.recovery.reconcile import Summary

Progress = Callable[[int], None]


def _quiet(_count: int) -> None:
    """No progress shown."""


def publisher(broker_url: str, *, timeout: float, sentinel: RedisSentinel | None = None) -> Celery:
    """A Celery app that only publishes (what a replay queues), failing within about
    ``timeout`` seconds; ``sentinel`` for a ``sentinel://`` broker."""
    return make_celery(broker_url, publish_timeout=timeout, sentinel=sentinel)


# --- dead letters ----------------------------------------------------------------------------


class NoSuchDeadLetter(PermanentError):
    """The ID given names no dead letter, or more than one."""


def dead_letters(client: redis.Redis) -> list[dict[str, Any]]:
    """Every dead letter, oldest failure first."""
    return DeadLetterStore(client).list()


def dead_letter(client: redis.Redis, text: str) -> dict[str, Any]:
    """The one dead letter ``text`` names: its id, or a prefix of a single id."""
    store = DeadLetterStore(client)
    found = store.find(text)
    if not found:
        raise NoSuchDeadLetter(f"no dead letter {text!r}")
    if len(found) > 1:
        raise NoSuchDeadLetter(f"{text!r} names {len(found)} dead letters: " + ", ".join(found))
    entry = store.get(found[0])
    if entry is None:  # removed in between
        raise NoSuchDeadLetter(f"no dead letter {text!r}")
    return entry


def purge_dead_letters(client: redis.Redis, entry_id: str | None = None) -> int:
    """Delete the dead letter whose id is ``entry_id``, or every one; how many went."""
    store = DeadLetterStore(client)
    return store.purge() if entry_id is None else int(store.remove(entry_id))


@dataclass
class Replayed:
    """What a replay queued (``replayed``, one JSON-ready summary each) and what it could not
    (``failed``: the dead letter's ``id`` or the ``recording_sid``, and the ``error``)."""

    replayed: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)


def replay_dead_letters(
    settings: WorkerSettings, client: redis.Redis, celery: Celery,
    entries: Sequence[Mapping[str, Any]], progress: Progress = _quiet,
) -> Replayed:  # fmt: skip
    """Queue each of ``entries`` again: only the stage that failed runs again (one handler and
    target, or the fetch). An entry is removed once its task is queued. One that cannot be
    replayed (its handler or target is no longer configured) is reported and the others still
    run; the queue's errors propagate."""
    from workers.recovery.replay import DeadLetterReplayer, configured_targets
    from workers.recovery.stand_in import NotReplayable

    named = {entry["stage"].removeprefix("handler:") for entry in entries}
    targets = configured_targets(settings, client, only=named)
    broker = open_broker(
        celery, client, broker_url=settings.broker_url, redis_url=settings.redis_url,
        dedup_ttl=settings.dedup_ttl,
    )  # fmt: skip
    replayer = DeadLetterReplayer(DeadLetterStore(client), broker, targets)
    done = Replayed()
    for entry in entries:
        try:
            done.replayed.append(replayer.replay(entry).to_json())
        except NotReplayable as exc:
            done.failed.append({"id": entry["id"], "error": str(exc)})
        progress(1)
    return done


# --- recordings ------------------------------------------------------------------------------


def fetch_recording(
    settings: WorkerSettings, sid: str, account_sid: str | None = None
) -> tuple[RoomRecording, str]:
    """The recording and the account it was found in: ``account_sid``'s, else the first
    configured account that has it (Twilio answers 404 for another account's recording)."""
    from workers.twilio.client import TwilioClients, load_recording

    clients = TwilioClients(settings)
    candidates = [clients.for_account(account_sid)] if account_sid else clients.every_account()
    what = f"fetch of recording {sid}"
    missing: NotFoundYet | None = None
    for twilio in candidates:
        try:
            response = twilio.request("GET", f"/v1/Recordings/{sid}", what)
        except NotFoundYet as exc:  # not this account's: try the next
            missing = missing or exc
            continue
        return load_recording(response.text, what), twilio.account_sid
    assert missing is not None
    raise missing


def replay_recordings(
    settings: WorkerSettings, client: redis.Redis, celery: Celery, sids: Sequence[str], *,
    dedup_ttl: int, force: bool = False, account_sid: str | None = None,
    progress: Progress = _quiet,
) -> Replayed:  # fmt: skip
    """Process recordings again as if their final callback had just arrived: fetch each one
    (see :func:`fetch_recording`) and queue its recording-completed (or -failed) event.
    Handlers that already took effect for the event are skipped by the workers, unless
    ``force`` clears their done marks first. A recording that cannot be fetched or stand for
    a callback is reported and the others still run; the queue's errors propagate."""
    from workers.recovery.replay import configured_targets, replay_recording
    from workers.recovery.stand_in import stand_in_message

    targets = configured_targets(settings, client)
    broker = open_broker(celery, client, broker_url=settings.broker_url,
                         redis_url=settings.redis_url, dedup_ttl=dedup_ttl)  # fmt: skip
    done = Replayed()
    for sid in sids:
        try:
            recording, found_in = fetch_recording(settings, sid, account_sid)
            message = stand_in_message(recording, source="replay", account_sid=found_in)
        except (PermanentError, TransientError) as exc:  # this one; go on
            done.failed.append({"recording_sid": sid, "error": str(exc)})
        else:
            cleared = replay_recording(message, broker, client, targets, force=force)
            done.replayed.append({"recording_sid": sid, "event": message.event.event,
                                  "id": message.id, "cleared": cleared})  # fmt: skip
        progress(1)
    return done


def reconcile(
    settings: WorkerSettings, since: datetime, until: datetime | None = None, *,
    dedup_ttl: int, timeout: float, progress: Progress = _quiet,
) -> Summary:  # fmt: skip
    """Queue the final event of every completed or failed recording created in [``since``,
    ``until``) whose callback never arrived, for every configured account, each listed with
    its own credentials. Recordings already processed are duplicates, not queued again. An
    account whose listing fails is named in the summary's ``failed``; the queue's errors
    propagate. Every broker and Redis call gives up after about ``timeout`` seconds."""
    from workers.recovery.reconcile import reconcile_accounts
    from workers.twilio.client import TwilioClients

    broker = connect(
        settings.broker_url, settings.redis_url, timeout=timeout, dedup_ttl=dedup_ttl,
        sentinel=settings.redis_sentinel,
    )  # fmt: skip
    try:
        return reconcile_accounts(TwilioClients(settings), broker, since, until, progress)
    finally:
        broker.celery.close()
        broker.close()


# --- the store's database --------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseRevision:
    """Where the database's schema is (``current``; None: no tables) and where this code needs
    it (``head``). ``database`` is its URL without the password."""

    database: str
    current: str | None
    head: str | None

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


@dataclass(frozen=True)
class DatabaseUpgrade:
    """The revisions before and after an upgrade (``before`` None: an empty database)."""

    database: str
    before: str | None
    after: str | None


def database_revision(database_url: str) -> DatabaseRevision:
    """The revision of the database at ``database_url``; :class:`StoreUnavailable`
    (:mod:`workers.metadata.errors`, a :class:`TransientError`) when it does not answer."""
    from workers.metadata.engine import make_engine, shown
    from workers.metadata.migrate import current_revision, head_revision

    engine = make_engine(database_url)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    return DatabaseRevision(shown(engine.url), current, head_revision())


def upgrade_database(database_url: str, revision: str = "head") -> DatabaseUpgrade:
    """Apply the migrations (Alembic) up to ``revision``, in one transaction. A database that
    does not answer or refuses a migration raises a :class:`TransientError` or a
    :class:`PermanentError`."""
    from workers.metadata.engine import make_engine, shown
    from workers.metadata.migrate import current_revision, upgrade

    engine = make_engine(database_url)
    try:
        before = current_revision(engine)
        upgrade(engine, revision)
        after = current_revision(engine)
    finally:
        engine.dispose()
    return DatabaseUpgrade(shown(engine.url), before, after)
