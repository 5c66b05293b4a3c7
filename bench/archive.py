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

A third run per round, the floor, is curl's own copy made durable: ``curl -s -o`` and then an
fsync of the file, timed together. An archive commits only what is on disk, and curl's file
is deleted before the kernel has written it out: the floor's ratio to ``curl -o`` shows what
the disk's write-back costs a durable copy here (overlapping the write-back with the download,
as the handler does, can win some of it back, not more than the disk's own speed). Each round
runs the three back to back, the order rotating, and ratios pair runs of the same round.
"""

from __future__ import annotations

import json
import logging
import os
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
from bench.stats import at_least, at_most, median, per_round_ratio, ratio, reference, rounded, shown
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


def curl_run(env: BenchEnv, curl: str, *, durable: bool = False) -> dict[str, Any]:
    """``curl -o``; ``durable``: and an fsync of its file, in the same time (the floor)."""
    recording = big_recording(env)
    target = env.path("curl.bin")
    url = signed_media_url(env, recording)
    started = time.perf_counter()
    subprocess.run([curl, "-s", "-f", "-o", str(target), url], check=True, timeout=600)
    if durable:
        descriptor = os.open(target, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    seconds = time.perf_counter() - started
    size = target.stat().st_size
    target.unlink()
    if size != SIZE:
        raise RuntimeError(f"curl fetched {size} bytes, not {SIZE}")
    tool = "curl+fsync" if durable else "curl"
    return {"tool": tool, "seconds": seconds, "mib_per_s": SIZE / MIB / seconds}


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
    tools = ["curl", "curl+fsync", "archive"]
    for number in range(rounds):
        shift = number % len(tools)  # each first, in the middle and last in turn
        for tool in tools[shift:] + tools[:shift]:
            if tool == "archive":
                figures = archive_run(env, number)
            else:
                figures = curl_run(env, curl, durable=tool == "curl+fsync")
            log.info("archive %s: %.0f MiB/s", tool, figures["mib_per_s"])
            runs.append({"round": number + 1, **figures})

    def rate(tool: str) -> float | None:
        return median(run["mib_per_s"] for run in runs if run["tool"] == tool)

    def paired(subject: str, baseline: str = "curl") -> tuple[float | None, list[float]]:
        return per_round_ratio(runs, field="tool", subject=subject, baseline=baseline,
                               value="mib_per_s")  # fmt: skip

    curl_rate, archive_rate, floor_rate = rate("curl"), rate("archive"), rate("curl+fsync")
    growth = max(run["growth_mib"] for run in runs if run["tool"] == "archive")
    throughput, ratios = paired("archive")
    floor_ratio, floor_ratios = paired("curl+fsync")
    of_floor, of_floor_ratios = paired("archive", "curl+fsync")
    return {
        "method": {
            "size_bytes": SIZE,
            "storage": "file:// in the run's temporary directory (same disk as curl's file)",
            "baseline": "curl -s -f -o FILE <signed media URL>",
            "floor": "the same curl, then fsync(FILE), timed together",
            "memory": "peak RSS (VmHWM after clear_refs) minus RSS before; max over rounds",
        },
        "figures": {
            "curl_mib_per_s": rounded(curl_rate, 1),
            "archive_mib_per_s": rounded(archive_rate, 1),
            "ratio": rounded(throughput),
            "ratios_per_round": ratios,
            "ratio_of_medians": rounded(ratio(archive_rate, curl_rate)),
            "memory_growth_mib": growth,
            "floor_mib_per_s": rounded(floor_rate, 1),
            "floor_ratio": rounded(floor_ratio),
            "floor_ratios_per_round": floor_ratios,
            "archive_of_floor": rounded(of_floor),
            "archive_of_floor_per_round": of_floor_ratios,
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
        "references": [
            reference(
                "floor (curl -o, then fsync) vs curl -o",
                floor_ratio,
                "x",
                meaning=f"curl's copy, made durable after it ({shown(floor_rate)} MiB/s): what "
                "writing the gibibyte to disk costs here, which curl -o never waits for",
            ),
            reference(
                "archive vs the floor",
                of_floor,
                "x",
                meaning="what the media request, SHA-256, the sidecar and the index leave of it",
            ),
        ],
        "runs": runs,
    }
