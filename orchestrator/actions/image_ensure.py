"""``image.ensure``: make sure an AMI exists in the recovery region, copying it from the source region if not.

In a drill, a copy it has to make is named after the run, tagged with the drill's tags and removed by the
cleanup; an existing production copy is only read.

Idempotent: the copy is named (``name``, by default ``drctl-<image>-from-<source_region>``) and looked up by
that name before copying, so a repeat finds the copy of an earlier attempt, pending or available, instead of
starting another.
"""

from __future__ import annotations

import time
from datetime import timedelta

from pydantic import StrictBool, StrictStr

from orchestrator.actions.base import (
    ActionContext,
    ActionParams,
    ActionSpec,
    OutputValue,
    StepResult,
    StepStatus,
    Touch,
)
from orchestrator.actions.compute_start import deadline_of
from orchestrator.drill.scope import drill_image_name
from orchestrator.engine.context import pause
from orchestrator.errors import Permanent
from orchestrator.providers.choice import ec2_service
from orchestrator.runbook.fields import Duration, format_duration

POLL_INTERVAL_S = 15.0


class Params(ActionParams):
    """The source ``image`` in ``source_region``, the recovery ``region``, the copy's ``name``, and whether to
    ``wait`` (at most ``timeout``) until the copy is available."""

    image: StrictStr
    source_region: StrictStr
    region: StrictStr
    name: StrictStr | None = None
    wait: StrictBool = True
    timeout: Duration = timedelta(minutes=60)

    def copy_name(self) -> str:
        return self.name or f"drctl-{self.image}-from-{self.source_region}"


def _touches(p: Params) -> tuple[Touch, ...]:
    return (
        Touch("reads", f"image {p.image} in {p.source_region}"),
        Touch("writes", f"image {p.copy_name()} in {p.region} (copied if missing)"),
    )


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Use the image if the recovery region already has it (same id, or a copy called ``name``), else copy
    it; then wait for ``available``. Idempotent because the copy is found by its name on a repeat."""
    started = time.monotonic()
    dest = ec2_service(ctx.env, p.region)
    copied = False
    if dest.image_exists(p.image):
        image_id = p.image
    else:
        # A drill uses a production copy if there is one, but makes (and later removes) a copy of its own.
        names = (p.copy_name(), drill_image_name(p.copy_name(), ctx.run_id)) if ctx.drill else (p.copy_name(),)
        found = next((i for name in names if (i := dest.find_image(name)) is not None), None)
        if found is None:
            # A drill's copy is tagged in the copy call itself, and named after the run: a kill before the
            # ledger entry below leaves a copy the cleanup still finds, by its tags or (LocalStack) its name.
            tags = ctx.drill.tags() if ctx.drill is not None else None
            image_id = dest.copy_image(p.image, p.source_region, names[-1], tags)
            copied = True
            if ctx.drill is not None:
                ctx.drill.record("image", p.region, image_id, {"source": p.image})
                dest.tag_resources([image_id], ctx.drill.tags())
            ctx.log(f"copying {p.image} from {p.source_region} to {p.region} as {image_id}")
        else:
            image_id = found
            ctx.log(f"{p.region} already has {p.copy_name()} as {image_id}")
    state = dest.image_state(image_id)
    deadline = deadline_of(ctx, p.timeout)
    while p.wait and state == "pending":
        now = time.monotonic()
        if now >= deadline or not pause(ctx, min(POLL_INTERVAL_S, max(0.0, deadline - now))):
            break
        state = dest.image_state(image_id)
    outputs: dict[str, OutputValue] = {
        "image_id": image_id,
        "state": state,
        "copied": copied,
        "elapsed_s": round(time.monotonic() - started, 3),
    }
    if state in ("failed", "invalid", "error", "deregistered"):
        raise Permanent(f"image {image_id} in {p.region} is {state}; deregister it and copy again")
    if p.wait and state != "available":
        message = f"image {image_id} is still {state} after {format_duration(p.timeout)}"
        return StepResult(StepStatus.TIMED_OUT, outputs, message, retryable=True)
    return StepResult(StepStatus.SUCCEEDED, outputs)


SPEC = ActionSpec(
    name="image.ensure",
    params=Params,
    description="make sure an image exists in the recovery region, copying it there if it is missing",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"image_id", "state", "copied", "elapsed_s"}),
    run=run,
)
