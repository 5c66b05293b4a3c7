"""The emulator's Flask application factory."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from emulator.composition_flow import CompositionFlow
from emulator.errors import TwilioApiError
from emulator.gate import (
    DropConnectionMiddleware,
    after_request,
    before_request,
    is_guarded_path,
    teardown_request,
)
from emulator.state import EmulatorState
from emulator.views_api import api
from emulator.views_compositions import FLOW_KEY
from emulator.views_compositions import api as compositions_api
from emulator.views_compositions import control as compositions_control
from emulator.views_compositions import media as compositions_media
from emulator.views_control import control
from emulator.views_media import media


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
    app.extensions["emulator"] = state
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
