"""The errors of the worker side. Third-party errors (twilio, requests, redis, kombu) are
translated into these in one place each, so tasks only decide: retry, or give up."""

from __future__ import annotations


class RoomrecError(Exception):
    """Base of every error roomrec raises on purpose."""


class TransientError(RoomrecError):
    """Worth retrying later: a timeout, a 429, a 5xx, a dropped connection."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(RoomrecError):
    """Retrying cannot help: bad credentials, a refused request, an invalid resource."""


class Paused(TransientError):
    """Work made progress and stopped at its time budget: continue at once, in a new task,
    without counting a failed attempt."""


class TargetGone(RoomrecError):
    """The receiver wants no more of this event (HTTP 410): stop, without a dead letter."""


class NotFoundYet(TransientError):
    """Twilio answered 404 for something a callback said exists; it may appear shortly."""


class BrokerUnavailable(RoomrecError):
    """The queue could not take the event in time."""


class UnknownHandlerError(RoomrecError, LookupError):
    """``HANDLERS`` names a handler that is neither built in nor importable."""
