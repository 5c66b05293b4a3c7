"""One archive of one recording through the real ``archive`` handler, in a process of its own
so that its memory is its alone: ``python -m bench.archive_probe '<callback params JSON>'``
with the worker's variables in the environment (``ARCHIVE_URL=file://...``).

Everything is built and the recording fetched before measuring; then the peak RSS is reset
(``/proc/self/clear_refs``, value 5), the handler runs, and the peak (``VmHWM``) is read.
A thread also samples ``VmRSS`` every 5 ms, in case the kernel refuses the reset. Prints one
JSON line: seconds, bytes, RSS before, peak and growth in MiB.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from bench.stats import status_kb
from schemas import HandlerEvent, load_callback
from schemas.settings import WorkerSettingsSchema, load_settings
from workers.delivery.dedup import event_id
from workers.handlers import HandlerContext, resolve
from workers.state.redis_client import redis_client
from workers.twilio.client import TwilioVideo


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = status_kb(os.getpid(), "VmRSS") or 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.005):
            self.peak_kb = max(self.peak_kb, status_kb(os.getpid(), "VmRSS") or 0)


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def main(params_json: str) -> dict[str, float | int | bool]:
    settings = load_settings(WorkerSettingsSchema(), os.environ)
    params = json.loads(params_json)
    client = redis_client(
        settings.redis_url, sentinel=settings.redis_sentinel, decode_responses=True
    )
    handler = resolve("archive")(HandlerContext(settings, client, requests.Session()))
    recording = TwilioVideo(settings).fetch_recording(params["RoomSid"], params["RecordingSid"])
    event = HandlerEvent(id=event_id(params), event=load_callback(params), recording=recording,
                         received_at=datetime.now(UTC))  # fmt: skip
    gc.collect()
    pid = os.getpid()
    sampler = Sampler()
    sampler.start()
    reset = reset_peak()
    before_kb = status_kb(pid, "VmRSS") or 0
    started = time.perf_counter()
    handler(event, None)
    seconds = time.perf_counter() - started
    sampler.stopping.set()
    sampler.join()
    peak_kb = max(status_kb(pid, "VmHWM") or 0, sampler.peak_kb) if reset else sampler.peak_kb
    return {
        "seconds": seconds,
        "bytes": int(recording.size or 0),
        "rss_before_mib": round(before_kb / 1024, 1),
        "peak_mib": round(peak_kb / 1024, 1),
        "growth_mib": round((peak_kb - before_kb) / 1024, 1),
        "peak_from_kernel": reset,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])), flush=True)
