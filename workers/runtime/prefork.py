"""Memory of the prefork pool: the pool processes share the main process' memory after
``fork``, and the main process does not grow with the tasks it hands out.

Every object the main process built before forking (modules, classes, the app) is shared with
each pool process copy-on-write, until either writes to its page. The cyclic garbage collector
writes to every object it scans, so a pool process' first full collection copied 15 to 25 MiB
that it then held privately (its USS went from 18 to 34 MiB with ``HANDLERS=log``, from 28 to
53 MiB with the store). :func:`gc.freeze` moves those objects out of the collector's reach
(they live as long as the process anyway), so the pages stay shared. RSS, which counts shared
pages in full, does not change.

With time limits set (they are: :func:`workers.delivery.celery_app.task_time_limit`), the main
process
puts one entry per task on its event loop's timer, to enforce the limit. When the task ends
the entry is only marked cancelled: it stays on the timer's heap until it falls due, up to the
time limit later. So the main process held about 560 bytes per task of the last 300 s: 5.6 MiB
after 10,000 events, some 30 MiB at a steady 200 tasks/s (celery#1129, #5200 describe it).
:class:`TimerCompaction` drops the cancelled entries every few seconds.
"""

from __future__ import annotations

import gc
import heapq
import logging
from typing import Any

from celery import bootsteps, signals
from kombu.asynchronous.timer import Timer

log = logging.getLogger(__name__)

COMPACT_EVERY = 5.0  # seconds


def freeze_before_fork(**_: Any) -> None:
    """Run in the main process after the worker's setup, just before the pool forks."""
    gc.collect()  # what is garbage now is freed, not frozen
    gc.freeze()


def compact(timer: Timer) -> int:
    """Drop the cancelled entries from ``timer``'s heap; returns how many went. The live ones
    keep their order. In place: the timer's loop holds the list itself."""
    queue = timer._queue  # kombu's own clear() empties this very list in place
    live = [item for item in queue if not item.entry.canceled]
    dropped = len(queue) - len(live)
    if dropped:
        heapq.heapify(live)
        queue[:] = live
        log.debug("timer: dropped %d cancelled entries, %d left", dropped, len(live))
    return dropped


class TimerCompaction(bootsteps.StartStopStep):
    """Compacts the main process' event loop timer every :data:`COMPACT_EVERY` seconds. It runs
    on the loop itself, between its other callbacks: nothing else touches the heap then."""

    requires = ("celery.worker.components:Hub",)

    def start(self, parent: Any) -> None:
        hub = getattr(parent, "hub", None)
        if hub is not None:  # the pools with an event loop (prefork) have one
            hub.call_repeatedly(COMPACT_EVERY, compact, hub.timer)


def install() -> None:
    # Sent by the worker's own start, after the app is finalised and before the pool starts.
    signals.celeryd_after_setup.connect(
        freeze_before_fork, weak=False, dispatch_uid="roomrec.freeze_before_fork"
    )
