"""The read API over the store: ``GET /recordings`` and ``GET /recordings/{sid}``.

Every request needs ``Authorization: Bearer <API_TOKEN>``. Without ``API_TOKEN`` the API is
off: its routes answer ``404`` as if they did not exist. Filters are checked by
:class:`schemas.api.RecordingFiltersSchema` (a bad one is a ``400`` naming it). Redis (handler
outcomes, archive locations) is given about ``ENQUEUE_TIMEOUT`` seconds, the database its own
connect and busy timeouts; either failing is a ``503``.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
from flask import Blueprint, Flask, Response, abort, current_app, request, url_for
from marshmallow import ValidationError

from schemas.api import (
    Cursor,
    RecordingDetailSchema,
    RecordingFiltersSchema,
    RecordingPageSchema,
)
from schemas.fields import Sid, messages_by_name
from schemas.settings import WebSettings
from webhooks.app_state import app_state
from webhooks.errors import ServiceUnavailable, WebError
from workers.service import reads

STATE_KEY = "roomrec.api"
REALM = 'Bearer realm="roomrec"'
T = TypeVar("T")

bp = Blueprint("api", __name__)
_filters = RecordingFiltersSchema()
_page = RecordingPageSchema()
_detail = RecordingDetailSchema()
_recording_sid = Sid("RT")


class Unauthorized(WebError):
    """No bearer token, or not the API's."""

    status = 401
    slug = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str, *, invalid: bool) -> None:
        super().__init__(detail)
        self.invalid = invalid

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": REALM + (', error="invalid_token"' if self.invalid else "")}


class InvalidFilter(WebError):
    """A query parameter of the API is unknown, repeated or malformed; ``errors`` names it."""

    slug = "invalid-filter"
    title = "Invalid filter"


class RecordingNotFound(WebError):
    status = 404
    slug = "recording-not-found"
    title = "Recording not found"


class ApiUnavailable(ServiceUnavailable):
    """The database or Redis did not answer in time (or the schema is not migrated)."""

    slug = "api-unavailable"


@dataclass
class ApiState:
    """The API's collaborators, built on first use: creating the app connects nothing."""

    settings: WebSettings
    _store: reads.Store | None = None
    _redis: redis.Redis | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def store(self) -> reads.Store:
        with self._lock:
            if self._store is None:
                self._store = reads.open_store(self.settings.database_url)
            return self._store

    @property
    def redis(self) -> redis.Redis:
        with self._lock:
            if self._redis is None:
                self._redis = reads.open_redis(
                    self.settings.redis_url,
                    sentinel=self.settings.redis_sentinel,
                    timeout=self.settings.enqueue_timeout,
                )
            return self._redis

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._redis is not None:
            self._redis.close()


def init_app(app: Flask) -> None:
    """Register the API on ``app`` (after the app's state)."""
    app.extensions[STATE_KEY] = ApiState(app_state(app).settings)
    app.register_blueprint(bp)


def api_state(app: Flask | None = None) -> ApiState:
    state: ApiState = (app or current_app).extensions[STATE_KEY]
    return state


@bp.before_request
def _authenticate() -> None:
    token = api_state().settings.api_token
    if not token:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("Send Authorization: Bearer <API_TOKEN>.", invalid=False)
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("The bearer token is not valid.", invalid=True)


@bp.get("/recordings")
def list_recordings() -> Response:
    query = _single_valued(request.args.to_dict(flat=False))
    try:
        loaded: dict[str, Any] = _filters.load(query)
    except ValidationError as exc:
        errors = messages_by_name(exc)
        raise InvalidFilter(
            f"Invalid filters: {', '.join(sorted(errors))}.", errors=errors
        ) from None
    cursor: Cursor | None = loaded["cursor"]
    state = api_state()
    page = _available(
        lambda: reads.recordings_page(
            state.store, limit=loaded["limit"],
            after=(cursor.date_created, cursor.sid) if cursor else None,
            room_sid=loaded["room"], status=loaded["status"], type=loaded["type"],
            created_after=loaded["date_created_after"],
            created_before=loaded["date_created_before"],
        )
    )  # fmt: skip
    next_url = None
    if page.next is not None:
        following = Cursor(page.next.date_created, page.next.sid).encode()
        values: dict[str, Any] = query | {"cursor": following}
        next_url = url_for(".list_recordings", **values)
    body = _page.dump({"recordings": page.recordings, "next": next_url})
    response = _json(body)
    if next_url:
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return response


@bp.get("/recordings/<sid>")
def get_recording(sid: str) -> Response:
    try:
        _recording_sid.deserialize(sid)
    except ValidationError:
        raise RecordingNotFound(f"No recording {sid}: not a recording SID.") from None
    state = api_state()
    detail = _available(lambda: state.store.recording(sid))
    if detail is None:
        raise RecordingNotFound(f"No recording {sid} is stored.")
    events = _available(
        lambda: [
            _columns(e) | {"outcomes": reads.event_outcomes(state.redis, e.id)}
            for e in detail.events
        ]
    )
    body = _columns(detail.recording) | {
        "room": detail.room,
        "events": events,
        "archive": _available(lambda: reads.archive_record(state.redis, sid)),
    }
    return _json(_detail.dump(body))


def _available(call: Callable[[], T]) -> T:
    """``call()``, with the store's and Redis's failures answered as 503."""
    try:
        return call()
    except reads.SchemaNotReady as exc:
        raise ApiUnavailable("The database is not migrated yet.", reason=str(exc)) from exc
    except reads.StoreUnavailable as exc:
        raise ApiUnavailable("The database does not answer.", reason=str(exc)) from exc
    except redis.RedisError as exc:
        reason = f"redis: {type(exc).__name__}"
        raise ApiUnavailable("Redis does not answer.", reason=reason) from exc


def _columns(row: Any) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def _single_valued(args: Mapping[str, list[str]]) -> dict[str, str]:
    repeated = {name: ["Given more than once."] for name, values in args.items() if len(values) > 1}
    if repeated:
        names = ", ".join(sorted(repeated))
        raise InvalidFilter(f"Invalid filters: {names}.", errors=repeated)
    return {name: values[0] for name, values in args.items()}


def _json(body: Mapping[str, Any]) -> Response:
    return Response(json.dumps(body), mimetype="application/json")
