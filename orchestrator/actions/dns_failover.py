"""``dns.failover``: make the recovery endpoint serve a DNS name, then wait until the change is INSYNC.

Either ``recovery`` names the failover record (its set identifier) to make PRIMARY, the other failover records
of the name becoming SECONDARY; or ``endpoint`` is the value a simple record is UPSERTed to. The zone, record
name and type have no defaults, so a drill can only touch the record it names.

Idempotent: the wanted end state is declared, not a delta. A repeat reads the records first and, finding that
state already in effect, submits nothing (``changed`` false). The one thing a repeat cannot do is wait again
for an earlier change that timed out before INSYNC (Route53 cannot list pending changes), so a wait that runs
out fails as not retryable, naming the change.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, StrictInt, model_validator

from orchestrator.actions.base import (
    ActionContext,
    ActionParams,
    ActionSpec,
    StepResult,
    StepStatus,
    Touch,
    azure_group,
)
from orchestrator.drill.scope import DrillScope
from orchestrator.engine.context import StepContext, pause
from orchestrator.errors import NotFound, Permanent
from orchestrator.providers.choice import DnsProvider, dns_service
from orchestrator.providers.dns import ChangeResult, Dns, fqdn, wait_insync
from orchestrator.runbook.fields import Duration, drctl_error, format_duration

RecordType = Literal["A", "AAAA", "CNAME", "TXT", "MX", "SRV", "PTR", "NS", "CAA"]
DEFAULT_TTL = 60
OUTPUTS = frozenset({"change_id", "changed", "previous", "new", "insync_s"})


def provider_of(p: SwitchParams, ctx: ActionContext) -> DnsProvider:
    """The step's ``provider``, else the stack's ``dns_provider``, else Route53."""
    return p.provider or (ctx.stack.dns_provider if ctx.stack else None) or "route53"


def dns_for(p: SwitchParams, ctx: ActionContext) -> Dns:
    """The DNS service the step names (:mod:`orchestrator.providers.choice` picks it). Azure DNS and Traffic
    Manager live in a resource group: the step's, else the stack's ``azure_resource_group``."""
    return dns_service(ctx.env, provider_of(p, ctx), azure_group(p.resource_group, ctx))


class SwitchParams(ActionParams):
    """What both DNS actions share: the record, named in full, and how long to wait for INSYNC."""

    zone: str = Field(min_length=1)
    name: str = Field(min_length=1)
    type: RecordType
    endpoint: str | None = Field(default=None, min_length=1)
    ttl: StrictInt | None = Field(default=None, ge=0, le=2_147_483_647)
    timeout: Duration = timedelta(minutes=10)
    interval: Duration = timedelta(seconds=5)
    provider: DnsProvider | None = None
    resource_group: str | None = Field(default=None, min_length=1)
    drill_zone: str | None = Field(default=None, min_length=1)
    drill_name: str | None = Field(default=None, min_length=1)
    drill_endpoint: str | None = Field(default=None, min_length=1)

    def target(self) -> str | None:
        """The set identifier to make PRIMARY (failover routing), or None to UPSERT ``endpoint``."""
        raise NotImplementedError

    def _one_target(self, key: str) -> None:
        if (self.target() is None) == (self.endpoint is None):
            raise drctl_error(f"give one of '{key}' (a failover record's set identifier) or 'endpoint'")
        if self.ttl is not None and self.endpoint is None:
            raise drctl_error(f"'ttl' applies to 'endpoint' only; '{key}' keeps the records' own TTLs")


class Params(SwitchParams):
    """``recovery`` (set identifier to make PRIMARY) or ``endpoint`` (with ``ttl``, default 60)."""

    recovery: str | None = Field(default=None, min_length=1)

    def target(self) -> str | None:
        return self.recovery

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._one_target("recovery")
        return self


def describe_switch(p: SwitchParams) -> str:
    to = f"PRIMARY={p.target()}" if p.target() is not None else f"{p.endpoint} (ttl {p.ttl or DEFAULT_TTL})"
    return f"dns {p.type} {p.name} in zone {p.zone} -> {to}"


def switch_touches(p: SwitchParams) -> tuple[Touch, ...]:
    return (
        Touch("writes", describe_switch(p)),
        Touch("waits", f"until the change is INSYNC (at most {format_duration(p.timeout)})"),
    )


def drill_switch(p: SwitchParams, ctx: ActionContext) -> tuple[SwitchParams, Dns]:
    """The switch a drill makes instead of ``p``: the drill record (``drill_zone``/``drill_name``, else the stack's
    ``drill_dns_zone_id``/``drill_record_name``) pointed at ``drill_endpoint`` (else ``endpoint``). The record's
    state before the change is noted first, so the cleanup can put it back even after a crash."""
    scope = ctx.drill
    assert scope is not None
    zone, name = p.drill_zone or scope.dns_zone, p.drill_name or scope.dns_record
    if zone is None or name is None:
        raise Permanent(
            "a drill never changes production DNS: give drill_zone and drill_name, or pass --stack-outputs "
            "with drill_dns_zone_id and drill_record_name"
        )
    if fqdn(name) == fqdn(scope.production_record or "-"):
        raise Permanent(f"the drill record {name} is production's: declare a drill record")
    endpoint = p.drill_endpoint or p.endpoint
    if endpoint is None:
        raise Permanent("a drill points its record at an address: give drill_endpoint (e.g. a drill copy's private_ip)")
    # A drill zone is a plain (private) zone: under Traffic Manager, that is Azure DNS.
    declared = provider_of(p, ctx)
    provider: DnsProvider = "azure_dns" if declared == "traffic_manager" else declared
    p = p.model_copy(update={"provider": provider})
    dns = dns_for(p, ctx)
    zone_id = dns.zone_id(zone)
    # Compared by id: a zone can be named by its id or its name, and either must be caught.
    if scope.production_zone is not None and zone_id in (scope.production_zone, _zone_id_or_none(dns, scope)):
        raise Permanent(f"the drill zone {zone} is production's zone: declare a drill zone")
    current = [r for r in dns.records(zone, name, p.type) if r.set_identifier is None]
    before = {"previous": list(current[0].values), "ttl": current[0].ttl} if current else {"previous": None}
    where = {"zone": zone, "name": name, "provider": provider, "resource_group": azure_group(p.resource_group, ctx)}
    scope.record("dns-record", zone_id, f"{fqdn(name)} {p.type}", {**before, **where})
    update: dict[str, object] = {"zone": zone, "name": name, "endpoint": endpoint}
    update.update({key: None for key in ("recovery", "primary") if key in type(p).model_fields})
    return p.model_copy(update=update), dns


def _zone_id_or_none(dns: Dns, scope: DrillScope) -> str | None:
    try:
        return dns.zone_id(scope.production_zone) if scope.production_zone else None
    except NotFound:
        return None  # production's zone is not reachable through this provider: it cannot be the drill zone


def switch(p: SwitchParams, ctx: ActionContext) -> StepResult:
    """Apply the switch ``p`` declares (a no-op when already in effect), then poll until it is INSYNC, waking
    early when the run is cancelled or the step's deadline comes. Provider errors propagate as ``DrError``s.
    In a drill, the drill record changes instead (``drill_switch``)."""
    # A drill's switch has already opened its DNS service to check the drill zone: one client, not two.
    p, dns = drill_switch(p, ctx) if ctx.drill is not None else (p, dns_for(p, ctx))
    target = p.target()
    result: ChangeResult
    if target is not None:
        result = dns.promote(p.zone, p.name, p.type, target)
    else:
        assert p.endpoint is not None  # enforced by the model
        result = dns.point(p.zone, p.name, p.type, (p.endpoint,), p.ttl if p.ttl is not None else DEFAULT_TTL)
    outputs: dict[str, str | int | float | bool] = {
        "change_id": result.change_id or "",
        "changed": result.changed,
        "previous": result.previous,
        "new": result.new,
        "insync_s": 0.0,
    }
    if not result.changed or result.change_id is None:
        ctx.log(f"{describe_switch(p)}: already in effect ({result.new}); nothing changed")
        return StepResult(StepStatus.SUCCEEDED, outputs, "already in effect")
    ctx.log(f"{describe_switch(p)}: submitted change {result.change_id} ({result.previous} -> {result.new})")
    clock = ctx.clock if isinstance(ctx, StepContext) else time.monotonic
    waited = wait_insync(
        dns,
        result.change_id,
        timeout_s=p.timeout.total_seconds(),
        interval_s=p.interval.total_seconds(),
        sleep=lambda seconds: pause(ctx, seconds),
        clock=clock,
    )
    outputs["insync_s"] = waited.seconds
    if not waited.insync:
        return StepResult(
            StepStatus.TIMED_OUT,
            outputs,
            f"change {result.change_id} was submitted but not INSYNC after {waited.seconds}s; check it with "
            "`aws route53 get-change` before running the step again",
        )
    return StepResult(StepStatus.SUCCEEDED, outputs)


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Make ``recovery`` PRIMARY (or point the record at ``endpoint``) and wait for INSYNC.

    Idempotent because the step names the end state: the records are read first and, when the recovery record
    is already PRIMARY (or the record already holds ``endpoint`` with ``ttl``), nothing is submitted and the
    step succeeds with ``changed`` false. Swapping roles is one atomic change batch, so no attempt can leave
    both records PRIMARY or neither."""
    return switch(p, ctx)


SPEC = ActionSpec(
    name="dns.failover",
    params=Params,
    description="make the recovery endpoint serve a DNS name (swap failover roles or UPSERT), wait for INSYNC",
    touches=switch_touches,
    idempotent=True,
    outputs=OUTPUTS,
    run=run,
)
