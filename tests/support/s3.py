"""A real S3-compatible server for tests: moto's server mode (``python -m moto.server``) in a
subprocess on 127.0.0.1 and a free port, so its memory and threads stay out of the test's."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

ACCESS_KEY_ID = "roomrec-test-key"
SECRET_ACCESS_KEY = "roomrec-test-secret"
REGION = "us-east-1"
STARTUP_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoS3:
    """``with MotoS3(log_path) as s3``: ``s3.url`` is the endpoint, ``s3.client()`` a boto3
    client, ``s3.bucket()`` a new empty bucket, ``s3.env`` the worker variables for it."""

    def __init__(self, log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoS3:
        args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self._process = process
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                requests.get(f"{self.url}/moto-api/", timeout=1)
                return self
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    log_text = self.log_path.read_text()
                    raise RuntimeError(f"moto server did not start:\n{log_text}") from None
                time.sleep(0.1)

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    @property
    def env(self) -> dict[str, str]:
        return {
            "S3_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": REGION,
        }

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.url, aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY, region_name=REGION,
            config=Config(s3={"addressing_style": "path"}),
        )  # fmt: skip

    def bucket(self) -> str:
        name = f"roomrec-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name
