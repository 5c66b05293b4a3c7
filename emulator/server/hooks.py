"""What happens to every /v1 and /_media request before its view: concurrency limit, faults,
latency, authentication; and the request log afterwards.

A "drop" fault cannot be expressed as a response, so the view layer only flags it and
:class:`DropConnectionMiddleware` has the WSGI server close the connection.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Response, g, request

from emulator.errors import TwilioApiError
from emulator.views.context import ACCOUNT_KEY, current_state

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

DROP_KEY = "emulator.drop"


def is_api_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def is_guarded_path(path: str) -> bool:
    """Paths that behave like Twilio and are logged; never the control API."""
    return is_api_path(path) or path.startswith("/_media/")


def before_request() -> Response | None:
    path = request.path
    if not is_guarded_path(path):
        return None
    state = current_state()
    g.emulator_started = time.monotonic()
    auth = request.authorization
    g.emulator_user = auth.username if auth is not None else None
    if is_api_path(path):
        if not state.gate.try_acquire(state.settings.max_concurrency):
            g.emulator_throttled = True
            raise TwilioApiError.for_status(429, retry_after=state.settings.throttle_retry_after)
        g.emulator_slot = True
    rule = state.faults.take(request.method, path)
    if rule is not None:
        g.emulator_fault = rule.id
        if rule.action == "latency":
            time.sleep(rule.latency_ms / 1000)
        elif rule.action == "drop":
            request.environ[DROP_KEY] = True
            return Response(status=500)
        else:
            assert rule.status is not None
            raise TwilioApiError.for_status(rule.status, retry_after=rule.retry_after)
    if state.settings.latency_ms:
        time.sleep(state.settings.latency_ms / 1000)
    if is_api_path(path):
        account = None
        if auth is not None and auth.type == "basic":
            account = state.config.account_of(auth.username, auth.password)
        if account is None:
            raise TwilioApiError.unauthorized()
        setattr(g, ACCOUNT_KEY, account)  # the account whose resources this request sees
    return None


def after_request(response: Response) -> Response:
    if "emulator_started" in g:
        dropped = bool(request.environ.get(DROP_KEY))
        current_state().log.add(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query_string.decode("latin-1"),
                "status": None if dropped else response.status_code,
                "dropped": dropped,
                "username": g.get("emulator_user"),
                "account": g.get(ACCOUNT_KEY),
                "time": time.time(),
                "duration_ms": round((time.monotonic() - g.emulator_started) * 1000, 3),
                "fault": g.get("emulator_fault"),
                "throttled": bool(g.get("emulator_throttled")),
            }
        )
    return response


def teardown_request(_exc: BaseException | None) -> None:
    if g.pop("emulator_slot", False):
        current_state().gate.release()


class DropConnectionMiddleware:
    """Closes the client's connection without an answer when a drop fault was taken.

    cheroot takes an ECONNABORTED raised before the first byte of the response for a client
    that went away: it writes nothing, logs nothing and closes the socket.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        result: Any = self.app(environ, start_response)
        if not environ.get(DROP_KEY):
            return result
        if hasattr(result, "close"):
            result.close()
        raise ConnectionAbortedError(errno.ECONNABORTED, "emulator fault: connection dropped")
