from __future__ import annotations

from workers.state.keys import done_key

TARGET = "https://hooks.example.com/in?token=s3cr3t"


def test_done_key_is_stable() -> None:
    assert done_key("evt_a", "forward", TARGET) == done_key("evt_a", "forward", TARGET)


def test_done_key_differs_by_event_handler_and_target() -> None:
    keys = {
        done_key("evt_a", "forward", TARGET),
        done_key("evt_b", "forward", TARGET),
        done_key("evt_a", "log", TARGET),
        done_key("evt_a", "forward", "https://other.example.com/in"),
        done_key("evt_a", "forward", None),
    }

    assert len(keys) == 5


def test_done_key_never_contains_the_target_url() -> None:
    key = done_key("evt_a", "forward", TARGET)

    assert "s3cr3t" not in key
    assert "hooks.example.com" not in key
    assert key.startswith("roomrec:")
