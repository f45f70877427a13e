"""``drctl protect`` as a child process for lab tests: its stderr lines as they come, its metrics scraped from
``/metrics``, conditions awaited with a deadline (never a fixed sleep), and a stop by SIGTERM or kill -9."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

METRIC = re.compile(r"^(drctl_protect_[a-z_]+)\{[^}]*\} (\S+)$")


class ProtectProcess:
    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> None:
        self.lines: list[str] = []
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "protect", *args, "--metrics-addr", "127.0.0.1:0"],
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self._proc.pid

    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
        """Poll ``check`` until true; fail naming ``what`` and the service's output on a timeout or its death."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if self._proc.poll() is not None:
                raise AssertionError(f"drctl protect exited {self._proc.returncode} before {what}:\n{self.stderr()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}:\n{self.stderr()}")

    def sealed(self) -> int:
        return sum(1 for line in self.lines if " sealed (" in line)

    def metrics(self) -> dict[str, float]:
        url = next((line.split("metrics on ", 1)[1] for line in self.lines if "metrics on http" in line), None)
        if url is None:
            return {}
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
        return {m.group(1): float(m.group(2)) for line in text.splitlines() if (m := METRIC.match(line))}

    def terminate(self, timeout: float = 60.0) -> int:
        self._proc.send_signal(signal.SIGTERM)
        code = self._proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        self._proc.kill()
        self._proc.wait(30)
        self._reader.join(5)

    def close(self) -> None:
        if self._proc.poll() is None:
            self.kill()
