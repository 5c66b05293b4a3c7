"""Delivery: the queue's guarantees, behind one broker chosen once per process.

This package owns what a task message is promised: an accepted event is queued once (its
de-duplication marks, :mod:`~workers.delivery.dedup`), a queued message is never lost (the
in-flight ledger, :mod:`~workers.delivery.ledger`, swept by every worker's pump,
:mod:`~workers.delivery.pump`), and a retry waits out its delay without holding a worker (the
delayed queue of :mod:`~workers.delivery.redis_broker`; RabbitMQ's native delayed delivery).
It also holds the Celery app's configuration (:mod:`~workers.delivery.celery_app`) and the
queue depth metrics (:mod:`~workers.delivery.queue_depth`).

:func:`~workers.delivery.choice.open_broker` decides, once, which
:class:`~workers.delivery.broker.Broker` a process uses: a
:class:`~workers.delivery.redis_broker.RedisBroker` when the Celery broker is the very Redis
database of ``REDIS_URL`` (Lua scripts, delayed retries, the ledger), else a
:class:`~workers.delivery.kombu_broker.KombuBroker` (the outbox,
:mod:`~workers.delivery.outbox`, then Celery's publish with confirms, and its countdown). The web
(:func:`~workers.delivery.choice.connect`), the workers
(:class:`workers.runtime.context.Runtime`, the pump) and the command line all get theirs from
it; nothing else asks which broker is in use.

It imports only :mod:`schemas`, :mod:`workers.errors`, :mod:`workers.state` and
:mod:`workers.observability` of ours: the web imports it, and everything of the workers may.
"""
