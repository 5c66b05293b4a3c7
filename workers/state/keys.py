"""Every Redis key roomrec writes, in one place: its name, its type, who writes it, and how long
it lives.

Keys that say "this happened" (de-duplication, done marks, outcomes, room state, composition
and stream markers) expire; how long is a setting, never a constant here:

- ``seen`` marks live ``DEDUP_TTL`` (:attr:`schemas.settings.WebSettings.dedup_ttl`): a callback
  Twilio resends within it is queued once.
- every mark the workers write lives ``WorkerSettings.marks_ttl``: ``DEDUP_TTL`` plus the
  longest retry horizon plus the visibility timeout, so a mark outlives every delivery of the
  event it guards (:attr:`schemas.settings.WorkerSettings.marks_ttl`).

Keys that hold work (queues, delayed retries, the in-flight ledger, the outbox, dead
letters) never expire: they are bounded by the work itself and emptied as it completes (or, for
dead letters, by an operator's replay or purge). The archive index and its totals are a record,
kept until deleted. Lock keys expire with their holder's lease.

Cluster slots. Redis Sentinel (:mod:`workers.state.redis_client`) needs nothing of the keys: one
master holds them all. A Redis Cluster runs a Lua script or a MULTI only when all its keys hash
to one slot, which only the per-room keys ensure today: they share one hash tag (``{RM…}``).
What touches several keys at once:

- already in one slot: the room tracker's read (``ROOM_STATE_KEY``, ``ROOM_RECORDINGS_KEY``,
  ``ROOM_RESOURCES_KEY``), its script when called alone, and every single-key lock and write.
- not in one slot: the enqueue script of :mod:`workers.delivery.redis_broker` (the events queue,
  ``INFLIGHT_KEY``, ``INFLIGHT_DUE_KEY`` and the event's ``SEEN_KEY`` marks), its publish
  (``DELAYED_KEY`` of the queue, the queue, the two ledger keys) and its move of due retries
  (every ``DELAYED_KEY`` and queue); the ledger's sweep (the three ``INFLIGHT*`` keys,
  kombu's ``unacked``, each queue and its ``DELAYED_KEY``) and its MULTI (the three
  ``INFLIGHT*`` keys); the outbox's scripts (``OUTBOX_KEY`` with the ``SEEN_KEY`` marks); the
  stream handler's script (the stream and its ``STREAM_MARKER_KEY``); the done marks written in
  one MULTI with the event's ``OUTCOMES_KEY``, and with them, at the end of an event's task,
  the room tracker's script releasing the task's ledger entry (the three room keys and the
  three ``INFLIGHT*`` keys, :mod:`workers.state.holds`); the limiter's scripts (``…:leases``,
  ``…:state``, ``…:wake`` of one account); the dead letters' MULTIs (``DEAD_LETTERS_KEY``,
  ``DEAD_LETTERS_ORDER_KEY``).

A move to Redis Cluster would give each such group one hash tag in new key names (a shared
``{roomrec}`` for the delivery keys, whose scripts span every queue; ``{evt_…}`` for an
event's done marks and outcomes; ``{AC…}`` for a limiter), and a migration that copies the live
keys, since queued messages and marks outlive deploys: the names here are not changed before
then. The queues themselves are kombu's, named by Celery's queue names, and kombu has no Redis
Cluster transport: on a Cluster ``REDIS_URL``, the broker would have to be another one
(RabbitMQ, or a single Redis or Sentinel group), with the outbox in place of the enqueue script.

Celery's own keys on the Redis broker (the queues named by
:data:`workers.delivery.celery_app.EVENTS_QUEUE` and ``HANDLERS_QUEUE``, kombu's ``unacked``
hash) are kombu's; :data:`UNACKED_KEY` names the one the ledger reads.
"""

from __future__ import annotations

from workers.observability.redaction import fingerprint

PREFIX = "roomrec:"

# -- intake (written by the web's enqueue, atomically with the message) ----------------------
SEEN_KEY = PREFIX + "seen:{}"  # string, DEDUP_TTL: an event id, or "token:<sha256>" of an
#                               idempotency token, that was queued

# -- delivery (workers.delivery) --------------------------------------------------------------
DELAYED_KEY = PREFIX + "delayed:{}"  # sorted set per queue: message JSON by due time
INFLIGHT_KEY = PREFIX + "inflight"  # hash: task id -> its latest message
INFLIGHT_DUE_KEY = PREFIX + "inflight:due"  # sorted set: task id by when it is due to run
REPUBLISHED_KEY = PREFIX + "inflight:republished"  # hash: task id -> times published again
UNACKED_KEY = "unacked"  # kombu's Redis transport (no global_keyprefix): delivery tag -> message
# sorted set: the JSON of each accepted event not yet confirmed by a broker other than this
# Redis (workers.delivery.outbox), by when a pump may publish it; written with its seen marks,
# removed once the broker confirmed it: bounded by the events in the middle of a publish
OUTBOX_KEY = PREFIX + "outbox"

# -- the pipeline's marks (marks_ttl) ----------------------------------------------------------
DONE_KEY = PREFIX + "done:{}:{}:{}"  # string: a handler took effect for an event at a target
OUTCOMES_KEY = PREFIX + "outcomes:{}"  # hash per event: handler[#target] -> JSON outcome
STREAM_MARKER_KEY = PREFIX + "stream:{}"  # string per event: the stream entry's id

# -- rooms (marks_ttl, refreshed by every update) ------------------------------------------------
ROOM_STATE_KEY = PREFIX + "room:{{{}}}"  # hash: account_sid, room_name, ended_by, listed, ...
ROOM_RECORDINGS_KEY = PREFIX + "room:{{{}}}:recordings"  # hash: RecordingSid -> status
ROOM_RESOURCES_KEY = PREFIX + "room:{{{}}}:resources"  # hash: RecordingSid -> resource JSON
COMPOSITION_KEY = PREFIX + "room:{{{}}}:composition"  # string: the room's CompositionSid
COMPOSING_LOCK_KEY = PREFIX + "room:{{{}}}:composing"  # redis-py lock while one is created

# -- failures (no expiry: replayed or purged by an operator) -------------------------------------
DEAD_LETTERS_KEY = PREFIX + "deadletters"  # hash: entry id -> JSON
DEAD_LETTERS_ORDER_KEY = PREFIX + "deadletters:order"  # sorted set: entry id by failure time

# -- archive (a record: no expiry) --------------------------------------------------------------
ARCHIVES_KEY = PREFIX + "archives"  # hash: RecordingSid -> JSON of where it was archived
ARCHIVE_TOTALS_KEY = PREFIX + "archive-totals"  # hash: recordings, bytes
ARCHIVE_LOCK_KEY = PREFIX + "archive-lock:{}"  # redis-py lock per recording while archived

# -- schedules and limits ------------------------------------------------------------------------
RECONCILE_LOCK_KEY = PREFIX + "reconcile:lock"  # redis-py lock while a reconcile runs
TWILIO_LIMIT_PREFIX = PREFIX + "twilio:limit"  # + ":{AccountSid}": one limiter per account


def seen_key(ident: str) -> str:
    return SEEN_KEY.format(ident)


def done_key(event_id: str, handler: str, target: str | None) -> str:
    """The mark that ``handler`` took effect for ``event_id`` at ``target`` (a target appears
    only as its fingerprint: it may carry a receiver's token)."""
    return DONE_KEY.format(event_id, handler, fingerprint(target) if target else "-")


def outcomes_key(event_id: str) -> str:
    return OUTCOMES_KEY.format(event_id)


def delayed_key(queue: str) -> str:
    return DELAYED_KEY.format(queue)
