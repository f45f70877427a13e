"""Keys in the environment, a profile and a role assumed through LocalStack's STS all take one request path:
the same boto3 client class, every request signed by botocore's signer with the credentials its chain found.
(The lab's own tests use keys; before, those took a hand-written path that production identities never did.)"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from orchestrator.providers.azure_settings import connection_endpoint
from orchestrator.providers.factory import StoreFactory
from orchestrator.providers.s3 import S3Store
from tests.support.backup import backup_env
from tests.support.cli import drctl
from tests.support.forward_proxy import ForwardProxy

ROLE_ARN = "arn:aws:iam::000000000000:role/drctl-backup"


def _profiles(tmp_path: Path, endpoint: str) -> tuple[Path, Path]:
    """A profile with keys, and one that assumes a role from it, as users write them."""
    credentials = tmp_path / "credentials"
    credentials.write_text("[keys]\naws_access_key_id = AKIAPROFILEKEYS0001\naws_secret_access_key = profile-secret\n")
    config = tmp_path / "config"
    config.write_text(
        f"[profile keys]\nregion = us-east-1\nendpoint_url = {endpoint}\n\n"
        f"[profile backup-role]\nrole_arn = {ROLE_ARN}\nsource_profile = keys\nregion = us-east-1\n"
        f"endpoint_url = {endpoint}\nrole_session_name = drctl-test\n"
    )
    return config, credentials


def _credentials(store: S3Store) -> Any:
    """The credentials botocore signs the store's requests with (the signer's own, not a second lookup)."""
    signer: Any = getattr(store._client, "_request_signer")  # noqa: B009 - private to botocore, read-only here
    return signer._credentials


def _exercise(store: S3Store) -> list[tuple[str, str]]:
    """A write, a listing, a stat and a read; returns (operation, credential method) for each signed request."""
    signed: list[tuple[str, str]] = []
    client = store._client

    def before_sign(request: Any, operation_name: str, **_: Any) -> None:
        signed.append((operation_name, _credentials(store).method))

    client.meta.events.register("before-sign.s3", before_sign)
    try:
        store.write("k.txt", io.BytesIO(b"one path"))
        assert [o.key for o in store.list()] == ["k.txt"]
        assert store.stat("k.txt").size == len(b"one path")
        with store.open_read("k.txt") as reader:
            assert reader.read() == b"one path"
    finally:
        client.meta.events.unregister("before-sign.s3", before_sign)
    return signed


@pytest.mark.parametrize(
    ("credentials", "method"),
    [("keys", "explicit"), ("profile", "shared-credentials-file"), ("role", "assume-role")],
)
def test_every_credential_source_takes_the_same_path(
    lab_env: dict[str, str],
    s3_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    credentials: str,
    method: str,
) -> None:
    endpoint = lab_env["AWS_ENDPOINT_URL"]
    config, shared = _profiles(tmp_path, endpoint)
    # botocore reads its config files and the STS endpoint from the process environment.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    env: Mapping[str, str] = {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    if credentials == "keys":
        env = {**env, "AWS_ACCESS_KEY_ID": lab_env["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": "k"}
    elif credentials == "profile":
        env = {**env, "AWS_PROFILE": "keys"}
    else:
        env = {**env, "AWS_PROFILE": "backup-role"}

    store = StoreFactory(env).open(f"s3://{s3_bucket}/{credentials}/")
    assert isinstance(store, S3Store)
    signed = _exercise(store)
    operations = {op for op, _ in signed}
    assert {"PutObject", "ListObjectsV2", "HeadObject", "GetObject"} <= operations
    assert {m for _, m in signed} == {method}
    # The role's credentials are STS's answer, not the source profile's keys.
    frozen = _credentials(store).get_frozen_credentials()
    if credentials == "role":
        assert frozen.access_key != "AKIAPROFILEKEYS0001"
        assert frozen.token
    # One client class whatever the source: the class botocore builds for S3.
    assert type(store._client).__name__ == "S3"


def test_both_clouds_go_through_the_proxy_the_environment_names(
    lab_env: dict[str, str], s3_bucket: str, az_container: str, tmp_path: Path, forward_proxy: ForwardProxy
) -> None:
    """The lean clients ignored proxy settings; the SDKs honour them, for S3 and Blob alike."""
    factory = StoreFactory(lab_env)
    factory.open(f"s3://{s3_bucket}/src/").write("a.txt", io.BytesIO(b"through the proxy"))
    env = {**backup_env(lab_env, tmp_path / "state"), "HTTP_PROXY": forward_proxy.url, "NO_PROXY": ""}
    copy = drctl("backup", "copy", f"s3://{s3_bucket}/src/", f"az://{az_container}/set/", "--mode", "full", env=env)
    assert copy.returncode == 0, copy.stderr
    targets = {target for _, target in forward_proxy.seen}
    s3_port, az_port = urlsplit(lab_env["AWS_ENDPOINT_URL"]).port, _blob_port(lab_env)
    assert {f"127.0.0.1:{s3_port}", f"127.0.0.1:{az_port}"} <= targets
    # Without the setting, nothing goes through it.
    seen = len(forward_proxy.seen)
    again = drctl("backup", "list", f"az://{az_container}/set/", env=backup_env(lab_env, tmp_path / "state"))
    assert again.returncode == 0, again.stderr
    assert len(forward_proxy.seen) == seen


def _blob_port(lab_env: Mapping[str, str]) -> int | None:
    endpoint = connection_endpoint(lab_env["AZURE_STORAGE_CONNECTION_STRING"])
    return urlsplit(endpoint).port
