"""The Celery side of roomrec: run it with ``celery -A workers worker``.

``workers.app`` is built on first access from the environment, so importing this package (as
the web does, for :mod:`workers.service`) reads no worker settings. A misconfigured worker
fails at start-up with :class:`schemas.settings.ConfigurationError` naming the variable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from schemas.settings import (
    ConfigurationError,
    WorkerSettings,
    WorkerSettingsSchema,
    load_settings,
)
from workers.errors import UnknownHandlerError

if TYPE_CHECKING:  # importing this package loads neither Celery nor redis: the web's
    from celery import Celery  # gunicorn.conf.py imports workers.service before gevent patches


def create_worker_app(config: Mapping[str, str] | WorkerSettings | None = None) -> Celery:
    """The worker's Celery app for ``config`` (environment-style variables or settings)."""
    settings: WorkerSettings = (
        config
        if isinstance(config, WorkerSettings)
        else load_settings(WorkerSettingsSchema(), os.environ if config is None else config)
    )
    from workers.delivery.celery_app import make_celery
    from workers.handlers import resolve

    try:
        for name in settings.handlers:
            resolve(name)
    except UnknownHandlerError as exc:
        raise ConfigurationError(f"invalid configuration: HANDLERS: {exc}") from None
    for logger in ("workers", "roomrec"):
        logging.getLogger(logger).setLevel(settings.log_level)
    from workers.runtime import signals  # JSON logs, task fields, metrics: Celery's signals

    signals.install(settings)
    from workers.runtime import prefork

    prefork.install()
    app = make_celery(
        settings.broker_url,
        visibility_timeout=settings.visibility_timeout,
        sentinel=settings.redis_sentinel,
    )
    app.conf.update(roomrec_settings=settings, include=["workers.pipeline.tasks"])
    from workers.delivery.pump import DelayedRetryPump

    app.steps["worker"].add(DelayedRetryPump)
    app.steps["worker"].add(prefork.TimerCompaction)
    import workers.pipeline.tasks  # noqa: F401  (registers the tasks)
    from workers.recovery.schedule import beat_schedule  # registers roomrec.reconcile

    app.conf.beat_schedule = beat_schedule(settings)

    return app


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = create_worker_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
