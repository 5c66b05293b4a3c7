"""What makes an event queued once: its stable id (:func:`event_id`) and the de-duplication
marks in Redis that say it was queued (:func:`dedup_keys`), kept ``DEDUP_TTL`` seconds, so a
callback Twilio delivers twice, or a recording reconciliation finds again, is queued once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from schemas import EventMessage
from workers.state.keys import SEEN_KEY


def event_id(params: Mapping[str, str]) -> str:
    """A stable id for one event. A recording event is identified by its recording and event
    name (Twilio may resend it with another Timestamp); any other event by all its parameters.
    """
    if params.get("RecordingSid") and params.get("StatusCallbackEvent", "").startswith(
        "recording-"
    ):
        basis = json.dumps([params["RecordingSid"], params["StatusCallbackEvent"]])
    else:
        basis = json.dumps(sorted(params.items()))
    return "evt_" + hashlib.sha256(basis.encode()).hexdigest()[:32]


def dedup_keys(message: EventMessage) -> list[str]:
    """The marks of ``message``: its id's first, then its Twilio idempotency token's, if any
    (the same event resent with other parameters)."""
    keys = [SEEN_KEY.format(message.id)]
    if message.idempotency_token:
        token = hashlib.sha256(message.idempotency_token.encode()).hexdigest()[:32]
        keys.append(SEEN_KEY.format(f"token:{token}"))
    return keys
