"""How the CPU cost of a function grows with its input: linear or worse, by comparison of
the CPU time (``time.process_time``, best of several runs) of an input and of one ``factor``
times as long. No wall-clock bound: the ratio holds on a slow or busy machine too."""

from __future__ import annotations

import time
from collections.abc import Callable

# Input 8 times as long: a linear cost grows about 8 times, a quadratic one about 64 times.
FACTOR = 8
LINEAR_BOUND = 24  # well under quadratic's 64, room for noise on a shared machine


def cpu_seconds(work: Callable[[], object], *, runs: int = 5, floor: float = 0.005) -> float:
    """The least CPU time of ``runs`` runs of ``work``, each repeated until it lasts ``floor``
    seconds (divided back), so that even fast work is measured above the clock's noise."""
    best = float("inf")
    for _ in range(runs):
        repeats = 0
        start = time.process_time()
        elapsed = 0.0
        while elapsed < floor or repeats == 0:
            work()
            repeats += 1
            elapsed = time.process_time() - start
        best = min(best, elapsed / repeats)
    return best


def growth(work: Callable[[str], object], make: Callable[[int], str], n: int) -> float:
    """How many times the CPU cost of ``work(make(FACTOR * n))`` is that of ``work(make(n))``."""
    small, large = make(n), make(FACTOR * n)
    return cpu_seconds(lambda: work(large)) / cpu_seconds(lambda: work(small))
