"""``python -m workers``: the roomrec worker, without loading Celery's whole command line.

It takes the options of ``celery -A workers worker`` (it runs that very command)::

    python -m workers --loglevel INFO --concurrency 4 --without-gossip --without-mingle

``celery -A workers worker`` still works the same. Only ``celery`` first loads every one of its
subcommands and each installed plugin: click-repl and prompt_toolkit for ``celery amqp``,
flower with tornado. That is about 11 MiB in the main process, which every pool process
inherits, for commands a worker never runs.

Not supported here: ``--detach`` (it re-executes ``celery`` without the app; run the worker
under a supervisor instead) and the eventlet and gevent pools (they patch the standard library
before anything imports it; use ``celery -A workers worker -P gevent``).
"""

from __future__ import annotations

from collections.abc import Sequence

from celery.bin.base import CLIContext
from celery.bin.worker import worker

from schemas.settings import ConfigurationError


def main(argv: Sequence[str] | None = None) -> None:
    """Run the worker with ``argv`` (default: the command line); exits with its status."""
    try:
        from workers import app  # built from the environment
    except ConfigurationError as exc:
        raise SystemExit(f"roomrec worker: {exc}") from None  # one line naming the variable
    context = CLIContext(app=app, no_color=None, workdir=None)
    worker.main(
        args=None if argv is None else list(argv),
        prog_name="python -m workers",
        obj=context,
        auto_envvar_prefix="CELERY_WORKER",  # as under ``celery``: CELERY_WORKER_CONCURRENCY…
    )


if __name__ == "__main__":
    main()
