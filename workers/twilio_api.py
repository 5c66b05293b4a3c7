"""Twilio's Video REST API, through twilio-python's client.

The one place where HTTP answers and ``requests`` errors become :mod:`workers.errors`:
429, 5xx, timeouts and dropped connections are transient; 401/403 and other 4xx permanent;
a 404 is :class:`NotFoundYet` (a resource a callback announced may lag behind it).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from marshmallow import ValidationError
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from schemas import RoomRecording, RoomRecordingSchema
from schemas.settings import WorkerSettings
from workers import metrics
from workers.errors import NotFoundYet, PermanentError, TransientError

log = logging.getLogger(__name__)

# twilio-python logs every response's headers at INFO; a media redirect's Location is a signed
# URL that must never reach a log, so its client logs through a logger that drops INFO.
_quiet_http_log = logging.getLogger("roomrec.twilio_http")
_quiet_http_log.setLevel(logging.WARNING)

_recording_schema = RoomRecordingSchema()


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), if any."""
    value = (headers or {}).get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _twilio_message(response: Response) -> str:
    try:
        body = json.loads(response.text)
        return f"code {body.get('code')}: {body.get('message')}"
    except (ValueError, AttributeError):
        return "no Twilio error body"


def check(response: Response, what: str) -> Response:
    """Raise the project's error for a non-2xx/3xx answer to ``what``."""
    status = response.status_code
    if status < 400:
        return response
    detail = f"Twilio answered {status} to {what} ({_twilio_message(response)})"
    if status == 404:
        raise NotFoundYet(detail)
    if status == 429 or status >= 500 or status == 408:
        raise TransientError(detail, retry_after=retry_after_seconds(response.headers))
    raise PermanentError(detail)


class TwilioVideo:
    """Calls to ``video.twilio.com`` (or ``TWILIO_VIDEO_BASE_URL``) with the configured
    credentials: the API key when set, else the account SID and auth token."""

    def __init__(self, settings: WorkerSettings, *, client: Client | None = None) -> None:
        self.base_url = settings.twilio_video_base_url.rstrip("/")
        self.timeout = settings.twilio_timeout
        if client is None:
            username, password = settings.twilio_credentials
            http = TwilioHttpClient(timeout=self.timeout, logger=_quiet_http_log)
            client = Client(username, password, account_sid=settings.twilio_account_sid,
                            http_client=http)  # fmt: skip
        self.client = client

    def request(self, method: str, url: str, what: str, **kwargs: Any) -> Response:
        """One request; connection errors and timeouts become :class:`TransientError`."""
        if url.startswith("/"):
            url = self.base_url + url
        try:
            response = self.client.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            raise TransientError(f"Twilio timed out on {what}") from exc
        except requests.ConnectionError as exc:
            raise TransientError(f"connection to Twilio failed on {what}") from exc
        except requests.RequestException as exc:
            raise TransientError(
                f"request to Twilio failed on {what}: {type(exc).__name__}"
            ) from exc
        log.debug("twilio %s %s -> %s", method, what, response.status_code)
        metrics.twilio_response(response.status_code)
        return check(response, what)

    def fetch_recording(self, room_sid: str, recording_sid: str) -> RoomRecording:
        """``GET /v1/Rooms/{room_sid}/Recordings/{recording_sid}``, validated."""
        what = f"fetch of recording {recording_sid}"
        response = self.request("GET", f"/v1/Rooms/{room_sid}/Recordings/{recording_sid}", what)
        return load_recording(response.text, what)

    def media_url(self, room_sid: str, recording_sid: str) -> str:
        """The signed URL of a recording's media: ``…/Media`` answers 302, not followed, with
        ``Location`` and ``{"redirect_to": …}``. The URL is a secret: never log it."""
        what = f"media of recording {recording_sid}"
        path = f"/v1/Rooms/{room_sid}/Recordings/{recording_sid}/Media"
        response = self.request("GET", path, what)
        location = (response.headers or {}).get("Location")
        if not location:
            try:
                body = json.loads(response.text)
                location = body.get("redirect_to") if isinstance(body, dict) else None
            except ValueError:
                location = None
        if not isinstance(location, str) or not location:
            raise PermanentError(f"Twilio answered {response.status_code} to {what} without a URL")
        return location

    def delete_recording(self, room_sid: str, recording_sid: str) -> bool:
        """``DELETE`` the recording (its media; Twilio keeps the metadata 30 days). False when
        it was already gone (404)."""
        what = f"delete of recording {recording_sid}"
        try:
            self.request("DELETE", f"/v1/Rooms/{room_sid}/Recordings/{recording_sid}", what)
        except NotFoundYet:
            return False
        return True


def load_recording(text: str, what: str) -> RoomRecording:
    """Parse and validate a RoomRecording; anything malformed is permanent."""
    try:
        body = json.loads(text)
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        recording: RoomRecording = _recording_schema.load(body)
    except ValidationError as exc:
        raise PermanentError(f"invalid RoomRecording from {what}: {exc.messages}") from exc
    except (ValueError, RecursionError) as exc:
        raise PermanentError(f"unreadable JSON from {what}: {type(exc).__name__}") from exc
    return recording
