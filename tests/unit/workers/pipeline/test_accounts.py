"""Several Twilio accounts in one worker (``TWILIO_ACCOUNTS``): every REST call goes with the
credentials of the account its event belongs to. Against the emulator serving two accounts
(each seeing only its own recordings, as at Twilio) and the private Redis; tasks are called as
a worker calls them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

import workers.pipeline.tasks  # noqa: F401  (registers roomrec.process_event on every app)
from emulator.client import EmulatorProcess
from schemas import EventMessage, HandlerEvent, RoomRecordingSchema, load_callback
from tests.support.emulator import emulator_fixture
from tests.support.twilio import ACCOUNT_SID, recording_params, room_params, sid
from tests.unit.workers import sample_handlers
from tests.unit.workers.helpers import room_event, worker_settings
from workers.delivery.celery_app import PROCESS_EVENT_TASK
from workers.delivery.dedup import event_id
from workers.errors import NotFoundYet
from workers.handlers import HandlerContext
from workers.handlers.archive import ArchiveHandler
from workers.pipeline import rooms
from workers.recovery.reconcile import reconcile_accounts
from workers.runtime.context import Runtime
from workers.twilio.client import TwilioClients, TwilioVideo, UnknownAccount
from workers.twilio.limiter import limiter_from_settings

ACCOUNT_B = "AC" + "b0" * 16
TOKEN_B = "account-b-auth-token-0123456789"
KEY_B = "SK" + "b1" * 16
SECRET_B = "account-b-api-key-secret"
ACCOUNT_C = "AC" + "c0" * 16  # configured nowhere
# Worker side: account B by its API key (the emulator accepts its token too).
ACCOUNTS = json.dumps({ACCOUNT_B: {"auth_token": TOKEN_B, "api_key_sid": KEY_B,
                                   "api_key_secret": SECRET_B}})  # fmt: skip
MakeRuntime = Callable[..., Runtime]


# The emulator serves account B too.
emulator = emulator_fixture(
    accounts={ACCOUNT_B: {"auth_token": TOKEN_B, "api_key_sid": KEY_B, "api_key_secret": SECRET_B}}
)


@pytest.fixture
def make_runtime(redis_url: str, app: Celery, twilio: EmulatorProcess) -> Iterator[MakeRuntime]:
    built: list[Runtime] = []
    sample_handlers.CALLS.clear()

    def make(**env: str) -> Runtime:
        defaults = {"HANDLERS": "tests.unit.workers.sample_handlers:record",
                    "ROOM_READY_EVENTS": "0", "TWILIO_ACCOUNTS": ACCOUNTS}  # fmt: skip
        settings = worker_settings(
            REDIS_URL=redis_url, TWILIO_VIDEO_BASE_URL=twilio.url, **(defaults | env)
        )
        runtime = Runtime.build(settings, app)
        app._roomrec_runtime = runtime  # what runtime(app) builds in a worker process
        built.append(runtime)
        return runtime

    yield make
    for runtime in built:
        runtime.redis.close()
    sample_handlers.CALLS.clear()


def seed(twilio: EmulatorProcess, account: str | None, **fields: Any) -> dict[str, str]:
    """A completed recording of ``account`` in the emulator; its callback's parameters."""
    params = recording_params("recording-completed", AccountSid=account or ACCOUNT_SID)
    owner: dict[str, Any] = {"account_sid": account} if account else {}
    twilio.control.create_recording(
        sid=params["RecordingSid"], room_sid=params["RoomSid"], type="audio", size=4096,
        duration=3, status="completed", **owner, **fields,
    )  # fmt: skip
    return params


def process(app: Celery, params: dict[str, str]) -> str:
    """``roomrec.process_event`` of the callback ``params``, as a worker runs it."""
    message = EventMessage(id=event_id(params), event=load_callback(params),
                           received_at=datetime.now(UTC))  # fmt: skip
    app.tasks[PROCESS_EVENT_TASK](message.to_json())
    return message.id


def users_of(twilio: EmulatorProcess, fragment: str) -> list[str | None]:
    """The HTTP Basic username of every served request whose path holds ``fragment``."""
    return [r["username"] for r in twilio.control.requests() if fragment in r["path"]]


def test_each_account_s_recording_is_fetched_with_its_own_credentials(
    make_runtime: MakeRuntime, app: Celery, twilio: EmulatorProcess
) -> None:
    rt = make_runtime()
    mine, theirs = seed(twilio, None), seed(twilio, ACCOUNT_B)

    process(app, mine)
    process(app, theirs)

    assert rt.dead_letters.list() == []
    fetched = {
        event.event.account_sid: (recording.sid, recording.account_sid)
        for event, recording in sample_handlers.CALLS
        if recording is not None
    }
    assert fetched == {ACCOUNT_SID: (mine["RecordingSid"], ACCOUNT_SID),
                       ACCOUNT_B: (theirs["RecordingSid"], ACCOUNT_B)}  # fmt: skip
    assert users_of(twilio, mine["RecordingSid"]) == [ACCOUNT_SID]
    assert users_of(twilio, theirs["RecordingSid"]) == [KEY_B]
    assert rt.twilio.for_account(ACCOUNT_B) is rt.twilio.for_account(ACCOUNT_B)  # kept


def test_another_account_s_credentials_find_nothing(twilio: EmulatorProcess) -> None:
    settings = worker_settings(TWILIO_VIDEO_BASE_URL=twilio.url, TWILIO_TIMEOUT="5",
                               TWILIO_ACCOUNTS=ACCOUNTS)  # fmt: skip
    theirs = seed(twilio, ACCOUNT_B)
    room, recording = theirs["RoomSid"], theirs["RecordingSid"]

    with pytest.raises(NotFoundYet, match="20404"):  # as Twilio answers
        TwilioVideo(settings).fetch_recording(room, recording)
    with pytest.raises(NotFoundYet, match="20404"):
        TwilioVideo(settings).list_room_recordings(room)
    fetched = TwilioClients(settings).for_account(ACCOUNT_B).fetch_recording(room, recording)

    assert (fetched.sid, fetched.account_sid) == (recording, ACCOUNT_B)


def test_an_event_of_an_account_not_configured_is_dead_lettered(
    make_runtime: MakeRuntime, app: Celery, twilio: EmulatorProcess,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    rt = make_runtime()
    stranger = seed(twilio, None) | {"AccountSid": ACCOUNT_C}

    with caplog.at_level(logging.ERROR):
        event = process(app, stranger)
        other = process(app, room_params("participant-connected", AccountSid=ACCOUNT_C,
                                         ParticipantSid=sid("PA")))  # fmt: skip

    entries = {entry["event_id"]: entry for entry in rt.dead_letters.list()}
    assert set(entries) == {event, other}
    assert entries[event]["stage"] == "fetch" and entries[event]["attempts"] == 1
    assert ACCOUNT_C in entries[event]["error"] and "TWILIO_ACCOUNTS" in entries[event]["error"]
    assert ACCOUNT_C in caplog.text
    assert twilio.control.requests() == []  # no credentials were tried
    assert sample_handlers.CALLS == []


def test_one_account_works_as_before_whatever_sid_an_event_names(
    make_runtime: MakeRuntime, app: Celery, twilio: EmulatorProcess
) -> None:
    rt = make_runtime(TWILIO_ACCOUNTS="")
    mine = seed(twilio, None)
    named_otherwise = seed(twilio, None) | {"AccountSid": ACCOUNT_C}

    process(app, mine)
    process(app, named_otherwise)

    assert not rt.twilio.accounts.multi
    assert rt.dead_letters.list() == []
    assert len(sample_handlers.CALLS) == 2
    assert users_of(twilio, "/Recordings/") == [ACCOUNT_SID, ACCOUNT_SID]
    assert rt.twilio.for_account(ACCOUNT_C) is rt.twilio.main


def test_an_unknown_account_is_refused_by_the_registry() -> None:
    clients = TwilioClients(worker_settings(TWILIO_ACCOUNTS=ACCOUNTS))

    with pytest.raises(UnknownAccount, match=ACCOUNT_C):
        clients.for_account(ACCOUNT_C)
    assert [c.account_sid for c in clients.every_account()] == [ACCOUNT_SID, ACCOUNT_B]
    assert clients.for_account(None) is clients.main


def test_the_room_listing_goes_with_the_room_s_account(
    make_runtime: MakeRuntime, twilio: EmulatorProcess
) -> None:
    rt = make_runtime(ROOM_READY_EVENTS="1")
    room = sid("RM")
    twilio.control.create_room(sid=room, account_sid=ACCOUNT_B)
    recording = twilio.control.create_recording(
        room_sid=room, account_sid=ACCOUNT_B, status="completed", size=10, type="audio"
    )

    rooms.after_event(rt, room_event(room_params("room-ended", RoomSid=room,
                                                      AccountSid=ACCOUNT_B)))  # fmt: skip

    assert users_of(twilio, f"/Rooms/{room}/Recordings") == [KEY_B]
    [(ready, _)] = sample_handlers.CALLS
    assert ready.type == "room.recordings_ready" and ready.event.account_sid == ACCOUNT_B
    assert ready.recordings is not None
    assert [r.sid for r in ready.recordings] == [recording["sid"]]


def test_reconciliation_lists_every_account_with_its_own_credentials(
    make_runtime: MakeRuntime, app: Celery, twilio: EmulatorProcess
) -> None:
    rt = make_runtime()
    mine, theirs = seed(twilio, None), seed(twilio, ACCOUNT_B)
    summary = reconcile_accounts(rt.twilio, rt.broker, datetime.now(UTC) - timedelta(hours=1))

    assert sorted(summary.queued) == sorted([mine["RecordingSid"], theirs["RecordingSid"]])
    assert summary.listed == 2 and summary.failed == {}
    assert sorted(u or "" for u in users_of(twilio, "/v1/Recordings")) == sorted(
        [ACCOUNT_SID, KEY_B]
    )


def test_a_failing_account_does_not_stop_the_reconciliation_of_the_others(
    make_runtime: MakeRuntime, app: Celery, twilio: EmulatorProcess
) -> None:
    wrong = json.dumps({ACCOUNT_B: {"auth_token": "not-b-s-token"}})
    rt = make_runtime(TWILIO_ACCOUNTS=wrong)
    mine = seed(twilio, None)
    summary = reconcile_accounts(rt.twilio, rt.broker, datetime.now(UTC) - timedelta(hours=1))

    assert summary.queued == [mine["RecordingSid"]]
    assert list(summary.failed) == [ACCOUNT_B] and "401" in summary.failed[ACCOUNT_B]
    assert summary.to_json()["failed_accounts"] == summary.failed


def test_the_request_limit_is_per_account(redis_url: str) -> None:
    settings = worker_settings(REDIS_URL=redis_url, TWILIO_ACCOUNTS=ACCOUNTS,
                               TWILIO_MAX_CONCURRENCY="1")  # fmt: skip
    clients = TwilioClients(settings)
    main, other = clients.main.limiter, clients.for_account(ACCOUNT_B).limiter
    assert main is not None and other is not None
    assert ACCOUNT_SID in main.leases and ACCOUNT_B in other.leases
    assert main.client is other.client  # one connection for every account's limiter

    held = main.acquire("a fetch of account A")
    granted = other.acquire("a fetch of account B")  # A's full limit does not hold B back

    assert (main.in_flight(), other.in_flight()) == (1, 1)
    main.release(held)
    other.release(granted)
    single = limiter_from_settings(settings)
    assert single is not None and single.leases == main.leases  # the main account's, as before


def test_the_archive_asks_for_media_and_deletes_with_the_event_s_account(
    make_context: Callable[..., HandlerContext], twilio: EmulatorProcess, tmp_path: Path
) -> None:
    context = make_context(
        HANDLERS="archive", TWILIO_VIDEO_BASE_URL=twilio.url, TWILIO_TIMEOUT="5",
        ARCHIVE_URL=tmp_path.as_uri(), ARCHIVE_DELETE_FROM_TWILIO="1", TWILIO_ACCOUNTS=ACCOUNTS,
    )  # fmt: skip
    params = seed(twilio, ACCOUNT_B, container_format="mka")
    resource = twilio.control.update_recording(params["RecordingSid"], status="completed")
    event = HandlerEvent(
        id=event_id(params), event=load_callback(params),
        recording=RoomRecordingSchema().load(resource), received_at=datetime.now(UTC),
    )  # fmt: skip

    ArchiveHandler(context)(event, None)

    served = [(r["method"], r["path"].rsplit("/", 1)[-1], r["username"])
              for r in twilio.control.requests() if r["path"].startswith("/v1/")]  # fmt: skip
    assert served == [("GET", "Media", KEY_B), ("DELETE", params["RecordingSid"], KEY_B)]
    assert (tmp_path / params["RoomSid"] / f"{params['RecordingSid']}.mka").stat().st_size == 4096
