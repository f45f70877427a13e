"""``compute.terminate``: terminate the selected instances and (by default) wait until they are terminated.

Idempotent: terminated instances are skipped, and a selection by tags that finds nothing left to terminate
succeeds with a count of 0, so a repeat after success changes nothing.
"""

from __future__ import annotations

import time

from orchestrator.actions import compute_start
from orchestrator.actions.base import ActionContext, ActionSpec, OutputValue, StepResult, StepStatus, Touch
from orchestrator.actions.compute_start import (
    OUTPUTS,
    compute_of,
    find_live,
    guard_drill,
    joined,
    selection_tags,
    settle,
)


class Params(compute_start.Params):
    """The selection, and whether to ``wait`` (at most ``timeout``) until every instance is terminated."""


def _touches(p: Params) -> tuple[Touch, ...]:
    return (Touch("writes", f"{p.describe()} (terminated, irreversibly)"),)


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Terminate and wait for ``terminated``. Idempotent because ``Compute.terminate`` skips terminated
    instances and an empty tag selection here means the work is already done."""
    started = time.monotonic()
    compute = compute_of(p, ctx)
    ids = tuple(p.ids) if p.ids else find_live(compute, selection_tags(p, ctx), ctx)
    guard_drill(tuple(p.ids), compute, ctx)
    if not ids:
        ctx.log(f"no live {p.describe()}: nothing to terminate")
        outputs: dict[str, OutputValue] = {
            "instance_ids": "",
            "states": "",
            "count": 0,
            "elapsed_s": round(time.monotonic() - started, 3),
        }
        return StepResult(StepStatus.SUCCEEDED, outputs)
    compute.terminate(ids)
    ctx.log(f"terminating {len(ids)} instance(s) in {compute.region}: {joined(ids)}")
    return settle(compute, ids, "terminated", p, ctx, started, "terminated")


SPEC = ActionSpec(
    name="compute.terminate",
    params=Params,
    description="terminate instances (by ids or tags) and wait until they are gone",
    touches=_touches,
    idempotent=True,
    outputs=OUTPUTS,
    run=run,
)
