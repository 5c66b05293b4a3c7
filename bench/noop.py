"""The drain baseline: a Celery app built by the service's own ``make_celery`` (same broker
settings, late acknowledgement, prefetch 1, queues) with one task, ``bench.noop``, that does
nothing. Run as ``celery -A bench.noop worker`` with the same flags as the real worker."""

from __future__ import annotations

import os
import uuid

import redis

from workers.delivery.celery_app import EVENTS_QUEUE, make_celery
from workers.delivery.messages import build_message

NOOP_TASK = "bench.noop"

# On the broker the worker under test uses: CELERY_BROKER_URL when given (RabbitMQ), else Redis.
app = make_celery(
    os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL", "redis://localhost:6379/0")
)


@app.task(name=NOOP_TASK)
def noop() -> None:
    return None


def queue_noops(client: redis.Redis, count: int, batch: int = 1000) -> None:
    """Queue ``count`` no-op tasks as ``send_task`` would (the same message, LPUSHed)."""
    for start in range(0, count, batch):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(batch, count - start)):
            message = build_message(app, NOOP_TASK, [], task_id=str(uuid.uuid4()),
                                    queue=EVENTS_QUEUE)  # fmt: skip
            pipe.lpush(EVENTS_QUEUE, message)
        pipe.execute()
