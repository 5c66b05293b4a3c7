from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.fields import iso8601, snake_case


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("RecordingSid", "recording_sid"),
        ("OffsetFromTwilioVideoEpoch", "offset_from_twilio_video_epoch"),
        ("StatusCallbackEvent", "status_callback_event"),
        ("MediaExternalLocation", "media_external_location"),
        ("Type", "type"),
        ("AccountSID", "account_sid"),
        ("MediaURI", "media_uri"),
        ("URLPath", "url_path"),
        ("HTTPStatusCode", "http_status_code"),
        ("H264Codec", "h264_codec"),
        ("Mp3Url", "mp3_url"),
        ("recording_sid", "recording_sid"),
        ("already_snake_case", "already_snake_case"),
        ("I-Twilio-Idempotency-Token", "i_twilio_idempotency_token"),
        ("NewThing", "new_thing"),
        ("x", "x"),
        ("", ""),
    ],
)
def test_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2020, 8, 20, 1, 42, 5, 839174, tzinfo=UTC), "2020-08-20T01:42:05.839174Z"),
        (
            datetime(2020, 8, 20, 3, 42, 5, 839174, tzinfo=timezone(timedelta(hours=2))),
            "2020-08-20T01:42:05.839174Z",
        ),
        (datetime(2020, 8, 20, 1, 42, 5, tzinfo=UTC), "2020-08-20T01:42:05Z"),
    ],
)
def test_iso8601_is_utc_with_z(moment: datetime, expected: str) -> None:
    assert iso8601(moment) == expected
