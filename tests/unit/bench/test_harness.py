"""The benchmark harness' own logic: percentiles, verdicts, the order of rounds, the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.drain import task_times
from bench.ingest import check_real_run
from bench.stats import (
    Verdict,
    paired_ratio,
    per_round_ratio,
    percentile,
    ratio,
    reference,
    sandwich,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([7.0], 99, 7.0),
        ([float(n) for n in range(1, 101)], 50, 50.0),
        ([float(n) for n in range(1, 101)], 99, 99.0),
        ([float(n) for n in range(1, 101)], 100, 100.0),
        ([3.0, 1.0, 2.0], 50, 2.0),
    ],
)
def test_percentile_is_nearest_rank(values, q, expected):
    assert percentile(values, q) == expected


@pytest.mark.parametrize(
    ("measured", "at_least", "passed"),
    [(0.7, True, True), (0.5, True, False), (1.9, False, True), (2.1, False, False),
     (None, True, None)],
)  # fmt: skip
def test_a_verdict_compares_in_the_direction_of_its_target(measured, at_least, passed):
    verdict = Verdict("x", measured, 0.6 if at_least else 2.0, at_least).to_json()
    assert verdict["passed"] is passed
    assert verdict["target"].startswith("≥" if at_least else "≤")


def test_a_ratio_without_a_baseline_is_none():
    assert ratio(5.0, 0.0) is None
    assert ratio(None, 2.0) is None
    assert ratio(3.0, 2.0) == 1.5


def test_alternating_rounds_pair_each_subject_run_with_the_baseline_run_next_to_it():
    # B S | S B | B S: each round's runs are neighbours in time.
    runs = [{"k": "b", "v": 10.0}, {"k": "s", "v": 4.0}, {"k": "s", "v": 2.0},
            {"k": "b", "v": 5.0}, {"k": "b", "v": 8.0}, {"k": "s", "v": 2.0}]  # fmt: skip
    value, ratios = paired_ratio(runs, field="k", subject="s", value="v")
    assert ratios == [0.4, 0.4, 0.25]
    assert value == 0.4


def test_a_sandwiched_subject_run_is_compared_with_the_mean_of_its_two_neighbours():
    runs = [{"k": "b", "v": 10.0}, {"k": "s", "v": 3.0}, {"k": "b", "v": 20.0}]
    assert paired_ratio(runs, field="k", subject="s", value="v") == (0.2, [0.2])


def test_a_named_baseline_pairs_a_subject_run_with_that_kind_of_neighbour_only():
    # noop real noop floor noop: the floor is never the real run's baseline.
    runs = [{"k": "n", "v": 10.0}, {"k": "r", "v": 2.0}, {"k": "f", "v": 4.0},
            {"k": "n", "v": 8.0}]  # fmt: skip
    assert paired_ratio(runs, field="k", subject="r", value="v", baseline="n") == (0.2, [0.2])
    assert paired_ratio(runs, field="k", subject="f", value="v", baseline="n") == (0.5, [0.5])
    assert paired_ratio(runs, field="k", subject="r", value="v")[1] == [0.286]  # (10+4)/2


def test_rounds_of_several_apps_pair_runs_of_the_same_round():
    runs = [
        {"round": 1, "app": "bare", "v": 10.0}, {"round": 1, "app": "real", "v": 3.0},
        {"round": 1, "app": "floor", "v": 5.0}, {"round": 2, "app": "floor", "v": 2.0},
        {"round": 2, "app": "real", "v": 1.0}, {"round": 2, "app": "bare", "v": 4.0},
        {"round": 3, "app": "real", "v": 9.0},  # a round without its baseline pairs nothing
    ]  # fmt: skip
    paired = per_round_ratio(runs, field="app", subject="real", baseline="bare", value="v")
    assert paired == (0.275, [0.3, 0.25])
    of_floor = per_round_ratio(runs, field="app", subject="real", baseline="floor", value="v")
    assert of_floor == (0.55, [0.6, 0.5])


def test_every_subject_run_sits_between_two_baseline_runs():
    runs = sandwich(lambda n: {"kind": f"b{n}"}, lambda n: {"kind": f"s{n}"}, rounds=2)
    assert [run["kind"] for run in runs] == ["b0", "s0", "b1", "s1", "b2"]
    assert [run["order"] for run in runs] == [1, 2, 3, 4, 5]


def test_the_budget_stops_adding_rounds_after_one_subject_run():
    runs = sandwich(lambda n: {"kind": "b"}, lambda n: {"kind": "s"}, rounds=3, budget=0.0)
    assert [run["kind"] for run in runs] == ["b", "s", "b"]


def test_the_budget_waits_for_the_minimum_of_subject_runs():
    runs = sandwich(lambda n: {"kind": "b"}, lambda n: {"kind": f"s{n}"}, rounds=3, budget=0.0,
                    minimum=2)  # fmt: skip
    assert [run["kind"] for run in runs] == ["b", "s0", "b", "s1", "b"]


def test_task_times_are_read_from_text_and_json_log_lines(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text(
        "[2026-11-24 07:00:00,000: INFO/ForkPoolWorker-1] Task bench.noop[1a] succeeded in "
        "0.002s: None\n"
        '{"level": "INFO", "message": "Task roomrec.process_event[evt_1] succeeded in '
        '0.05s: None"}\n'
        "Task roomrec.process_event[evt_2] received\n"
    )
    times = task_times(log)
    assert times["bench.noop"]["count"] == 1
    assert times["roomrec.process_event"] == {
        "count": 1, "total_s": 0.05, "p50_ms": 50.0, "p99_ms": 50.0,
    }  # fmt: skip


RESULTS: dict[str, Any] = {
    "finished_at": "2026-11-24T07:00:00+00:00",
    "command": "python -m bench",
    "machine": {"nproc": 2},
    "benchmarks": {
        "ingest": {
            "status": "ok",
            "targets": [
                Verdict("req/s vs bare Flask", 0.7, 0.6, True, "x").to_json(),
                Verdict("p99 vs bare Flask", 2.5, 2.0, False, "x", note="why").to_json(),
            ],
        },
        "archive": {"status": "skipped", "reason": "curl is not installed"},
    },
}


def test_the_markdown_gives_each_target_its_verdict_and_lists_what_did_not_run():
    text = report.markdown(RESULTS)
    assert "| 1. Ingest: req/s vs bare Flask | ≥ 0.6x | — | — | 0.7x | PASS |" in text
    assert "| 1. Ingest: p99 vs bare Flask | ≤ 2x | — | — | 2.5x | MISS\\* |" in text
    assert "\\* p99 vs bare Flask: why." in text
    assert "- 5. Archive: skipped: curl is not installed" in text


def test_reference_points_are_listed_apart_from_the_targets():
    results = RESULTS | {"benchmarks": {**RESULTS["benchmarks"]}}
    results["benchmarks"]["ingest"] = RESULTS["benchmarks"]["ingest"] | {
        "references": [reference("floor req/s vs bare Flask", 0.5234, "x", meaning="the most")]
    }
    text = report.markdown(results)
    table, _, references = text.partition("Reference points")
    assert "floor" not in table
    assert "| 1. Ingest: floor req/s vs bare Flask | 0.523x | the most |" in references
    assert "Reference points" not in report.markdown(RESULTS)


def test_the_document_is_rewritten_between_its_markers_only(tmp_path: Path):
    document = tmp_path / "BENCHMARKS.md"
    document.write_text(f"# Head\n{report.START}\nold\n{report.END}\n## Tail\n")
    assert report.update_document(document, "new\n")
    assert document.read_text() == f"# Head\n{report.START}\nnew\n{report.END}\n## Tail\n"
    plain = tmp_path / "plain.md"
    plain.write_text("# no markers\n")
    assert not report.update_document(plain, "new\n")
    assert plain.read_text() == "# no markers\n"


def test_results_of_some_benchmarks_are_merged_into_the_previous_ones(tmp_path: Path):
    path = tmp_path / "latest.json"
    report.write_json(path, {"benchmarks": {"ingest": {"v": 1}, "drain": {"v": 1}}}, merge=False)
    merged = report.write_json(path, {"benchmarks": {"drain": {"v": 2}}}, merge=True)
    assert merged["benchmarks"] == {"ingest": {"v": 1}, "drain": {"v": 2}}


def test_a_benchmark_kept_from_an_earlier_run_is_named_as_such():
    results = RESULTS | {"started_at": "2026-11-24T08:00:00+00:00"}
    results["benchmarks"] = RESULTS["benchmarks"] | {
        "drain": {"status": "ok", "targets": [], "measured_at": "2026-11-24T07:10:00+00:00"},
        "latency": {"status": "ok", "targets": [], "measured_at": "2026-11-24T08:05:00+00:00"},
    }
    text = report.markdown(results)
    assert "- 2. Drain: measured at 2026-11-24T07:10:00+00:00, in an earlier run." in text
    assert "3. Latency: measured at" not in text


@pytest.mark.parametrize(
    ("errors", "queued", "refused"),
    [(0, 1000, False), (1, 999, False), (2, 998, True), (0, 990, True)],
)
def test_a_real_ingest_run_that_refused_or_lost_callbacks_is_not_a_measure(errors, queued, refused):
    figures = {"requests": 1000, "status_errors": errors, "queued": queued,
               "all_accepted_were_queued": queued >= 1000 - errors}  # fmt: skip
    if refused:
        with pytest.raises(RuntimeError):
            check_real_run(figures)
    else:
        check_real_run(figures)
