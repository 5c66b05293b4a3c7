"""The web side of roomrec: receives Twilio Video room status callbacks, checks their
signature and parameters, and queues each accepted one for the workers.

Serve it with ``gunicorn "webhooks:create_app()"`` or ``flask --app webhooks run``; both read
the configuration from the environment (see :class:`schemas.settings.WebSettingsSchema`).

Three parts, independent of each other, over what they share here (the app's state in
:mod:`.app_state`, the refusals of :mod:`.errors` answered by :mod:`.problems`, :mod:`.metrics`
and the probes of :mod:`.health`): the callback intake (:mod:`.intake`), the read API and its
OpenAPI (:mod:`.api`), the operator's commands (:mod:`.cli`). Of ``workers`` the web imports
only :mod:`workers.service` and :mod:`workers.errors`.

The route of one callback, ``POST /twilio/room-events`` (:mod:`.intake.views`):

1. :mod:`.metrics` starts its clock; the Host must be one of ``ALLOWED_HOSTS`` and the Basic
   credentials those of ``TWILIO_WEBHOOK_BASIC_AUTH`` (:mod:`.intake.access`);
2. the body is read: a form, within ``MAX_BODY_BYTES``, in UTF-8 (:mod:`.intake.params`); the
   event and its SIDs label the metrics and the request's log lines (:mod:`.intake.context`);
3. the signature, with the auth tokens of the callback's account or the SharedKey it names
   (:mod:`.intake.signature`), before anything else about the parameters is looked at;
4. the parameters, against the event's schema (:mod:`schemas`), and their ``Timestamp``,
   against replays (:mod:`.intake.freshness`);
5. the event, with its id (:func:`workers.service.intake.event_id`), goes to the queue through
   the broker (:class:`workers.service.intake.Broker`), which queues a duplicate once; while
   the queue does not answer, into the local spool, whose relay queues it later
   (:mod:`.intake.spool`);
6. the answer: ``204`` (``X-Roomrec-Duplicate`` or ``X-Roomrec-Spooled`` saying which), else
   the refusal's problem document (:mod:`.errors`, :mod:`.problems`); :mod:`.metrics` counts
   it by event and outcome.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import click
from flask import Flask
from flask.cli import NoAppException
from werkzeug.middleware.proxy_fix import ProxyFix

from schemas.settings import ConfigurationError, WebSettings, WebSettingsSchema, load_settings
from webhooks import health, metrics, problems
from webhooks.api import openapi
from webhooks.api import views as api
from webhooks.app_state import APP_STATE_KEY, AppState
from webhooks.cli import commands as cli
from webhooks.cli import db as cli_db
from webhooks.intake import views as intake
from workers.service.intake import Broker, connect
from workers.service.observability import configure_logging, settings_secrets

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 64 * 1024

log = logging.getLogger(__name__)


def create_app(
    config: Mapping[str, str] | WebSettings | None = None, *, enqueuer: Broker | None = None
) -> Flask:
    """The Flask app.

    ``config`` is the environment-style variables (default ``os.environ``) or loaded settings;
    a missing ``TWILIO_AUTH_TOKEN``, or neither ``PUBLIC_BASE_URL`` nor ``ALLOWED_HOSTS`` (nor
    ``DEV_MODE=1``), raises :class:`schemas.settings.ConfigurationError`.
    ``enqueuer``, the broker every accepted callback is queued through, defaults to one
    connected to ``CELERY_BROKER_URL`` / ``REDIS_URL``.
    """
    try:
        settings: WebSettings = (
            config
            if isinstance(config, WebSettings)
            else load_settings(WebSettingsSchema(), os.environ if config is None else config)
        )
    except ConfigurationError as exc:
        if click.get_current_context(silent=True) is not None:  # `flask --app webhooks …`
            raise NoAppException(str(exc)) from None  # one line naming it, no traceback
        raise
    configure_logging(settings.log_level, settings.log_format, secrets=settings_secrets(settings))
    if settings.dev_mode and not settings.public_base_url and not settings.allowed_hosts:
        log.warning(
            "DEV_MODE=1: signatures are checked against whatever Host the request names, so a "
            "callback signed for another deployment of the account is accepted; set "
            "PUBLIC_BASE_URL or ALLOWED_HOSTS anywhere but on a development machine"
        )
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if settings.trust_proxy_headers:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1
        )
    if enqueuer is None:
        enqueuer = connect(
            settings.broker_url,
            settings.redis_url,
            timeout=settings.enqueue_timeout,
            dedup_ttl=settings.dedup_ttl,
            sentinel=settings.redis_sentinel,
        )
    app.extensions[APP_STATE_KEY] = AppState(settings=settings, enqueuer=enqueuer)
    intake.init_app(app)  # the callback endpoint and the local spool
    app.register_blueprint(health.bp)
    metrics.register(app, settings)  # request hooks and GET /metrics
    openapi.register(app)  # GET /openapi.json
    api.init_app(app)
    problems.register(app)
    cli.register(app)
    app.cli.add_command(cli_db.db)
    return app
