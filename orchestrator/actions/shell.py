"""``shell``: run a command with ``/bin/sh -c``.

Not idempotent: drctl cannot know what a command does, so a step that timed out is never repeated without
an explicit ``retry``. Making a command safe to re-run (``mkdir -p``, ``--if-not-exists``) is the runbook
author's job; ``drctl resume`` re-runs a shell step that did not succeed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping

from pydantic import Field

from orchestrator.actions.base import ActionContext, ActionParams, ActionSpec, StepResult, StepStatus, Touch
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


STDOUT_LIMIT = 64 * 1024
"""The tail of stdout kept as the ``stdout`` output: enough for a result, not a log's worth in the journal."""


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Run the command in its own process group, so a timeout or Ctrl-C stops the command and its children.

    The command inherits the run's environment plus ``env`` (already resolved, so ``${env.X}`` secrets reach
    the command but never the runbook). stdout and stderr are captured; the executor redacts every output and
    message before anything is recorded. A non-zero exit fails the step and is not retryable: an exit status
    is not a transient error, and a command that failed half-way is not known to be safe to repeat.
    """
    limits = [t for t in (p.timeout.total_seconds() if p.timeout else None, _remaining(ctx)) if t is not None]
    limit = min(limits) if limits else None
    env = {**ctx.env, **p.env}
    proc = subprocess.Popen(  # noqa: S603 - running a shell command is what this action is for
        ["/bin/sh", "-c", p.command],
        cwd=p.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err, stopped = _communicate(proc, ctx, limit)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        return StepResult(StepStatus.TIMED_OUT, message=f"command still running after {limit:g}s; stopped")
    if stopped:
        return StepResult(StepStatus.FAILED, message="command stopped: the run was interrupted")
    for line in err.splitlines()[-20:]:
        ctx.log(line)
    outputs = {"exit_code": proc.returncode, "stdout": out[-STDOUT_LIMIT:]}
    if proc.returncode != 0:
        tail = err.strip().splitlines()[-1:] or out.strip().splitlines()[-1:] or [""]
        message = f"command exited with status {proc.returncode}" + (f": {tail[0][:300]}" if tail[0] else "")
        return StepResult(StepStatus.FAILED, outputs, message)
    return StepResult(StepStatus.SUCCEEDED, outputs)


def _remaining(ctx: ActionContext) -> float | None:
    remaining = getattr(ctx, "remaining", None)
    return remaining() if callable(remaining) else None


def _communicate(proc: subprocess.Popen[str], ctx: ActionContext, limit: float | None) -> tuple[str, str, bool]:
    """``communicate`` in short slices, so Ctrl-C (``ctx.cancelled()``) stops the command promptly."""
    waited = 0.0
    while True:
        slice_s = 0.25 if limit is None else max(0.0, min(0.25, limit - waited))
        try:
            out, err = proc.communicate(timeout=slice_s)
        except subprocess.TimeoutExpired:
            waited += slice_s
            if limit is not None and waited >= limit:
                raise
            if ctx.cancelled():
                _kill(proc)
                out, err = proc.communicate()
                return out, err, True
        else:
            return out, err, False


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        os.killpg(proc.pid, signal.SIGKILL)


SPEC = ActionSpec(
    name="shell",
    params=Params,
    description="run a shell command; anything it changes is up to the command",
    touches=_touches,
    idempotent=False,
    outputs=frozenset({"exit_code", "stdout"}),
    run=run,
)
