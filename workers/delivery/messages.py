"""Celery task messages built by hand, exactly as kombu's Redis transport would push them, so a
Lua script can push them together with what goes with them (:mod:`workers.delivery.redis_broker`).

Celery's own publish path (``send_task``) costs about 0.5–0.7 ms of CPU per message on Redis,
most of it in kombu's per-publish connection handling, and it cannot be combined with other
Redis writes. Here the message is built by Celery itself (``app.amqp.create_task_message``) and
serialised as kombu's Redis transport does: workers consume it like any other, an ordinary
Celery protocol 2 message. No I/O here.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

from celery import Celery
from kombu.utils.json import dumps as kombu_dumps


def build_message(
    app: Celery, task_name: str, args: list[Any], *, task_id: str, queue: str, retries: int = 0
) -> str:
    """The JSON string kombu's Redis transport would LPUSH for ``app.send_task(...)``."""
    headers, properties, body, _ = app.amqp.create_task_message(
        task_id, task_name, args, {}, retries=retries, argsrepr=task_id, kwargsrepr="{}"
    )
    envelope = {
        "body": base64.b64encode(kombu_dumps(body).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            **properties,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return json.dumps(envelope, separators=(",", ":"))


class MessageTemplate:
    """:func:`build_message` for one task and queue, built by Celery once and then only filled.

    The messages the web publishes differ only in their task id, arguments and delivery tag, but
    Celery's builder assembles every header again each time (about 60 µs a callback). Here it
    runs once, with placeholders, and the serialised envelope is cut around them; a message is
    those pieces joined with its own JSON-encoded values. Like :func:`build_message`, it links no
    message to a parent task (each is its own root), wherever it is called from.
    """

    _PLACEHOLDER = re.compile(r'"(roomrec-template-(?:id|body|tag))"')

    def __init__(self, app: Celery, task_name: str, *, queue: str) -> None:
        self.app = app
        self.task_name = task_name
        self.queue = queue
        self._pieces: list[str] = []  # built on first use: the ``origin`` header names the pid

    def _build(self) -> None:
        text = build_message(
            self.app, self.task_name, [], task_id="roomrec-template-id", queue=self.queue
        )
        envelope = json.loads(text)
        _, _, embed = json.loads(base64.b64decode(envelope["body"]))
        self._embed = kombu_dumps(embed)
        envelope["body"] = "roomrec-template-body"
        envelope["properties"]["delivery_tag"] = "roomrec-template-tag"
        # literal, placeholder name, literal, placeholder name, ..., literal
        self._pieces = self._PLACEHOLDER.split(json.dumps(envelope, separators=(",", ":")))

    def render(self, args: list[Any], *, task_id: str) -> str:
        """What ``build_message(app, task_name, args, task_id=task_id, queue=queue)`` gives,
        but for the delivery tag (a new one each time there too)."""
        if not self._pieces:
            self._build()
        body = f"[{kombu_dumps(args)}, {{}}, {self._embed}]"  # kombu's dumps of the tuple
        values = {
            "roomrec-template-id": json.dumps(task_id),
            "roomrec-template-body": '"' + base64.b64encode(body.encode()).decode() + '"',
            "roomrec-template-tag": '"' + str(uuid.uuid4()) + '"',
        }
        pieces = self._pieces
        return "".join(values[piece] if index % 2 else piece for index, piece in enumerate(pieces))
