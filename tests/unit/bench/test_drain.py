"""The drain benchmark's rounds and ratios: each subject between two no-op runs, the order
rotating, and each subject's ratio to the floor paired within its round."""

from __future__ import annotations

from typing import Any

from bench.drain import FLOOR, LOG_FORWARD, LOG_FORWARD_STORE, of_noop, rounds_of
from bench.stats import per_round_ratio


def test_each_subject_runs_between_two_noop_runs_the_order_rotating() -> None:
    runs = rounds_of(lambda kind, n: {"kind": kind, "n": n}, lambda n: {"kind": "noop", "n": n},
                     rounds=2, budget=1e9)  # fmt: skip

    kinds = [run["kind"] for run in runs]
    assert kinds == ["noop", FLOOR, "noop", LOG_FORWARD, "noop", LOG_FORWARD_STORE, "noop",
                     LOG_FORWARD, "noop", LOG_FORWARD_STORE, "noop", FLOOR, "noop"]  # fmt: skip
    assert [run["order"] for run in runs] == list(range(1, 14))
    assert [run["round"] for run in runs[1::2]] == [0, 0, 0, 1, 1, 1]


def test_a_round_starts_only_within_the_budget() -> None:
    runs = rounds_of(lambda kind, n: {"kind": kind}, lambda n: {"kind": "noop"}, rounds=3,
                     budget=0.0)  # fmt: skip

    assert len(runs) == 7  # the first round always runs


def test_the_ratio_to_the_floor_pairs_noop_normalised_runs_of_one_round() -> None:
    def run(kind: str, rate: float, number: int) -> dict[str, Any]:
        return {"kind": kind, "rate": rate, "round": number}

    # The machine slows down in round 1: each run is taken against the no-op runs next to it
    # (the first of round 1 against a fast one and a slow one), then against the floor.
    runs = [run("noop", 1000, 0), run(FLOOR, 500, 0), run("noop", 1000, 0),
            run(LOG_FORWARD, 400, 0), run("noop", 1000, 0),
            run(LOG_FORWARD, 150, 1), run("noop", 500, 1), run(FLOOR, 200, 1),
            run("noop", 500, 1)]  # fmt: skip

    of_noop(runs)

    assert [round(r["vs_noop"], 3) for r in runs if r["kind"] != "noop"] == [0.5, 0.4, 0.2, 0.4]
    value, per_round = per_round_ratio(runs, field="kind", subject=LOG_FORWARD, baseline=FLOOR,
                                       value="vs_noop")  # fmt: skip
    assert per_round == [0.8, 0.5]  # 0.4 / 0.5, then 0.2 / 0.4
    assert value == 0.65
