"""The emulator's Flask application factory."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from emulator.errors import TwilioApiError
from emulator.model.composition_flow import CompositionFlow
from emulator.model.state import EmulatorState
from emulator.server.hooks import (
    DropConnectionMiddleware,
    after_request,
    before_request,
    is_guarded_path,
    teardown_request,
)
from emulator.views.api import api
from emulator.views.compositions import FLOW_KEY
from emulator.views.compositions import api as compositions_api
from emulator.views.compositions import control as compositions_control
from emulator.views.compositions import media as compositions_media
from emulator.views.context import STATE_KEY
from emulator.views.control import control
from emulator.views.media import media


def _twilio_error(exc: TwilioApiError) -> Response:
    response = jsonify(exc.body())
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


def _http_error(exc: HTTPException) -> Response | HTTPException:
    """Routing errors on Twilio paths answer in Twilio's JSON shape."""
    if not is_guarded_path(request.path):
        return exc
    status = exc.code or 500
    if status == 404:
        return _twilio_error(TwilioApiError.not_found(request.path))
    return _twilio_error(TwilioApiError.for_status(status))


def create_emulator_app(state: EmulatorState) -> Flask:
    """A Flask app serving the Twilio endpoints, signed media and the control API of ``state``."""
    app = Flask(__name__)
    app.extensions[STATE_KEY] = state
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.before_request(before_request)
    app.after_request(after_request)
    app.teardown_request(teardown_request)
    app.register_error_handler(TwilioApiError, _twilio_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_blueprint(api)
    app.register_blueprint(media)
    app.register_blueprint(control)
    app.extensions[FLOW_KEY] = CompositionFlow(state)
    for blueprint in (compositions_api, compositions_media, compositions_control):
        app.register_blueprint(blueprint)
    app.wsgi_app = DropConnectionMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app
