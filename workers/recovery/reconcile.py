"""Reconciliation: the callback that never came.

Twilio does not document whether it retries a room status callback, so a callback lost on the
way (a deploy, an outage, a network fault) would leave its recording unprocessed. Reconciling
lists the account's recordings created in a window (``GET /v1/Recordings`` with
``DateCreatedAfter``, following ``next_page_url``) and queues the final event of every completed
or failed one through the broker's enqueue (:meth:`workers.delivery.broker.Broker.enqueue`),
exactly as the web does for a callback. Its de-duplication (by RecordingSid and event, kept
``DEDUP_TTL``) makes every recording already processed a duplicate, so only the missed ones are
queued.

Run periodically by ``roomrec.reconcile`` (:mod:`workers.recovery.schedule`) and by
``flask --app webhooks reconcile --since …``, for every configured account
(:func:`reconcile_accounts`), each listed with its own credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from marshmallow import ValidationError

from schemas import EventMessage, RoomRecording, RoomRecordingSchema
from workers.errors import PermanentError, TransientError
from workers.recovery.stand_in import NotReplayable, stand_in_message
from workers.twilio.client import TwilioClients, TwilioVideo, read_page

log = logging.getLogger(__name__)

LIST_PATH = "/v1/Recordings"
PAGE_SIZE = 100  # the most /v1/Recordings serves per page
MAX_PAGES = 100_000  # a guard against a listing that never ends
SOURCE = "reconcile"

_recordings = RoomRecordingSchema()


class Publisher(Protocol):
    def enqueue(self, message: EventMessage) -> bool: ...


@dataclass
class Summary:
    """What one reconciliation found: ``listed`` recordings, of which ``enqueued`` were queued
    (never processed here), ``already_processed``, ``skipped`` (still processing, or deleted)
    and ``unusable`` (a resource that does not validate or names no room)."""

    since: datetime
    until: datetime | None
    listed: int = 0
    already_processed: int = 0
    enqueued: int = 0
    skipped: int = 0
    unusable: int = 0
    queued: list[str] = field(default_factory=list)
    # Accounts whose listing failed (account SID -> error): the next run covers them.
    failed: dict[str, str] = field(default_factory=dict)

    def add(self, other: Summary) -> None:
        """Count ``other`` (another account's run over the same window) in this one."""
        self.listed += other.listed
        self.already_processed += other.already_processed
        self.enqueued += other.enqueued
        self.skipped += other.skipped
        self.unusable += other.unusable
        self.queued += other.queued
        self.failed |= other.failed

    def to_json(self) -> dict[str, Any]:
        return {
            "since": _twilio_time(self.since),
            "until": None if self.until is None else _twilio_time(self.until),
            "listed": self.listed,
            "already_processed": self.already_processed,
            "enqueued": self.enqueued,
            "skipped": self.skipped,
            "unusable": self.unusable,
            "queued": list(self.queued),
            "failed_accounts": dict(self.failed),
        }


def _twilio_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_recordings(
    twilio: TwilioVideo, since: datetime, until: datetime | None = None, *,
    page_size: int = PAGE_SIZE,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Every recording created at or after ``since`` (and before ``until``), page by page, as
    the JSON Twilio returned. Twilio's errors are raised as :mod:`workers.errors`."""
    params = {"DateCreatedAfter": _twilio_time(since), "PageSize": str(page_size)}
    if until is not None:
        params["DateCreatedBefore"] = _twilio_time(until)
    url: str | None = LIST_PATH
    seen: set[str] = set()
    for number in range(MAX_PAGES):
        if url is None:
            return
        what = f"page {number} of the recordings since {params['DateCreatedAfter']}"
        response = twilio.request("GET", url, what, params=params if number == 0 else None)
        recordings, url = read_page(response.text, "recordings", what)
        yield from recordings
        if url is not None:
            _check_next(url, twilio.base_url, seen)
    raise PermanentError(f"the listing of recordings did not end after {MAX_PAGES} pages")


def _check_next(url: str, base_url: str, seen: set[str]) -> None:
    # The next page is fetched with the account's credentials: only from Twilio's own host.
    here, there = urlsplit(base_url), urlsplit(url)
    if (there.scheme, there.netloc) != (here.scheme, here.netloc):
        raise PermanentError(f"next_page_url leaves {here.netloc}: {there.netloc}")
    if url in seen:
        raise PermanentError("next_page_url repeats a page already read")
    seen.add(url)


def reconcile(
    twilio: TwilioVideo, enqueuer: Publisher, since: datetime, until: datetime | None = None,
    progress: Callable[[int], None] | None = None, *, account_sid: str | None = None,
    now: datetime | None = None,
) -> Summary:  # fmt: skip
    """Queue the final event of every completed or failed recording created in
    [``since``, ``until``) that this service never processed. ``progress(1)`` is called per
    recording listed. Twilio's and the queue's errors propagate (a later run starts over:
    what was queued is then a duplicate)."""
    summary = Summary(since=since, until=until)
    for item in list_recordings(twilio, since, until):
        summary.listed += 1
        _one(item, enqueuer, summary, account_sid=account_sid, now=now)
        if progress is not None:
            progress(1)
    log.info(
        "reconciled recordings since %s: %d listed, %d queued, %d already processed, "
        "%d skipped, %d unusable",
        _twilio_time(since), summary.listed, summary.enqueued, summary.already_processed,
        summary.skipped, summary.unusable,
    )  # fmt: skip
    return summary


def reconcile_accounts(
    clients: TwilioClients, enqueuer: Publisher, since: datetime, until: datetime | None = None,
    progress: Callable[[int], None] | None = None, *, now: datetime | None = None,
) -> Summary:  # fmt: skip
    """:func:`reconcile` for every configured account in turn (``TWILIO_ACCOUNT_SID``, then
    each of ``TWILIO_ACCOUNTS``), each listed with its own credentials. An account whose
    listing fails on Twilio's side does not stop the others: it is named in ``failed`` (what it
    queued before the failure stays queued). The queue's errors propagate."""
    total = Summary(since=since, until=until)
    for twilio in clients.every_account():
        try:
            found = reconcile(twilio, enqueuer, since, until, progress,
                              account_sid=twilio.account_sid, now=now)  # fmt: skip
        except (TransientError, PermanentError) as exc:
            log.warning("reconcile of account %s failed; the next run covers it: %s",
                        twilio.account_sid, exc)  # fmt: skip
            total.failed[twilio.account_sid] = str(exc)
            continue
        total.add(found)
    return total


def _one(
    item: dict[str, Any], enqueuer: Publisher, summary: Summary, *, account_sid: str | None,
    now: datetime | None,
) -> None:  # fmt: skip
    try:
        recording: RoomRecording = _recordings.load(item)
    except ValidationError as exc:
        summary.unusable += 1
        log.warning("skipping recording %s: invalid resource %s", item.get("sid"), exc.messages)
        return
    if recording.status not in ("completed", "failed"):
        summary.skipped += 1  # its callback is still to come, or it no longer matters
        return
    try:
        message = stand_in_message(recording, source=SOURCE, account_sid=account_sid, now=now)
    except NotReplayable as exc:
        summary.unusable += 1
        log.warning("skipping recording %s: %s", recording.sid, exc)
        return
    if enqueuer.enqueue(message):
        summary.enqueued += 1
        summary.queued.append(recording.sid)
        log.info(
            "queued %s of recording %s room=%s id=%s: its callback never arrived",
            message.event.event, recording.sid, recording.room_sid, message.id,
        )  # fmt: skip
    else:
        summary.already_processed += 1
