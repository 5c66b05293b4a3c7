"""Command line: ``python -m emulator serve ...`` and ``python -m emulator simulate ...``."""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Sequence

from emulator.client.control import EmulatorControl
from emulator.client.simulator import RoomSimulator
from emulator.model.accounts import EmulatorConfig, parse_accounts
from emulator.model.formats import is_sid
from emulator.model.state import EmulatorState
from emulator.server.serving import serve


def _credentials(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, str]:
    account_sid = args.account_sid or os.environ.get("TWILIO_ACCOUNT_SID", "")
    auth_token = args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN", "")
    if not is_sid(account_sid, "AC"):
        parser.error("--account-sid (or TWILIO_ACCOUNT_SID) must be AC followed by 32 hex digits")
    if not auth_token:
        parser.error("--auth-token (or TWILIO_AUTH_TOKEN) is required")
    return account_sid, auth_token


def _add_credentials(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--account-sid", help="default: $TWILIO_ACCOUNT_SID")
    parser.add_argument("--auth-token", help="default: $TWILIO_AUTH_TOKEN")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("serve", help="serve the Twilio Video emulator")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=0, help="0 picks a free port")
    _add_credentials(run)
    run.add_argument("--api-key-sid")
    run.add_argument("--api-key-secret")
    run.add_argument(
        "--accounts", metavar="JSON",
        help='more accounts, {"AC…": {"auth_token": "…", "api_key_sid": "SK…", '
             '"api_key_secret": "…"}}; default: $TWILIO_ACCOUNTS (tokens are better kept out '
             "of the argument list)",
    )  # fmt: skip
    run.add_argument("--public-base-url", help="base of absolute URLs instead of the Host")
    run.add_argument("--log-requests", action="store_true", help="log each request to stderr")

    play = commands.add_parser("simulate", help="play one room and send its callbacks")
    play.add_argument("--emulator", required=True, help="emulator base URL")
    play.add_argument("--callback-url", required=True)
    _add_credentials(play)
    play.add_argument("--participants", type=int, default=3)
    play.add_argument("--seed", type=int, default=None)
    play.add_argument("--method", choices=("POST", "GET"), default="POST")
    play.add_argument("--fail-recordings", type=int, default=0)
    play.add_argument("--no-record", action="store_true", help="room without recordings")
    play.add_argument("--media-external-location", help="external S3 base URL")
    return parser


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    account_sid, auth_token = _credentials(parser, args)
    accounts = args.accounts if args.accounts is not None else os.environ.get("TWILIO_ACCOUNTS")
    try:
        config = EmulatorConfig(
            account_sid=account_sid,
            auth_token=auth_token,
            api_key_sid=args.api_key_sid,
            api_key_secret=args.api_key_secret,
            base_url=args.public_base_url.rstrip("/") if args.public_base_url else None,
            accounts=parse_accounts(accounts or ""),
        )
    except ValueError as exc:
        parser.error(str(exc))

    def announce(url: str) -> None:
        print(json.dumps({"url": url}), flush=True)

    serve(
        EmulatorState(config),
        args.host,
        args.port,
        on_ready=announce,
        log_requests=args.log_requests,
    )
    return 0


def _simulate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    account_sid, auth_token = _credentials(parser, args)
    with (
        EmulatorControl(args.emulator) as control,
        RoomSimulator(
            control,
            args.callback_url,
            account_sid,
            auth_token,
            rng=random.Random(args.seed),
            method=args.method,
            media_external_location=args.media_external_location,
        ) as simulator,
    ):
        room = simulator.play(
            participants=args.participants,
            record=not args.no_record,
            fail_recordings=args.fail_recordings,
        )
    for callback in room.callbacks:
        subject = callback.params.get("RecordingSid") or callback.params.get(
            "ParticipantSid", callback.params["RoomSid"]
        )
        answer = callback.status if callback.status is not None else callback.error
        print(f"{callback.event:<26} {subject} -> {answer}", flush=True)
    return 0 if room.all_acknowledged() else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(parser, args)
    return _simulate(parser, args)


if __name__ == "__main__":
    sys.exit(main())
