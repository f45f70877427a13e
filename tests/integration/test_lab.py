"""The lab's own life cycle, on ports and in a directory of the test's own, so the suite's lab is untouched."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "localstack" / "lab.py"
AZURITE = REPO / "localstack" / "node_modules" / ".bin" / "azurite-blob"


def lab(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAB), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def lab_dir_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "DRCTL_LAB_DIR": str(tmp_path / "lab"),
        "DRCTL_LAB_AWS_PORT": str(free_port()),
        "DRCTL_LAB_AZURE_PORT": str(free_port()),
    }
    yield env
    lab(env, "down")  # whatever a failed assertion left running in this private lab


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not AZURITE.exists(), reason="Azurite is not installed: run `make setup` (make test does)")
def test_up_reuses_a_running_service_and_down_stops_exactly_it(lab_dir_env: dict[str, str]) -> None:
    first = lab(lab_dir_env, "up", "azurite")
    assert first.returncode == 0, first.stderr
    assert "azurite started" in first.stderr
    pid_file = Path(lab_dir_env["DRCTL_LAB_DIR"]) / "run" / "azurite.pid"
    pid = int(pid_file.read_text())
    assert alive(pid)

    again = lab(lab_dir_env, "up", "azurite")
    assert again.returncode == 0, again.stderr
    assert "azurite reused" in again.stderr
    assert int(pid_file.read_text()) == pid

    assert lab(lab_dir_env, "status", "azurite").returncode == 0
    down = lab(lab_dir_env, "down", "azurite")
    assert down.returncode == 0
    assert not alive(pid)
    assert not pid_file.exists()
    stopped = lab(lab_dir_env, "status", "azurite")
    assert stopped.returncode == 1
    assert "stopped" in stopped.stdout


def test_port_taken_by_a_foreign_process_is_a_clear_error(lab_dir_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = lab({**lab_dir_env, "DRCTL_LAB_AZURE_PORT": str(port)}, "up", "azurite")
    assert result.returncode == 4
    [line] = result.stderr.strip().splitlines()
    assert f"port {port} is already in use" in line
    assert "DRCTL_LAB_AZURE_PORT" in line


def test_bad_port_setting_is_rejected(lab_dir_env: dict[str, str]) -> None:
    result = lab({**lab_dir_env, "DRCTL_LAB_AWS_PORT": "http"}, "status")
    assert result.returncode == 2
    assert "DRCTL_LAB_AWS_PORT='http' is not a port" in result.stderr


def test_unknown_service_is_rejected(lab_dir_env: dict[str, str]) -> None:
    result = lab(lab_dir_env, "up", "dynamodb")
    assert result.returncode == 2
    assert "unknown service dynamodb" in result.stderr


def test_env_exports_the_settings_the_sdks_read(lab_dir_env: dict[str, str]) -> None:
    result = lab(lab_dir_env, "env")
    assert result.returncode == 0
    exported = dict(
        line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines() if line.startswith("export ")
    )
    assert exported["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{lab_dir_env['DRCTL_LAB_AWS_PORT']}"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"} <= exported.keys()
    assert f"127.0.0.1:{lab_dir_env['DRCTL_LAB_AZURE_PORT']}" in exported["AZURE_STORAGE_CONNECTION_STRING"]
