"""The room status callback endpoint: read, verify the signature, validate, enqueue, answer.

The order is deliberate. A Host this service does not answer for (``ALLOWED_HOSTS``) and
missing HTTP Basic credentials (``TWILIO_WEBHOOK_BASIC_AUTH``) are refused before anything is
read. What cannot be read (wrong content type, too large, not UTF-8) is refused next: there is
nothing to verify. Then the signature, before anything about the
parameters is looked at, so a forged request learns nothing about them. Then the schema.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, Flask, Request, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from schemas import RECORDING_EVENTS, EventMessage
from webhooks.app_state import app_state
from webhooks.errors import UnknownAccount, UnsupportedContentType
from webhooks.intake.access import check_basic_auth, check_host
from webhooks.intake.context import note_callback
from webhooks.intake.freshness import check_timestamp
from webhooks.intake.params import decode_query, load_event, parse_params, single_valued
from webhooks.intake.signature import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    account_sid_of,
    callback_url,
    check_signature,
    with_userinfo,
)
from webhooks.intake.spool import Relay, Spool
from webhooks.intake.state import INTAKE_STATE_KEY, IntakeState, intake_state
from workers.service.intake import BrokerUnavailable, event_id

log = logging.getLogger(__name__)

CALLBACK_PATH = "/twilio/room-events"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
DUPLICATE_HEADER = "X-Roomrec-Duplicate"
SPOOLED_HEADER = "X-Roomrec-Spooled"

bp = Blueprint("callbacks", __name__)


def init_app(app: Flask) -> None:
    """Register the callback endpoint on ``app`` (after the app's state), with the local spool
    at ``SPOOL_PATH``: opened now, so a path that cannot be opened fails at start-up; what a
    previous run left in it is relayed as soon as the queue answers."""
    shared = app_state(app)
    settings = shared.settings
    spool = Spool(Path(settings.spool_path), max_events=settings.spool_max_events)
    relay = Relay(spool, shared.enqueuer.enqueue)
    if spool.pending():
        relay.ensure_running()
    app.extensions[INTAKE_STATE_KEY] = IntakeState(
        settings=settings, enqueuer=shared.enqueuer, spool=spool, relay=relay
    )
    app.register_blueprint(bp)


@bp.route(CALLBACK_PATH, methods=["GET", "POST"])
def room_event() -> Response:
    """One room status callback: POST (form body) or GET (query string)."""
    state = intake_state()
    _check_access(state)
    query = decode_query(request.query_string)
    if request.method == "POST":
        signed = received = _form_params(request)
    else:  # Twilio signs a GET's URL alone; the parameters are in it
        signed, received = [], parse_params(request.query_string, source="query string")
    note_callback(received)
    _check_signature(state, query, signed, received)

    params = single_valued(received)
    event = load_event(params)
    check_timestamp(event.timestamp, state.settings)  # a replay: too old by its Timestamp
    name = params["StatusCallbackEvent"]
    message = EventMessage(
        id=event_id(params),
        event=event,
        received_at=datetime.now(UTC),
        idempotency_token=request.headers.get(IDEMPOTENCY_HEADER),
    )
    spooled = False
    try:
        if state.spool.pending():  # keep the order: behind what waits in the spool
            raise BrokerUnavailable("events are waiting in the spool")
        fresh = state.enqueuer.enqueue(message)
    except BrokerUnavailable as exc:
        state.spool.append(message)  # SpoolError (503) only when the disk refuses too
        state.relay.ensure_running()
        state.relay.wake.set()
        log.warning("queue unavailable (%s): spooled %s id=%s", exc, name, message.id)
        fresh = spooled = True

    # Logged from the raw parameters, which the schema has checked (RecordingSid only for
    # recording events: elsewhere it is an unchecked extra).
    recording = params.get("RecordingSid") if name in RECORDING_EVENTS else None
    log.info(
        "%s %s room=%s recording=%s id=%s",
        "accepted" if fresh else "duplicate, not queued again:",
        name,
        params["RoomSid"],
        recording,
        message.id,
    )
    response = Response(status=204)
    del response.headers["Content-Type"]  # no content, no type
    if not fresh:
        response.headers[DUPLICATE_HEADER] = "1"
    if spooled:
        response.headers[SPOOLED_HEADER] = "1"
    return response


def _check_access(state: IntakeState) -> None:
    """The request's Host (when ``ALLOWED_HOSTS`` is set) and its Basic credentials (when
    ``TWILIO_WEBHOOK_BASIC_AUTH`` is)."""
    if state.settings.allowed_hosts:
        check_host(request.host, request.scheme, state.settings.allowed_hosts)
    if state.basic_auth is not None:
        auth = request.authorization
        given = None
        if auth is not None and auth.type == "basic":
            given = (auth.username or "", auth.password or "")
        check_basic_auth(given, *state.basic_auth)


def _check_signature(
    state: IntakeState, query: str, signed: list[tuple[str, str]], received: list[tuple[str, str]]
) -> None:
    """The signature, with the tokens of the callback's ``AccountSid`` or the SharedKey its
    ``X-Twilio-Webhooks-Signature-Settings`` names."""
    account_sid = account_sid_of(received)
    tokens = state.tokens_for(account_sid)
    if tokens is None:
        raise UnknownAccount(
            "The callback's AccountSid is not an account this service serves.",
            reason=f"AccountSid {account_sid!r} not configured",
        )
    url = callback_url(
        scheme=request.scheme,
        host=request.host,
        root_path=request.root_path,
        path=request.path,
        query_string=query,
        public_base_url=state.settings.public_base_url,
    )
    urls = [url] if state.basic_auth is None else [url, with_userinfo(url, *state.basic_auth)]
    check_signature(
        urls,
        signed,
        request.headers.get(SIGNATURE_HEADER),
        settings_header=request.headers.get(SIGNATURE_SETTINGS_HEADER),
        tokens=tokens,
        shared_keys=state.shared_keys,
    )


def _form_params(req: Request) -> list[tuple[str, str]]:
    if req.mimetype != FORM_MEDIA_TYPE:
        raise UnsupportedContentType(
            f"A callback is sent as {FORM_MEDIA_TYPE}.",
            reason=f"content type {req.mimetype!r}",
        )
    body = req.get_data(cache=False)  # 413 when Content-Length is over MAX_CONTENT_LENGTH
    limit = req.max_content_length
    if req.content_length is None and limit is not None and len(body) >= limit:
        # A body without Content-Length (chunked) is cut at the limit by werkzeug, silently.
        raise RequestEntityTooLarge()
    return parse_params(body)
