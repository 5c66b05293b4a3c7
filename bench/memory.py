"""4. Memory: the resident size (``VmRSS`` of ``/proc/<pid>/status``) of every gunicorn worker
and of every Celery process (main and pool), sampled right after the runs that loaded them
(ingest, drain, latency, concurrency) and before they were stopped; the largest of each.

RSS is the issue's measure and the target is read on it. It counts in full every page a
process maps, including those a prefork pool process still shares with its main process after
``fork`` (copy-on-write) and the shared libraries' pages. So the RSS of the processes of one
tree add up to far more than the tree costs the machine. Hence also, per process, PSS (shared
pages divided among their sharers) and, where sampled, USS (pages of that process alone: what
stopping it would free); and per tree of processes, the sum of their PSS. The issue's "80 MB"
is read as 80 MiB.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench import procs
from bench.env import BenchEnv
from bench.stats import at_most

LIMIT_MIB = 80


class NothingSampled(RuntimeError):
    """No benchmark that runs the processes under test ran before this one."""


def _largest(samples: list[dict[str, Any]], field: str = "rss_mib") -> dict[str, Any] | None:
    found = [sample for sample in samples if sample.get(field) is not None]
    return max(found, key=lambda sample: sample[field], default=None)


def _value(sample: dict[str, Any] | None, field: str) -> float | None:
    return None if sample is None else sample.get(field)


def trees(samples: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sampled process trees (a main process, then its children, as sampled), each with
    the sum of its processes' PSS: what the whole gunicorn or Celery worker costs."""
    found: list[dict[str, Any]] = []
    for sample in samples:
        if sample["role"] == "main" or not found:
            found.append({"kind": sample["kind"], "after": sample["after"], "processes": 0,
                          "pss_total_mib": 0.0, "pss_complete": True})  # fmt: skip
        tree = found[-1]
        tree["processes"] += 1
        if sample.get("pss_mib") is None:
            tree["pss_complete"] = False
        else:
            tree["pss_total_mib"] = round(tree["pss_total_mib"] + sample["pss_mib"], 1)
    return found


def described(sample: dict[str, Any] | None) -> str:
    if sample is None:
        return "not sampled"
    role = "pool process" if sample["role"] == "child" else "main process"
    shares = [f"PSS {sample['pss_mib']} MiB"] if sample.get("pss_mib") is not None else []
    if sample.get("uss_mib") is not None:
        shares.append(f"USS {sample['uss_mib']} MiB")
    return f"{role} after {sample['after']}" + (f" ({', '.join(shares)})" if shares else "")


def worker_command() -> str:
    """How the Celery processes under test were started (the ``celery`` command loads more)."""
    program, *args = procs.celery_args("workers", 2)
    return " ".join([Path(program).name, *args])


def run(env: BenchEnv) -> dict[str, Any]:
    samples = env.memory
    if not samples:
        raise NothingSampled("memory is sampled by ingest, drain, latency and concurrency")
    web_workers = [s for s in samples if s["kind"] == "gunicorn" and s["role"] == "child"]
    celery_processes = [s for s in samples if s["kind"] == "celery"]
    web, celery = _largest(web_workers), _largest(celery_processes)
    sampled_trees = trees(samples)

    def largest_tree(kind: str) -> float | None:
        totals = [t["pss_total_mib"] for t in sampled_trees if t["kind"] == kind]
        return max(totals, default=None)

    def most(found: list[dict[str, Any]], field: str) -> float | None:
        return _value(_largest(found, field), field)

    web_rss, celery_rss = _value(web, "rss_mib"), _value(celery, "rss_mib")
    return {
        "method": {
            "source": "/proc/<pid>/status VmRSS, smaps_rollup Pss (and USS: Private_Clean + "
            "Private_Dirty, where sampled), after each run, before stopping",
            "unit": "MiB (the issue's 80 MB read as 80 MiB)",
            "target_on": "RSS of the largest gunicorn worker and of the largest Celery process",
            "worker_command": worker_command(),
        },
        "figures": {
            "gunicorn_worker_max_rss_mib": web_rss,
            "celery_process_max_rss_mib": celery_rss,
            "gunicorn_worker_max_pss_mib": most(web_workers, "pss_mib"),
            "celery_process_max_pss_mib": most(celery_processes, "pss_mib"),
            "gunicorn_worker_max_uss_mib": most(web_workers, "uss_mib"),
            "celery_process_max_uss_mib": most(celery_processes, "uss_mib"),
            "gunicorn_tree_max_pss_total_mib": largest_tree("gunicorn"),
            "celery_tree_max_pss_total_mib": largest_tree("celery"),
        },
        "targets": [
            at_most("gunicorn worker RSS", web_rss, LIMIT_MIB, " MiB", subject=described(web)),
            at_most("Celery process RSS", celery_rss, LIMIT_MIB, " MiB", subject=described(celery)),
        ],
        "trees": sampled_trees,
        "samples": samples,
    }
