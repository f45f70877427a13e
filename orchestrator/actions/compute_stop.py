"""``compute.stop``: stop the selected instances and (by default) wait until they are stopped.

Idempotent: instances already stopped or stopping are left alone, so a repeat only waits again.
"""

from __future__ import annotations

import time

from orchestrator.actions import compute_start
from orchestrator.actions.base import ActionContext, ActionSpec, StepResult, Touch
from orchestrator.actions.compute_start import OUTPUTS, compute_of, joined, select, settle


class Params(compute_start.Params):
    """The selection, and whether to ``wait`` (at most ``timeout``) until every instance is stopped."""


def _touches(p: Params) -> tuple[Touch, ...]:
    return (Touch("writes", f"{p.describe()} (stopped)"),)


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Stop the selected instances and wait for ``stopped``. Idempotent because ``Compute.stop`` skips
    instances that are already stopped or stopping, and the wait only observes."""
    started = time.monotonic()
    compute = compute_of(p, ctx)
    ids = select(p, compute, ctx)
    compute.stop(ids)
    ctx.log(f"stopping {len(ids)} instance(s) in {compute.region}: {joined(ids)}")
    return settle(compute, ids, "stopped", p, ctx, started, "stopped")


SPEC = ActionSpec(
    name="compute.stop",
    params=Params,
    description="stop instances (by ids or tags) and wait until they are stopped",
    touches=_touches,
    idempotent=True,
    outputs=OUTPUTS,
    run=run,
)
