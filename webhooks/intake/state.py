"""What the callback endpoint works with, stored by :func:`webhooks.intake.views.init_app` on
``app.extensions["roomrec.intake"]``: the enqueuer, the local spool (with its relay) that keeps
callbacks while the queue is unreachable, and what the checks read from the settings once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import Flask, current_app

from schemas.accounts import Accounts
from schemas.settings import WebSettings
from webhooks.intake.spool import Relay, Spool
from workers.service.intake import Broker

INTAKE_STATE_KEY = "roomrec.intake"


@dataclass(frozen=True, slots=True)
class IntakeState:
    """The app's settings, the enqueuer every accepted callback goes through, and the local
    spool (with its relay) that keeps callbacks while the queue is unreachable."""

    settings: WebSettings
    enqueuer: Broker
    spool: Spool
    relay: Relay
    # Read from the settings once, not per callback.
    accounts: Accounts = field(init=False, repr=False)
    shared_keys: Mapping[str, str] = field(init=False, repr=False)
    basic_auth: tuple[str, str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        settings = self.settings
        object.__setattr__(self, "accounts", settings.accounts)
        keys = {key.key_id: key.secret for key in settings.twilio_webhook_shared_keys}
        object.__setattr__(self, "shared_keys", keys)
        user, password = settings.webhook_basic_auth_user, settings.webhook_basic_auth_password
        object.__setattr__(self, "basic_auth", (user, password) if user and password else None)

    def tokens_for(self, account_sid: str | None) -> tuple[str, ...] | None:
        """The auth tokens a callback of ``account_sid`` is signed with; None when this service
        does not serve that account."""
        account = self.accounts.get(account_sid)
        return None if account is None else account.auth_tokens


def intake_state(app: Flask | None = None) -> IntakeState:
    """The intake's state in ``app``, by default the current one."""
    state: IntakeState = (app or current_app).extensions[INTAKE_STATE_KEY]
    return state
