"""Probes: ``/healthz`` (the process answers) and ``/readyz`` (the queue answers too)."""

from __future__ import annotations

from flask import Blueprint

from webhooks.errors import NotReady
from webhooks.extension import roomrec
from workers.errors import BrokerUnavailable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> dict[str, str]:
    try:
        roomrec().enqueuer.ping()  # gives up after about ENQUEUE_TIMEOUT
    except BrokerUnavailable as exc:
        raise NotReady("The queue does not answer.", reason=str(exc)) from exc
    return {"status": "ok"}
