"""A recording's stand-in callback: the one Twilio would have sent for it, rebuilt from the
RoomRecording.

Reconciliation (:mod:`workers.recovery.reconcile`) and ``flask recordings replay`` process a
recording "as if its callback had arrived": they queue an :class:`EventMessage` made here. Its
id is the one the real callback gets (recording events are keyed by RecordingSid and event
name), so the real callback and its stand-in are de-duplicated against each other. The
parameters carry ``RoomrecSource`` (``reconcile`` or ``replay``) so a handler can tell them from
Twilio's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import ValidationError

from schemas import EventMessage, RoomRecording, load_callback
from schemas.fields import iso8601
from workers.delivery.dedup import event_id
from workers.errors import PermanentError

SOURCE_PARAM = "RoomrecSource"
EVENT_OF_STATUS = {"completed": "recording-completed", "failed": "recording-failed"}


class NotReplayable(PermanentError):
    """The recording cannot stand for a callback (not final yet, deleted, or incomplete)."""


def stand_in_params(
    recording: RoomRecording, *, source: str, account_sid: str | None = None,
    now: datetime | None = None,
) -> dict[str, str]:  # fmt: skip
    """The parameters of the final callback of ``recording``, as far as the resource tells.

    ``Timestamp`` is ``now``: when the event became known here, since the resource does not
    say when it completed. What Twilio sends and the resource lacks (RoomName, RoomType,
    ParticipantIdentity, FailedOperation) is left out; the schemas do not require it.
    """
    event = EVENT_OF_STATUS.get(recording.status)
    if event is None:
        raise NotReplayable(
            f"recording {recording.sid} is {recording.status}: only completed or failed "
            "recordings have a final callback"
        )
    if recording.room_sid is None:
        raise NotReplayable(f"recording {recording.sid} names no room (grouping_sids.room_sid)")
    sid = recording.sid
    params = {
        "AccountSid": recording.account_sid or account_sid or "",
        "RoomSid": recording.room_sid,
        "RecordingSid": sid,
        "StatusCallbackEvent": event,
        "Timestamp": iso8601(now or datetime.now(UTC)),
        "RecordingUri": f"/v1/Recordings/{sid}",
        SOURCE_PARAM: source,
    }
    optional = {
        "SourceSid": recording.source_sid,
        "ParticipantSid": recording.participant_sid,
        "TrackName": recording.track_name,
        "Type": recording.type,
        "Codec": recording.codec,
        "Container": recording.container_format,
        "OffsetFromTwilioVideoEpoch": recording.offset,
    }
    if event == "recording-completed":
        optional |= {
            "MediaUri": f"/v1/Recordings/{sid}/Media",
            "Size": recording.size,
            "Duration": recording.duration,
            "MediaExternalLocation": recording.media_external_location,
        }
    params |= {name: str(value) for name, value in optional.items() if value is not None}
    return params


def stand_in_message(
    recording: RoomRecording, *, source: str, account_sid: str | None = None,
    now: datetime | None = None,
) -> EventMessage:  # fmt: skip
    """The :class:`EventMessage` of :func:`stand_in_params`, validated as a callback is.

    An optional parameter the callback schema refuses (a ``source_sid`` that is no MT SID,
    say) is left out rather than losing the event; a bad required one raises NotReplayable.
    """
    moment = now or datetime.now(UTC)
    params = stand_in_params(recording, source=source, account_sid=account_sid, now=moment)
    try:
        event = load_callback(params)
    except ValidationError as first:
        refused = set(first.messages) if isinstance(first.messages, dict) else set()
        params = {name: value for name, value in params.items() if name not in refused}
        try:
            event = load_callback(params)
        except ValidationError as exc:
            raise NotReplayable(
                f"recording {recording.sid} gives no valid callback: {exc.messages}"
            ) from exc
    return EventMessage(id=event_id(params), event=event, received_at=moment)
