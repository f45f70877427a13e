"""Run ``drctl`` as a user would: a separate process, its exit code and its output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

import pytest

from orchestrator.errors import ExitCode


def process_env(lab_env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without ambient cloud, lab or drctl settings, plus the lab's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "DRCTL_"))}
    return {**env, **lab_env}


def drctl(*args: str, env: Mapping[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: ExitCode, *fragments: str) -> str:
    """The failure contract: the given exit code, exactly one line on stderr, no traceback."""
    if result.returncode != code:
        pytest.fail(f"exit {result.returncode}, expected {int(code)}; stderr: {result.stderr!r}")
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]
