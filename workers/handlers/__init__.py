"""Downstream handlers: a plain registry of built-ins plus the user's own functions.

A handler receives each processed event. Built-ins are classes built once per worker process
from a :class:`HandlerContext`; a user's handler is a function named in ``HANDLERS`` as
``package.module:function`` and called as ``function(event, recording)``, where ``event`` is a
:class:`schemas.HandlerEvent` (stable ``id``, ``type``, the callback in ``event.event``) and
``recording`` the validated :class:`schemas.RoomRecording` (``None`` for non-recording events).

A handler signals failure by raising: :class:`workers.errors.PermanentError` stops at once
(dead letter), :class:`workers.errors.TargetGone` stops without a dead letter, anything else
is retried with backoff. A handler with several ``targets`` (``forward`` has one
per URL) runs and is retried once per target.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import redis

from schemas import HandlerEvent, RoomRecording
from schemas.settings import WorkerSettings
from workers.errors import UnknownHandlerError
from workers.outbound.http import Pool


@dataclass(frozen=True)
class HandlerContext:
    """What built-in handlers may use; built once per worker process."""

    settings: WorkerSettings
    redis: redis.Redis
    http: Pool  # the process' keep-alive connections (forward, Twilio)


class Handler(Protocol):
    name: str
    # Optional ``inline = False``: always run in a task of its own (long work), never in the
    # event's task alongside the others.
    # Optional ``repeatable = True``: running it again for an event it already handled changes
    # nothing more (it de-duplicates on its own, or its effect is a log line). Its done mark
    # then waits, in the event's task, to go to Redis with the next one: a round trip less.

    def targets(self) -> Sequence[str | None]:
        """Where this handler delivers; it runs once per target."""
        ...

    def __call__(self, event: HandlerEvent, target: str | None) -> None: ...


UserFunction = Callable[[HandlerEvent, RoomRecording | None], object]
HandlerFactory = Callable[[HandlerContext], Handler]
BUILTINS: dict[str, HandlerFactory] = {}


def builtin(name: str) -> Callable[[HandlerFactory], HandlerFactory]:
    """Register a built-in handler factory under ``name``."""

    def register(factory: HandlerFactory) -> HandlerFactory:
        if name in BUILTINS:
            raise ValueError(f"handler {name!r} is already registered")
        BUILTINS[name] = factory
        return factory

    return register


class FunctionHandler:
    """A user's ``package.module:function`` handler."""

    def __init__(self, name: str, function: UserFunction) -> None:
        self.name = name
        self.function = function

    def targets(self) -> Sequence[str | None]:
        return (None,)

    def __call__(self, event: HandlerEvent, target: str | None) -> None:
        self.function(event, event.recording)


def import_function(path: str) -> UserFunction:
    module_name, _, attribute = path.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        raise UnknownHandlerError(f"handler {path!r} cannot be imported: {exc}") from exc
    if not callable(function):
        raise UnknownHandlerError(f"handler {path!r} is not callable")
    return function


# The module of each built-in handler (it registers itself), imported only when the handler is
# named: the store's SQLAlchemy alone adds about 20 MiB to every worker process.
BUILTIN_MODULES = {
    "log": "workers.handlers.log",
    "forward": "workers.handlers.forward",
    "store": "workers.handlers.store",
    "stream": "workers.handlers.stream",
    "archive": "workers.handlers.archive",
}


def resolve(name: str) -> HandlerFactory:
    """The factory for a built-in name or a ``package.module:function`` path."""
    module = BUILTIN_MODULES.get(name)
    if module is not None:
        importlib.import_module(module)
        return BUILTINS[name]
    if ":" in name:
        function = import_function(name)
        return lambda _context: FunctionHandler(name, function)
    known = ", ".join(sorted(BUILTIN_MODULES))
    raise UnknownHandlerError(
        f"unknown handler {name!r}: use one of {known} or package.module:function"
    )


def load_handlers(names: Sequence[str], context: HandlerContext) -> dict[str, Handler]:
    """Build the handlers named in ``HANDLERS``, in order; raises on the first unknown name."""
    return {name: resolve(name)(context) for name in names}
