"""The kill -9 class's bookkeeping: the seed every random draw derives from, each case's verdict, and the one
figures line the class adds at the end of the run.

``DRCTL_CHAOS_SEED`` repeats a run's draws (which case, which trigger, which delay); the process timings on the
machine still vary, so a repeat lands near, not exactly on, the same instant.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass, field

from tests.chaos.figures import record

FAULT_CLASS = "kill -9"
FAMILIES = ("copy", "restore", "run+resume", "drill")


def master_seed() -> int:
    given = os.environ.get("DRCTL_CHAOS_SEED")
    return int(given) if given else random.SystemRandom().randrange(2**32)


@dataclass
class Tally:
    seed: int
    cases: Counter[str] = field(default_factory=Counter)
    survived: Counter[str] = field(default_factory=Counter)
    landed: dict[str, Counter[str]] = field(default_factory=dict)
    breaches: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, Counter[str]] = field(default_factory=dict)

    def rng(self, family: str) -> random.Random:
        """Each family's own stream of draws, so one family's count does not shift another's."""
        return random.Random(f"{self.seed}:{family}")

    def case(self, family: str, index: int, trigger: str, landed: str, problems: list[str]) -> None:
        """Count one kill: ``landed`` is the phase the journal or the store shows it hit; ``problems`` the
        contract breaches the independent checks found after the documented recovery."""
        self.cases[family] += 1
        self.landed.setdefault(family, Counter())[landed] += 1
        if problems:
            self.breaches.setdefault(family, []).append(
                f"{family} case {index} (DRCTL_CHAOS_SEED={self.seed}): killed at {trigger}, landed {landed}: "
                + "; ".join(problems)
            )
        else:
            self.survived[family] += 1

    def unkilled(self, family: str, index: int, trigger: str, problems: list[str]) -> None:
        """A process that failed or hung before the kill it was drawn for: not a kill case, but the test fails."""
        self.note(family, "failed before any kill", 1)
        self.breaches.setdefault(family, []).append(
            f"{family} case {index} (DRCTL_CHAOS_SEED={self.seed}): failed before the kill aimed at {trigger}: "
            + "; ".join(problems)
        )

    def note(self, family: str, what: str, n: int = 1) -> None:
        """Something worth reporting that the contract allows (a temporary file the docs say may stay)."""
        self.notes.setdefault(family, Counter())[what] += n

    def failure(self, family: str) -> str | None:
        found = self.breaches.get(family)
        if not found:
            return None
        return f"{len(found)} kill -9 breach(es), seed {self.seed}:\n" + "\n".join(found)

    def summary(self, family: str) -> str:
        landed = ", ".join(f"{k} {n}" for k, n in sorted(self.landed.get(family, Counter()).items()))
        notes = ", ".join(f"{k} {n}" for k, n in sorted(self.notes.get(family, Counter()).items()))
        return (
            f"kill -9 {family}: {self.survived[family]}/{self.cases[family]} survived; landed: {landed or '-'}"
            + (f"; notes: {notes}" if notes else "")
            + f"; seed {self.seed}"
        )

    def record(self) -> None:
        if not self.cases:
            return
        during_cleanup = self.landed.get("drill", Counter())["during cleanup"]
        by = ", ".join(f"{f} {self.survived[f]}/{self.cases[f]}" for f in FAMILIES)
        # A case whose recovery (rerun, resume, --cleanup) was killed as well still counts once.
        again = sum(n for notes in self.notes.values() for what, n in notes.items() if "killed too" in what)
        detail = f"by command: {by} ({during_cleanup} during cleanup); {again} recoveries killed too; seed {self.seed}"
        record(FAULT_CLASS, cases=sum(self.cases.values()), survived=sum(self.survived.values()), detail=detail)
