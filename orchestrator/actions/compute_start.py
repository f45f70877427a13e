"""``compute.start``: start the selected instances and (by default) wait until they are running.

Idempotent: instances already running or pending are left alone, so a repeat after a timeout or success only
waits again; the selection by tags finds the same instances each time.

In a drill it starts nothing: it launches a copy of each selected standby instance into the drill network
(``orchestrator.drill.copies``), idempotent per standby through the copy's tags, and waits for the copies.

Also home of the instance selection (``ids`` or ``tags``, plus ``region``) shared by the compute actions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, StrictBool, StrictStr, model_validator

from orchestrator.actions.base import (
    ActionContext,
    ActionParams,
    ActionSpec,
    OutputValue,
    StepResult,
    StepStatus,
    Touch,
    azure_group,
)
from orchestrator.actions.lookahead import SelectionLookahead
from orchestrator.drill.copies import launch_copies, select_standbys
from orchestrator.drill.scope import TAG_RUN
from orchestrator.engine.context import lookahead_of, pause
from orchestrator.errors import NotFound, Permanent
from orchestrator.providers.choice import compute_service
from orchestrator.providers.compute import Compute, InstanceInfo, WaitResult
from orchestrator.runbook.fields import Duration, drctl_error, format_duration

WAIT_INTERVAL_S = 5.0
LOOKED_UP_AHEAD = "selection looked up"
"""How a step's log says it used a lookup made ahead (``orchestrator.actions.lookahead``)."""


class Selection(ActionParams):
    """Which instances: ``ids``, or every live instance carrying all of ``tags`` (e.g. ``tier: db``), in
    ``region`` (default: the environment's ``AWS_REGION``). ``cloud: azure`` selects VMs of
    ``resource_group`` (default: the stack's ``azure_resource_group``) in location ``region``; ids are VM names."""

    ids: tuple[StrictStr, ...] = ()
    tags: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    region: StrictStr | None = None
    cloud: Literal["aws", "azure"] = "aws"
    resource_group: StrictStr | None = None

    @model_validator(mode="after")
    def _ids_or_tags(self) -> Self:
        if bool(self.ids) == bool(self.tags):
            raise drctl_error("give either 'ids' or 'tags'")
        if self.resource_group is not None and self.cloud != "azure":
            raise drctl_error("'resource_group' applies to cloud: azure only", key="resource_group")
        return self

    def describe(self) -> str:
        where = f" in {self.region}" if self.region else ""
        vms = "Azure VMs" if self.cloud == "azure" else "instances"
        if self.ids:
            return f"{vms} {', '.join(self.ids)}{where}"
        return f"{vms} tagged {', '.join(f'{k}={v}' for k, v in self.tags.items())}{where}"


class Params(Selection):
    """The selection, and whether to ``wait`` (at most ``timeout``) until every instance is running."""

    wait: StrictBool = True
    timeout: Duration = timedelta(minutes=10)


def compute_of(p: Selection, ctx: ActionContext) -> Compute:
    return compute_in(ctx, p.cloud, p.region, p.resource_group)


def placement(cloud: str, resource_group: str | None, ctx: ActionContext) -> dict[str, str]:
    """Where an instance lives beyond its region, for a drill's ledger: Azure VMs need their resource group."""
    if cloud != "azure":
        return {}
    return {"cloud": "azure", "resource_group": azure_group(resource_group, ctx) or ""}


def compute_in(ctx: ActionContext, cloud: str, region: str | None, resource_group: str | None) -> Compute:
    """EC2 in ``region``, or the Azure VMs of ``resource_group`` in location ``region`` (defaults: the stack's
    resource group and recovery region); :mod:`orchestrator.providers.choice` picks the provider."""
    if cloud != "azure":
        return compute_service(ctx.env, "aws", region)
    location = region or (ctx.stack.recovery_region if ctx.stack else None)
    return compute_service(ctx.env, "azure", location, azure_group(resource_group, ctx))


def selection_tags(p: Selection, ctx: ActionContext) -> dict[str, str]:
    """The tags to select by; in a drill, narrowed to the instances this drill launched."""
    return {**p.tags, **ctx.drill.owner_tag()} if ctx.drill is not None else dict(p.tags)


def select(
    p: Selection, compute: Compute, ctx: ActionContext, found: Mapping[str, InstanceInfo] | None = None
) -> tuple[str, ...]:
    """The selected ids; ``NotFound`` when tags match nothing (an empty selection is almost always a typo).
    In a drill only this drill's instances can be selected: ids of any other instance are refused. ``found``
    is the tags' lookup made ahead, if the step has one (``orchestrator.actions.lookahead``)."""
    if p.ids:
        ids = tuple(p.ids)
        guard_drill(ids, compute, ctx)
        return ids
    ids = find_live(compute, selection_tags(p, ctx), ctx, found)
    if not ids:
        scope = " launched by this drill" if ctx.drill is not None else " (drill copies excluded)"
        raise NotFound(f"no live {p.describe()}{scope}")
    return ids


def find_live(
    compute: Compute, tags: Mapping[str, str], ctx: ActionContext, found: Mapping[str, InstanceInfo] | None = None
) -> tuple[str, ...]:
    """The live instances carrying ``tags``, possibly none; in a failover never a drill's leftover copy.
    ``found`` (a lookup of ``tags`` made ahead) stands for the failover's lookup when given."""
    if ctx.drill is not None:
        return compute.find(tags)
    described = compute.find_described(tags) if found is None else found
    # A failover never adopts a drill's copy (one a crashed drill left behind) as a standby instance.
    return tuple(i for i, info in sorted(described.items()) if TAG_RUN not in info.tags)


def guard_drill(ids: tuple[str, ...], compute: Compute, ctx: ActionContext) -> None:
    """In a drill, refuse instances the drill did not launch: a drill never acts on production."""
    if ctx.drill is None or not ids:
        return
    foreign = sorted(i for i, info in compute.describe(ids).items() if not ctx.drill.owns(info.tags))
    if foreign:
        raise Permanent(
            f"a drill acts only on instances it launched, and {', '.join(foreign[:5])} "
            f"{'is' if len(foreign) == 1 else 'are'} not among them: select by tags, or run as a failover"
        )


def deadline_of(ctx: ActionContext, timeout: timedelta) -> float:
    """The earlier of the step's deadline and ``timeout`` from now, on ``time.monotonic``."""
    own = time.monotonic() + timeout.total_seconds()
    return own if ctx.deadline is None else min(own, ctx.deadline)


def sleeper(ctx: ActionContext) -> Callable[[float], bool]:
    """A ``sleep`` for ``Compute.wait`` that wakes early, returning False, when the step is cancelled."""
    return lambda seconds: pause(ctx, seconds)


def joined(values: Mapping[str, str] | tuple[str, ...]) -> str:
    if isinstance(values, tuple):
        return ",".join(values)
    return ",".join(f"{k}={v}" for k, v in sorted(values.items()))


def wait_outputs(
    ids: tuple[str, ...], result: WaitResult, started: float, addresses: tuple[str, ...] = ()
) -> dict[str, OutputValue]:
    """``private_ip`` is the first instance's address (for a DNS step to point at); ``private_ips`` all of them."""
    return {
        "instance_ids": joined(ids),
        "states": joined(dict(result.states)),
        "count": len(ids),
        "elapsed_s": round(time.monotonic() - started, 3),
        "private_ips": ",".join(addresses),
        "private_ip": addresses[0] if addresses else "",
    }


def addresses_of(result: WaitResult, ids: tuple[str, ...]) -> tuple[str, ...]:
    """The instances' private addresses as the wait last saw them, in ``ids`` order."""
    return tuple(ip for i in ids if (info := result.infos.get(i)) is not None and (ip := info.private_ip))


def settle(
    compute: Compute, ids: tuple[str, ...], state: str, p: Params, ctx: ActionContext, started: float, verb: str
) -> StepResult:
    """Wait (if asked) for ``state`` and turn the outcome into a ``StepResult``."""
    if not p.wait:
        states = {i: info.state for i, info in compute.describe(ids).items()}
        return StepResult(StepStatus.SUCCEEDED, wait_outputs(ids, WaitResult(False, states, 0.0), started))
    result = compute.wait(ids, state, deadline_of(ctx, p.timeout), sleeper(ctx))
    addresses = addresses_of(result, ids) if result.reached and state == "running" else ()
    outputs = wait_outputs(ids, result, started, addresses)
    if not result.reached:
        return StepResult(
            StepStatus.TIMED_OUT,
            outputs,
            f"{verb} {p.describe()}: not all {state} within {format_duration(p.timeout)} ({outputs['states']})",
            retryable=True,
        )
    return StepResult(StepStatus.SUCCEEDED, outputs)


def _touches(p: Params) -> tuple[Touch, ...]:
    return (Touch("writes", f"{p.describe()} (started)"),)


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Start the selected instances and wait for ``running``. Idempotent because ``Compute.start`` skips
    instances that are already running or pending, and the wait only observes."""
    started = time.monotonic()
    compute = compute_of(p, ctx)
    ahead = lookahead_of(ctx)
    found = _taken(ahead, p, ctx)
    if ctx.drill is not None:
        chosen = select_standbys(compute, tuple(p.ids), p.tags, ctx.drill, found)
        where = placement(p.cloud, p.resource_group, ctx)
        copies, _ = launch_copies(compute, chosen.sources, ctx.drill, ctx.log, where, chosen.earlier)
        ctx.log(f"drill: {len(copies)} cop{'y' if len(copies) == 1 else 'ies'} of {p.describe()} in the drill network")
        _wrote(ahead, ctx)
        return settle(compute, copies, "running", p, ctx, started, "started drill copies of")
    ids = select(p, compute, ctx, found)
    try:
        compute.start(ids)
    except (Permanent, NotFound):
        if found is None:
            raise
        # An instance of the lookup made ahead has gone since (terminated by hand, reclaimed): look up afresh.
        ctx.log("an instance selected ahead can no longer be started; looking up again")
        ids = select(p, compute, ctx)
        compute.start(ids)
    ctx.log(f"starting {len(ids)} instance(s) in {compute.region}: {joined(ids)}")
    _wrote(ahead, ctx)
    return settle(compute, ids, "running", p, ctx, started, "started")


def _taken(ahead: SelectionLookahead | None, p: Params, ctx: ActionContext) -> Mapping[str, InstanceInfo] | None:
    """This step's selection if it was looked up while the tier before came up, else None (look up now)."""
    taken = ahead.take(ctx.step_id, p) if ahead is not None and not p.ids else None
    if taken is None:
        return None
    ctx.log(f"{LOOKED_UP_AHEAD} {taken.age_s:.1f}s ahead, while the tier before came up ({len(taken.found)} found)")
    return taken.found


def _wrote(ahead: SelectionLookahead | None, ctx: ActionContext) -> None:
    """This step's changes are made: the next tier's selection may be looked up now."""
    if ahead is not None:
        ahead.wrote(ctx.step_id, lambda params: look_up(params, ctx))


def look_up(params: object, ctx: ActionContext) -> Mapping[str, InstanceInfo] | None:
    """What a ``compute.start`` with ``params`` selects by tags (before a drill's or failover's own filtering),
    as the step would look it up; None when it selects by ids."""
    if not isinstance(params, Params) or params.ids or not params.tags:
        return None
    return compute_of(params, ctx).find_described(params.tags)


OUTPUTS = frozenset({"instance_ids", "states", "count", "elapsed_s", "private_ips", "private_ip"})

SPEC = ActionSpec(
    name="compute.start",
    params=Params,
    description="start instances (by ids or tags) and wait until they are running",
    touches=_touches,
    idempotent=True,
    outputs=OUTPUTS,
    run=run,
)
