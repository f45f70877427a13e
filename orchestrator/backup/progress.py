"""Progress of a transfer: a live bar on a TTY, plain periodic lines otherwise, nothing when quiet."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.progress import TaskID


class ProgressSink(Protocol):
    def start(self, objects: int, total_bytes: int) -> None: ...
    def add_bytes(self, n: int) -> None: ...
    def object_done(self) -> None: ...
    def finish(self) -> None: ...


class QuietProgress:
    def start(self, objects: int, total_bytes: int) -> None:
        return None

    def add_bytes(self, n: int) -> None:
        return None

    def object_done(self) -> None:
        return None

    def finish(self) -> None:
        return None


class LinesProgress:
    """One line every ``every_s`` seconds, for logs and CI where a redrawn bar would be noise."""

    def __init__(
        self, out: TextIO, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic, label: str = "copy"
    ) -> None:
        self._out = out
        self._every = every_s
        self._clock = clock
        self._label = label
        self._lock = threading.Lock()
        self._bytes = self._objects = self._total_objects = self._total_bytes = 0
        self._start = self._last = clock()

    def start(self, objects: int, total_bytes: int) -> None:
        self._total_objects, self._total_bytes = objects, total_bytes
        self._start = self._last = self._clock()

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self._bytes += n
        self._maybe_print()

    def object_done(self) -> None:
        with self._lock:
            self._objects += 1
        self._maybe_print()

    def _maybe_print(self) -> None:
        now = self._clock()
        with self._lock:
            if now - self._last < self._every:
                return
            self._last = now
            line = self._line(now)
        print(line, file=self._out, flush=True)

    def _line(self, now: float) -> str:
        elapsed = max(now - self._start, 1e-6)
        rate = self._bytes / elapsed
        eta = (self._total_bytes - self._bytes) / rate if rate > 0 else float("inf")
        eta_text = f"{eta:.0f}s" if eta != float("inf") else "?"
        return (
            f"{self._label}: {self._objects}/{self._total_objects} objects, "
            f"{self._bytes / 2**20:.1f}/{self._total_bytes / 2**20:.1f} MiB, {rate / 2**20:.1f} MiB/s, ETA {eta_text}"
        )

    def finish(self) -> None:
        return None


class BarProgress:
    """A live rich bar: objects, bytes, rate and ETA."""

    def __init__(self, out: TextIO, label: str = "copy") -> None:
        # rich is imported only for a bar on a terminal: scripted and --quiet runs never pay for it.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._label = label
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(file=out),
            transient=True,
        )
        self._task: TaskID | None = None
        self._objects = self._total_objects = 0
        self._lock = threading.Lock()

    def _description(self) -> str:
        return f"{self._label} {self._objects}/{self._total_objects} objects"

    def start(self, objects: int, total_bytes: int) -> None:
        self._total_objects = objects
        self._progress.start()
        self._task = self._progress.add_task(self._description(), total=total_bytes)

    def add_bytes(self, n: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)

    def object_done(self) -> None:
        with self._lock:
            self._objects += 1
            description = self._description()
        if self._task is not None:
            self._progress.update(self._task, description=description)

    def finish(self) -> None:
        self._progress.stop()


def progress_for(out: TextIO = sys.stderr, quiet: bool = False, label: str = "copy") -> ProgressSink:
    if quiet:
        return QuietProgress()
    return BarProgress(out, label) if out.isatty() else LinesProgress(out, label=label)
