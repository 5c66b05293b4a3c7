"""SIDs and timestamps in the shapes Twilio uses."""

from __future__ import annotations

import random
import re
import secrets
from datetime import UTC, datetime

_SID_RE = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")

# An arbitrary reference point shared by all rooms; Twilio's real one is undocumented.
VIDEO_EPOCH = datetime(2015, 10, 1, tzinfo=UTC)


def new_sid(prefix: str, rng: random.Random | None = None) -> str:
    """A SID: the two-letter ``prefix`` and 32 lower-case hex digits."""
    digits = f"{rng.getrandbits(128):032x}" if rng is not None else secrets.token_hex(16)
    return prefix + digits


def is_sid(value: object, prefix: str | None = None) -> bool:
    """Whether ``value`` is a well-formed SID (of ``prefix`` when given)."""
    if not isinstance(value, str) or not _SID_RE.match(value):
        return False
    return prefix is None or value.startswith(prefix)


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_seconds(moment: datetime) -> str:
    """``2020-08-20T01:42:05Z``: the REST resources' date format."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micros(moment: datetime) -> str:
    """``2020-08-20T01:42:05.839174Z``: the callbacks' Timestamp format."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_datetime(value: str) -> datetime:
    """Parse ISO 8601; a value without a time zone is taken as UTC. Raises ValueError."""
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def video_epoch_offset_ms(moment: datetime) -> int:
    """Milliseconds from :data:`VIDEO_EPOCH` to ``moment``."""
    return int((moment - VIDEO_EPOCH).total_seconds() * 1000)
