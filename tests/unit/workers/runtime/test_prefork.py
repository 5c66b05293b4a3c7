"""workers.runtime.prefork: the main process' event loop timer sheds the entries of tasks that
ended."""

from __future__ import annotations

from kombu.asynchronous.timer import Timer

from tests.unit.workers.helpers import worker_settings
from workers import create_worker_app
from workers.runtime.prefork import TimerCompaction, compact


def test_cancelled_entries_go_and_the_live_ones_keep_their_order() -> None:
    timer = Timer()
    ran: list[int] = []
    entries = [timer.call_after(100 + n, ran.append, (n,)) for n in range(10)]
    for entry in entries[::2]:  # a task that ended: its time limit's entry is cancelled
        entry.cancel()
    queue = timer._queue

    assert compact(timer) == 5
    assert timer._queue is queue and len(timer) == 5  # the loop's own list, in place
    for item in timer.queue:
        item.entry()
    assert ran == [1, 3, 5, 7, 9]
    assert compact(timer) == 0


def test_the_worker_compacts_its_timer() -> None:
    app = create_worker_app(worker_settings(REDIS_URL="redis://127.0.0.1:1/0"))

    assert TimerCompaction in app.steps["worker"]
