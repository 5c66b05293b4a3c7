"""Small numeric and /proc helpers shared by the benchmarks: medians, percentiles, verdicts,
resident memory of a process tree."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


def median(values: Iterable[float]) -> float | None:
    found = [value for value in values if value is not None and not math.isnan(value)]
    return statistics.median(found) if found else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by the nearest-rank method; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ratio(subject: float | None, baseline: float | None) -> float | None:
    if subject is None or baseline is None or baseline == 0:
        return None
    return subject / baseline


def paired_ratio(
    runs: Sequence[dict[str, Any]], *, field: str, subject: str, value: str,
    baseline: str | None = None,
) -> tuple[float | None, list[float]]:  # fmt: skip
    """The median, over the subject's runs, of each run's ``value`` divided by the mean of the
    baseline runs right before and after it (``runs`` in the order they ran), and those ratios.
    The baseline is any other kind of run, or only ``baseline``'s when given.

    A run and its neighbours shared the machine's state of the moment, so on a shared machine
    this is steadier than the ratio of the medians, which pairs runs minutes apart."""
    found: list[float] = []
    for index, run in enumerate(runs):
        if run[field] != subject:
            continue
        near = [runs[i][value] for i in (index - 1, index + 1)
                if 0 <= i < len(runs) and runs[i][field] != subject
                and baseline in (None, runs[i][field])]  # fmt: skip
        if near and statistics.fmean(near):
            found.append(run[value] / statistics.fmean(near))
    return median(found), [round(value, 3) for value in found]


def per_round_ratio(
    runs: Sequence[dict[str, Any]], *, field: str, subject: str, baseline: str, value: str
) -> tuple[float | None, list[float]]:
    """The median, over rounds (``round`` of each run), of the subject's ``value`` divided by
    the baseline's in the same round, and those ratios: for rounds of several kinds of run,
    each round's runs next to one another in time."""
    found: list[float] = []
    for number in sorted({run["round"] for run in runs}):
        here = {run[field]: run[value] for run in runs if run["round"] == number}
        if here.get(subject) is not None and here.get(baseline):
            found.append(here[subject] / here[baseline])
    return median(found), [round(value, 3) for value in found]


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def shown(value: float | None, spec: str = ".0f", unit: str = "") -> str:
    """``value`` formatted for a sentence, ``—`` when there is none."""
    return "—" if value is None else f"{value:{spec}}{unit}"


@dataclass(frozen=True)
class Verdict:
    """One target: ``measured`` against ``limit`` (``at_least`` or ``at_most``), with what was
    compared in words (``baseline``, ``subject``) and a ``note`` when the limit is this
    harness' reading of the issue rather than the issue's own figure."""

    name: str
    measured: float | None
    limit: float
    at_least: bool
    unit: str = ""
    baseline: str = ""
    subject: str = ""
    note: str = ""

    @property
    def passed(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured >= self.limit if self.at_least else self.measured <= self.limit

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["measured"] = rounded(self.measured)
        body["passed"] = self.passed
        body["target"] = f"{'≥' if self.at_least else '≤'} {self.limit:g}{self.unit}"
        return body


def at_least(name: str, measured: float | None, limit: float, unit: str = "",
             **words: str) -> dict[str, Any]:  # fmt: skip
    return Verdict(name, measured, limit, True, unit, **words).to_json()


def reference(name: str, measured: float | None, unit: str = "", *, meaning: str) -> dict[str, Any]:
    """A figure reported beside the targets, with none of its own: what a bound such as a
    floor, the least any implementation must do, makes possible on the machine at hand."""
    return {"name": name, "measured": rounded(measured), "unit": unit, "meaning": meaning}


def at_most(name: str, measured: float | None, limit: float, unit: str = "",
            **words: str) -> dict[str, Any]:  # fmt: skip
    return Verdict(name, measured, limit, False, unit, **words).to_json()


# -- /proc


def status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``), None when gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def rss_mib(pid: int) -> float | None:
    kb = status_kb(pid, "VmRSS")
    return None if kb is None else kb / 1024


def _smaps_rollup_kb(pid: int) -> dict[str, int] | None:
    """The ``kB`` fields of ``/proc/<pid>/smaps_rollup``, None when gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields = (line.split() for line in text.splitlines()[1:])
    return {f[0].rstrip(":"): int(f[1]) for f in fields if len(f) == 3 and f[2] == "kB"}


def pss_mib(pid: int) -> float | None:
    """Proportional set size: pages shared with the parent after fork count in part."""
    fields = _smaps_rollup_kb(pid)
    return None if fields is None or "Pss" not in fields else fields["Pss"] / 1024


def uss_mib(pid: int) -> float | None:
    """Unique set size: the pages of this process alone, what stopping it would free."""
    fields = _smaps_rollup_kb(pid)
    if fields is None or "Private_Clean" not in fields:
        return None
    return (fields["Private_Clean"] + fields["Private_Dirty"]) / 1024


def sandwich(
    baseline: Callable[[int], dict[str, Any]],
    subject: Callable[[int], dict[str, Any]],
    *,
    rounds: int,
    budget: float | None = None,
    minimum: int = 1,
) -> list[dict[str, Any]]:
    """Run ``baseline, subject, baseline, subject, …, baseline``: every subject run between two
    baseline runs, so drift on a shared machine shows in the baselines around it. Stops adding
    rounds once ``budget`` seconds have gone by (after at least ``minimum`` subject runs)."""
    started = time.monotonic()
    runs = [baseline(0)]
    for number in range(rounds):
        runs += [subject(number), baseline(number + 1)]
        over = budget is not None and time.monotonic() - started > budget
        if over and number + 1 >= minimum:
            break
    return [{"order": index + 1, **run} for index, run in enumerate(runs)]
