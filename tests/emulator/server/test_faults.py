"""Fault injection, the concurrency limit and the traffic log, over HTTP."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from emulator.client import EmulatorControl
from emulator.errors import ControlError

ROOM = "RM" + "4" * 32


@pytest.fixture
def recording(control: EmulatorControl) -> dict[str, Any]:
    return control.create_recording(room_sid=ROOM, status="completed", size=4096, duration=1)


def test_count_limited_429_with_retry_after(
    base_url: str, control: Any, api: Any, recording: dict[str, Any]
) -> None:
    rule = control.add_fault(r"^/v1/Recordings/RT", status=429, retry_after=2, count=2)
    assert rule["count"] == 2
    url = f"{base_url}/v1/Recordings/{recording['sid']}"
    answers = [api.get(url, timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    for answer in answers[:2]:
        assert answer.headers["Retry-After"] == "2"
        assert answer.json() == {
            "code": 20429,
            "message": "Too Many Requests",
            "more_info": "https://www.twilio.com/docs/errors/20429",
            "status": 429,
        }
    assert control.faults() == []  # used up
    assert control.stats()["faults_applied"] == 2


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_use_code_20500(
    base_url: str, control: Any, api: Any, recording: dict[str, Any], status: int
) -> None:
    control.add_fault("/Recordings/", status=status)
    response = api.get(f"{base_url}/v1/Rooms/{ROOM}/Recordings/{recording['sid']}", timeout=5)
    assert response.status_code == status
    assert response.json()["code"] == 20500
    assert "Retry-After" not in response.headers
    control.clear_faults()
    assert api.get(f"{base_url}/v1/Recordings/{recording['sid']}", timeout=5).status_code == 200


def test_drop_closes_the_connection_without_an_answer(
    base_url: str, control: Any, api: Any, recording: dict[str, Any]
) -> None:
    control.add_fault("/v1/Recordings", action="drop", count=1)
    url = f"{base_url}/v1/Recordings/{recording['sid']}"
    with pytest.raises(requests.ConnectionError):
        api.get(url, timeout=5)
    assert api.get(url, timeout=5).status_code == 200
    log = control.requests()
    assert [(e["status"], e["dropped"]) for e in log] == [(None, True), (200, False)]
    assert control.stats()["by_status"] == {"dropped": 1, "200": 1}


def test_latency(base_url: str, control: Any, api: Any, recording: dict[str, Any]) -> None:
    control.add_fault("/v1/", action="latency", latency_ms=300, method="GET", count=1)
    url = f"{base_url}/v1/Recordings/{recording['sid']}"
    started = time.monotonic()
    assert api.get(url, timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert api.get(url, timeout=5).status_code == 200
    assert time.monotonic() - started < 0.3


def test_rules_match_method_and_path(
    base_url: str, control: Any, api: Any, recording: dict[str, Any]
) -> None:
    control.add_fault("/Media$", method="GET", status=503)
    control.add_fault(".*", method="DELETE", status=500)
    sid = recording["sid"]
    assert api.get(f"{base_url}/v1/Recordings/{sid}", timeout=5).status_code == 200
    assert api.get(f"{base_url}/v1/Recordings/{sid}/Media", timeout=5).status_code == 503
    assert api.delete(f"{base_url}/v1/Recordings/{sid}", timeout=5).status_code == 500
    assert control.get_recording(sid)["status"] == "completed"  # the control API is never faulted


def test_faults_apply_to_signed_media_urls(
    base_url: str, control: Any, api: Any, recording: dict[str, Any]
) -> None:
    location = api.get(
        f"{base_url}/v1/Recordings/{recording['sid']}/Media", allow_redirects=False, timeout=5
    ).headers["Location"]
    control.add_fault("^/_media/", status=503, count=1)
    assert requests.get(location, timeout=5).status_code == 503
    assert len(requests.get(location, timeout=5).content) == 4096


def test_probability_zero_never_applies(
    base_url: str, control: Any, api: Any, recording: dict[str, Any]
) -> None:
    control.add_fault("/v1/", status=500, probability=0)
    for _ in range(5):
        assert api.get(f"{base_url}/v1/Recordings/{recording['sid']}", timeout=5).status_code == 200


@pytest.mark.parametrize(
    "rule",
    [
        {"path": "(", "status": 500},
        {"path": "/v1/", "action": "explode"},
        {"path": "/v1/", "action": "status"},
        {"path": "/v1/", "status": 200},
        {"path": "/v1/", "action": "latency"},
        {"path": "/v1/", "status": 500, "probability": 2},
        {"path": "/v1/", "status": 500, "surprise": True},
    ],
)
def test_invalid_rules_are_rejected(control: Any, rule: dict[str, Any]) -> None:
    with pytest.raises(ControlError) as caught:
        control.add_fault(**rule)
    assert caught.value.status == 400


def test_max_concurrency_answers_429(
    base_url: str, control: Any, creds: Any, recording: dict[str, Any]
) -> None:
    control.set_settings(max_concurrency=2, latency_ms=400)
    url = f"{base_url}/v1/Recordings/{recording['sid']}"
    workers = 8
    barrier = threading.Barrier(workers)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def fetch() -> None:
        barrier.wait()
        response = requests.get(url, auth=(creds.account_sid, creds.auth_token), timeout=10)
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=fetch) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(a.status_code for a in answers)
    throttled = [a for a in answers if a.status_code == 429]
    assert throttled and set(statuses) == {200, 429}
    assert statuses.count(200) >= 2
    assert all(a.json()["code"] == 20429 for a in throttled)
    assert all("Retry-After" not in a.headers for a in throttled)  # Twilio documents none
    stats = control.stats()
    assert stats["throttled"] == len(throttled)
    assert stats["by_status"]["429"] == len(throttled)
    assert stats["peak_concurrency"] == 2
    assert control.set_settings(max_concurrency=None, latency_ms=0) == {
        "max_concurrency": None,
        "latency_ms": 0,
        "throttle_retry_after": None,
    }
    assert requests.get(url, auth=(creds.account_sid, creds.auth_token), timeout=5).ok


def test_the_concurrency_429_carries_retry_after_when_set(
    base_url: str, control: Any, creds: Any, recording: dict[str, Any]
) -> None:
    control.set_settings(max_concurrency=1, latency_ms=300, throttle_retry_after=2)
    url = f"{base_url}/v1/Recordings/{recording['sid']}"
    auth = (creds.account_sid, creds.auth_token)
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(requests.get, url, auth=auth, timeout=10)
            time.sleep(0.1)  # the first request holds the only slot for 300 ms
            second = pool.submit(requests.get, url, auth=auth, timeout=10)
            answers = [first.result(), second.result()]
    finally:
        control.set_settings(max_concurrency=None, latency_ms=0, throttle_retry_after=None)

    assert [a.status_code for a in answers] == [200, 429]
    assert answers[1].headers["Retry-After"] == "2"
    assert answers[1].json()["code"] == 20429


def test_request_log_and_reset(
    base_url: str, control: Any, api: Any, recording: dict[str, Any], creds: Any
) -> None:
    api.get(f"{base_url}/v1/Recordings", params={"PageSize": 5}, timeout=5)
    requests.get(f"{base_url}/v1/Recordings", timeout=5)
    log = control.requests()
    assert [(e["method"], e["path"], e["query"], e["status"], e["username"]) for e in log] == [
        ("GET", "/v1/Recordings", "PageSize=5", 200, creds.account_sid),
        ("GET", "/v1/Recordings", "", 401, None),
    ]
    assert all(isinstance(e["time"], float) for e in log)
    assert control.stats()["by_status"] == {"200": 1, "401": 1}
    control.clear_requests()
    assert control.requests() == []
    control.add_fault("/v1/", status=500)
    control.reset()
    assert control.faults() == [] and control.recordings() == [] and control.requests() == []
