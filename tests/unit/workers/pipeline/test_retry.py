from __future__ import annotations

import random

import pytest

from workers.pipeline.retry import backoff

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
