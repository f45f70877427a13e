"""No credential leaves drctl through its messages or its logs: a SAS whose signature holds a ``/`` never shows in
a "cannot reach" line, and with ``DRCTL_LOG_LEVEL=debug`` the SDKs' own request logs reach stderr masked."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

from orchestrator.errors import ExitCode
from orchestrator.providers.azure_settings import connection_endpoint
from orchestrator.providers.factory import StoreFactory
from tests.support.backup import backup_env
from tests.support.cli import assert_one_line_error, drctl
from tests.support.ports import free_port

SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessiontoken0123456789abcdef"
SECRET_KEY = "sEcReT-3b1d9c-never-logged"


def _sas_with_a_slash_in_its_signature(factory: StoreFactory) -> tuple[str, str]:
    """An account SAS for the lab whose signature holds a ``/`` (written unencoded, as a user may paste it), and
    that signature. Signatures are base64 of an HMAC, so varying the expiry finds one within a few tries."""
    service = factory.blob_service()
    start = datetime.now(UTC) + timedelta(hours=1)
    for minutes in range(1000):
        sas = generate_account_sas(
            str(service.account_name),
            service.credential.account_key,
            ResourceTypes(service=True, container=True, object=True),
            AccountSasPermissions(read=True, write=True, list=True, create=True, add=True, delete=True),
            expiry=start + timedelta(minutes=minutes),
        )
        encoded = _encoded_sig(sas)
        sig = unquote(encoded)
        # A "+" written unencoded would read back as a space; a "/" reads back as itself.
        if "/" in sig and "+" not in sig:
            return sas.replace(f"sig={encoded}", f"sig={sig}"), sig
    raise AssertionError("no signature with a '/' in 1000 tries")


def _encoded_sig(sas: str) -> str:
    return next(part[4:] for part in sas.split("&") if part.startswith("sig="))


def _fragments(secret: str) -> list[str]:
    """Every piece of ``secret`` long enough to identify it, as cut at a ``/`` or left encoded."""
    pieces = [p for p in secret.split("/") if len(p) >= 6]
    return [*pieces, secret]


def _sas_env(lab_env: dict[str, str], state: Path, endpoint: str, sas: str) -> dict[str, str]:
    env = backup_env(lab_env, state)
    del env["AZURE_STORAGE_CONNECTION_STRING"]
    return {
        **env,
        "AZURE_STORAGE_ACCOUNT": "devstoreaccount1",
        "AZURE_STORAGE_BLOB_ENDPOINT": endpoint,
        "AZURE_STORAGE_SAS_TOKEN": sas,
    }


def test_an_unreachable_endpoint_is_named_without_any_part_of_the_sas(
    lab_factory: StoreFactory, lab_env: dict[str, str], tmp_path: Path
) -> None:
    sas, sig = _sas_with_a_slash_in_its_signature(lab_factory)
    endpoint = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    env = _sas_env(lab_env, tmp_path / "state", endpoint, sas)
    result = drctl("backup", "list", "az://vault/set/", "--json", env=env)
    line = assert_one_line_error(result, ExitCode.UNREACHABLE, "cannot reach the Azure Blob endpoint", endpoint)
    for fragment in _fragments(sig):
        assert fragment not in line
        assert unquote(fragment) not in line


def test_debug_logs_of_a_copy_carry_no_credential(
    lab_factory: StoreFactory, lab_env: dict[str, str], s3_bucket: str, az_container: str, tmp_path: Path
) -> None:
    sas, sig = _sas_with_a_slash_in_its_signature(lab_factory)
    source = lab_factory.open(f"s3://{s3_bucket}/src/")
    source.write("a.txt", io.BytesIO(b"logged, but never its keys"))
    state = tmp_path / "state"
    endpoint = connection_endpoint(lab_env["AZURE_STORAGE_CONNECTION_STRING"])
    env = {
        **_sas_env(lab_env, state, endpoint, sas),
        # LocalStack accepts any secret and token, so distinctive ones can be searched for.
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "DRCTL_LOG_LEVEL": "debug",
    }
    result = drctl("backup", "copy", f"s3://{s3_bucket}/src/", f"az://{az_container}/set/", "--mode", "full", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    # The SDKs did log their requests (so the checks below are about masking, not silence).
    assert "urllib3.connectionpool" in result.stderr
    assert "botocore" in result.stderr
    assert "sig=***" in result.stderr
    written = [result.stdout, result.stderr, *(p.read_text(errors="replace") for p in state.rglob("*") if p.is_file())]
    for text in written:
        for fragment in [*_fragments(sig), SESSION_TOKEN, SECRET_KEY]:
            assert fragment not in text
            assert unquote(fragment) not in text
