"""Headless Chromium for the browser tests of the HTML run report, from Debian's own ``chromium`` package.

Usage: python localstack/browser.py install | check

``install`` does nothing (and says nothing) when ``/usr/bin/chromium`` is already there; otherwise it runs
``apt-get install`` non-interactively, refreshing the package lists first only when the install fails for
want of them, so a machine with current lists never pays for an ``apt-get update``. ``check`` prints the
browser's version, or fails when it is missing or does not start. Only the stdlib is used: this runs before
any project dependency is installed. Each failure is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
PACKAGE = "chromium"

EXIT_USAGE = 2
EXIT_INSTALL = 3
EXIT_BROKEN = 4

# What apt says when its package lists are missing or stale: the cases an ``apt-get update`` can cure.
_NEEDS_LISTS = ("Unable to locate package", "has no installation candidate", "Failed to fetch", "404  Not Found")
_APT_TIMEOUT_S = 1800
_VERSION_TIMEOUT_S = 30


class BrowserError(Exception):
    """A failure with the exit code that names its kind."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _apt(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(
            ["apt-get", *args], env=env, capture_output=True, text=True, timeout=_APT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise BrowserError(f"browser: apt-get {' '.join(args)} took over {_APT_TIMEOUT_S}s", EXIT_INSTALL) from err


def _last_error(result: subprocess.CompletedProcess[str]) -> str:
    """apt's most telling line: its last ``E:`` line, else the last line it printed at all."""
    lines = [line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or [f"exit status {result.returncode}"])[-1]


def install() -> None:
    if CHROMIUM.exists():
        return
    if shutil.which("apt-get") is None:
        raise BrowserError(
            f"browser: {CHROMIUM} is missing and apt-get is not available; install Chromium with this system's "
            "package manager",
            EXIT_INSTALL,
        )
    if os.geteuid() != 0:
        raise BrowserError(
            f"browser: {CHROMIUM} is missing and installing it needs root: sudo apt-get install {PACKAGE}",
            EXIT_INSTALL,
        )
    print(f"browser: installing {PACKAGE} with apt-get", file=sys.stderr)
    command = ["install", "-y", "--no-install-recommends", PACKAGE]
    result = _apt(command)
    if result.returncode != 0 and any(marker in result.stderr + result.stdout for marker in _NEEDS_LISTS):
        update = _apt(["update"])
        if update.returncode != 0:
            raise BrowserError(f"browser: apt-get update failed: {_last_error(update)}", EXIT_INSTALL)
        result = _apt(command)
    if result.returncode != 0:
        raise BrowserError(f"browser: apt-get install {PACKAGE} failed: {_last_error(result)}", EXIT_INSTALL)
    if not CHROMIUM.exists():
        raise BrowserError(f"browser: apt-get installed {PACKAGE} but {CHROMIUM} is still missing", EXIT_INSTALL)
    print(f"browser: {check()}", file=sys.stderr)


def check() -> str:
    """The installed browser's version line; raises when it is missing or does not start."""
    if not CHROMIUM.exists():
        raise BrowserError(f"browser: {CHROMIUM} is missing; run: make browser", EXIT_BROKEN)
    try:
        result = subprocess.run(
            [str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=_VERSION_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise BrowserError(f"browser: {CHROMIUM} --version did not run: {err}", EXIT_BROKEN) from err
    version = result.stdout.strip()
    if result.returncode != 0 or not version:
        why = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise BrowserError(f"browser: {CHROMIUM} --version failed: {why}", EXIT_BROKEN)
    return version


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("install", "check"):
        print("usage: python localstack/browser.py install | check", file=sys.stderr)
        return EXIT_USAGE
    try:
        if argv[0] == "install":
            install()
        else:
            print(check())
    except BrowserError as err:
        print(err, file=sys.stderr)
        return err.code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
