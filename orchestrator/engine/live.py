"""A live view of a run on a terminal: one row per step, redrawn as its events arrive (rich)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from orchestrator.engine.events import RunEvent

# Event kinds that are a step's new state; the others (log, approval, retry...) only update its last message.
_STATES = frozenset({"pending", "running", "succeeded", "failed", "skipped", "interrupted"})
_STYLE = {"running": "yellow", "succeeded": "green", "failed": "red", "skipped": "dim", "interrupted": "magenta"}


class LiveView:
    """Observer for a terminal. Thread-safe: steps report from their workers."""

    def __init__(
        self,
        console: Console,
        steps: Sequence[tuple[str, int]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._order = [step for step, _ in steps]
        self._tiers = dict(steps)
        self._state = dict.fromkeys(self._order, "pending")
        self._note = dict.fromkeys(self._order, "")
        self._started: dict[str, float] = {}
        self._ended: dict[str, float] = {}
        self._run_note = ""
        self._clock = clock
        self._lock = threading.Lock()
        self._live = Live(self.render(), console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.update(self.render())
        self._live.stop()

    def __call__(self, event: RunEvent) -> None:
        with self._lock:
            step = event.step_id
            if step is None or step not in self._state:
                self._run_note = event.message
            else:
                if event.kind in _STATES:
                    self._state[step] = event.kind
                    now = self._clock()
                    if event.kind == "running":
                        self._started.setdefault(step, now)
                    elif event.kind != "pending":
                        self._ended[step] = now
                self._note[step] = event.message.splitlines()[0][:70] if event.message else ""
            table = self.render_locked()
        self._live.update(table)

    def render(self) -> Table:
        with self._lock:
            return self.render_locked()

    def render_locked(self) -> Table:
        table = Table(title="drctl run", caption=self._run_note or None, expand=False)
        for column in ("tier", "step", "status", "time", "last event"):
            table.add_column(column)
        now = self._clock()
        for step in self._order:
            state = self._state[step]
            started = self._started.get(step)
            elapsed = "" if started is None else f"{self._ended.get(step, now) - started:.1f}s"
            table.add_row(str(self._tiers[step]), step, f"[{_STYLE.get(state, '')}]{state}", elapsed, self._note[step])
        return table
