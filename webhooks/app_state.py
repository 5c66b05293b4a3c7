"""What every part of the web shares, stored by ``create_app`` on ``app.extensions["roomrec"]``:
the settings and the enqueuer. Each part keeps its own state beside it: the callback intake's
in :mod:`webhooks.intake.state`, the read API's in :mod:`webhooks.api.views`."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from schemas.settings import WebSettings
from workers.service.intake import Broker

APP_STATE_KEY = "roomrec"


@dataclass(frozen=True, slots=True)
class AppState:
    """The app's settings, and the enqueuer every accepted callback goes through (``/readyz``
    pings it)."""

    settings: WebSettings
    enqueuer: Broker


def app_state(app: Flask | None = None) -> AppState:
    """The state of ``app``, by default the current one."""
    state: AppState = (app or current_app).extensions[APP_STATE_KEY]
    return state
