"""moto's server as an AWS emulator that enforces IAM, for running drctl under exactly the policy the stack
generates (LocalStack enforces IAM only in its paid edition).

moto checks every request's action against the caller's policies once its no-auth window is closed
(``POST /moto-api/reset-auth`` with ``0``); before that, the estate is seeded with any credentials. What
moto does *not* check, from its source (``moto/iam/access_control.py``, 5.2): Conditions (an Allow with a
Condition counts as unconditional), resource ARNs outside S3, SQS, IAM and STS (everything else is checked
against ``*``, so a policy naming EC2 or Route53 ARNs is refused there), NotResource, session policies and
permission boundaries. So a missing action fails under it; a policy too broad in its resources or
conditions does not.

``python -m tests.support.moto_iam -p PORT`` runs moto's server with two fixes, each where moto disagrees
with AWS:

- moto re-signs a bodiless GET, HEAD or DELETE with the parsed query as its payload, so every Route53 GET
  (ListHostedZonesByName, GetHostedZone, ...) failed its signature check with IAM on, whatever the policy;
- moto asks for ``s3:HeadBucket`` on a HEAD of a bucket, an action IAM does not have: AWS authorises
  HeadBucket with ``s3:ListBucket`` (the S3 API reference's HeadBucket page).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

READY_S = 30.0
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class MotoServer:
    url: str
    process: subprocess.Popen[bytes]

    def enforce_iam(self) -> None:
        """Close the no-auth window: every request from now on is checked against its caller's policies."""
        # Not form-encoded (urllib's default), or werkzeug parses the body away and moto reads nothing.
        request = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as answer:
            return int(answer.status) == 200
    except OSError:
        return False


@contextlib.contextmanager
def moto_server(log: Path) -> Iterator[MotoServer]:
    """A private moto server on a free loopback port, stopped (by its PID) at the end."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.moto_iam", "-H", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_S
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto's server did not answer on {url} (see {log})")
            time.sleep(0.1)  # polling for readiness, not standing in for it
        yield MotoServer(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _patch_bodiless_signature_check() -> None:
    from botocore.awsrequest import AWSRequest
    from moto.iam import access_control

    original = access_control.IAMRequestBase._create_aws_request

    def create_aws_request(self: access_control.IAMRequestBase) -> AWSRequest:
        saved = self._data
        if not self._body and self._method in ("GET", "HEAD", "DELETE"):
            self._data = cast("dict[str, str]", b"")  # what the client signed: an empty payload, not the query
        try:
            return original(self)
        finally:
            self._data = saved

    access_control.IAMRequestBase._create_aws_request = create_aws_request  # type: ignore[method-assign]


def _patch_head_bucket_action() -> None:
    from moto.s3 import responses

    responses.ACTION_MAP["BUCKET"]["HEAD"]["DEFAULT"] = "ListBucket"


def main() -> int:
    _patch_bodiless_signature_check()
    _patch_head_bucket_action()
    from moto.server import main as serve

    serve(sys.argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
