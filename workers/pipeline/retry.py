"""The pipeline's one retry policy: whether a failed attempt is retried or given up
(:func:`retry_or_give_up`, the one place every task's failures go), how long to wait before
the next attempt (exponential backoff with jitter, honouring a server's ``Retry-After``, never
longer than the cap), how the next attempt is published (:func:`schedule`), and what giving up
records (:func:`give_up`)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

from celery import current_task

from workers.errors import NotFoundYet, PermanentError, TransientError
from workers.observability import metrics
from workers.observability.redaction import target_label
from workers.runtime.context import Runtime

log = logging.getLogger(__name__)

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
    rt: Runtime, task_name: str, args: list[Any], *, task_id: str, queue: str, retries: int,
    delay: float,
) -> None:  # fmt: skip
    """Publish attempt number ``retries`` of a task after ``delay`` seconds, through the
    process's broker (:meth:`workers.delivery.broker.Broker.schedule`)."""
    rt.broker.schedule(task_name, args, task_id=task_id, queue=queue, retries=retries, delay=delay)
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


@dataclass(frozen=True)
class Attempt:
    """One attempt of a task that failed: what publishing the next one and giving up need."""

    task: str  # the task's name, and what it is called with
    args: list[Any]
    task_id: str  # kept by every attempt
    queue: str
    number: int  # counts from 0 (Celery's ``request.retries``)
    stage: str  # of metrics and dead letters: ``fetch``, ``handler:<name>``, ...
    event_id: str
    message: dict[str, Any]  # what the dead letter keeps, to be replayed
    what: str  # names the attempt in the log: "fetch of RT… for evt_…"
    handler: str | None = None  # a handler's attempt: its outcome is recorded too
    target: str | None = None
    # A NotFoundYet here is a resource a callback announced, lagging behind it: it gets
    # NOT_FOUND_RETRIES, not settings.max_retries (a handler's "still processing" gets those).
    lagging_404: bool = False


def retry_or_give_up(rt: Runtime, attempt: Attempt, exc: Exception) -> str:
    """After ``attempt`` failed with ``exc``: give up (a dead letter) on a
    :class:`PermanentError` or past the retry limit, else schedule the next attempt after
    :func:`backoff` (at least the error's ``retry_after``). Returns the outcome, for metrics:
    ``"dead-lettered"`` or ``"retrying"``. Any other exception than a :class:`PermanentError`
    counts as transient: the caller decides which it lets propagate instead."""
    lagging = attempt.lagging_404 and isinstance(exc, NotFoundYet)
    limit = NOT_FOUND_RETRIES if lagging else rt.settings.max_retries
    attempts, error = attempt.number + 1, str(exc)
    if isinstance(exc, PermanentError) or attempt.number >= limit:
        give_up(
            rt, event_id=attempt.event_id, stage=attempt.stage, handler=attempt.handler,
            target=attempt.target, attempts=attempts, error=error, message=attempt.message,
        )  # fmt: skip
        return "dead-lettered"
    retry_after = exc.retry_after if isinstance(exc, TransientError) else None
    delay = backoff(attempt.number, cap=rt.settings.retry_backoff_max, retry_after=retry_after)
    if attempt.handler is not None:
        rt.outcomes.record(attempt.event_id, attempt.handler, attempt.target, "retrying",
                           attempts=attempts, error=error)  # fmt: skip
    log.warning("%s failed (attempt %d of %d), retrying in %.1fs: %s", attempt.what, attempts,
                limit + 1, delay, exc)  # fmt: skip
    metrics.retry_scheduled(attempt.stage)
    schedule(
        rt, attempt.task, attempt.args, task_id=attempt.task_id, queue=attempt.queue,
        retries=attempts, delay=delay,
    )  # fmt: skip
    return "retrying"
