"""The web side of roomrec: receives Twilio Video room status callbacks, checks their
signature and parameters, and queues each accepted one for the workers.

Serve it with ``gunicorn "webhooks:create_app()"`` or ``flask --app webhooks run``; both read
the configuration from the environment (see :class:`schemas.settings.WebSettingsSchema`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import click
from flask import Flask
from flask.cli import NoAppException
from werkzeug.middleware.proxy_fix import ProxyFix

from schemas.settings import ConfigurationError, WebSettings, WebSettingsSchema, load_settings
from webhooks import health, metrics, problems
from webhooks.api import openapi
from webhooks.api import views as api
from webhooks.app_state import EXTENSION_KEY, Roomrec
from webhooks.cli import commands as cli
from webhooks.cli import db as cli_db
from webhooks.intake import views
from webhooks.intake.spool import Relay, Spool
from workers.delivery.enqueue import Enqueuer
from workers.observability.logs import configure_logging, settings_secrets

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 64 * 1024

log = logging.getLogger(__name__)


def create_app(
    config: Mapping[str, str] | WebSettings | None = None, *, enqueuer: Enqueuer | None = None
) -> Flask:
    """The Flask app.

    ``config`` is the environment-style variables (default ``os.environ``) or loaded settings;
    a missing ``TWILIO_AUTH_TOKEN``, or neither ``PUBLIC_BASE_URL`` nor ``ALLOWED_HOSTS`` (nor
    ``DEV_MODE=1``), raises :class:`schemas.settings.ConfigurationError`.
    ``enqueuer`` defaults to one built from ``CELERY_BROKER_URL`` / ``REDIS_URL``.
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
        enqueuer = Enqueuer.from_urls(
            settings.broker_url,
            settings.redis_url,
            timeout=settings.enqueue_timeout,
            dedup_ttl=settings.dedup_ttl,
        )
    spool = Spool(Path(settings.spool_path), max_events=settings.spool_max_events)
    relay = Relay(spool, enqueuer.enqueue)
    if spool.pending():  # left by a previous run: relay it as soon as the queue answers
        relay.ensure_running()
    app.extensions[EXTENSION_KEY] = Roomrec(
        settings=settings, enqueuer=enqueuer, spool=spool, relay=relay
    )
    app.register_blueprint(views.bp)
    app.register_blueprint(health.bp)
    metrics.register(app, settings)  # request hooks and GET /metrics
    openapi.register(app)  # GET /openapi.json
    api.init_app(app)
    problems.register(app)
    cli.register(app)
    app.cli.add_command(cli_db.db)
    return app
