"""4. Memory: the resident size (``VmRSS`` of ``/proc/<pid>/status``) of every gunicorn worker
and of every Celery process (main and pool), sampled right after the runs that loaded them
(ingest, drain, latency, concurrency) and before they were stopped; the largest of each.

RSS counts pages shared with the parent after ``fork`` in full; PSS (shared pages divided
among their sharers) is reported next to it. The issue's "80 MB" is read as 80 MiB.
"""

from __future__ import annotations

from typing import Any

from bench.env import BenchEnv
from bench.stats import at_most

LIMIT_MIB = 80


class NothingSampled(RuntimeError):
    """No benchmark that runs the processes under test ran before this one."""


def _largest(samples: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(samples, key=lambda sample: sample["rss_mib"], default=None)


def run(env: BenchEnv) -> dict[str, Any]:
    samples = env.memory
    if not samples:
        raise NothingSampled("memory is sampled by ingest, drain, latency and concurrency")
    web_workers = [s for s in samples if s["kind"] == "gunicorn" and s["role"] == "child"]
    celery_processes = [s for s in samples if s["kind"] == "celery"]
    web, celery = _largest(web_workers), _largest(celery_processes)

    def described(sample: dict[str, Any] | None) -> str:
        if sample is None:
            return "not sampled"
        role = "pool process" if sample["role"] == "child" else "main process"
        return f"{role} after {sample['after']} (PSS {sample['pss_mib']} MiB)"

    def largest_pss(found: list[dict[str, Any]]) -> float | None:
        return max((s["pss_mib"] for s in found if s["pss_mib"] is not None), default=None)

    web_rss = web["rss_mib"] if web else None
    celery_rss = celery["rss_mib"] if celery else None
    return {
        "method": {
            "source": "/proc/<pid>/status VmRSS (and smaps_rollup Pss), "
            "sampled after each run, before stopping",
            "unit": "MiB (the issue's 80 MB read as 80 MiB)",
        },
        "figures": {
            "gunicorn_worker_max_rss_mib": web_rss,
            "celery_process_max_rss_mib": celery_rss,
            "gunicorn_worker_max_pss_mib": largest_pss(web_workers),
            "celery_process_max_pss_mib": largest_pss(celery_processes),
        },
        "targets": [
            at_most("gunicorn worker RSS", web_rss, LIMIT_MIB, " MiB", subject=described(web)),
            at_most("Celery process RSS", celery_rss, LIMIT_MIB, " MiB", subject=described(celery)),
        ],
        "samples": samples,
    }
