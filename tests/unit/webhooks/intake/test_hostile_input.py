"""What a hostile client sends reaches the log truncated and redacted, through the real app:
a rejected callback's path and reason (which quotes the URL), a 404's path, a Host header."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.cputime import LINEAR_BOUND, growth
from tests.support.twilio import recording_params
from tests.unit.webhooks.conftest import AppFactory
from tests.unit.webhooks.helpers import FORM, PROBLEM
from webhooks.intake.context import event_label, note_callback
from webhooks.intake.views import CALLBACK_PATH
from webhooks.problems import _slug
from workers.observability.logs import MASK, TRUNCATE_AT

# The query gunicorn would take at most (limit_request_line): a marker, then a run of "?"
# that made the old redaction expression quadratic.
HOSTILE_QUERY = "a=signature=1'" + "?" * 8000
# A truncated field, its marker and the rest of the line's words: well under this.
LINE_BOUND = 3 * TRUNCATE_AT + 400


def _records(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def _rejections(err: str) -> list[str]:
    lines = [line for line in err.splitlines() if "rejected" in line]
    assert lines, err[-2000:]
    return lines


def test_a_rejected_callback_is_logged_truncated_and_redacted(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_app(LOG_FORMAT="json", ALLOWED_HOSTS="localhost").test_client()
    capsys.readouterr()
    response = client.post(
        f"{CALLBACK_PATH}?{HOSTILE_QUERY}", data=recording_params(),
        headers={"X-Twilio-Signature": "forged", "Content-Type": FORM},
    )  # fmt: skip
    assert response.status_code == 403 and response.mimetype == PROBLEM
    [line] = _rejections(capsys.readouterr().err)
    assert len(line) < LINE_BOUND
    message = json.loads(line)["message"]
    assert re.search(r"…\(\+\d+ chars\)", message)  # says how much was cut
    assert "?" * (TRUNCATE_AT + 1) not in message
    assert "signature=1" not in message and MASK in message  # the signed query is masked


def test_a_long_unknown_path_is_logged_truncated_and_redacted(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_app(LOG_FORMAT="json", ALLOWED_HOSTS="localhost").test_client()
    capsys.readouterr()
    path = "/nowhere/X-Amz-Signature=deadbeef/" + "%25" * 6000
    response = client.get(path)
    assert response.status_code == 404 and response.mimetype == PROBLEM
    [line] = _rejections(capsys.readouterr().err)
    assert len(line) < LINE_BOUND
    message = json.loads(line)["message"]
    assert "deadbeef" not in message and MASK in message


# --- the other expressions applied to client input: linear (or bounded) ------------------------


def _note(value: str) -> None:
    note_callback([("StatusCallbackEvent", value), ("RoomSid", value), ("RecordingSid", value)])


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "RM" + "a" * n,  # a SID body that never ends
        lambda n: "A" * n,
        lambda n: "RT" + "0" * 31 + "g" * n,
    ],
)
def test_binding_the_identifiers_of_a_callback_is_linear(
    make_app: AppFactory, make: object
) -> None:
    app = make_app(ALLOWED_HOSTS="localhost")
    with app.test_request_context():
        assert growth(_note, make, 8000) < LINEAR_BOUND  # type: ignore[arg-type]
        assert event_label("x" * 100) == "unknown"


@pytest.mark.parametrize("make", [lambda n: "-" * n, lambda n: "a-" * n, lambda n: " Ä" * n])
def test_problem_slugs_are_linear(make: object) -> None:
    assert growth(_slug, make, 8000) < LINEAR_BOUND  # type: ignore[arg-type]
