"""Probes: ``/healthz`` (the process answers) and ``/readyz`` (the queue answers too).

``/readyz`` also reports each Redis's ``maxmemory-policy`` (read at most once a minute, see
:class:`workers.service.observability.PolicyCheck`), with a ``warnings`` entry for one that
evicts. That stays a ``200``: an evicting Redis still takes callbacks, and taking the web out
of service over it would lose more than it saves. The policy is first read, and a WARNING
logged, as the app is created (in a thread of its own).
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Blueprint, Flask, current_app
from flask.blueprints import BlueprintSetupState

from webhooks.app_state import app_state
from webhooks.errors import NotReady
from workers.errors import BrokerUnavailable
from workers.service.health import PolicyCheck

POLICY_KEY = "roomrec.redis_policy"

bp = Blueprint("health", __name__)


@bp.record_once
def _check_redis_policy(state: BlueprintSetupState) -> None:
    """At start-up: read the policies (never failing: Redis may be down) and keep the check
    for ``/readyz``. The app's state is set before its blueprints are registered."""
    app = state.app
    assert isinstance(app, Flask)
    shared = app_state(app)
    settings = shared.settings
    check = PolicyCheck.for_urls(
        {"REDIS_URL": settings.redis_url, "CELERY_BROKER_URL": settings.broker_url},
        timeout=settings.enqueue_timeout,
        clients={"REDIS_URL": shared.enqueuer.redis},
        sentinel=settings.redis_sentinel,
    )
    app.extensions[POLICY_KEY] = check
    # In the background (it logs the WARNING for an evicting policy): start-up never waits
    # for a slow or hung Redis, and a relay started just before is not held up.
    threading.Thread(target=check.report_quietly, name="roomrec-redis-policy", daemon=True).start()


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> dict[str, Any]:
    try:
        app_state().enqueuer.ping()  # gives up after about ENQUEUE_TIMEOUT
    except BrokerUnavailable as exc:
        raise NotReady("The queue does not answer.", reason=str(exc)) from exc
    check: PolicyCheck = current_app.extensions[POLICY_KEY]
    return {"status": "ok", **check.report().to_json()}
