from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest

import workers
from schemas.settings import ConfigurationError
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, recording_params, room_params
from tests.unit.workers import sample_handlers
from tests.unit.workers.helpers import recording_event, room_event
from workers.errors import UnknownHandlerError
from workers.handlers import FunctionHandler, HandlerContext, load_handlers, resolve
from workers.handlers.forward import ForwardHandler
from workers.handlers.log import LogHandler
from workers.observability.logs import ContextFilter, make_formatter

MakeContext = Callable[..., HandlerContext]
RECORD = "tests.unit.workers.sample_handlers:record"


@pytest.fixture(autouse=True)
def _no_recorded_calls() -> Iterator[None]:
    sample_handlers.CALLS.clear()
    yield
    sample_handlers.CALLS.clear()


def test_resolve_log(make_context: MakeContext) -> None:
    handler = resolve("log")(make_context())

    assert isinstance(handler, LogHandler)
    assert handler.name == "log"
    assert list(handler.targets()) == [None]


def test_resolve_forward(make_context: MakeContext) -> None:
    urls = "https://a.example.com/in,https://b.example.com/in"

    handler = resolve("forward")(make_context(FORWARD_URLS=urls))

    assert isinstance(handler, ForwardHandler)
    assert handler.name == "forward"
    assert list(handler.targets()) == urls.split(",")


def test_resolve_a_user_function(make_context: MakeContext) -> None:
    handler = resolve(RECORD)(make_context())

    assert isinstance(handler, FunctionHandler)
    assert handler.name == RECORD
    assert list(handler.targets()) == [None]


def test_a_user_function_is_called_with_event_and_recording(make_context: MakeContext) -> None:
    handler = resolve(RECORD)(make_context())
    event = recording_event()

    handler(event, None)

    assert sample_handlers.CALLS == [(event, event.recording)]
    assert event.recording is not None


def test_a_user_function_gets_no_recording_for_room_events(make_context: MakeContext) -> None:
    handler = resolve(RECORD)(make_context())
    event = room_event(room_params("room-ended"))

    handler(event, None)

    assert sample_handlers.CALLS == [(event, None)]


@pytest.mark.parametrize(
    "name",
    [
        "nope",
        "Log",
        "",
        "tests.unit.workers.no_such_module:record",
        "tests.unit.workers.sample_handlers:missing",
        "tests.unit.workers.sample_handlers:NOT_CALLABLE",
        "tests.unit.workers.sample_handlers:",
        "no.such.package:fn",
    ],
)
def test_unknown_names_and_unimportable_paths(name: str) -> None:
    with pytest.raises(UnknownHandlerError) as caught:
        resolve(name)

    assert isinstance(caught.value, LookupError)


@pytest.mark.parametrize(
    "name", [":record", ".sample_handlers:record", "..workers:record", "tests..unit:record"]
)
def test_malformed_paths_are_unknown_handlers(name: str) -> None:
    # Typos in HANDLERS must be reported as UnknownHandlerError, not as whatever importlib
    # happens to raise (ValueError for an empty module name, TypeError for a relative one).
    with pytest.raises(UnknownHandlerError):
        resolve(name)


def test_load_handlers_keeps_the_order_of_handlers(make_context: MakeContext) -> None:
    handlers = load_handlers([RECORD, "log", "forward"], make_context())

    assert list(handlers) == [RECORD, "log", "forward"]
    assert isinstance(handlers["log"], LogHandler)
    assert isinstance(handlers["forward"], ForwardHandler)


def test_load_handlers_raises_on_an_unknown_name(make_context: MakeContext) -> None:
    with pytest.raises(UnknownHandlerError):
        load_handlers(["log", "nope"], make_context())


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the ``roomrec.events`` logger writes, formatted as in production (JSON)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter())
    handler.setFormatter(make_formatter("json"))
    logger = logging.getLogger("roomrec.events")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)


def test_log_handler_writes_one_json_line(
    make_context: MakeContext, json_lines: io.StringIO
) -> None:
    params = recording_params()
    event = recording_event(params)
    assert event.recording is not None and event.recording.media_url

    resolve("log")(make_context())(event, None)

    [text] = json_lines.getvalue().splitlines()
    line = json.loads(text)
    assert line["event"] == "recording.completed"
    assert line["event_id"] == event.id
    assert line["room_sid"] == params["RoomSid"]
    assert line["recording_sid"] == params["RecordingSid"]
    assert line["participant_sid"] == params["ParticipantSid"]
    assert line["codec"] == "VP8"
    assert line["size"] == int(params["Size"])
    assert event.recording.media_url not in text


def test_log_handler_for_a_room_event(make_context: MakeContext, json_lines: io.StringIO) -> None:
    params = room_params("room-created")

    resolve("log")(make_context())(room_event(params), None)

    [text] = json_lines.getvalue().splitlines()
    line = json.loads(text)
    assert line["event"] == "room.created"
    assert line["room_sid"] == params["RoomSid"]
    assert "recording_sid" not in line
    assert "status" not in line


# --- create_worker_app validates HANDLERS -----------------------------------------------------


def worker_config(**env: str) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "REDIS_URL": "redis://127.0.0.1:1/0",
    } | env  # fmt: skip


@pytest.mark.parametrize(
    "handlers",
    ["nope", "log,nope", "tests.unit.workers.no_such_module:record",
     "tests.unit.workers.sample_handlers:NOT_CALLABLE", ":record", ".sample_handlers:record"],
)  # fmt: skip
def test_create_worker_app_rejects_unknown_handlers(handlers: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        workers.create_worker_app(worker_config(HANDLERS=handlers))

    assert "HANDLERS" in str(caught.value)


def test_create_worker_app_accepts_known_handlers() -> None:
    app = workers.create_worker_app(worker_config(HANDLERS=f"log,{RECORD}"))

    settings = app.conf["roomrec_settings"]
    assert settings.handlers == ("log", RECORD)
    assert settings.twilio_account_sid == ACCOUNT_SID
    assert "roomrec.process_event" in app.tasks
    assert "roomrec.run_handler" in app.tasks


def test_create_worker_app_reports_other_configuration_errors() -> None:
    with pytest.raises(ConfigurationError) as caught:
        workers.create_worker_app(worker_config(TWILIO_ACCOUNT_SID=""))

    assert "TWILIO_ACCOUNT_SID" in str(caught.value)
