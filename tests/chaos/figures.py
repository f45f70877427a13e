"""The chaos suite's scale and its figures: one line per fault class at the end of the run.

``make chaos`` sets ``DRCTL_CHAOS=full``; under ``make test`` the same tests run at a short scale, so every
fault class is exercised on every CI run and the full counts stay a separate, longer command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def full_scale() -> bool:
    return os.environ.get("DRCTL_CHAOS") == "full"


def scaled(full: int, short: int) -> int:
    """How many cases a test runs: ``full`` under ``make chaos``, ``short`` under ``make test``."""
    return full if full_scale() else short


@dataclass
class Figure:
    """One fault class's tally. ``survived`` counts cases that ended as the contract says; ``detail`` is the
    class's own words (for example "restore refused 0 damaged objects")."""

    fault_class: str
    cases: int = 0
    survived: int = 0
    details: list[str] = field(default_factory=list)

    def line(self) -> str:
        tail = f"; {'; '.join(self.details)}" if self.details else ""
        return f"{self.fault_class}: {self.survived}/{self.cases} survived{tail}"


FIGURES: dict[str, Figure] = {}


def record(fault_class: str, *, cases: int, survived: int, detail: str | None = None) -> None:
    """Add a test's cases to its fault class; the suite prints the totals when it ends."""
    figure = FIGURES.setdefault(fault_class, Figure(fault_class))
    figure.cases += cases
    figure.survived += survived
    if detail:
        figure.details.append(detail)
