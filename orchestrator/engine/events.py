"""What a run reports as it goes: an observer the CLI prints from and tests record with."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class RunEvent:
    """One thing that happened; ``message`` is already redacted."""

    run_id: str
    kind: str
    message: str
    step_id: str | None = None

    def __str__(self) -> str:
        where = f"[{self.step_id}] " if self.step_id else ""
        return f"{where}{self.kind}: {self.message}"


RunObserver = Callable[[RunEvent], None]
"""Called on the thread where the event happened (a step's worker, or the main thread); must be thread-safe
and quick. An observer raising ``KeyboardInterrupt`` on the main thread interrupts the run, like Ctrl-C."""


def ignore(event: RunEvent) -> None:
    """The observer of a run nobody watches; the journal still records every event."""


class PrintObserver:
    """One line per event on a stream (stderr by default, so ``--json`` output on stdout stays parseable)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def __call__(self, event: RunEvent) -> None:
        print(str(event), file=self._stream or sys.stderr, flush=True)
