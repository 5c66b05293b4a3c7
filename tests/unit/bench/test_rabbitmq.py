"""The RabbitMQ benchmark's pure parts: the drain's end told from the worker's log and the
queues' ready counts, the log followed as it grows, and the order of the runs."""

from __future__ import annotations

from pathlib import Path

from bench.rabbitmq import (
    LOG_FORWARD,
    LOG_FORWARD_STORE,
    NOOP,
    LogFollower,
    WorkerTally,
    is_drained,
    schedule,
)

RECEIVED = "[2026-12-08 05:11:56,214: INFO/MainProcess] Task {name}[{id}] received\n"
SUCCEEDED = (
    "[2026-12-08 05:11:56,215: INFO/ForkPoolWorker-1] Task {name}[{id}] succeeded in 0.01s\n"
)
RETRY = "[2026-12-08 05:11:56,216: INFO/ForkPoolWorker-2] Task {name}[{id}] retry: Retry in 2s\n"
TASK = "roomrec.process_event"


def tally_of(*lines: str) -> WorkerTally:
    tally = WorkerTally()
    tally.feed("".join(lines))
    return tally


def test_the_tally_counts_receipts_ends_and_successes_per_task() -> None:
    tally = tally_of(
        RECEIVED.format(name=TASK, id="a"),
        RECEIVED.format(name=TASK, id="b"),
        "[2026-12-08 05:11:56,100: INFO/MainProcess] celery@vm ready.\n",
        SUCCEEDED.format(name=TASK, id="a"),
        RETRY.format(name=TASK, id="b"),
        SUCCEEDED.format(name="roomrec.run_handler", id="c"),
    )

    assert (tally.received, tally.ended) == (2, 3)
    assert tally.succeeded == {TASK: 1, "roomrec.run_handler": 1}


def test_a_line_is_counted_once_complete_whatever_the_pieces() -> None:
    text = RECEIVED.format(name=TASK, id="a") + SUCCEEDED.format(name=TASK, id="a")
    tally = WorkerTally()
    for start in range(0, len(text), 7):
        tally.feed(text[start : start + 7])
        if start + 7 < len(text):
            assert tally.succeeded.get(TASK, 0) == 0

    assert (tally.received, tally.ended, tally.succeeded) == (1, 1, {TASK: 1})


def test_drained_once_nothing_is_ready_every_task_ended_and_all_succeeded() -> None:
    done = tally_of(*(RECEIVED.format(name=TASK, id=n) + SUCCEEDED.format(name=TASK, id=n)
                      for n in "ab"))  # fmt: skip

    assert is_drained([0, 0], done, TASK, 2)
    assert not is_drained([1, 0], done, TASK, 2)  # one still waits on a queue
    assert not is_drained([0, 1], done, TASK, 2)
    assert not is_drained([0, 0], done, TASK, 3)  # one neither queued nor done: delayed retry
    assert not is_drained([0, 0], done, "bench.noop", 2)


def test_not_drained_while_a_received_task_runs() -> None:
    running = tally_of(
        RECEIVED.format(name=TASK, id="a"),
        SUCCEEDED.format(name=TASK, id="a"),
        RECEIVED.format(name="roomrec.run_handler", id="b"),
    )

    assert not is_drained([0, 0], running, TASK, 1)


def test_the_follower_returns_only_what_was_written_since(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    follower = LogFollower(path)
    assert follower.read() == ""  # not written yet
    path.write_text("one\n")
    assert follower.read() == "one\n"
    with path.open("a") as out:
        out.write("two")
    assert follower.read() == "two"
    assert follower.read() == ""


def test_each_subject_runs_between_two_noop_runs_the_order_rotating() -> None:
    assert schedule(2) == [
        (NOOP, 0),
        (LOG_FORWARD, 0), (NOOP, 0), (LOG_FORWARD_STORE, 0), (NOOP, 0),
        (LOG_FORWARD_STORE, 1), (NOOP, 1), (LOG_FORWARD, 1), (NOOP, 1),
    ]  # fmt: skip
