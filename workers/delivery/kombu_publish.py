"""Publishing one task from the web through Celery's producer pool, within a bounded time.

On RabbitMQ (``amqp://``) the web holds long-lived connections that can die while idle (a
broker restart, a load balancer's idle timeout): the first publish on such a connection then
fails at once with "connection closed". That publish is retried once, on a fresh connection,
because Twilio never resends a callback answered with an error. A publish that timed out is
not retried (the broker hangs; a second wait would double the answer time), and its connection
is dropped without AMQP's close handshake, which a hung broker would stall for another timeout.
On Redis this is plain ``send_task``: redis-py replaces dead connections by itself.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Celery
from kombu.exceptions import KombuError

from workers.delivery.celery_app import is_redis_url

log = logging.getLogger(__name__)


def publish(app: Celery, task_name: str, args: list[Any], *, task_id: str) -> None:
    """``send_task`` without kombu's retry loop; raises KombuError or OSError on failure. Task
    events (flower) show the task id, not the callback's parameters, as arguments."""
    if is_redis_url(app.conf.broker_url):
        app.send_task(task_name, args=args, task_id=task_id, retry=False, argsrepr=task_id)
        return
    for attempt in (1, 2):
        with app.producer_or_acquire() as producer:
            try:
                with _green_deadline(app.conf.broker_connection_timeout):
                    app.send_task(task_name, args=args, task_id=task_id, producer=producer,
                                  retry=False, argsrepr=task_id)  # fmt: skip
                return
            except (KombuError, OSError) as exc:
                producer.connection.collect()
                if attempt == 2 or _timed_out(exc):
                    raise
                log.warning("publish of %s: connection lost (%s), reconnecting", task_id, exc)


@contextmanager
def _green_deadline(seconds: float | None) -> Iterator[None]:
    """Under gevent (the web's gunicorn worker), a deadline of ``seconds`` on the publish.

    py-amqp bounds its socket reads and writes with ``SO_RCVTIMEO``/``SO_SNDTIMEO`` on a
    socket left without a Python timeout (celery/py-amqp#98); a gevent socket waits in the hub
    and never meets them (gevent/gevent#644), so a hung broker would hold the request forever.
    """
    monkey = sys.modules.get("gevent.monkey")
    if not seconds or monkey is None or not monkey.is_module_patched("socket"):
        yield
        return
    import gevent

    with gevent.Timeout(seconds, TimeoutError(f"broker did not answer within {seconds:g} s")):
        yield


def _timed_out(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
