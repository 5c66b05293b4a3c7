"""``forward``: POST each event as JSON to every ``FORWARD_URLS`` target, signed per the
Standard Webhooks spec (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

The ``webhook-id`` is the event's id, the same on every retry, so receivers can de-duplicate.
2xx is success; 410 means the receiver wants no more of this event (stop, no retry); 408, 409,
425, 429, 5xx, timeouts and connection errors are retried; redirects are never followed
(:func:`workers.errors.for_status`).

The POST goes through the process' :class:`workers.outbound.http.Pool` (urllib3, keep-alive,
the environment's proxies and CA bundle), one per worker process. A target's userinfo
(``https://user:password@host/...``) becomes HTTP Basic credentials, as requests made it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import urllib3
from standardwebhooks.webhooks import Webhook

from schemas import HandlerEvent
from schemas.fields import iso8601
from workers.errors import for_status, translate
from workers.handlers import HandlerContext, builtin
from workers.observability.redaction import redact
from workers.outbound.http import userinfo_auth

log = logging.getLogger(__name__)

USER_AGENT = "roomrec-forward/1"


def payload(event: HandlerEvent) -> dict[str, Any]:
    """The body sent: the event's dotted type, its Timestamp, the callback's parameters and,
    for recording events, the RoomRecording as Twilio returned it."""
    data: dict[str, Any] = {"event": event.event.to_json()}
    if event.recording is not None:
        data["recording"] = event.recording.raw
    if event.recordings is not None:  # room.recordings_ready: every recording of the room
        data["recordings"] = [recording.raw for recording in event.recordings]
    if event.composition is not None:  # composition-available: the Composition
        data["composition"] = event.composition.raw
    return {"type": event.type, "timestamp": iso8601(event.event.timestamp), "data": data}


class ForwardHandler:
    name = "forward"

    def __init__(self, context: HandlerContext) -> None:
        settings = context.settings
        assert settings.forward_secret is not None  # WorkerSettingsSchema requires it
        self.webhook = Webhook(settings.forward_secret)
        self.urls = settings.forward_urls
        self.timeout = settings.forward_timeout
        self.http = context.http
        self._routes = {url: _route(url) for url in self.urls}

    def targets(self) -> Sequence[str | None]:
        return self.urls

    def __call__(self, event: HandlerEvent, target: str | None) -> None:
        assert target is not None
        url, auth, shown = self._routes.get(target) or _route(target)
        body = json.dumps(payload(event), separators=(",", ":"))
        sent_at = datetime.now(UTC)
        headers = auth | {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": event.id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": self.webhook.sign(event.id, sent_at, body),
        }
        try:
            response = self.http.request(
                "POST", url, body=body.encode(), headers=headers, timeout=self.timeout
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate(exc, f"forward to {shown}") from exc
        status = response.status
        if not 200 <= status < 300:  # 410: gone; 409: the receiver is busy with this id
            raise for_status(status, f"forward to {shown} answered {status}",
                             headers=response.headers, gone=True, conflict=True)  # fmt: skip


def _route(target: str) -> tuple[str, dict[str, str], str]:
    """Where a POST to ``target`` goes (without its userinfo), its credentials (from that
    userinfo), and how errors name it (:func:`redact`): once per target."""
    return *userinfo_auth(target), redact(target)


@builtin("forward")
def make_forward_handler(context: HandlerContext) -> ForwardHandler:
    return ForwardHandler(context)
