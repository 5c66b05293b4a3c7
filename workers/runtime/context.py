"""What tasks use in a worker process: settings, Redis, the Twilio clients (one per account),
the handlers.

Built on first use inside each worker process (after the prefork pool forked), never shared
across processes: sockets and HTTP sessions do not survive a fork.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from celery import Celery

from schemas.settings import WorkerSettings
from workers.delivery.celery_app import EVENTS_QUEUE, HANDLERS_QUEUE
from workers.delivery.enqueue import same_redis
from workers.delivery.ledger import InFlight
from workers.delivery.redis_broker import DelayedQueue
from workers.handlers import Handler, HandlerContext, load_handlers
from workers.outbound.http import Session
from workers.state.deadletters import DeadLetterStore
from workers.state.outcomes import OutcomeStore
from workers.twilio.client import TwilioClients

DONE_TTL = 7 * 24 * 3600  # the marks' TTL with the default settings' DEDUP_TTL; see marks_ttl
QUEUES = (EVENTS_QUEUE, HANDLERS_QUEUE)


def inflight_grace(settings: WorkerSettings) -> float:
    """How long past due a task message may be unaccounted for before it counts as lost. It
    only has to cover the moments a message is in nobody's hands (between kombu's BRPOP and
    its ``unacked`` write), so a third of the visibility timeout is plenty."""
    return max(5.0, settings.visibility_timeout / 3)


def marks_ttl(settings: WorkerSettings) -> int:
    """How long the workers keep what says an effect happened: see
    :attr:`schemas.settings.WorkerSettings.marks_ttl`."""
    return settings.marks_ttl


@dataclass
class Runtime:
    settings: WorkerSettings
    redis: redis.Redis
    twilio: TwilioClients  # one client per account: rt.twilio.for_account(event's AccountSid)
    handlers: dict[str, Handler]
    dead_letters: DeadLetterStore
    outcomes: OutcomeStore
    delayed: DelayedQueue | None  # None when the broker is not the Redis of REDIS_URL
    inflight: InFlight | None  # likewise
    marks_ttl: int = DONE_TTL  # see marks_ttl(); build() sets it from the settings

    @classmethod
    def build(cls, settings: WorkerSettings) -> Runtime:
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=10, socket_connect_timeout=5,
            health_check_interval=30, decode_responses=True,
        )  # fmt: skip
        http = Session()  # reads the proxy settings once, not on every request
        context = HandlerContext(settings=settings, redis=client, http=http)
        on_redis = same_redis(settings.broker_url, settings.redis_url)
        ttl = marks_ttl(settings)
        return cls(
            settings=settings,
            redis=client,
            twilio=TwilioClients(settings),
            handlers=load_handlers(settings.handlers, context),
            dead_letters=DeadLetterStore(client),
            outcomes=OutcomeStore(client, ttl=ttl),
            delayed=DelayedQueue(client, QUEUES) if on_redis else None,
            inflight=InFlight(client, QUEUES, grace=inflight_grace(settings)) if on_redis else None,
            marks_ttl=ttl,
        )


def settings_of(app: Celery) -> WorkerSettings:
    settings: WorkerSettings = app.conf["roomrec_settings"]
    return settings


def runtime(app: Celery) -> Runtime:
    """The runtime of this process for ``app``, built on first use."""
    built: Runtime | None = getattr(app, "_roomrec_runtime", None)
    if built is None:
        built = Runtime.build(settings_of(app))
        app._roomrec_runtime = built
    return built
