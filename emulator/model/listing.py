"""List filters and keyset paging of recordings, free of HTTP.

Page tokens carry the sort key of the row they continue from, so pages stay stable while
recordings are added between requests.
"""

from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from emulator.errors import TwilioApiError
from emulator.model.formats import is_sid, parse_datetime
from emulator.model.rooms import RECORDING_STATUSES, TRACK_TYPES, Recording

ArgGetter = Callable[[str], list[str]]


@dataclass(frozen=True)
class RecordingFilter:
    status: str | None = None
    source_sid: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    grouping_sids: tuple[str, ...] = ()
    media_type: str | None = None
    # The original query parameters, repeated in page URLs.
    query: tuple[tuple[str, str], ...] = ()

    def matches(self, recording: Recording) -> bool:
        if self.status is None:
            if recording.status == "deleted":
                return False  # deleted recordings are listed only when asked for
        elif recording.status != self.status:
            return False
        if self.source_sid is not None and recording.source_sid != self.source_sid:
            return False
        if self.created_after is not None and recording.date_created < self.created_after:
            return False
        if self.created_before is not None and recording.date_created >= self.created_before:
            return False
        if self.media_type is not None and recording.type != self.media_type:
            return False
        groups = {recording.room_sid, recording.participant_sid}
        return all(sid in groups for sid in self.grouping_sids)


def _single(get: ArgGetter, name: str) -> str | None:
    values = get(name)
    return values[-1] if values else None


def parse_filter(get: ArgGetter, *, account_level: bool) -> RecordingFilter:
    """Read the list filters from query parameters; bad values raise a 400 TwilioApiError."""
    query: list[tuple[str, str]] = []
    status = _single(get, "Status")
    if status is not None:
        if status not in RECORDING_STATUSES:
            raise TwilioApiError.bad_parameter(f"Invalid Status: {status}")
        query.append(("Status", status))
    source_sid = _single(get, "SourceSid")
    if source_sid is not None:
        query.append(("SourceSid", source_sid))
    moments: dict[str, datetime | None] = {}
    for name in ("DateCreatedAfter", "DateCreatedBefore"):
        raw = _single(get, name)
        moments[name] = None
        if raw is not None:
            try:
                moments[name] = parse_datetime(raw)
            except ValueError as exc:
                raise TwilioApiError.bad_parameter(f"Invalid {name}: {raw}") from exc
            query.append((name, raw))
    media_type = None
    grouping: tuple[str, ...] = ()
    if account_level:
        media_type = _single(get, "MediaType")
        if media_type is not None:
            if media_type not in TRACK_TYPES:
                raise TwilioApiError.bad_parameter(f"Invalid MediaType: {media_type}")
            query.append(("MediaType", media_type))
        grouping = tuple(get("GroupingSid"))
        for sid in grouping:
            if not is_sid(sid):
                raise TwilioApiError.bad_parameter(f"Invalid GroupingSid: {sid}")
            query.append(("GroupingSid", sid))
    return RecordingFilter(
        status=status,
        source_sid=source_sid,
        created_after=moments["DateCreatedAfter"],
        created_before=moments["DateCreatedBefore"],
        grouping_sids=grouping,
        media_type=media_type,
        query=tuple(query),
    )


@dataclass(frozen=True)
class PageRequest:
    page_size: int
    page: int
    token: str | None


def parse_page_request(get: ArgGetter, *, max_size: int, default_size: int = 50) -> PageRequest:
    values: dict[str, int] = {}
    for name, default, low, high in (
        ("PageSize", default_size, 1, max_size),
        ("Page", 0, 0, None),
    ):
        raw = _single(get, name)
        try:
            value = default if raw is None else int(raw)
        except ValueError as exc:
            raise TwilioApiError.bad_parameter(f"Invalid {name}: {raw}") from exc
        if value < low or (high is not None and value > high):
            raise TwilioApiError.bad_parameter(f"Invalid {name}: {raw}")
        values[name] = value
    return PageRequest(values["PageSize"], values["Page"], _single(get, "PageToken"))


def _encode_token(direction: str, recording: Recording) -> str:
    payload = json.dumps([direction, recording.date_created.isoformat(), recording.sid])
    return "PT" + base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, tuple[datetime, str]]:
    try:
        if not token.startswith("PT"):
            raise ValueError(token)
        raw = token[2:]
        payload = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        direction, moment, sid = json.loads(payload)
        if direction not in ("after", "before"):
            raise ValueError(direction)
        return direction, (datetime.fromisoformat(moment), str(sid))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise TwilioApiError.bad_parameter(f"Invalid PageToken: {token}") from exc


@dataclass(frozen=True)
class Page:
    items: list[Recording]
    next_token: str | None
    previous_token: str | None
    has_next: bool
    has_previous: bool


def paginate(items: Sequence[Recording], request: PageRequest) -> Page:
    """Cut one page out of ``items`` (sorted by :meth:`Recording.sort_key`)."""
    keys = [item.sort_key() for item in items]
    if request.token is None:
        start = min(request.page * request.page_size, len(items))
        stop = min(start + request.page_size, len(items))
    else:
        direction, key = _decode_token(request.token)
        if direction == "after":
            start = bisect_right(keys, key)
            stop = min(start + request.page_size, len(items))
        else:
            stop = bisect_left(keys, key)
            start = max(0, stop - request.page_size)
    window = list(items[start:stop])
    has_next = bool(window) and stop < len(items)
    has_previous = bool(window) and start > 0
    return Page(
        items=window,
        next_token=_encode_token("after", window[-1]) if has_next else None,
        previous_token=_encode_token("before", window[0]) if has_previous else None,
        has_next=has_next,
        has_previous=has_previous,
    )


def page_meta(
    base: str, recording_filter: RecordingFilter, request: PageRequest, page: Page
) -> dict[str, object]:
    """The ``meta`` object of a list page; every URL absolute (``base`` is scheme+host+path)."""

    def url(page_number: int, token: str | None) -> str:
        query = [*recording_filter.query, ("PageSize", str(request.page_size))]
        query.append(("Page", str(page_number)))
        if token is not None:
            query.append(("PageToken", token))
        return f"{base}?{urlencode(query)}"

    return {
        "page": request.page,
        "page_size": request.page_size,
        "first_page_url": url(0, None),
        "previous_page_url": (
            url(max(request.page - 1, 0), page.previous_token) if page.has_previous else None
        ),
        "url": url(request.page, request.token),
        "next_page_url": url(request.page + 1, page.next_token) if page.has_next else None,
        "key": "recordings",
    }
