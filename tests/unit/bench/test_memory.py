from __future__ import annotations

from typing import Any

import pytest

from bench import memory


def sample(
    kind: str, role: str, rss: float, pss: float | None, after: str, **more: Any
) -> dict[str, Any]:
    return {"kind": kind, "role": role, "pid": 1, "rss_mib": rss, "pss_mib": pss,
            "after": after, **more}  # fmt: skip


SAMPLES = [
    sample("gunicorn", "main", 38.0, 23.0, "ingest"),
    sample("gunicorn", "child", 53.0, 40.0, "ingest"),
    sample("gunicorn", "child", 54.0, 41.0, "ingest"),
    sample("celery", "main", 86.0, 40.0, "drain", uss_mib=21.0),
    sample("celery", "child", 90.0, 48.0, "drain", uss_mib=29.0),
    sample("celery", "main", 58.0, 25.0, "concurrency"),
    sample("celery", "child", 62.0, None, "concurrency"),
]


class Env:
    def __init__(self, samples: list[dict[str, Any]]) -> None:
        self.memory = samples


def test_the_targets_are_read_on_the_largest_rss_and_name_its_pss_and_uss() -> None:
    result = memory.run(Env(SAMPLES))  # type: ignore[arg-type]
    web, celery = result["targets"]

    assert (web["measured"], web["passed"]) == (54.0, True)
    assert (celery["measured"], celery["passed"]) == (90.0, False)
    assert celery["subject"] == "pool process after drain (PSS 48.0 MiB, USS 29.0 MiB)"
    assert result["figures"]["celery_process_max_uss_mib"] == 29.0
    assert result["figures"]["gunicorn_worker_max_uss_mib"] is None  # not sampled


def test_each_tree_sums_the_pss_of_its_processes() -> None:
    trees = memory.trees(SAMPLES)

    assert [(t["kind"], t["after"], t["processes"]) for t in trees] == [
        ("gunicorn", "ingest", 3), ("celery", "drain", 2), ("celery", "concurrency", 2),
    ]  # fmt: skip
    assert [t["pss_total_mib"] for t in trees] == [104.0, 88.0, 25.0]
    assert [t["pss_complete"] for t in trees] == [True, True, False]


def test_without_samples_the_memory_benchmark_is_skipped() -> None:
    with pytest.raises(memory.NothingSampled):
        memory.run(Env([]))  # type: ignore[arg-type]
