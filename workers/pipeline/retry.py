"""The pipeline's one retry policy: how long to wait before the next attempt (exponential
backoff with jitter, honouring a server's ``Retry-After``, never longer than the cap), how the
next attempt is published (:func:`schedule`), and what giving up records (:func:`give_up`)."""

from __future__ import annotations

import random
from typing import Any

from celery import Celery, current_task

from workers.delivery.redis_broker import build_message
from workers.observability import metrics
from workers.observability.redaction import target_label
from workers.runtime.context import Runtime

BASE_DELAY = 1.0
NOT_FOUND_RETRIES = 5  # a resource a callback announced, answered 404: it may lag briefly


def backoff(
    attempt: int,
    *,
    cap: float,
    base: float = BASE_DELAY,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds before retry number ``attempt + 1`` (``attempt`` counts from 0).

    "Equal jitter": half of the exponential step is fixed, half random, so retries of many
    tasks that failed together spread out without any of them retrying immediately.
    """
    step = min(cap, base * 2 ** min(attempt, 32))
    delay = step / 2 + (rng or random).uniform(0, step / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, cap)


def schedule(
    app: Celery, rt: Runtime, task_name: str, args: list[Any], *, task_id: str, queue: str,
    retries: int, delay: float,
) -> None:  # fmt: skip
    """Publish attempt number ``retries`` of a task after ``delay`` seconds. On the Redis of
    ``REDIS_URL`` it waits in a sorted set (see :mod:`workers.delivery.redis_broker`); with another
    broker
    Celery's own countdown is used."""
    if rt.delayed is None:
        app.send_task(
            task_name, args=args, task_id=task_id, countdown=delay or None, retries=retries,
            argsrepr=task_id,  # task views (Flower) show this: no target URL, no payload
        )  # fmt: skip
        return
    message = build_message(app, task_name, args, task_id=task_id, queue=queue, retries=retries)
    rt.delayed.add(queue, message, delay, task_id=task_id)
    if current_task and current_task.request.id == task_id:  # this task's own next attempt
        current_task.request.roomrec_rescheduled = True


def give_up(
    rt: Runtime, *, event_id: str, stage: str, handler: str | None, target: str | None,
    attempts: int, error: str, message: dict[str, Any],
) -> None:  # fmt: skip
    if handler is not None:
        rt.outcomes.record(event_id, handler, target, "dead-lettered", attempts=attempts,
                           error=error)  # fmt: skip
    metrics.dead_lettered(stage)
    rt.dead_letters.add(
        event_id=event_id, stage=stage, target=target_label(target), attempts=attempts,
        error=error, message=message,
    )  # fmt: skip
