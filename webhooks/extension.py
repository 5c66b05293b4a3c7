"""What ``create_app`` stores on ``app.extensions["roomrec"]`` for the views."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from schemas.settings import WebSettings
from webhooks.spool import Relay, Spool
from workers.enqueue import Enqueuer

EXTENSION_KEY = "roomrec"


@dataclass(frozen=True, slots=True)
class Roomrec:
    """The app's settings, the enqueuer every accepted callback goes through, and the local
    spool (with its relay) that keeps callbacks while the queue is unreachable."""

    settings: WebSettings
    enqueuer: Enqueuer
    spool: Spool
    relay: Relay

    @property
    def auth_tokens(self) -> tuple[str, ...]:
        """The tokens a signature may be made with: the auth token, then the secondary one."""
        secondary = self.settings.twilio_auth_token_secondary
        primary = self.settings.twilio_auth_token
        return (primary, secondary) if secondary else (primary,)


def roomrec(app: Flask | None = None) -> Roomrec:
    """The extension of ``app``, by default the current one."""
    state: Roomrec = (app or current_app).extensions[EXTENSION_KEY]
    return state
