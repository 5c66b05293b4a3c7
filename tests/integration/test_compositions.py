"""``COMPOSE_ON_ROOM_READY=1`` over the real stack: each ready room gets exactly one composition
in the emulated Twilio, its signed status callbacks come back through the web, and its media is
archived byte-identical next to its Composition JSON."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from devtools.receiver import ForwardTarget
from emulator.client import EmulatorProcess
from emulator.model.media import media_sha256
from tests.integration.conftest import wait_for
from tests.integration.test_room_ready import (
    idle,
    plan_rooms,
    ready_bodies,
    send_all,
    settle,
    shuffled,
)
from tests.support.tcp_proxy import TcpProxy
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN
from workers.delivery.dedup import event_id
from workers.pipeline.rooms import ready_event_id

pytestmark = pytest.mark.integration

EVENTS = ["composition-enqueued", "composition-started", "composition-progress",
          "composition-available"]  # fmt: skip


@pytest.fixture
def public() -> Iterator[TcpProxy]:
    """The service's public address, known before the web starts: its upstream is set later."""
    with TcpProxy(("127.0.0.1", 9)) as proxy:
        yield proxy


def composition_json(twilio: EmulatorProcess, sid: str) -> dict[str, Any]:
    answer = requests.get(f"{twilio.url}/v1/Compositions/{sid}", auth=(ACCOUNT_SID, AUTH_TOKEN),
                          timeout=5)  # fmt: skip
    answer.raise_for_status()
    return dict(answer.json())


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_one_composition_per_room_its_callbacks_through_the_web_and_its_media_archived(
    start_stack, twilio: EmulatorProcess, forward_target: ForwardTarget, public: TcpProxy,
    tmp_path: Path,
) -> None:  # fmt: skip
    archive = tmp_path / "archive"
    twilio.control.set_composition_settings(auto_advance_ms=50)
    stack = start_stack(
        HANDLERS="log,forward,archive", ARCHIVE_URL=archive.as_uri(), ROOM_READY_EVENTS="1",
        COMPOSE_ON_ROOM_READY="1", PUBLIC_BASE_URL=f"http://127.0.0.1:{public.port}",
        concurrency=3,
        # Callbacks come both straight to the web and through the public proxy, on two
        # ports: the web checks each against the Host it was sent to.
        web_overrides={"DEV_MODE": "1"},
    )  # fmt: skip
    public.upstream = ("127.0.0.1", urlsplit(stack.web_url).port or 80)
    plans = plan_rooms(twilio, stack.callback_url, 31, [(2, True, 0), (1, True, 1)])
    sent = shuffled(random.Random(31), [params for plan in plans for params in plan])
    rooms = [plan[0]["RoomSid"] for plan in plans]

    assert set(send_all(twilio, stack.callback_url, sent)) == {204}

    def composed() -> list[dict[str, Any]]:
        found = twilio.control.compositions()
        done = [c for c in found if [x["event"] for x in c["callbacks"]] == EVENTS]
        return found if len(done) == len(rooms) else []

    made = wait_for(composed, 90, "a completed composition per room, its callbacks answered")
    for composition in made:
        assert {x["status"] for x in composition["callbacks"]} == {204}
        assert (
            composition["status_callback"] == f"http://127.0.0.1:{public.port}/twilio/room-events"
        )
    available = {
        c["sid"]: event_id(next(x["params"] for x in c["callbacks"]
                                if x["event"] == "composition-available"))
        for c in made
    }  # fmt: skip
    expected = {event_id(p) for p in sent} | {ready_event_id(r) for r in rooms}
    settle(stack, forward_target, expected | set(available.values()))
    wait_for(lambda: idle(stack) and all(
        (archive / c["room_sid"] / f"{c['sid']}.json").exists() for c in made
    ), 60, "the compositions archived")  # fmt: skip

    # Exactly one per room, now that nothing is left to run.
    assert sorted(c["room_sid"] for c in twilio.control.compositions()) == sorted(rooms)
    posts = [r for r in twilio.control.requests()
             if (r["method"], r["path"]) == ("POST", "/v1/Compositions")]  # fmt: skip
    assert len(posts) == len(rooms)
    assert stack.dead_letters() == [] and forward_target.invalid == []
    assert set(Counter(d.webhook_id for d in forward_target.deliveries).values()) == {1}
    assert sorted(ready_bodies(forward_target)) == sorted(rooms)
    forwarded = {d.body["data"]["composition"]["sid"]: d.body for d in forward_target.deliveries
                 if d.body["type"] == "composition.available"}  # fmt: skip
    assert sorted(forwarded) == sorted(available)
    for composition in made:
        sid, room = composition["sid"], composition["room_sid"]
        resource = composition_json(twilio, sid)
        assert resource["status"] == "completed" and resource["size"] > 0
        assert forwarded[sid]["data"]["composition"] == resource
        assert sha256_of(archive / room / f"{sid}.mp4") == media_sha256(sid, resource["size"])
        assert json.loads((archive / room / f"{sid}.json").read_text()) == resource
    assert "Signature=" not in stack.logs()
