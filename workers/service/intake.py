"""What the callback path needs of the workers: the broker that puts an accepted callback on
the queue, once per :func:`event_id` (:func:`connect` opens the web's), the error it raises
when the queue does not answer, and the WAL switch of the web's local spool (one SQLite file
shared by gunicorn's processes)."""

from __future__ import annotations

from workers.delivery.broker import Broker
from workers.delivery.choice import connect
from workers.delivery.dedup import event_id
from workers.errors import BrokerUnavailable
from workers.metadata.sqlite import enable_wal

__all__ = ["Broker", "BrokerUnavailable", "connect", "enable_wal", "event_id"]
