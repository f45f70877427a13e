"""A drctl process to kill -9 at a moment drawn at random from its observed progress.

A trigger names a progress count (stderr lines printed, objects journalled, objects at their final names...)
and a random delay after it is reached. The process is polled until its progress gets there, then, after the
delay, its whole process group gets SIGKILL: nothing of drctl runs any cleanup of its own. A process that ends
before the kill lands is reported as not killed, so the caller can draw again rather than count a kill that
never happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

POLL_S = 0.01
"""Between looks at the process's progress; a poll interval bounded by ``deadline_s``, not a readiness wait."""
DEADLINE_S = 180.0
"""How long a process may take to reach the chosen progress before the case counts as hung."""


@dataclass(frozen=True)
class Trigger:
    """Kill once ``progress() >= at_least``, then ``delay_s`` later. ``label`` says where it was meant to land."""

    label: str
    at_least: int
    delay_s: float

    def describe(self) -> str:
        return f"{self.label} (progress >= {self.at_least}, then {self.delay_s * 1000:.0f} ms)"


@dataclass
class Killed:
    """What became of one process: killed by our SIGKILL, or ended on its own (``returncode`` then)."""

    killed: bool
    returncode: int
    seconds: float
    stderr_lines: list[str] = field(default_factory=list)
    hung: bool = False
    stamps: list[float] = field(default_factory=list)
    """When each stderr line came, in seconds from the start."""

    def step_times(self) -> dict[str, float]:
        """How long each step ran (its ``[step] running`` line to its ``[step] succeeded`` line), in a run's
        event lines: what a kill aimed at a random moment of a step draws from."""
        started: dict[str, float] = {}
        took: dict[str, float] = {}
        for line, at in zip(self.stderr_lines, self.stamps, strict=True):
            step, _, rest = line.removeprefix("[").partition("] ")
            if line.startswith("[") and rest.startswith("running"):
                started.setdefault(step, at)
            elif line.startswith("[") and rest.startswith("succeeded") and step in started:
                took[step] = at - started[step]
        return took

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)


class Spawned:
    """``python -m orchestrator.cli ARGS`` in a session of its own, its stderr read line by line as it comes
    (the run's events: the progress a trigger can count), its stdout in ``logs/stdout``."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.logs = logs
        self.lines: list[str] = []
        self.stamps: list[float] = []
        self._stdout = (logs / "stdout").open("wb")
        self.started = time.monotonic()
        # A session of its own: SIGKILL goes to the process group, as kill -9 of a whole command would, so no
        # child (a step's shell) outlives drctl and keeps writing.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", *args],
            env=dict(env),
            stdout=self._stdout,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            self.stamps.append(time.monotonic() - self.started)
            self.lines.append(raw.decode(errors="replace"))  # list.append is atomic: the poller only counts

    def line_count(self) -> int:
        return len(self.lines)

    def lines_starting(self, prefix: str) -> int:
        return sum(1 for line in list(self.lines) if line.startswith(prefix))

    def _finish(self, killed: bool, hung: bool = False) -> Killed:
        code = self.proc.wait(timeout=60)  # reaped: a zombie would still look alive to drctl's lock check
        self._reader.join(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self._stdout.close()
        (self.logs / "stderr").write_text("".join(self.lines))
        killed = killed and code == -signal.SIGKILL
        return Killed(killed, code, time.monotonic() - self.started, list(self.lines), hung, list(self.stamps))

    def _sigkill(self) -> None:
        # Already gone and reaped: _finish reports the process's own exit code.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def kill_at(self, trigger: Trigger, progress: Callable[[], int]) -> Killed:
        """Wait for ``trigger`` (polling ``progress``), then SIGKILL the process group."""
        deadline = self.started + DEADLINE_S
        while progress() < trigger.at_least:
            if self.proc.poll() is not None:
                return self._finish(killed=False)
            if time.monotonic() > deadline:
                self._sigkill()
                return self._finish(killed=False, hung=True)
            time.sleep(POLL_S)
        # The random part of the moment: sliced, so a process that ends meanwhile is noticed, not "killed".
        until = time.monotonic() + trigger.delay_s
        while (left := until - time.monotonic()) > 0:
            if self.proc.poll() is not None:
                return self._finish(killed=False)
            time.sleep(min(POLL_S, left))
        self._sigkill()
        return self._finish(killed=True)

    def wait(self, timeout: float = DEADLINE_S) -> Killed:
        """Let the process end by itself (an unkilled reference run)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._sigkill()
            return self._finish(killed=False, hung=True)
        return self._finish(killed=False)


@dataclass
class Outcome:
    """One kill: where it was aimed, where it landed, and the contract breaches found after recovery."""

    trigger: str
    landed: str
    problems: list[str]
    notes: dict[str, int]


UNKILLED = "unkilled"
"""What ``Outcome.landed`` says of a process that failed or hung before any kill: no kill case, but a finding."""


def not_killed(killed: Killed, trigger: Trigger) -> Outcome | None:
    """A process that ended before the kill landed is drawn again (None), unless it failed on its own or hung:
    that is a finding in itself, with no kill to blame, and counts as a case that did not survive."""
    if killed.hung:
        return Outcome(trigger.describe(), UNKILLED, [f"hung without progress: {killed.stderr[-1000:]}"], {})
    if killed.returncode != 0:
        problem = f"failed unkilled (exit {killed.returncode}): {killed.stderr[-1000:]}"
        return Outcome(trigger.describe(), UNKILLED, [problem], {})
    return None
