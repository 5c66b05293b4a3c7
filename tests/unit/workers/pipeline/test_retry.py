"""workers.pipeline.retry: the backoff, and retry_or_give_up on a real Redis (what is
scheduled, dead-lettered, recorded, logged and counted)."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from celery import Celery
from prometheus_client import REGISTRY

from tests.unit.workers.helpers import worker_settings
from workers.delivery.celery_app import EVENTS_QUEUE, PROCESS_EVENT_TASK
from workers.errors import NotFoundYet, PermanentError, TransientError
from workers.pipeline.retry import NOT_FOUND_RETRIES, Attempt, backoff, retry_or_give_up
from workers.runtime.context import Runtime
from workers.state.keys import DELAYED_KEY
from workers.state.outcomes import outcomes_of

CAP = 600.0
SEEDS = range(20)
ATTEMPTS = range(0, 60)


def step(attempt: int, cap: float = CAP, base: float = 1.0) -> float:
    return min(cap, base * 2**attempt)


@pytest.mark.parametrize("seed", SEEDS)
def test_delay_is_within_half_a_step_and_a_step(seed: int) -> None:
    rng = random.Random(seed)

    for attempt in ATTEMPTS:
        delay = backoff(attempt, cap=CAP, rng=rng)
        assert step(attempt) / 2 <= delay <= step(attempt), attempt


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("base", [0.5, 1.0, 3.0])
def test_delay_respects_the_base(seed: int, base: float) -> None:
    rng = random.Random(seed)

    for attempt in range(12):
        delay = backoff(attempt, cap=CAP, base=base, rng=rng)
        assert step(attempt, base=base) / 2 <= delay <= step(attempt, base=base)


@pytest.mark.parametrize("cap", [0.5, 10.0, 600.0])
def test_delay_never_exceeds_the_cap(cap: float) -> None:
    rng = random.Random(7)

    delays = [backoff(attempt, cap=cap, rng=rng) for attempt in range(200)]

    assert max(delays) <= cap
    assert min(delays[40:]) >= cap / 2


def test_delay_is_jittered() -> None:
    rng = random.Random(1)

    delays = {backoff(8, cap=CAP, rng=rng) for _ in range(50)}

    assert len(delays) > 40


@pytest.mark.parametrize("seed", SEEDS)
def test_delay_grows_with_attempt(seed: int) -> None:
    rng = random.Random(seed)

    uncapped = [a for a in range(40) if step(a) < CAP]  # 1, 2, 4 ... 512 s
    delays = [backoff(attempt, cap=CAP, rng=rng) for attempt in uncapped]

    assert all(later >= earlier for earlier, later in zip(delays, delays[1:], strict=False))
    assert delays[-1] >= 2 ** (len(delays) - 3) * delays[0]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("retry_after", [0.0, 5.0, 30.0, 599.0])
def test_retry_after_is_honoured(seed: int, retry_after: float) -> None:
    rng = random.Random(seed)

    for attempt in range(12):
        delay = backoff(attempt, cap=CAP, retry_after=retry_after, rng=rng)
        assert delay >= retry_after
        assert delay >= step(attempt) / 2
        assert delay <= max(step(attempt), retry_after)


@pytest.mark.parametrize("retry_after", [601.0, 3600.0, 1e9, float("inf")])
def test_retry_after_is_capped(retry_after: float) -> None:
    rng = random.Random(3)

    for attempt in range(5):
        assert backoff(attempt, cap=CAP, retry_after=retry_after, rng=rng) == CAP


def test_without_rng_the_module_random_is_used_within_bounds() -> None:
    for attempt in range(20):
        assert step(attempt) / 2 <= backoff(attempt, cap=CAP) <= step(attempt)


# --- retry_or_give_up() ------------------------------------------------------------------------

MAX_RETRIES = 8  # more than NOT_FOUND_RETRIES, so the two limits differ
BACKOFF_MAX = 300.0
FETCH = Attempt(
    PROCESS_EVENT_TASK, [{"id": "evt_1"}], task_id="evt_1", queue=EVENTS_QUEUE, number=0,
    stage="fetch", event_id="evt_1", message={"id": "evt_1"}, what="fetch of RT1 for evt_1",
    lagging_404=True,
)  # fmt: skip
HANDLER = replace(
    FETCH, stage="handler:forward", what="handler:forward of evt_1", handler="forward",
    target="https://hooks.example.com/in?token=s3cr3t", lagging_404=False,
)  # fmt: skip


@pytest.fixture
def rt(redis_url: str, app: Celery) -> Iterator[Runtime]:
    built = Runtime.build(worker_settings(
        REDIS_URL=redis_url, HANDLERS="log", TASK_MAX_RETRIES=str(MAX_RETRIES),
        RETRY_BACKOFF_MAX=str(BACKOFF_MAX),
    ), app)  # fmt: skip
    yield built
    built.redis.close()


def scheduled(rt: Runtime) -> list[tuple[dict[str, Any], float]]:
    """The attempts waiting in the delayed set: each message's headers, and its delay."""
    now = time.time()
    waiting = rt.redis.zrange(DELAYED_KEY.format(EVENTS_QUEUE), 0, -1, withscores=True)
    return [(json.loads(message)["headers"], due - now) for message, due in waiting]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    "exc", [TransientError("Twilio answered 503"), NotFoundYet("Twilio answered 404"),
            ValueError("a handler's own failure")],
)  # fmt: skip
def test_a_failure_below_the_limit_schedules_the_next_attempt(
    rt: Runtime, caplog: pytest.LogCaptureFixture, exc: Exception
) -> None:
    counted = sample("roomrec_retries_total", stage="fetch")
    caplog.set_level(logging.WARNING, logger="workers.pipeline.retry")

    outcome = retry_or_give_up(rt, replace(FETCH, number=2), exc)

    assert outcome == "retrying"
    [(headers, delay)] = scheduled(rt)
    assert (headers["task"], headers["id"], headers["retries"]) == (PROCESS_EVENT_TASK, "evt_1", 3)
    assert 1.5 < delay <= 4.0  # backoff(2): between half a step and a step of 4 s
    assert rt.dead_letters.list() == []
    assert sample("roomrec_retries_total", stage="fetch") == counted + 1
    limit = NOT_FOUND_RETRIES if isinstance(exc, NotFoundYet) else MAX_RETRIES
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"fetch of RT1 for evt_1 failed (attempt 3 of {limit + 1}), retrying in")
    assert line.endswith(f"s: {exc}")


def test_a_retry_after_is_waited_for(rt: Runtime) -> None:
    retry_or_give_up(rt, FETCH, TransientError("Twilio answered 429", retry_after=60.0))

    [(_, delay)] = scheduled(rt)
    assert 59.0 < delay <= 60.0


def test_a_permanent_error_is_dead_lettered_at_once(rt: Runtime) -> None:
    counted = sample("roomrec_dead_letters_total", stage="fetch")

    outcome = retry_or_give_up(rt, FETCH, PermanentError("Twilio answered 401"))

    assert outcome == "dead-lettered"
    assert scheduled(rt) == []
    [letter] = rt.dead_letters.list()
    assert (letter["event_id"], letter["stage"], letter["attempts"]) == ("evt_1", "fetch", 1)
    assert (letter["error"], letter["message"]) == ("Twilio answered 401", {"id": "evt_1"})
    assert sample("roomrec_dead_letters_total", stage="fetch") == counted + 1


@pytest.mark.parametrize(
    ("attempt", "exc", "outcome"),
    [
        (replace(FETCH, number=MAX_RETRIES - 1), TransientError("503"), "retrying"),
        (replace(FETCH, number=MAX_RETRIES), TransientError("503"), "dead-lettered"),
        (replace(FETCH, number=NOT_FOUND_RETRIES - 1), NotFoundYet("404"), "retrying"),
        (replace(FETCH, number=NOT_FOUND_RETRIES), NotFoundYet("404"), "dead-lettered"),
        # a handler's NotFoundYet ("still processing") is retried like any other failure
        (replace(HANDLER, number=NOT_FOUND_RETRIES), NotFoundYet("processing"), "retrying"),
        (replace(HANDLER, number=MAX_RETRIES), NotFoundYet("processing"), "dead-lettered"),
    ],
)  # fmt: skip
def test_the_limit(rt: Runtime, attempt: Attempt, exc: Exception,
                   outcome: str) -> None:  # fmt: skip
    assert retry_or_give_up(rt, attempt, exc) == outcome

    if outcome == "dead-lettered":
        [letter] = rt.dead_letters.list()
        assert letter["attempts"] == attempt.number + 1
        assert scheduled(rt) == []
    else:
        assert rt.dead_letters.list() == []
        [(headers, _)] = scheduled(rt)
        assert headers["retries"] == attempt.number + 1


def test_a_handlers_attempts_record_its_outcome(rt: Runtime) -> None:
    retry_or_give_up(rt, HANDLER, TransientError("forward answered 503"))

    [outcome] = outcomes_of(rt.redis, "evt_1")
    assert (outcome["handler"], outcome["status"]) == ("forward", "retrying")
    assert outcome["attempts"] == 1
    assert outcome["error"] == "forward answered 503"
    assert "s3cr3t" not in json.dumps(outcome)

    retry_or_give_up(rt, replace(HANDLER, number=1), PermanentError("answered 401"))

    [outcome] = outcomes_of(rt.redis, "evt_1")
    assert (outcome["status"], outcome["attempts"]) == ("dead-lettered", 2)
    [letter] = rt.dead_letters.list()
    assert letter["stage"] == "handler:forward"
    assert "s3cr3t" not in json.dumps(letter)


def test_other_attempts_record_no_outcome(rt: Runtime) -> None:
    retry_or_give_up(rt, FETCH, TransientError("503"))
    retry_or_give_up(rt, replace(FETCH, number=1), PermanentError("401"))

    assert outcomes_of(rt.redis, "evt_1") == []
