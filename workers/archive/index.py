"""Where each recording's archive went, kept in Redis for the read API and operators.

One hash, ``roomrec:archives``: field RecordingSid, value a JSON object ``{"recording_sid",
"room_sid", "location", "size", "sha256", "sidecar", "external", "archived_at",
"deleted_from_twilio"}``. ``external`` is true when Twilio itself wrote the media to the
account's own S3 bucket (``media_external_location``): ``location`` is then that URL and
roomrec holds no copy. Totals for metrics are in the hash ``roomrec:archive-totals``
(``recordings``, ``bytes``), counted once per recording.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

import redis

from workers.state.keys import ARCHIVE_TOTALS_KEY, ARCHIVES_KEY


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    recording_sid: str
    room_sid: str
    location: str
    size: int | None
    sha256: str | None
    sidecar: str | None
    external: bool
    archived_at: str
    deleted_from_twilio: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArchiveRecord:
        known: dict[str, Any] = {name: data.get(name) for name in cls.__dataclass_fields__}
        known["external"] = bool(known["external"])
        known["deleted_from_twilio"] = bool(known["deleted_from_twilio"])
        return cls(**known)


class ArchiveIndex:
    """Read and write archive records; works with or without ``decode_responses``."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def get(self, recording_sid: str) -> ArchiveRecord | None:
        raw = self.redis.hget(ARCHIVES_KEY, recording_sid)
        return None if raw is None else ArchiveRecord.from_json(json.loads(raw))

    def stored(self, recording_sid: str) -> dict[str, Any] | None:
        """The record of ``recording_sid`` as stored, every field as written (the read API
        shows it so); None when there is none. ValueError when it is not a JSON object."""
        raw = self.redis.hget(ARCHIVES_KEY, recording_sid)
        if raw is None:
            return None
        record = json.loads(raw)
        if not isinstance(record, dict):
            raise ValueError(f"the archive record of {recording_sid} is not a JSON object")
        return record

    def put(self, record: ArchiveRecord) -> bool:
        """Store ``record``; True when the recording was not indexed before (then counted)."""
        body = json.dumps(record.to_json(), separators=(",", ":"))
        new = bool(self.redis.hset(ARCHIVES_KEY, record.recording_sid, body))
        if new:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(ARCHIVE_TOTALS_KEY, "recordings", 1)
                if not record.external:
                    pipe.hincrby(ARCHIVE_TOTALS_KEY, "bytes", record.size or 0)
                pipe.execute()
        return new

    def mark_deleted(self, recording_sid: str) -> None:
        """Note that the recording was deleted at Twilio after it was archived."""
        record = self.get(recording_sid)
        if record is not None and not record.deleted_from_twilio:
            self.put(replace(record, deleted_from_twilio=True))

    def totals(self) -> dict[str, int]:
        raw = self.redis.hgetall(ARCHIVE_TOTALS_KEY)
        values = {_text(name): int(value) for name, value in raw.items()}
        return {"recordings": values.get("recordings", 0), "bytes": values.get("bytes", 0)}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
