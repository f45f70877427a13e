"""The lab's PostgreSQL refuses to run as root, so a lab running as root makes an unprivileged user with
``useradd``. The instance runner gives its programs a PATH without the sbin directories, where ``useradd``
lives; on a machine without the user yet, the first database instance could not make it (a fresh CI machine
failed every seed that waited on a production database dump)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from localstack.pg import SYSTEM_BIN_DIRS, useradd


def test_useradd_is_found_with_the_runners_path(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = next((Path(d) / "useradd" for d in SYSTEM_BIN_DIRS if (Path(d) / "useradd").exists()), None)
    if installed is None:
        pytest.skip("this machine has no useradd in /usr/local/sbin, /usr/sbin or /sbin")
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
    assert shutil.which("useradd") is None or Path(str(shutil.which("useradd"))).parent.name != "sbin"
    assert Path(useradd()) == installed
    assert os.access(useradd(), os.X_OK)


def test_useradd_prefers_what_path_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mine = tmp_path / "useradd"
    mine.write_text("#!/bin/sh\n", encoding="utf-8")
    mine.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert useradd() == str(mine)
