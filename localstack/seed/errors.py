"""Why a seeding failed, in the one line the user sees, and the exit code that goes with it."""

from __future__ import annotations

from orchestrator.errors import ExitCode

LAB_UP_HINT = 'start it with `make lab-up`, then `eval "$(make -s lab-env)"`'


class SeedError(Exception):
    """A seeding failure whose message is the one line shown to the user; ``code`` is the exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.code = code
