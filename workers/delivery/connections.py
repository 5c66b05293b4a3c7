"""A Redis connection of its own per thread, for the enqueue a web runs on every callback."""

from __future__ import annotations

import os
import sys
import threading
import weakref

import redis


class ConnectionPerThread:
    """A Redis client of its own per thread, each holding one connection of ``pool`` for good,
    made on the thread's first call (so a web starts while Redis is down).

    A client taking a connection from a pool for every command pays, on each, for the pool's
    bookkeeping and its check that the connection holds no stray data (three system calls),
    about a third of an enqueue's client-side CPU. A thread's own connection needs neither, and
    a thread-local client is safe for the web's request threads and its spool relay alike.

    Under gevent (gunicorn's gevent worker) a "thread" is a greenlet, one per HTTP connection:
    a client each would keep a Redis connection per HTTP connection ever served. There every
    call shares one pooled client instead, whose connections go back to ``pool`` after each
    command.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.pool = pool
        self._local = threading.local()
        self._clients: list[redis.Redis] = []
        self._lock = threading.Lock()
        self._pooled = redis.Redis(connection_pool=pool) if _greenlets() else None
        _LIVE.add(self)

    def client(self) -> redis.Redis:
        if self._pooled is not None:
            return self._pooled
        found: redis.Redis | None = getattr(self._local, "client", None)
        if found is None:
            # single_connection_client takes (and connects) its connection here: a RedisError
            # when Redis is down, raised to the caller like any other command's.
            found = redis.Redis(connection_pool=self.pool, single_connection_client=True)
            with self._lock:
                self._clients.append(found)
            self._local.client = found
        return found

    def _forget(self) -> None:
        # A forked child must not use, nor close (shutdown would cut the parent's), the
        # parent's connections: it drops them and makes its own.
        self._local = threading.local()
        self._clients = []
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        self._local = threading.local()


_LIVE: weakref.WeakSet[ConnectionPerThread] = weakref.WeakSet()


def _greenlets() -> bool:
    """Whether gevent has patched ``threading``, making each thread-local per greenlet."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("threading"))


def _after_fork_in_child() -> None:
    for connections in list(_LIVE):
        connections._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
