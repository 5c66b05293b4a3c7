"""Whatever correctly signed parameters arrive, the answer is 204 or a 4xx problem."""

from __future__ import annotations

import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import CALLBACK_SCHEMAS
from tests.support.twilio import recording_params, room_params, sid
from tests.unit.webhooks.helpers import PROBLEM, post_callback, queued

EVENTS = sorted(CALLBACK_SCHEMAS)
# Every parameter some schema checks; anything else must be accepted as it is.
DOCUMENTED = {
    field.data_key or name
    for schema in CALLBACK_SCHEMAS.values()
    for name, field in schema().fields.items()
}
# Each example resets the private Redis itself, so the function-scoped fixtures are safe.
FAST = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

texts = st.text(max_size=24)
param_dicts = st.dictionaries(texts, texts, max_size=12)
events = st.one_of(st.sampled_from(EVENTS), texts)


def flush(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()


@FAST
@given(params=param_dicts, event=st.none() | events)
def test_signed_random_params_never_cause_a_5xx(
    client: FlaskClient, redis_url: str, params: dict[str, str], event: str | None
) -> None:
    flush(redis_url)
    if event is not None:
        params["StatusCallbackEvent"] = event
    response = post_callback(client, params)
    if response.status_code == 204:
        assert len(queued(redis_url)) == 1
    else:
        assert 400 <= response.status_code < 500
        assert response.mimetype == PROBLEM
        assert queued(redis_url) == []


def valid_params(event: str) -> dict[str, str]:
    if event.startswith("recording-"):
        return recording_params(event)
    if event.startswith("composition-"):
        return room_params(event, CompositionSid=sid("CJ"), HookSid=sid("HK"))
    return room_params(event, ParticipantSid=sid("PA"), TrackSid=sid("MT"), TrackKind="audio")


@FAST
@given(extra=param_dicts, event=st.sampled_from(EVENTS))
def test_unknown_extra_params_never_stop_a_valid_callback(
    client: FlaskClient, redis_url: str, extra: dict[str, str], event: str
) -> None:
    flush(redis_url)
    base = valid_params(event)
    params = {key: value for key, value in extra.items() if key not in DOCUMENTED} | base
    response = post_callback(client, params)
    assert response.status_code == 204, response.get_data(as_text=True)
    [message] = queued(redis_url)
    assert message["args"][0]["params"] == params
