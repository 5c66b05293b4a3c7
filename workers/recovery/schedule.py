"""``roomrec.reconcile``: reconciliation (:mod:`workers.recovery.reconcile`) over the trailing
``RECONCILE_WINDOW``, run by Celery beat every ``RECONCILE_INTERVAL`` seconds
(``celery -A workers beat``). A lock in Redis keeps two runs from overlapping, should two beat
schedulers run by mistake or a run outlast the interval.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task, shared_task
from redis.exceptions import LockError

from schemas.settings import WorkerSettings
from workers.delivery.celery_app import RECONCILE_TASK
from workers.errors import BrokerUnavailable, PermanentError, TransientError
from workers.recovery.reconcile import reconcile_accounts
from workers.runtime.context import runtime
from workers.state.keys import RECONCILE_LOCK_KEY

log = logging.getLogger(__name__)

BEAT_ENTRY = "roomrec-reconcile"


def beat_schedule(settings: WorkerSettings) -> dict[str, dict[str, Any]]:
    """The ``beat_schedule`` of the Celery app: reconcile every ``RECONCILE_INTERVAL`` s
    (none when it is 0). A run not started within one interval expires: the next covers it."""
    interval = settings.reconcile_interval
    if not interval:
        return {}
    return {
        BEAT_ENTRY: {
            "task": RECONCILE_TASK,
            "schedule": float(interval),
            "options": {"expires": float(interval)},
        }
    }


@shared_task(name=RECONCILE_TASK, bind=True, max_retries=0)
def reconcile_recent(self: Task) -> None:
    rt = runtime(self.app)
    settings = rt.settings
    # Held at most as long as a task may run, so a killed run never blocks the next ones.
    hold = int(self.app.conf.task_time_limit or 300) + 30
    lock = rt.redis.lock(RECONCILE_LOCK_KEY, timeout=hold, blocking=False)
    if not lock.acquire():
        log.info("reconcile: another run holds %s; skipping this one", RECONCILE_LOCK_KEY)
        return
    # Publishes through this process's broker, which lives as long as the process: nothing to
    # open or close per run.
    try:
        since = datetime.now(UTC) - timedelta(seconds=settings.reconcile_window)
        reconcile_accounts(rt.twilio, rt.broker, since)  # every account, its own credentials
    except (TransientError, PermanentError, BrokerUnavailable) as exc:
        # Nothing is lost: the next run lists the same window again.
        log.warning("reconcile (task %s) failed; the next run covers it: %s", self.request.id, exc)
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("reconcile (task %s) outlasted its lock", self.request.id)
