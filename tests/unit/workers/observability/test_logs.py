"""workers.observability.logs: JSON or text lines, bound fields, redaction, the handler on the root
logger."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
import requests
import urllib3
from hypothesis import given
from hypothesis import strategies as st

from tests.support.cputime import LINEAR_BOUND, growth
from tests.unit.workers.helpers import recording_event, worker_settings
from workers.errors import TransientError, translate
from workers.handlers import HandlerContext, resolve
from workers.observability.logs import (
    _SIGNATURE_PARAM,
    MASK,
    TRUNCATE_AT,
    Redactor,
    RoomrecHandler,
    bind,
    bound_fields,
    configure_logging,
    resolve_format,
    settings_secrets,
    truncate,
)
from workers.observability.redaction import redact
from workers.outbound.http import Pool

SECRET = "s3cr3t-auth-token-0123456789"
# What the redaction of signed queries must find: the one expression it was, which is
# quadratic in a run of "?" (workers.observability.logs finds the same matches in linear time).
_SIGNED_QUERY = re.compile(r"\?[^\s\"'<>\\]*?(?:signature|x-amz-credential)=[^\s\"'<>\\]*", re.I)


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
     "x-amz-security-token", "ſignature=v", "SİGNATURE=v", "K", "https://h.example/a?b",
     "\\", "'", "<", "\t", "\u2028", "é", "%", "x-amz-credential="]
)  # fmt: skip


@given(st.lists(_PIECES | st.text(max_size=3), max_size=12).map("".join))
def test_redactor_skips_the_expressions_only_where_they_would_find_nothing(line: str) -> None:
    """The cheap test before the regular expressions changes no line, and the linear scan
    for signed queries finds what the expression it replaced found: the same output as
    applying both expressions, on generated lines mixing the markers in any case, the
    characters that end a URL and non-ASCII letters that ``re.I`` folds to ASCII ones."""
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


def test_settings_secrets_hold_the_password_of_every_url_of_a_failover_list() -> None:
    """kombu's failover and Sentinel URLs are ``;`` lists: a later URL's password is as secret
    as the first's."""
    settings = worker_settings(
        CELERY_BROKER_URL="amqp://u:first-pass-123@h1:5672//;amqp://u:second-pass-456@h2:5672//",
    )
    found = settings_secrets(settings)
    assert {"first-pass-123", "second-pass-456"} <= set(found)


def test_settings_secrets_reach_into_the_accounts_of_twilio_accounts() -> None:
    other = "AC" + "7" * 32
    settings = worker_settings(
        TWILIO_ACCOUNTS=json.dumps({other: {
            "auth_token": "other-token-123", "api_key_sid": "SK" + "1" * 32,
            "api_key_secret": "other-key-secret",
        }}),
    )  # fmt: skip
    found = settings_secrets(settings)
    assert {"other-token-123", "other-key-secret"} <= set(found)
    assert other not in found


def test_a_database_url_keeps_its_plain_query_values_and_masks_the_secret_ones() -> None:
    settings = worker_settings(
        DATABASE_URL="postgresql+psycopg://u:db-pass-123@db/roomrec"
        "?sslmode=require&application_name=roomrec&sslpassword=key-pass-123",
    )
    found = set(settings_secrets(settings))
    assert {"db-pass-123", "key-pass-123"} <= found
    assert "require" not in found and "roomrec" not in found


# --- linear time on hostile input ---------------------------------------------------------------

# The longest request line gunicorn takes (limit_request_line is at most 8190); a body is at
# most 64 KiB, and a rejection quotes at most TRUNCATE_AT characters of it.
_LINE = 8190
_HOSTILE: dict[str, Callable[[int], str]] = {
    "question marks after a marker": lambda n: "/healthz?a=signature=1'" + "?" * n,
    "question marks, marker elsewhere": lambda n: "signature= /x" + "?" * n,
    "markers": lambda n: "?" + "signature=" * n,
    "markers without equals": lambda n: "?" + "Signature" * n + " x-amz-credential=",
    "ampersands": lambda n: "?a=1" + "&" * n + " X-Amz-Signature=",
    "percents": lambda n: "/x?" + "%" * n + " signature=",
    "mixed": lambda n: ("?&%=signature&X-Amz-" * n)[: 20 * n] + " signature=",
    "non-ASCII": lambda n: "ſignature= é" + "?" * n,
    "JSON line": lambda n: json.dumps({"message": "rejected POST '/x?a=signature=1" + "?" * n}),
}


@pytest.mark.parametrize("make", _HOSTILE.values(), ids=_HOSTILE)
def test_redaction_runs_in_linear_time(make: Callable[[int], str]) -> None:
    """The CPU time of a line 8 times as long is about 8 times as much (quadratic: 64)."""
    redactor = Redactor([SECRET, "https://user:pass-word@hooks.example.com/x?token=tok-123"])
    assert growth(redactor, make, _LINE // 8) < LINEAR_BOUND


def test_the_expression_redaction_replaced_fails_the_same_check() -> None:
    """The check can fail: the one expression it was grows quadratically on a "?" run."""

    def old(line: str) -> str:
        return _SIGNATURE_PARAM.sub(rf"\1={MASK}", _SIGNED_QUERY.sub("?" + MASK, line))

    assert growth(old, _HOSTILE["question marks after a marker"], 300) > LINEAR_BOUND


@pytest.mark.parametrize("make", _HOSTILE.values(), ids=_HOSTILE)
def test_hostile_lines_are_redacted_as_the_expression_did(make: Callable[[int], str]) -> None:
    line = make(500)
    expected = _SIGNATURE_PARAM.sub(rf"\1={MASK}", _SIGNED_QUERY.sub("?" + MASK, line))
    assert Redactor()(line) == expected


# --- truncate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "/twilio/room-events", "x" * TRUNCATE_AT])
def test_truncate_keeps_short_text(text: str) -> None:
    assert truncate(text) == text


def test_truncate_cuts_long_text_and_says_how_much() -> None:
    text = "/x?" + "?" * 10_000
    cut = truncate(text)
    assert cut == text[:TRUNCATE_AT] + f"…(+{len(text) - TRUNCATE_AT} chars)"
    assert truncate("abcdef", 4) == "abcd…(+2 chars)"


# --- FORWARD_URLS and other URL settings --------------------------------------------------------

_PASSWORD = "pa55-w0rd"
_TOKEN = "tok/en+abc 123"  # percent-encoded in the URL: "tok%2Fen%2Babc%20123"
_PATH_TOKEN = "XyZ0123456789abcdefQ"
_FORWARD_URLS = (
    f"https://user:{_PASSWORD}@hooks.example.com/x?token={quote(_TOKEN, safe='')}&v=1,"
    f"https://chat.example.com/services/T0123/{_PATH_TOKEN}"
)


def _forward_settings(**env: str) -> object:
    return worker_settings(FORWARD_URLS=_FORWARD_URLS, **env)


def test_settings_secrets_hold_the_userinfo_query_values_and_tokens_of_forward_urls() -> None:
    found = set(settings_secrets(_forward_settings()))
    assert {_PASSWORD, "user", _TOKEN, quote(_TOKEN, safe=""), _PATH_TOKEN} <= found
    assert "hooks.example.com" not in found and "services" not in found


@pytest.mark.parametrize(
    "written",
    [
        _PASSWORD,
        _TOKEN,
        quote(_TOKEN, safe=""),  # as in the URL
        quote(_TOKEN, safe="!#$%&'()*+,/:;=?@[]~"),  # as requests re-quotes it
        json.dumps(_TOKEN)[1:-1],
        _PATH_TOKEN,
    ],
)
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_forward_url_secrets_never_reach_a_line(
    capsys: pytest.CaptureFixture[str], fmt: str, written: str
) -> None:
    capsys.readouterr()
    configure_logging("INFO", fmt, secrets=settings_secrets(_forward_settings()))
    logging.getLogger("workers.test").warning("target said %r (%s)", written, written)
    out = capsys.readouterr().err
    assert written not in out and MASK in out


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_chained_requests_traceback_shows_neither_password_nor_token(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """A real ConnectionError from requests (a closed loopback port; requests carries the media
    downloads), chained under a TransientError as :func:`workers.errors.translate` makes it,
    logged with its traceback by a worker's logging: requests quotes the URL's path and query
    in it."""
    url = f"http://user:{_PASSWORD}@127.0.0.1:{_closed_port()}/x?token={quote(_TOKEN, safe='')}"
    settings = worker_settings(FORWARD_URLS=url)
    capsys.readouterr()
    configure_logging("INFO", fmt, secrets=settings_secrets(settings))
    with pytest.raises(TransientError) as raised, requests.Session() as session:
        try:
            session.post(url, data=b"{}", timeout=5)
        except requests.RequestException as exc:
            raise translate(exc, f"download from {redact(url)}") from exc
    cause = raised.value.__cause__
    assert isinstance(cause, requests.ConnectionError)
    assert quote(_TOKEN, safe="") in str(cause)  # the exception itself quotes the token
    logging.getLogger("workers.pipeline.tasks").error("download failed", exc_info=raised.value)
    out = capsys.readouterr().err
    assert "ConnectionError" in out and "direct cause" in out  # the chained traceback is there
    for needle in (_PASSWORD, _TOKEN, quote(_TOKEN, safe=""), "tok%2Fen"):
        assert needle not in out


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_chained_forward_traceback_shows_neither_password_nor_token(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """The same through the forward handler, whose POST goes through urllib3: a real
    NewConnectionError, chained under the handler's TransientError, logged with its
    traceback."""
    url = f"http://user:{_PASSWORD}@127.0.0.1:{_closed_port()}/x?token={quote(_TOKEN, safe='')}"
    settings = worker_settings(FORWARD_URLS=url)
    context = HandlerContext(settings=settings, redis=None, http=Pool())  # type: ignore[arg-type]
    handler = resolve("forward")(context)
    capsys.readouterr()
    configure_logging("INFO", fmt, secrets=settings_secrets(settings))
    with pytest.raises(TransientError) as raised:
        handler(recording_event(), url)
    cause = raised.value.__cause__
    assert isinstance(cause, urllib3.exceptions.NewConnectionError)
    logging.getLogger("workers.pipeline.tasks").error("forward failed", exc_info=raised.value)
    out = capsys.readouterr().err
    assert "NewConnectionError" in out and "direct cause" in out  # the chained traceback
    for needle in (_PASSWORD, _TOKEN, quote(_TOKEN, safe=""), "tok%2Fen"):
        assert needle not in out
    context.http.close()
