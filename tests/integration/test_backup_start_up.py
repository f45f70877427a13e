"""What a backup loads: with static keys in the environment (the lab's), a copy S3 -> Azure Blob and its
incremental run on the lean clients alone. The SDKs, the model library and the cipher library are each a
hundredth to a tenth of a second of every run's start-up, so this guards that none of them creeps back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.providers.factory import StoreFactory
from tests.support.backup import backup_env, seed

# Loaded by an S3 -> Azure copy only when a call the lean clients do not make needs them.
HEAVY = ("boto3", "botocore", "azure.core", "azure.storage.blob", "pydantic", "cryptography")

_PROBE = """
import json, sys
import orchestrator.cli as cli
code = cli.main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "azure", "pydantic", "cryptography"))
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def _copy_loading(args: list[str], env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, "backup", "copy", *args, "--json", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr
    return [m for m in report["loaded"] if m.startswith(HEAVY)]


@pytest.mark.parametrize("mode", ["full", "incremental"])
def test_a_copy_from_s3_to_azure_loads_no_sdk_model_or_cipher_library(
    mode: str, lab_env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, az_container: str, tmp_path: Path
) -> None:
    source_url, set_url = f"s3://{s3_bucket}/src/", f"az://{az_container}/set/"
    seed(lab_factory.open(source_url), {"a": os.urandom(1000), "b/c": os.urandom(70_000)})
    env = backup_env(lab_env, tmp_path / "state")
    loaded = _copy_loading([source_url, set_url, "--mode", "full"], env)
    if mode == "incremental":
        seed(lab_factory.open(source_url), {"a": os.urandom(1000)})
        loaded = _copy_loading([source_url, set_url, "--mode", "incremental"], env)
    assert loaded == []


def test_the_probe_sees_an_sdk_when_one_is_loaded(
    lab_env: dict[str, str], lab_factory: StoreFactory, s3_bucket: str, az_container: str, tmp_path: Path
) -> None:
    # Keys from a profile make the S3 side use boto3: the probe must notice it, or the test above proves nothing.
    source_url, set_url = f"s3://{s3_bucket}/src/", f"az://{az_container}/set/"
    seed(lab_factory.open(source_url), {"a": b"x"})
    env = backup_env(lab_env, tmp_path / "state")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[lab]\naws_access_key_id = {env.pop('AWS_ACCESS_KEY_ID')}\n"
        f"aws_secret_access_key = {env.pop('AWS_SECRET_ACCESS_KEY')}\n"
    )
    env.update(AWS_PROFILE="lab", AWS_SHARED_CREDENTIALS_FILE=str(credentials), AWS_CONFIG_FILE=str(tmp_path / "none"))
    assert "botocore" in _copy_loading([source_url, set_url, "--mode", "full"], env)
