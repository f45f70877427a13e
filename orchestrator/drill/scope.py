"""What a drill's actions need to stay isolated: who they are (the run id tag), where they may put things
(the drill network and DNS zone from the stack outputs), and how to note what they made for the cleanup.

The same runbook runs as a failover and as a drill. Rather than every runbook carrying a drill twin of each
step, the actions read this scope: in a drill, ``compute.start`` launches copies of the standby instances
into the drill network instead of starting them, selections by tag see only this drill's instances, and DNS
changes go to the drill zone. Production is never touched, by construction rather than by care.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.stack_outputs import StackOutputs

TAG_RUN = "drctl:drill-run"
"""On everything a drill creates; its value is the run id. Cleanup and the orphan sweep find things by it."""
TAG_STARTED = "drctl:drill-started"
"""When the drill started (ISO 8601 UTC): the orphan sweep leaves young resources of unknown runs alone."""
TAG_BATCH = "drctl:drill-batch"
"""On a drill copy of a standby instance: the batch of alike copies it was launched in (one RunInstances
request), which makes the batch idempotent: a repeat counts the batch's live copies and launches the rest."""

DRILL_IMAGE_MARK = "-drill-"
"""A drill's image copy is named ``<copy name>-drill-<run id>``: the name alone ties it to its run."""


def drill_image_name(copy_name: str, run_id: str) -> str:
    return f"{copy_name}{DRILL_IMAGE_MARK}{run_id}"


def run_of_drill_image(name: str) -> str | None:
    """The run id in a drill image copy's name, or None for a name no drill gave."""
    _, mark, run_id = name.rpartition(DRILL_IMAGE_MARK)
    return (run_id or None) if mark else None


Recorder = Callable[[str, str, str, Mapping[str, Any]], None]
"""``record(kind, location, resource_id, detail)``: note a resource the drill made, before anything else."""


def _ignore(kind: str, location: str, resource_id: str, detail: Mapping[str, Any]) -> None:
    del kind, location, resource_id, detail


@dataclass(frozen=True)
class DrillScope:
    run_id: str
    started: str
    subnets: tuple[str, ...] = ()
    security_groups: Mapping[str, str] = field(default_factory=dict)
    """Tier name -> the drill network's security group for that tier."""
    dns_zone: str | None = None
    dns_record: str | None = None
    production_zone: str | None = None
    production_record: str | None = None
    record: Recorder = field(default=_ignore, compare=False)

    @classmethod
    def of(cls, run_id: str, started: str, stack: StackOutputs | None, record: Recorder = _ignore) -> DrillScope:
        if stack is None:
            return cls(run_id, started, record=record)
        return cls(
            run_id,
            started,
            subnets=tuple(stack.drill_subnet_ids),
            security_groups=dict(stack.drill_security_group_ids),
            dns_zone=stack.drill_dns_zone_id,
            dns_record=stack.drill_record_name,
            production_zone=stack.dns_zone_id,
            production_record=stack.production_record_name,
            record=record,
        )

    def tags(self) -> dict[str, str]:
        """The tags every resource of this drill carries."""
        return {TAG_RUN: self.run_id, TAG_STARTED: self.started}

    def owner_tag(self) -> dict[str, str]:
        """The one tag that selects this drill's resources."""
        return {TAG_RUN: self.run_id}

    def owns(self, tags: Mapping[str, str]) -> bool:
        return tags.get(TAG_RUN) == self.run_id

    def subnet(self, index: int) -> str | None:
        """Drill subnets in turn, so copies spread over the drill network's zones like the originals."""
        return self.subnets[index % len(self.subnets)] if self.subnets else None

    def security_group(self, tier: str | None) -> tuple[str, ...]:
        """The drill security group of ``tier``; with no tier, none (the VPC's default, which is isolated)."""
        group = self.security_groups.get(tier) if tier else None
        return (group,) if group else ()
