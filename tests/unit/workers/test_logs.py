"""workers.logs: JSON or text lines, bound fields, redaction, the handler on the root logger."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.workers.helpers import worker_settings
from workers.logs import (
    _SIGNATURE_PARAM,
    _SIGNED_QUERY,
    MASK,
    Redactor,
    RoomrecHandler,
    bind,
    bound_fields,
    configure_logging,
    resolve_format,
    settings_secrets,
)

SECRET = "s3cr3t-auth-token-0123456789"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("workers", "webhooks", "roomrec")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def _emit(
    capsys: pytest.CaptureFixture[str], fmt: str, message: str, *args: object, **extra: object
) -> str:
    capsys.readouterr()
    configure_logging("INFO", fmt, secrets=[SECRET])
    logging.getLogger("workers.test").info(message, *args, extra=extra or None)
    return capsys.readouterr().err


def test_json_line_has_level_logger_message_time_and_bound_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with bind(room_sid="RM1", task_id="t-1", attempt=2):
        out = _emit(capsys, "json", "fetched %s", "RT1")
    [line] = out.splitlines()
    record = json.loads(line)
    assert record["message"] == "fetched RT1"
    assert record["level"] == "INFO" and record["logger"] == "workers.test"
    assert record["time"].endswith("+00:00") and isinstance(record["pid"], int)
    assert (record["room_sid"], record["task_id"], record["attempt"]) == ("RM1", "t-1", 2)
    assert "roomrec_fields" not in record


def test_extra_wins_over_bound_fields(capsys: pytest.CaptureFixture[str]) -> None:
    with bind(handler="log"):
        out = _emit(capsys, "json", "x", handler="forward")
    assert json.loads(out)["handler"] == "forward"


def test_exception_stays_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    configure_logging("INFO", "json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("workers.test").exception("failed")
    [line] = capsys.readouterr().err.splitlines()
    assert "ValueError: boom" in json.loads(line)["exc_info"]


def test_text_line_appends_bound_fields(capsys: pytest.CaptureFixture[str]) -> None:
    with bind(event="recording-completed", recording_sid="RT1"):
        out = _emit(capsys, "text", "done")
    assert out.rstrip().endswith(
        "INFO workers.test: done [event=recording-completed recording_sid=RT1]"
    )


@pytest.mark.parametrize("fmt", ["json", "text"])
@pytest.mark.parametrize(
    "logged",
    [
        f"token {SECRET} leaked",
        "https://media.example.com/RT1?Expires=1&Signature=abc123&Key-Pair-Id=K",
        "https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=A&X-Amz-Credential=c%2F1&X-Amz-Signature=ff",
        "location: /_media/RT1.mkv?Expires=17&Signature=Zm9v",
        "X-Amz-Signature=deadbeef alone",
    ],
)
def test_secrets_and_signed_queries_never_reach_the_line(
    capsys: pytest.CaptureFixture[str], fmt: str, logged: str
) -> None:
    out = _emit(capsys, fmt, "%s", logged)
    for needle in (SECRET, "abc123", "c%2F1", "=ff", "Zm9v", "deadbeef"):
        assert needle not in out
    assert MASK in out


def test_redactor_masks_the_json_escaped_form_of_a_secret() -> None:
    secret = 'quo"te\\back'
    line = json.dumps({"message": f"x {secret} y"})
    assert secret not in json.loads(Redactor([secret])(line))["message"]


def test_redactor_ignores_empty_and_tiny_secrets() -> None:
    assert Redactor([None, "", "ab"])("a b c") == "a b c"


def test_unsigned_urls_are_kept() -> None:
    url = "https://hooks.example.com/in?id=3"
    assert Redactor()(url) == url


_PIECES = st.sampled_from(
    ["?", "&", "=", " ", '"', "x", "Signature", "sIgNaTuRe=v", "X-Amz-Credential=v",
     "x-amz-security-token", "ſignature=v", "SİGNATURE=v", "K", "https://h.example/a?b"]
)  # fmt: skip


@given(st.lists(_PIECES | st.text(max_size=3), max_size=12).map("".join))
def test_redactor_skips_the_expressions_only_where_they_would_find_nothing(line: str) -> None:
    """The cheap test before the regular expressions changes no line: the same output as
    applying both, on generated lines mixing the markers in any case and non-ASCII letters
    that ``re.I`` folds to ASCII ones."""
    expected = _SIGNATURE_PARAM.sub(rf"\1={MASK}", _SIGNED_QUERY.sub("?" + MASK, line))
    assert Redactor()(line) == expected


def test_bind_restores_previous_fields_on_exit() -> None:
    with bind(a=1):
        with bind(b=2, a=3):
            assert dict(bound_fields()) == {"a": 3, "b": 2}
        assert dict(bound_fields()) == {"a": 1}
    assert dict(bound_fields()) == {}


def test_bind_leaves_out_none() -> None:
    with bind(recording_sid=None, room_sid="RM1"):
        assert dict(bound_fields()) == {"room_sid": "RM1"}


def test_bound_fields_are_per_thread() -> None:
    seen: list[dict[str, object]] = []
    with bind(task_id="main"):
        thread = threading.Thread(target=lambda: seen.append(dict(bound_fields())))
        thread.start()
        thread.join()
    assert seen == [{}]


def test_configure_twice_keeps_one_handler_of_ours_and_others_handlers() -> None:
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    configure_logging("INFO", "json")
    configure_logging("DEBUG", "text")
    ours = [h for h in root.handlers if isinstance(h, RoomrecHandler)]
    assert len(ours) == 1 and foreign in root.handlers
    assert logging.getLogger("workers").level == logging.DEBUG


def test_root_level_only_when_asked() -> None:
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    configure_logging("DEBUG", "json")
    assert root.level == logging.WARNING
    configure_logging("DEBUG", "json", root_level="INFO")
    assert root.level == logging.INFO


@pytest.mark.parametrize(
    ("fmt", "stream", "expected"),
    [("auto", _Tty(), "text"), ("auto", io.StringIO(), "json"), ("json", _Tty(), "json"),
     ("text", io.StringIO(), "text")],
)  # fmt: skip
def test_auto_is_text_on_a_terminal_only(fmt: str, stream: io.StringIO, expected: str) -> None:
    assert resolve_format(fmt, stream) == expected


def test_unknown_format_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        configure_logging("INFO", "yaml")


def test_settings_secrets_are_tokens_secrets_and_url_passwords() -> None:
    settings = worker_settings(
        REDIS_URL="redis://:redis-pass-123@localhost:6379/0",
        TWILIO_API_KEY_SID="SK" + "0" * 32, TWILIO_API_KEY_SECRET="api-secret-123",
    )  # fmt: skip
    found = settings_secrets(settings)
    assert {"redis-pass-123", "api-secret-123", settings.twilio_auth_token} <= set(found)
    assert settings.forward_secret in found
    assert settings.twilio_account_sid not in found
