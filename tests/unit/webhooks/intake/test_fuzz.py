"""Fuzzing the callback endpoint with whole requests: random and mutated parameter sets, wrong
and missing signatures, wrong content types, oversized bodies, invalid UTF-8, repeated
parameters, GET and POST.

Every answer is a 2xx or a 4xx problem document, never a 5xx; a request that is not a correctly
signed, readable, valid callback is never queued. The cases tried are counted by kind and
printed at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import redis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import load_callback
from tests.support.report import counter
from tests.support.twilio import AUTH_TOKEN, recording_params, room_params, sid, sign
from tests.unit.webhooks.conftest import AppFactory
from tests.unit.webhooks.helpers import EVENTS_QUEUE, FORM, LOCAL_URL, PROBLEM, sign_pairs
from webhooks.intake.views import CALLBACK_PATH

EVENTS = ["room-created", "room-ended", "participant-connected", "track-added",
          "recording-started", "recording-completed", "recording-failed"]  # fmt: skip
TRIED = counter("fuzz: requests tried on the callback endpoint")


@dataclass
class Case:
    transport: str  # form, get, wrong-type, not-utf8, oversized
    signature: str  # valid, missing, forged, other-token, other-url
    mutation: str
    pairs: list[tuple[str, str]]

    @property
    def repeated_differently(self) -> bool:
        values: dict[str, set[str]] = {}
        for name, value in self.pairs:
            values.setdefault(name, set()).add(value)
        return any(len(v) > 1 for v in values.values())

    def valid_callback(self) -> bool:
        """Whether the parameters alone make a valid callback (the schema is the spec)."""
        if self.repeated_differently:
            return False
        try:
            load_callback(dict(self.pairs))
        except Exception:
            return False
        return True


def base_params(event: str) -> dict[str, str]:
    if event.startswith("recording-"):
        return recording_params(event)
    extra = {"RoomDuration": "30"} if event == "room-ended" else {}
    if event.startswith(("participant-", "track-")):
        extra |= {"ParticipantSid": sid("PA"), "ParticipantIdentity": "alice",
                  "ParticipantStatus": "connected"}  # fmt: skip
    if event.startswith("track-"):
        extra |= {"TrackSid": sid("MT"), "TrackKind": "audio"}
    return room_params(event, **extra)


text = st.text(max_size=40)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    params = base_params(draw(st.sampled_from(EVENTS)))
    mutation = draw(st.sampled_from(
        ["none", "drop", "garble", "extra", "repeat", "random", "wrong-sid", "bad-time"]
    ))  # fmt: skip
    names = sorted(params)
    if mutation == "drop":
        del params[draw(st.sampled_from(names))]
    elif mutation == "garble":
        params[draw(st.sampled_from(names))] = draw(text)
    elif mutation == "extra":
        params[draw(st.text(min_size=1, max_size=20))] = draw(text)
    elif mutation == "random":
        params = draw(st.dictionaries(st.text(min_size=1, max_size=20), text, max_size=12))
    elif mutation == "wrong-sid":
        params["RoomSid"] = "RT" + params["RoomSid"][2:]
    elif mutation == "bad-time":
        params["Timestamp"] = draw(st.sampled_from(["2020-08-20T01:42:05", "yesterday", ""]))
    pairs = list(params.items())
    if mutation == "repeat" and pairs:
        name, value = draw(st.sampled_from(pairs))
        pairs.append((name, draw(st.sampled_from([value, value + "x"]))))
    return Case(
        transport=draw(
            st.sampled_from(["form", "form", "get", "wrong-type", "not-utf8", "oversized"])
        ),  # fmt: skip
        signature=draw(
            st.sampled_from(["valid", "valid", "missing", "forged", "other-token", "other-url"])
        ),  # fmt: skip
        mutation=mutation,
        pairs=pairs,
    )


def send(app: Flask, case: Case):  # type: ignore[no-untyped-def]
    client = app.test_client()
    pairs = case.pairs
    token = "another-token" if case.signature == "other-token" else AUTH_TOKEN
    url = (
        "https://elsewhere.example.com" + CALLBACK_PATH
        if case.signature == "other-url"
        else LOCAL_URL
    )
    if case.transport == "get":
        query = urlencode(pairs)
        signature = sign(f"{url}?{query}" if query else url, None, token)
    else:
        signature = sign_pairs(url, pairs, token)
    headers = {} if case.signature == "missing" else {"X-Twilio-Signature": signature}
    if case.signature == "forged":
        headers["X-Twilio-Signature"] = "bm90IGEgc2lnbmF0dXJl"
    if case.transport == "get":
        return client.get(f"{CALLBACK_PATH}?{urlencode(pairs)}", headers=headers)
    body = urlencode(pairs).encode()
    content_type = FORM
    if case.transport == "wrong-type":
        content_type = "application/json"
        body = json.dumps(dict(pairs)).encode()
    elif case.transport == "not-utf8":
        body += b"&Broken=%FF%FE\xff\xfe"
    elif case.transport == "oversized":
        body += b"&Padding=" + b"x" * (65 * 1024)
    return client.post(CALLBACK_PATH, data=body, content_type=content_type, headers=headers)


@pytest.fixture
def fuzz_app(make_app: AppFactory, redis_url: str) -> Iterator[tuple[Flask, redis.Redis]]:
    client = redis.Redis.from_url(redis_url)
    yield make_app(), client
    client.close()


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=cases())
def test_every_answer_is_a_2xx_or_a_4xx_problem_and_nothing_invalid_is_queued(
    fuzz_app: tuple[Flask, redis.Redis], case: Case
) -> None:
    app, client = fuzz_app
    before = client.llen(EVENTS_QUEUE)
    response = send(app, case)
    queued = client.llen(EVENTS_QUEUE) - before
    TRIED.update(["total", f"transport={case.transport}", f"signature={case.signature}",
                  f"mutation={case.mutation}", f"status={response.status_code}"])  # fmt: skip

    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert response.mimetype == PROBLEM
        problem = response.get_json()
        assert problem["status"] == response.status_code and problem["title"] and problem["type"]
    readable = case.transport in ("form", "get")
    if not readable:
        expected = {"wrong-type": 415, "oversized": 413, "not-utf8": 400}[case.transport]
        assert response.status_code == expected
    elif case.signature != "valid":
        assert response.status_code == 403
    elif case.valid_callback():
        assert response.status_code == 204
    else:
        assert response.status_code == 400
    assert queued == (1 if response.status_code == 204 and not response.headers.get(
        "X-Roomrec-Duplicate") else 0)  # fmt: skip
