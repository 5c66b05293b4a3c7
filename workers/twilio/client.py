"""Twilio's Video REST API: its resources fetched, listed and created with one account's
credentials (HTTP Basic: the API key when set, else the account SID and auth token).

Every call is one request through the process' :class:`workers.outbound.http.Pool` (urllib3,
keep-alive, the environment's proxies and CA bundle): the fetch of a RoomRecording is one of
the two requests each ``recording-completed`` costs, and twilio-python's client (through
requests) spent about 0.4 ms of CPU more on each. Redirects are not followed (a ``…/Media``
answer's ``Location`` is the signed URL, which is returned, never requested here).

Its HTTP answers and urllib3's errors become :mod:`workers.errors` through that module's
map: 429, 5xx, timeouts and dropped connections are transient; 401/403 and other 4xx
permanent; a 404 is :class:`NotFoundYet` (a resource a callback announced may lag behind it).
Error messages name the request (``what``), never its URL.

With ``TWILIO_MAX_CONCURRENCY`` every request holds a slot of :mod:`workers.twilio.limiter`, shared
by all worker processes. A 429 seen there shrinks the limit, and the request (which Twilio
did not process) waits for a slot again, up to :data:`THROTTLED_RETRIES` times, instead of
failing its task into the retry queue.

Each account (``TWILIO_ACCOUNT_SID``, and every one of ``TWILIO_ACCOUNTS``) has a client of its
own, with its own credentials and limiter: :class:`TwilioClients` picks it by the event's
``AccountSid``.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import redis
import urllib3
from marshmallow import Schema, ValidationError
from twilio.http.response import Response
from urllib3.util import make_headers

from schemas import RoomRecording, RoomRecordingSchema
from schemas.accounts import TwilioAccount
from schemas.composition import Composition, CompositionSchema
from schemas.settings import WorkerSettings
from workers.errors import NotFoundYet, PermanentError, for_status, retry_after_seconds, translate
from workers.observability import metrics
from workers.outbound.http import Pool
from workers.twilio.limiter import TwilioLimiter, limiter_client, limiter_from_settings

log = logging.getLogger(__name__)

USER_AGENT = "roomrec-worker/1"
_recording_schema = RoomRecordingSchema()
THROTTLED_RETRIES = 3  # 429s a request waits out in place under the limiter before failing


def _twilio_message(response: Response) -> str:
    try:
        body = json.loads(response.text)
        return f"code {body.get('code')}: {body.get('message')}"
    except (ValueError, AttributeError):
        return "no Twilio error body"


def check(response: Response, what: str) -> Response:
    """Raise the project's error for a non-2xx/3xx answer to ``what``."""
    status = response.status_code
    if status < 400:  # a 3xx is an answer too: the media's signed URL
        return response
    detail = f"Twilio answered {status} to {what} ({_twilio_message(response)})"
    raise for_status(status, detail, headers=response.headers, lag=True)


class TwilioVideo:
    """Calls to ``video.twilio.com`` (or ``TWILIO_VIDEO_BASE_URL``) with one account's
    credentials (``account``, default the main account of ``TWILIO_ACCOUNT_SID``): its API key
    when set, else its account SID and auth token. :class:`TwilioClients` keeps one per
    account. ``http``: the process' pool (the credentials go with each request, so accounts
    share its connections); a pool of its own when not given."""

    def __init__(
        self, settings: WorkerSettings, *, account: TwilioAccount | None = None,
        limiter: TwilioLimiter | None = None, http: Pool | None = None,
    ) -> None:  # fmt: skip
        account = account if account is not None else settings.accounts.main
        assert account is not None and account.account_sid is not None  # a worker knows it
        self.account_sid: str = account.account_sid
        self.base_url = settings.twilio_video_base_url.rstrip("/")
        self.timeout = settings.twilio_timeout
        self.http = http if http is not None else Pool()
        username, password = account.credentials
        self._headers = make_headers(basic_auth=f"{username}:{password}") | {
            "Accept": "application/json", "Accept-Charset": "utf-8", "User-Agent": USER_AGENT,
        }  # fmt: skip
        self.limiter = (
            limiter if limiter is not None else limiter_from_settings(settings, self.account_sid)
        )

    def request(
        self, method: str, url: str, what: str, *, params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
    ) -> Response:  # fmt: skip
        """One request (``params``: the query, ``data``: a form body), through the limiter
        when there is one; connection errors and timeouts become
        :class:`workers.errors.TransientError`."""
        if url.startswith("/"):
            url = self.base_url + url
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        headers, body = self._headers, None
        if data is not None:
            headers = headers | {"Content-Type": "application/x-www-form-urlencoded"}
            body = urlencode(data).encode()
        if self.limiter is None:
            return check(self._send(method, url, what, headers, body), what)
        for attempt in range(THROTTLED_RETRIES + 1):
            with self.limiter.slot(what) as slot:
                response = self._send(method, url, what, headers, body)
                if response.status_code == 429:
                    slot.refused(retry_after_seconds(response.headers))
            if response.status_code != 429 or attempt == THROTTLED_RETRIES:
                break
            log.debug("Twilio refused %s with 429; waiting for a slot again", what)
        return check(response, what)

    def _send(
        self, method: str, url: str, what: str, headers: dict[str, str], body: bytes | None
    ) -> Response:
        try:
            answer = self.http.request(method, url, headers=headers, body=body,
                                       timeout=self.timeout)  # fmt: skip
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate(exc, f"Twilio request for {what}") from exc
        log.debug("twilio %s %s -> %s", method, what, answer.status)
        metrics.twilio_response(answer.status)
        return Response(answer.status, answer.data.decode("utf-8", "replace"), answer.headers)

    def fetch_recording(self, room_sid: str, recording_sid: str) -> RoomRecording:
        """``GET /v1/Rooms/{room_sid}/Recordings/{recording_sid}``, validated."""
        what = f"fetch of recording {recording_sid}"
        response = self.request("GET", f"/v1/Rooms/{room_sid}/Recordings/{recording_sid}", what)
        return load_recording(response.text, what)

    def media_url(self, room_sid: str, recording_sid: str) -> str:
        """The signed URL of a recording's media: ``…/Media`` answers 302, not followed, with
        ``Location`` and ``{"redirect_to": …}``. The URL is a secret: never log it. Where it
        may lead is checked by the download (:func:`workers.archive.media.open_media`)."""
        what = f"media of recording {recording_sid}"
        path = f"/v1/Rooms/{room_sid}/Recordings/{recording_sid}/Media"
        return _redirect_location(self.request("GET", path, what), what, self.base_url + path)

    def delete_recording(self, room_sid: str, recording_sid: str) -> bool:
        """``DELETE`` the recording (its media; Twilio keeps the metadata 30 days). False when
        it was already gone (404)."""
        what = f"delete of recording {recording_sid}"
        try:
            self.request("DELETE", f"/v1/Rooms/{room_sid}/Recordings/{recording_sid}", what)
        except NotFoundYet:
            return False
        return True

    # Room completion and compositions (workers.pipeline.rooms, workers.pipeline.compositions).

    def list_room_recordings(self, room_sid: str) -> list[RoomRecording]:
        """Every recording of the room Twilio lists (``GET /v1/Rooms/{room_sid}/Recordings``,
        page after page; deleted recordings are not listed), validated."""
        items = self._list_items(
            f"/v1/Rooms/{room_sid}/Recordings", {"PageSize": str(ROOM_PAGE_SIZE)},
            "recordings", f"the recordings of room {room_sid}",
        )  # fmt: skip
        return [load_recording(json.dumps(item), what) for item, what in items]

    def _list_items(
        self, url: str, params: dict[str, str], key: str, label: str
    ) -> list[tuple[dict[str, Any], str]]:
        """Every item under ``key`` of a Twilio list, page after page (each ``next_page_url``
        only on Twilio's own host), with the page it came from for error messages."""
        next_url: str | None = url
        query: dict[str, str] | None = params
        found: list[tuple[dict[str, Any], str]] = []
        for number in range(MAX_ROOM_PAGES):
            if next_url is None:
                return found
            what = f"page {number} of {label}"
            response = self.request("GET", next_url, what, params=query)
            items, next_url = read_page(response.text, key, what)
            found += [(item, what) for item in items]
            query = None  # next_page_url carries the query
            if next_url is not None:
                _same_origin(next_url, self.base_url)
        raise PermanentError(f"{label} did not end after {MAX_ROOM_PAGES} pages")

    def fetch_composition(self, composition_sid: str) -> Composition:
        """``GET /v1/Compositions/{composition_sid}``, validated."""
        what = f"fetch of composition {composition_sid}"
        response = self.request("GET", f"/v1/Compositions/{composition_sid}", what)
        return load_composition(response.text, what)

    def list_compositions(self, room_sid: str) -> list[Composition]:
        """The room's compositions (``GET /v1/Compositions?RoomSid=…``), every page."""
        items = self._list_items(
            "/v1/Compositions", {"RoomSid": room_sid, "PageSize": "100"}, "compositions",
            f"the compositions of room {room_sid}",
        )  # fmt: skip
        return [load_composition(json.dumps(item), what) for item, what in items]

    def create_composition(self, form: dict[str, str]) -> Composition:
        """``POST /v1/Compositions``. Not idempotent at Twilio: the caller makes sure it runs
        once (see :mod:`workers.pipeline.compositions`)."""
        what = f"creation of a composition of room {form.get('RoomSid')}"
        response = self.request("POST", "/v1/Compositions", what, data=form)
        return load_composition(response.text, what)

    def composition_media_url(self, composition_sid: str) -> str:
        """The signed URL of a composition's media (``…/Media`` answers 302, not followed).
        The URL is a secret: never log it."""
        what = f"media of composition {composition_sid}"
        path = f"/v1/Compositions/{composition_sid}/Media"
        return _redirect_location(self.request("GET", path, what), what, self.base_url + path)


class UnknownAccount(PermanentError):
    """An event of an account this deployment has no credentials for (not in
    ``TWILIO_ACCOUNTS``): nothing of it can be fetched, so it is dead-lettered at once."""


class TwilioClients:
    """One :class:`TwilioVideo` per account, made on first use and kept for the process.

    With ``TWILIO_ACCOUNTS`` set, each event's ``AccountSid`` picks its account and an account
    not configured raises :class:`UnknownAccount`. Without it (one account, as before that
    variable) every event is the main account's: the web accepted it with that account's
    token, whatever ``AccountSid`` it names. Every client goes through ``http`` (a worker's
    :class:`Pool`; one made on first use when not given).
    """

    def __init__(self, settings: WorkerSettings, *, http: Pool | None = None) -> None:
        self.settings = settings
        self.accounts = settings.accounts
        self._clients: dict[str, TwilioVideo] = {}
        self._lock = threading.Lock()
        self._http = http
        self._limiter_redis: redis.Redis | None = None

    @property
    def main(self) -> TwilioVideo:
        """The client of the main account (``TWILIO_ACCOUNT_SID``)."""
        return self.for_account(self.settings.twilio_account_sid)

    def account(self, account_sid: str | None) -> TwilioAccount:
        """The configured account of ``account_sid`` (None: the main account)."""
        main = self.accounts.main
        assert main is not None  # a worker always has its main account
        if account_sid is None:
            return main
        found = self.accounts.get(account_sid)
        if found is not None:
            return found
        if not self.accounts.multi:
            return main
        raise UnknownAccount(
            f"account {account_sid} is not configured here (neither TWILIO_ACCOUNT_SID nor in "
            "TWILIO_ACCOUNTS): no credentials to call Twilio with"
        )

    def for_account(self, account_sid: str | None) -> TwilioVideo:
        """The client of ``account_sid``'s account; raises :class:`UnknownAccount`."""
        account = self.account(account_sid)
        assert account.account_sid is not None
        with self._lock:
            client = self._clients.get(account.account_sid)
            if client is None:
                client = self._make(account)
                self._clients[account.account_sid] = client
            return client

    def every_account(self) -> list[TwilioVideo]:
        """A client per configured account, the main one first (reconciliation)."""
        return [self.for_account(account.account_sid) for account in self.accounts]

    def _make(self, account: TwilioAccount) -> TwilioVideo:
        if self._http is None:
            self._http = Pool()
        limiter = None
        if self.settings.twilio_max_concurrency is not None:
            if self._limiter_redis is None:
                self._limiter_redis = limiter_client(self.settings)
            limiter = limiter_from_settings(
                self.settings, account.account_sid, client=self._limiter_redis
            )
        return TwilioVideo(self.settings, account=account, limiter=limiter, http=self._http)


def _load_resource(text: str, what: str, schema: Schema, kind: str) -> Any:
    """Parse and validate a resource's JSON with ``schema``; anything malformed is permanent."""
    try:
        body = json.loads(text)
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        return schema.load(body)
    except ValidationError as exc:
        raise PermanentError(f"invalid {kind} from {what}: {exc.messages}") from exc
    except (ValueError, RecursionError) as exc:
        raise PermanentError(f"unreadable JSON from {what}: {type(exc).__name__}") from exc


def load_recording(text: str, what: str) -> RoomRecording:
    """Parse and validate a RoomRecording; anything malformed is permanent."""
    recording: RoomRecording = _load_resource(text, what, _recording_schema, "RoomRecording")
    return recording


# Room completion and compositions (appended; used by the methods above).
ROOM_PAGE_SIZE = 1000  # the most /v1/Rooms/{RoomSid}/Recordings serves per page
MAX_ROOM_PAGES = 1000
_composition_schema = CompositionSchema()


def load_composition(text: str, what: str) -> Composition:
    """Parse and validate a Composition; anything malformed is permanent."""
    composition: Composition = _load_resource(text, what, _composition_schema, "Composition")
    return composition


def read_page(text: str, key: str, what: str) -> tuple[list[dict[str, Any]], str | None]:
    """The items under ``key`` of one list page, and its ``next_page_url``."""
    try:
        page = json.loads(text)
        items = page[key]
        next_url = page["meta"].get("next_page_url")
        if not isinstance(items, list) or not isinstance(next_url, str | None):
            raise TypeError("unexpected page shape")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PermanentError(f"unreadable {what}: {type(exc).__name__}") from exc
    return [item for item in items if isinstance(item, dict)], next_url


def _same_origin(url: str, base_url: str) -> None:
    # A next page is fetched with the account's credentials: only from Twilio's own host.
    here, there = urlsplit(base_url), urlsplit(url)
    if (there.scheme, there.netloc) != (here.scheme, here.netloc):
        raise PermanentError(f"next_page_url leaves {here.netloc}: {there.netloc}")


def _redirect_location(response: Response, what: str, url: str) -> str:
    """The absolute URL a ``…/Media`` answer (to ``url``) points at; a relative ``Location``
    is resolved against ``url``, as a browser would."""
    location = (response.headers or {}).get("Location")
    if not location:
        try:
            body = json.loads(response.text)
            location = body.get("redirect_to") if isinstance(body, dict) else None
        except ValueError:
            location = None
    if not isinstance(location, str) or not location:
        raise PermanentError(f"Twilio answered {response.status_code} to {what} without a URL")
    return urljoin(url, location)
