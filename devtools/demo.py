"""``make demo``: the whole stack on this machine, fed by a simulated Twilio room.

Starts Redis (``REDIS_URL`` when it answers, else a private redis-server), the Twilio Video
emulator, gunicorn serving the web app, a Celery worker and a local webhook receiver; plays a
room with several participants; prints each event as the handlers finish with it. Ctrl-C stops
everything.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import secrets
import shutil
import signal
import sys
import time
from contextlib import ExitStack

import redis

from devtools.processes import REPO, celery_worker, gunicorn_web
from devtools.receiver import Delivery, ForwardTarget
from devtools.redis_server import RedisServer, free_port
from emulator.client import EmulatorProcess, RoomSimulator
from workers.state.redis_client import redis_client

RUN_DIR = REPO / ".run"


def reachable(url: str) -> bool:
    try:
        client = redis_client(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        return bool(client.ping())
    except (redis.RedisError, ValueError):
        return False


def describe(delivery: Delivery) -> str:
    body = delivery.body
    event = body["data"]["event"]
    line = f"{body['type']:<26} room {event['room_sid'][:10]}…"
    if "participant_identity" in event:
        line += f"  participant {event['participant_identity'][:12]}"
    if body["data"].get("recordings") is not None:
        line += f"  {len(body['data']['recordings'])} recordings, all final"
    recording = body["data"].get("recording")
    if recording:
        line += (
            f"  recording {recording['sid'][:10]}… {recording['status']:<10} {recording['type']}"
            f"/{recording['codec']} .{recording['container_format']}"
            f" {recording['duration'] or 0:>3}s {recording['size'] or 0:>8} bytes"
        )
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--once", action="store_true", help="exit when the room is processed")
    args = parser.parse_args(argv)

    account_sid = "AC" + secrets.token_hex(16)
    auth_token = secrets.token_hex(16)
    forward_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    RUN_DIR.mkdir(exist_ok=True)
    for leftover in RUN_DIR.glob("spool.sqlite3*"):  # a demo's events are throwaway
        leftover.unlink()

    with ExitStack() as stack:
        redis_url = os.environ.get("REDIS_URL", "")
        if not (redis_url and reachable(redis_url)):
            # A fresh one each run: a kept de-duplication record would refuse a replayed
            # room (--seed gives the same SIDs again) as already processed.
            shutil.rmtree(RUN_DIR / "redis", ignore_errors=True)
            server = RedisServer(RUN_DIR / "redis", appendonly=True)
            server.start()
            stack.callback(server.stop)
            redis_url = server.url
        print(f"redis     {redis_url}")

        emulator = EmulatorProcess(account_sid, auth_token).start()
        stack.callback(emulator.stop)
        print(f"emulator  {emulator.url}  (Twilio Video API)")

        def show(delivery: Delivery) -> None:
            mark = "✓" if delivery.status < 300 else f"✗ {delivery.status}"
            print(f"  {mark} {describe(delivery)}", flush=True)

        receiver = ForwardTarget(forward_secret, listener=show)
        stack.callback(receiver.stop)
        print(f"receiver  {receiver.url}  (verifies Standard Webhooks signatures)")

        port = free_port()
        common = {"REDIS_URL": redis_url, "TWILIO_AUTH_TOKEN": auth_token,
                  "SPOOL_PATH": str(RUN_DIR / "spool.sqlite3")}  # fmt: skip
        # The URL the simulated Twilio calls and signs for (only the web gets it).
        web = gunicorn_web(common | {"PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"},
                           RUN_DIR / "web.log", port)  # fmt: skip
        stack.callback(web.stop)
        callback_url = f"http://127.0.0.1:{port}/twilio/room-events"
        print(f"web       {callback_url}  (logs: .run/web.log)")

        worker = celery_worker(
            common | {
                "TWILIO_ACCOUNT_SID": account_sid,
                "TWILIO_VIDEO_BASE_URL": emulator.url,
                "HANDLERS": "log,forward",
                "FORWARD_URLS": receiver.url,
                "FORWARD_SECRET": forward_secret,
                "FORWARD_ALLOW_HTTP": "1",
                "MEDIA_ALLOWED_NETWORKS": "127.0.0.0/8",  # the emulator's media is on loopback
                "METRICS_PORT": "0",
            },
            RUN_DIR / "worker.log",
        )  # fmt: skip
        stack.callback(worker.stop)
        print("worker    celery -A workers worker  (logs: .run/worker.log)\n")

        rng = random.Random(args.seed)
        print(f"Playing a room with {args.participants} participants; forwarded events:")
        simulator = RoomSimulator(emulator.control, callback_url, account_sid, auth_token, rng=rng)
        room = simulator.play(participants=args.participants)
        refused = [sent for sent in room.callbacks if sent.status != 204]
        expected = len(room.callbacks) + 1  # and the room's recordings_ready event
        deadline = time.monotonic() + 60
        while len(receiver.deliveries) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        ready = sum(1 for d in receiver.deliveries if d.body["type"] == "room.recordings_ready")
        print(
            f"\n{len(room.callbacks)} callbacks sent ({len(refused)} refused), "
            f"{len(receiver.deliveries) - ready} events forwarded, "
            f"{len(room.recordings)} recordings fetched from the emulator, "
            f"{ready} room ready."
        )
        if args.once:
            return 0 if len(receiver.deliveries) == expected and not refused else 1
        print(f"\nStill running: send callbacks to {callback_url}. Ctrl-C stops everything.")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("\nstopping…")
    return 0


if __name__ == "__main__":
    sys.exit(main())
