"""Test callbacks: realistic room status callback parameters, signed as Twilio signs them.

``flask --app webhooks send-test-callback URL`` sends one to a deployment, so a user can check
the URL, the proxy in front of it and the auth token end to end. The parameters follow the
captured payloads Twilio sends per event, with fresh SIDs each time (never a duplicate) and
``RoomrecSource=test-callback`` so a handler can tell a test from a real event.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

import requests
from twilio.request_validator import RequestValidator

from schemas import CALLBACK_SCHEMAS
from schemas.fields import iso8601
from webhooks.intake.signature import SIGNATURE_HEADER

EVENTS = tuple(CALLBACK_SCHEMAS)
SOURCE = "test-callback"
USER_AGENT = "TwilioProxy/1.1 (roomrec send-test-callback)"


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def callback_params(
    event: str, *, account_sid: str, room_sid: str | None = None,
    recording_sid: str | None = None, now: datetime | None = None,
) -> dict[str, str]:  # fmt: skip
    """The parameters Twilio sends for ``event`` (one of :data:`EVENTS`)."""
    if event not in CALLBACK_SCHEMAS:
        raise ValueError(f"unknown event {event!r}; one of: {', '.join(EVENTS)}")
    room = room_sid or new_sid("RM")
    params = {
        "AccountSid": account_sid,
        "RoomSid": room,
        "RoomName": "roomrec-test-callback",
        "RoomType": "group",
        "StatusCallbackEvent": event,
        "Timestamp": iso8601(now or datetime.now(UTC)),
        "RoomrecSource": SOURCE,
    }
    family = event.split("-", 1)[0]
    if family == "recording":
        params.update(_recording(event, recording_sid or new_sid("RT")))
        return params
    if family == "composition":
        params.update(_composition(event))
        return params
    params |= {"RoomStatus": "completed" if event == "room-ended" else "in-progress",
               "SequenceNumber": "0"}  # fmt: skip
    if event == "room-ended":
        params["RoomDuration"] = "1800"
    if family in ("participant", "track"):
        disconnected = event == "participant-disconnected"
        params |= {
            "ParticipantSid": new_sid("PA"),
            "ParticipantStatus": "disconnected" if disconnected else "connected",
            "ParticipantIdentity": "roomrec-tester",
        }
        if disconnected:
            params["ParticipantDuration"] = "42"
    if family == "track":
        params |= {"TrackSid": new_sid("MT"), "TrackKind": "video"}
    return params


def _recording(event: str, recording: str) -> dict[str, str]:
    params = {
        "RecordingSid": recording,
        "RecordingUri": f"/v1/Recordings/{recording}",
        "SourceSid": new_sid("MT"),
        "ParticipantSid": new_sid("PA"),
        "ParticipantIdentity": "roomrec-tester",
        "TrackName": "camera",
        "Codec": "vp8",
        "Container": "mkv",
        "Type": "video",
        "OffsetFromTwilioVideoEpoch": "155137307765",
    }
    if event == "recording-completed":
        params |= {"MediaUri": f"/v1/Recordings/{recording}/Media", "Size": "105956",
                   "Duration": "3"}  # fmt: skip
    elif event == "recording-failed":
        params["FailedOperation"] = "RecordingUpload"
    return params


def _composition(event: str) -> dict[str, str]:
    composition = new_sid("CJ")
    params = {"CompositionSid": composition, "CompositionUri": f"/v1/Compositions/{composition}"}
    if event == "composition-progress":
        params |= {"PercentageDone": "50", "SecondsRemaining": "30"}
    elif event == "composition-available":
        params |= {"MediaUri": f"/v1/Compositions/{composition}/Media", "Size": "1234567",
                   "Duration": "1800"}  # fmt: skip
    elif event in ("composition-failed", "composition-hook-failed"):
        params |= {"FailedOperation": "Composition", "ErrorMessage": "roomrec test callback"}
    if event == "composition-hook-failed":
        params["HookSid"] = new_sid("HK")
    return params


@dataclass(frozen=True)
class SignedCallback:
    """A request ready to send: for a GET the parameters are in ``url`` and ``data`` is None."""

    method: str
    url: str
    data: dict[str, str] | None
    headers: dict[str, str]


def sign(url: str, params: dict[str, str], token: str, method: str = "POST") -> SignedCallback:
    """Sign as Twilio does: a POST over the URL and its sorted parameters, a GET over the URL
    with the parameters in its query string."""
    validator = RequestValidator(token)
    if method == "GET":
        query = urlencode(params)
        full = f"{url}{'&' if urlsplit(url).query else '?'}{query}"
        signature = validator.compute_signature(full, {})
        return SignedCallback("GET", full, None, _headers(signature))
    signature = validator.compute_signature(url, params)
    return SignedCallback("POST", url, params, _headers(signature))


def _headers(signature: str) -> dict[str, str]:
    return {SIGNATURE_HEADER: signature, "User-Agent": USER_AGENT}


def send(callback: SignedCallback, *, timeout: float,
         session: requests.Session | None = None) -> requests.Response:  # fmt: skip
    """Send ``callback``; a redirect is reported, not followed."""
    http = session or requests.Session()
    try:
        return http.request(
            callback.method, callback.url, data=callback.data, headers=callback.headers,
            timeout=timeout, allow_redirects=False,
        )  # fmt: skip
    finally:
        if session is None:
            http.close()
