"""workers.delivery.messages.MessageTemplate: the web's messages, built once by Celery and then
filled, are the messages Celery's own builder makes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from workers.delivery.celery_app import EVENTS_QUEUE, PROCESS_EVENT_TASK, make_celery
from workers.delivery.messages import MessageTemplate, build_message

APP = make_celery("redis://127.0.0.1:1/0")  # builds messages only: never connects

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_IDS = st.text(min_size=1, max_size=40)


def _without_tag(message: str) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(message)
    envelope["properties"].pop("delivery_tag")
    return envelope


@given(args=st.lists(_JSON, max_size=3), task_id=_IDS)
def test_a_rendered_message_is_the_one_celery_builds(args: list[Any], task_id: str) -> None:
    template = MessageTemplate(APP, PROCESS_EVENT_TASK, queue=EVENTS_QUEUE)

    rendered = template.render(args, task_id=task_id)
    built = build_message(APP, PROCESS_EVENT_TASK, args, task_id=task_id, queue=EVENTS_QUEUE)

    assert _without_tag(rendered) == _without_tag(built)
    assert json.loads(rendered).keys() == json.loads(built).keys()  # nothing added or lost


def test_every_message_has_its_own_delivery_tag() -> None:
    template = MessageTemplate(APP, PROCESS_EVENT_TASK, queue=EVENTS_QUEUE)

    tags = {
        json.loads(template.render([{"n": n}], task_id="evt_1"))["properties"]["delivery_tag"]
        for n in range(50)
    }

    assert len(tags) == 50


def test_a_template_is_built_once_and_reused() -> None:
    template = MessageTemplate(APP, PROCESS_EVENT_TASK, queue=EVENTS_QUEUE)
    template.render([1], task_id="evt_a")
    pieces = template._pieces

    second = json.loads(template.render([2], task_id="evt_b"))

    assert template._pieces is pieces
    assert second["headers"]["id"] == second["headers"]["root_id"] == "evt_b"
    assert second["properties"]["correlation_id"] == "evt_b"
