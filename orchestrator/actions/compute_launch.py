"""``compute.launch``: launch ``count`` instances from a launch template or an image into a subnet, tagged.

Idempotent: through its tags, which are required; before launching it counts the live instances already
carrying every tag and launches only the difference, so a repeat after an interruption or success finds the
instances of the first run instead of launching a second set. Give each launch a tag unique to it
(``drctl-step: restore-web``).

In a drill the instances also carry the drill's tags (so only this drill counts them, and its cleanup removes
them) and go into the drill network: ``drill_subnet``/``drill_security_groups`` if given, else the stack's
drill subnets and the drill security group of the ``drctl:tier`` tag. ``subnet`` is never used in a drill.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, StrictBool, StrictInt, StrictStr, model_validator

from orchestrator.actions.base import (
    ActionContext,
    ActionParams,
    ActionSpec,
    OutputValue,
    StepResult,
    StepStatus,
    Touch,
)
from orchestrator.actions.compute_start import (
    addresses_of,
    compute_in,
    deadline_of,
    find_live,
    joined,
    placement,
    sleeper,
)
from orchestrator.drill.copies import TIER_TAG, client_token
from orchestrator.errors import Permanent, Transient
from orchestrator.providers.compute import LaunchSpec, launch_all, shortfall, wait_for_state
from orchestrator.runbook.fields import Duration, drctl_error, format_duration


class Params(ActionParams):
    """An ``image`` (AMI id) or a ``template`` (launch template name or ``lt-`` id), or both; where to put the
    instances; the ``tags`` that both label them and make the launch idempotent."""

    image: StrictStr | None = None
    template: StrictStr | None = None
    instance_type: StrictStr | None = None
    subnet: StrictStr | None = None
    security_groups: tuple[StrictStr, ...] = ()
    count: StrictInt = Field(default=1, ge=1, le=100)
    tags: dict[StrictStr, StrictStr]
    region: StrictStr | None = None
    cloud: Literal["aws", "azure"] = "aws"
    resource_group: StrictStr | None = None
    drill_subnet: StrictStr | None = None
    drill_security_groups: tuple[StrictStr, ...] = ()
    wait: StrictBool = True
    timeout: Duration = timedelta(minutes=10)

    @model_validator(mode="after")
    def _source_and_tags(self) -> Self:
        if self.image is None and self.template is None:
            raise drctl_error("give 'image' or 'template'")
        if not self.tags:
            raise drctl_error("'tags' must not be empty: they find the instances of an earlier attempt")
        return self

    def describe(self) -> str:
        source = " with ".join(s for s in (self.template and f"template {self.template}", self.image) if s)
        where = f" in {self.region}" if self.region else ""
        return f"{self.count} instance(s) from {source}{where} tagged {joined(self.tags)}"


def _touches(p: Params) -> tuple[Touch, ...]:
    return (Touch("writes", f"{p.describe()} (launched if missing)"),)


def _placement(p: Params, ctx: ActionContext) -> tuple[dict[str, str], str | None, tuple[str, ...]]:
    """Tags, subnet and security groups of the launch: as written, or in a drill, the drill's."""
    if ctx.drill is None:
        return dict(p.tags), p.subnet, tuple(p.security_groups)
    subnet = p.drill_subnet or ctx.drill.subnet(0)
    if subnet is None:
        raise Permanent(
            "a drill launches only into the isolated drill network: give drill_subnet, or pass --stack-outputs "
            "with drill_subnet_ids"
        )
    groups = tuple(p.drill_security_groups) or ctx.drill.security_group(p.tags.get(TIER_TAG))
    return {**p.tags, **ctx.drill.tags()}, subnet, groups


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Find the live instances tagged ``tags``, launch the missing ones, wait for ``running``. Idempotent
    because instances of an earlier attempt carry the same tags and are counted, not launched again."""
    started = time.monotonic()
    compute = compute_in(ctx, p.cloud, p.region, p.resource_group)
    tags, subnet, groups = _placement(p, ctx)
    existing = find_live(compute, tags, ctx)
    missing = max(0, p.count - len(existing))
    launched: tuple[str, ...] = ()
    if missing:
        spec = LaunchSpec(
            image=p.image,
            template=p.template,
            instance_type=p.instance_type,
            subnet=subnet,
            security_groups=groups,
            count=missing,
            tags=tags,
        )
        where = {"step": ctx.step_id, **placement(p.cloud, p.resource_group, ctx)}

        def noted(new: tuple[str, ...], timing: Mapping[str, str]) -> None:
            if ctx.drill is not None:
                for instance in new:
                    ctx.drill.record("instance", compute.region, instance, {**where, **timing})

        def short(got: int, asked: int) -> None:
            ctx.log(shortfall(compute.region, got, asked, "instance(s)"))

        def token(made: int, partial: bool) -> str:
            return client_token(ctx.run_id, ctx.step_id, len(existing) + made, partial)

        launched = tuple(launch_all(compute, spec, token, noted, short))
        ctx.log(f"launched {joined(launched)} in {compute.region}")
        if len(launched) < missing:
            raise Transient(
                f"{compute.region} launched {len(launched)} of the {missing} missing instance(s) (short of capacity); "
                "retry the step: it launches only the missing ones"
            )
    if existing:
        ctx.log(f"found {len(existing)} instance(s) from an earlier attempt: {joined(existing)}")
    ids = tuple(sorted((*existing, *launched)))
    outputs: dict[str, OutputValue] = {
        "instance_ids": joined(ids),
        "launched": len(launched),
        "reused": len(existing),
        "count": len(ids),
    }
    # New instances may not be describable for a moment (EC2 is eventually consistent): poll through that.
    deadline = deadline_of(ctx, p.timeout) if p.wait else time.monotonic()
    result = wait_for_state(compute, ids, "running", deadline, sleep=sleeper(ctx), missing_ok=True)
    if not p.wait:
        return StepResult(StepStatus.SUCCEEDED, {**outputs, "states": joined(dict(result.states)), "elapsed_s": 0.0})
    addresses = addresses_of(result, ids) if result.reached else ()
    final: dict[str, OutputValue] = {
        **outputs,
        "states": joined(dict(result.states)),
        "elapsed_s": round(time.monotonic() - started, 3),
        # As compute.start's: the first instance's address (for a health check or a DNS step), then all of them.
        "private_ips": ",".join(addresses),
        "private_ip": addresses[0] if addresses else "",
    }
    if not result.reached:
        message = f"launched instances not all running within {format_duration(p.timeout)} ({final['states']})"
        return StepResult(StepStatus.TIMED_OUT, final, message, retryable=True)
    return StepResult(StepStatus.SUCCEEDED, final)


SPEC = ActionSpec(
    name="compute.launch",
    params=Params,
    description="launch tagged instances from a template or image, only those not already running",
    touches=_touches,
    idempotent=True,
    outputs=frozenset(
        {"instance_ids", "launched", "reused", "count", "states", "elapsed_s", "private_ips", "private_ip"}
    ),
    run=run,
)
