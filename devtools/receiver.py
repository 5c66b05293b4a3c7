"""A real HTTP server standing in for a webhook receiver (demo, tests).

It verifies every delivery's Standard Webhooks signature with the ``standardwebhooks`` library
and records what arrived."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class Delivery:
    webhook_id: str
    body: dict[str, Any]
    status: int


@dataclass
class ForwardTarget:
    """``answers``: statuses to give the next requests (then 200s); every request is logged in
    ``attempts``, every verified 2xx in ``deliveries``; ``listener`` sees each attempt."""

    secret: str
    listener: Callable[[Delivery], None] | None = None
    retry_after: int | None = None  # sent with every non-2xx answer when set
    down: bool = False  # while set, every request is answered 503 (an outage)
    answers: deque[int] = field(default_factory=deque)
    attempts: list[Delivery] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.webhook = Webhook(self.secret)
        self.server = make_server(
            "127.0.0.1", 0, self._app, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        data = request.get_data()
        try:
            body = self.webhook.verify(data, dict(request.headers))
        except (WebhookVerificationError, ValueError) as exc:
            with self.lock:
                self.invalid.append(f"{exc}: {data[:200]!r}")
            return Response("bad signature", status=400)(environ, start_response)
        with self.lock:
            status = 503 if self.down else self.answers.popleft() if self.answers else 200
            delivery = Delivery(request.headers["webhook-id"], body, status)
            self.attempts.append(delivery)
        if self.listener is not None:
            self.listener(delivery)
        response = Response(json.dumps({"ok": status < 300}), status=status)
        if status >= 300 and self.retry_after is not None:
            response.headers["Retry-After"] = str(self.retry_after)
        return response(environ, start_response)

    @property
    def deliveries(self) -> list[Delivery]:
        with self.lock:
            return [attempt for attempt in self.attempts if 200 <= attempt.status < 300]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
