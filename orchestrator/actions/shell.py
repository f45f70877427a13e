"""``shell``: run a command with ``/bin/sh -c``.

Not idempotent: drctl cannot know what a command does, so a step that timed out is never repeated without
an explicit ``retry``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from orchestrator.actions.base import ActionParams, ActionSpec, Touch
from orchestrator.runbook.fields import Duration, Name


class Params(ActionParams):
    """``env`` adds variables to the command's environment; values may be ``${env.VAR}`` references, which is
    how secrets reach a command without being written into the runbook."""

    command: str = Field(min_length=1)
    env: Mapping[Name, str] = Field(default_factory=dict)
    timeout: Duration | None = None
    cwd: str | None = None


def _touches(p: Params) -> tuple[Touch, ...]:
    return (Touch("runs", p.command),)


SPEC = ActionSpec(
    name="shell",
    params=Params,
    description="run a shell command; anything it changes is up to the command",
    touches=_touches,
    idempotent=False,
    outputs=frozenset({"exit_code", "stdout"}),
)
