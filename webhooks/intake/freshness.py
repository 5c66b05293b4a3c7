"""Replay protection by time: a signed callback is accepted only while its ``Timestamp`` is
recent. Pure functions, no Flask.

The signature covers the ``Timestamp`` (it is a parameter of the body or query string), so a
captured callback cannot be made fresh again. The de-duplication marks refuse a replay while they
live (``DEDUP_TTL``); this check refuses it afterwards, since settings require
``CALLBACK_MAX_AGE + CALLBACK_MAX_SKEW < DEDUP_TTL``. It runs after the signature is verified, so
a forged request learns nothing from it, and before anything is queued or spooled.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from webhooks.errors import CallbackFromTheFuture, StaleCallback


class Window(Protocol):
    """How old and how far ahead a callback's ``Timestamp`` may be, in seconds
    (:class:`schemas.settings.WebSettings` is one)."""

    @property
    def callback_max_age(self) -> int: ...

    @property
    def callback_max_skew(self) -> int: ...


def check_timestamp(timestamp: datetime, window: Window, *, now: datetime | None = None) -> None:
    """Refuse ``timestamp`` (aware) when older than ``window.callback_max_age`` or more than
    ``window.callback_max_skew`` seconds ahead of ``now`` (default: this host's clock); a
    Timestamp exactly at a bound is accepted."""
    current = datetime.now(UTC) if now is None else now
    age = (current - timestamp).total_seconds()
    max_age, max_skew = window.callback_max_age, window.callback_max_skew
    if age > max_age:
        stamp = timestamp.astimezone(UTC).isoformat()
        raise StaleCallback(
            f"The callback's Timestamp is more than {max_age} s old: a replay is not accepted.",
            reason=f"Timestamp {stamp} is {age:.0f} s old (CALLBACK_MAX_AGE={max_age})",
        )
    if -age > max_skew:
        stamp = timestamp.astimezone(UTC).isoformat()
        raise CallbackFromTheFuture(
            f"The callback's Timestamp is more than {max_skew} s ahead of this server's clock.",
            reason=f"Timestamp {stamp} is {-age:.0f} s ahead (CALLBACK_MAX_SKEW={max_skew})",
        )
