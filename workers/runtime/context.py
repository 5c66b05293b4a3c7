"""What tasks use in a worker process: settings, Redis, the Twilio clients (one per account),
the handlers, the broker.

Built on first use inside each worker process (after the prefork pool forked), never shared
across processes: sockets and HTTP connections do not survive a fork. One
:class:`workers.outbound.http.Pool` per process carries the Twilio clients' requests and the
forward's.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from celery import Celery

from schemas.settings import WorkerSettings
from workers.delivery.broker import Broker
from workers.delivery.celery_app import settings_of
from workers.delivery.choice import open_broker
from workers.handlers import Handler, HandlerContext, load_handlers
from workers.outbound.http import Pool
from workers.state.deadletters import DeadLetterStore
from workers.state.outcomes import OutcomeStore
from workers.state.redis_client import redis_client
from workers.twilio.client import TwilioClients


@dataclass
class Runtime:
    settings: WorkerSettings  # its marks_ttl is how long every mark the pipeline writes lives
    redis: redis.Redis
    twilio: TwilioClients  # one client per account: rt.twilio.for_account(event's AccountSid)
    handlers: dict[str, Handler]
    dead_letters: DeadLetterStore
    outcomes: OutcomeStore
    broker: Broker  # next attempts, the in-flight ledger, reconciliation's enqueue

    @classmethod
    def build(cls, settings: WorkerSettings, app: Celery) -> Runtime:
        """The runtime of the tasks of ``app``, on its broker."""
        client = redis_client(
            settings.redis_url, sentinel=settings.redis_sentinel, socket_timeout=10,
            socket_connect_timeout=5, health_check_interval=30, decode_responses=True,
        )  # fmt: skip
        http = Pool()  # the environment's proxies read once per host, not on every request
        context = HandlerContext(settings=settings, redis=client, http=http)
        return cls(
            settings=settings,
            redis=client,
            twilio=TwilioClients(settings, http=http),
            handlers=load_handlers(settings.handlers, context),
            dead_letters=DeadLetterStore(client),
            outcomes=OutcomeStore(client, ttl=settings.marks_ttl),
            broker=open_broker(
                app,
                client,
                broker_url=settings.broker_url,
                redis_url=settings.redis_url,
                dedup_ttl=settings.dedup_ttl,
                visibility_timeout=settings.visibility_timeout,
            ),
        )


def runtime(app: Celery) -> Runtime:
    """The runtime of this process for ``app``, built on first use."""
    built: Runtime | None = getattr(app, "_roomrec_runtime", None)
    if built is None:
        built = Runtime.build(settings_of(app), app)
        app._roomrec_runtime = built
    return built
