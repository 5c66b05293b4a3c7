"""How long to wait before the next attempt: exponential backoff with jitter, honouring a
server's ``Retry-After``, and never longer than the cap (kept well under the broker's
visibility timeout, since Celery holds a delayed retry unacknowledged)."""

from __future__ import annotations

import random

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
