"""Where an S3 request goes is botocore's endpoint rules, whatever the region or setting: other partitions, FIPS,
dual-stack and S3 Express get their own hosts (the hand-written client built commercial hosts for all of them).
Requests are caught before they are sent, so no network is needed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from orchestrator.errors import InvalidInput
from orchestrator.providers.factory import StoreFactory
from orchestrator.providers.s3 import S3Store
from orchestrator.retry import NO_RETRY


@pytest.fixture(autouse=True)
def _no_ambient_aws_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """botocore also reads the process environment and config files (under ``make test`` the lab's
    AWS_ENDPOINT_URL is set there): only the settings each test gives may decide the host."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


class _Raw:
    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield b""


def _host_of_a_stat(env: dict[str, str], bucket: str = "my-bucket") -> str:
    store = StoreFactory(
        {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x", **env}, retry=NO_RETRY
    ).open(f"s3://{bucket}/")
    assert isinstance(store, S3Store)
    sent: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.url)
        headers = HTTPHeaders()
        headers["Last-Modified"] = "Thu, 26 Nov 2026 10:00:00 GMT"
        return AWSResponse(request.url, 200, headers, _Raw())

    # A before-send handler that returns a response stands in for the network (botocore's own test hook).
    store._client.meta.events.register("before-send.s3", answer)  # type: ignore[arg-type]
    # S3 Express first asks for a session (whose canned answer is empty, so the stat then fails): the first
    # request's host is what is checked either way.
    with contextlib.suppress(Exception):
        store.stat("k")
    assert sent, "no request was made"
    return str(urlsplit(sent[0]).hostname)


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("us-east-1", "my-bucket.s3.amazonaws.com"),
        ("eu-west-1", "my-bucket.s3.eu-west-1.amazonaws.com"),
        ("cn-north-1", "my-bucket.s3.cn-north-1.amazonaws.com.cn"),
        ("us-gov-west-1", "my-bucket.s3.us-gov-west-1.amazonaws.com"),
        ("us-iso-east-1", "my-bucket.s3.us-iso-east-1.c2s.ic.gov"),
        ("us-isob-east-1", "my-bucket.s3.us-isob-east-1.sc2s.sgov.gov"),
    ],
)
def test_each_partition_gets_its_own_host(region: str, host: str) -> None:
    assert _host_of_a_stat({"AWS_DEFAULT_REGION": region}) == host


@pytest.mark.parametrize(
    ("setting", "host"),
    [
        ({"AWS_USE_FIPS_ENDPOINT": "true"}, "my-bucket.s3-fips.us-east-2.amazonaws.com"),
        ({"AWS_USE_DUALSTACK_ENDPOINT": "true"}, "my-bucket.s3.dualstack.us-east-2.amazonaws.com"),
        ({"AWS_USE_FIPS_ENDPOINT": "false"}, "my-bucket.s3.us-east-2.amazonaws.com"),
    ],
)
def test_fips_and_dual_stack_settings_are_honoured(setting: dict[str, str], host: str) -> None:
    assert _host_of_a_stat({"AWS_DEFAULT_REGION": "us-east-2", **setting}) == host


def test_an_s3_express_bucket_goes_to_its_zonal_endpoint() -> None:
    host = _host_of_a_stat({"AWS_DEFAULT_REGION": "us-west-2"}, bucket="my-bucket--usw2-az1--x-s3")
    assert host.endswith(".s3express-usw2-az1.us-west-2.amazonaws.com")


def test_a_dotted_bucket_is_addressed_by_path_so_its_certificate_matches() -> None:
    assert (
        _host_of_a_stat({"AWS_DEFAULT_REGION": "eu-west-1"}, bucket="my.dotted.bucket") == "s3.eu-west-1.amazonaws.com"
    )


def test_an_unreadable_switch_is_refused() -> None:
    with pytest.raises(InvalidInput, match="AWS_USE_FIPS_ENDPOINT must be true or false"):
        _host_of_a_stat({"AWS_USE_FIPS_ENDPOINT": "maybe"})
