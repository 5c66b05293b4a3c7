"""5. Archive streaming: a 1 GiB recording archived from the emulator to ``file://`` by the real
``archive`` handler (:mod:`bench.archive_probe`, its own process), against ``curl -s -o`` of
the same signed media URL to the same disk.

Each round archives a recording of its own (nothing is "already archived") into a fresh
directory, and curl fetches a signed URL obtained from the emulator's ``…/Media`` redirect,
as the handler does. Rounds alternate which goes first; files are deleted after each run.
The handler's time includes what the handler does beyond the copy: the ``…/Media`` request,
SHA-256 of every byte, the fsync before the commit, the sidecar and the index entry; curl
neither hashes nor fsyncs. Peak memory is the handler process' peak RSS during the archive
minus its RSS just before.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from typing import Any

import requests

from bench import callbacks
from bench.callbacks import ACCOUNT_SID, AUTH_TOKEN
from bench.env import BenchEnv
from bench.procs import process_env
from bench.stats import at_least, at_most, median, paired_ratio, ratio, rounded, shown
from bench.tools import ensure
from devtools.processes import REPO

log = logging.getLogger(__name__)

SIZE = 1024**3
MIB = 1024 * 1024


def big_recording(env: BenchEnv) -> callbacks.BenchRecording:
    recording = callbacks.recordings(env.rng, 1, size=SIZE)[0]
    env.emulator.control.create_recording(**callbacks.emulator_fields(recording))
    return recording


def signed_media_url(env: BenchEnv, recording: callbacks.BenchRecording) -> str:
    path = f"/v1/Rooms/{recording.room_sid}/Recordings/{recording.sid}/Media"
    response = requests.get(env.emulator.url + path, auth=(ACCOUNT_SID, AUTH_TOKEN),
                            allow_redirects=False, timeout=10)  # fmt: skip
    return str(response.headers["Location"])


def curl_run(env: BenchEnv, curl: str) -> dict[str, Any]:
    recording = big_recording(env)
    target = env.path("curl.bin")
    url = signed_media_url(env, recording)
    started = time.perf_counter()
    subprocess.run([curl, "-s", "-f", "-o", str(target), url], check=True, timeout=600)
    seconds = time.perf_counter() - started
    size = target.stat().st_size
    target.unlink()
    if size != SIZE:
        raise RuntimeError(f"curl fetched {size} bytes, not {SIZE}")
    return {"tool": "curl", "seconds": seconds, "mib_per_s": SIZE / MIB / seconds}


def archive_run(env: BenchEnv, number: int) -> dict[str, Any]:
    recording = big_recording(env)
    directory = env.path(f"archive-{number}")
    # A long visibility timeout gives one attempt time for the whole gibibyte.
    config = env.worker_config(
        env.path("archive.sqlite3"),
        HANDLERS="archive",
        ARCHIVE_URL=directory.as_uri(),
        VISIBILITY_TIMEOUT="3600",
    )
    params = json.dumps(callbacks.completed_params(recording))
    result = subprocess.run(
        [sys.executable, "-m", "bench.archive_probe", params], cwd=REPO, env=process_env(config),
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    try:
        figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"the archive probe failed:\n{result.stderr[-3000:]}") from None
    stored = directory / recording.room_sid / f"{recording.sid}.mkv"
    size = stored.stat().st_size
    shutil.rmtree(directory)
    if size != SIZE:
        raise RuntimeError(f"the archive holds {size} bytes, not {SIZE}")
    return {"tool": "archive", **figures, "mib_per_s": SIZE / MIB / figures["seconds"]}


def run(env: BenchEnv, *, rounds: int = 3) -> dict[str, Any]:
    curl = ensure("curl")
    runs: list[dict[str, Any]] = []
    for number in range(rounds):
        order = ("curl", "archive") if number % 2 == 0 else ("archive", "curl")
        for tool in order:
            figures = curl_run(env, curl) if tool == "curl" else archive_run(env, number)
            log.info("archive %s: %.0f MiB/s", tool, figures["mib_per_s"])
            runs.append({"round": number + 1, **figures})
    curl_rate = median(run["mib_per_s"] for run in runs if run["tool"] == "curl")
    archive_rate = median(run["mib_per_s"] for run in runs if run["tool"] == "archive")
    growth = max(run["growth_mib"] for run in runs if run["tool"] == "archive")
    throughput, ratios = paired_ratio(runs, field="tool", subject="archive", value="mib_per_s")
    return {
        "method": {
            "size_bytes": SIZE,
            "storage": "file:// in the run's temporary directory (same disk as curl's file)",
            "baseline": "curl -s -f -o FILE <signed media URL>",
            "memory": "peak RSS (VmHWM after clear_refs) minus RSS before; max over rounds",
        },
        "figures": {
            "curl_mib_per_s": rounded(curl_rate, 1),
            "archive_mib_per_s": rounded(archive_rate, 1),
            "ratio": rounded(throughput),
            "ratios_per_round": ratios,
            "ratio_of_medians": rounded(ratio(archive_rate, curl_rate)),
            "memory_growth_mib": growth,
        },
        "targets": [
            at_least(
                "throughput vs curl -o",
                throughput,
                0.7,
                "x",
                baseline=f"curl -o {shown(curl_rate)} MiB/s",
                subject=f"archive handler {shown(archive_rate)} MiB/s",
            ),
            at_most(
                "peak memory growth",
                growth,
                32,
                " MiB",
                subject="peak RSS during the archive minus RSS before (1 GiB)",
            ),
        ],
        "runs": runs,
    }
