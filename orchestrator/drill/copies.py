"""Drill copies of standby instances: one new instance per standby, from the same launch template (when
the standby came from one), image and instance type, in the drill network, tagged with the drill's run id
and the instance it copies.

A drill must not start the real standby instances: they sit in the recovery network, next to production's
replicas, and a drill that fails halfway would leave them running. A copy proves the same thing (the image
boots, the tier comes up, the order holds) and is removed by the cleanup whatever happens.

Idempotent per standby: before launching, the copies already tagged with this run id and the standby's id
are looked up, so a repeated step launches only the missing ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from orchestrator.drill.scope import TAG_RUN, TAG_SOURCE, DrillScope
from orchestrator.errors import NotFound, Permanent
from orchestrator.providers.compute import Compute, InstanceInfo, LaunchSpec

TIER_TAG = "drctl:tier"
LAUNCH_THREADS = 8
"""Launches in flight at once: one RunInstances call per copy (each needs its own source tag), so a tier of
fifty standbys would otherwise take fifty round trips in a row."""


def standby_sources(compute: Compute, ids: tuple[str, ...], tags: Mapping[str, str]) -> dict[str, InstanceInfo]:
    """The selected instances that are not themselves drill copies (of this drill or an older one)."""
    infos = compute.describe(ids) if ids else compute.find_described(tags)
    if not infos:
        raise NotFound(f"no live instances tagged {', '.join(f'{k}={v}' for k, v in tags.items())} to copy")
    sources = {i: info for i, info in sorted(infos.items()) if TAG_RUN not in info.tags}
    if not sources:
        raise NotFound(f"only drill copies match {', '.join(f'{k}={v}' for k, v in tags.items())}: no standby to copy")
    return sources


def copy_tags(source: InstanceInfo, scope: DrillScope) -> dict[str, str]:
    """The source's own tags (not AWS-reserved ones), so the runbook's selections (``drctl:tier: db``) find the
    copy as they would the original, plus this drill's tags and the source's id. Failover selections skip
    anything with a drill tag (``compute_start.select``), so a leftover copy is never taken for a standby."""
    tags = {k: v for k, v in source.tags.items() if not k.startswith("aws:")}
    if "Name" in tags:
        tags["Name"] = f"{tags['Name']} (drill {scope.run_id})"
    return {**tags, **scope.tags(), TAG_SOURCE: source.id}


TEMPLATE_TAG = "aws:ec2launchtemplate:id"
"""EC2 tags every instance launched from a launch template with the template's id."""


def copy_spec(source: InstanceInfo, index: int, scope: DrillScope) -> LaunchSpec:
    """A copy launches from the standby's launch template when it came from one (so it boots with the same
    user data, metadata options and disks), with the standby's image and type, into the drill network."""
    if source.image is None:
        raise Permanent(f"instance {source.id} reports no image, so a drill cannot copy it; check it still exists")
    return LaunchSpec(
        template=source.tags.get(TEMPLATE_TAG),
        image=source.image,
        instance_type=source.instance_type,
        subnet=scope.subnet(index),
        security_groups=scope.security_group(source.tags.get(TIER_TAG)),
        count=1,
        tags=copy_tags(source, scope),
    )


def launch_copies(
    compute: Compute,
    sources: Mapping[str, InstanceInfo],
    scope: DrillScope,
    log: Callable[[str], None],
    where: Mapping[str, str] | None = None,
) -> tuple[tuple[str, ...], int]:
    """Ensure one copy per source; returns the copies' ids (in source order) and how many were launched now.
    ``where`` (cloud, resource group) goes into each ledger entry, for the cleanup to reach the copy."""
    if not scope.subnets:
        raise Permanent(
            "a drill launches copies only into the isolated drill network, and none is known: "
            "pass --stack-outputs with drill_subnet_ids"
        )

    # This drill's copies made by an earlier attempt, by source: one lookup for the whole tier. A lookup per
    # standby made a 50-instance tier 50 filtered DescribeInstances calls (slow, and throttled on real AWS).
    earlier = {info.tags.get(TAG_SOURCE): i for i, info in compute.find_described(scope.owner_tag()).items()}

    def ensure(item: tuple[int, InstanceInfo]) -> tuple[str, bool]:
        index, source = item
        if source.id in earlier:
            return earlier[source.id], False
        asked = datetime.now(UTC).isoformat()
        (copy,) = compute.launch(copy_spec(source, index, scope))
        # When the launch was asked for and when it returned: the journal shows how far launches overlapped.
        timing = {"launch_asked": asked, "launch_returned": datetime.now(UTC).isoformat()}
        scope.record("instance", compute.region, copy, {"source": source.id, **timing, **(where or {})})
        return copy, True

    with ThreadPoolExecutor(max_workers=LAUNCH_THREADS, thread_name_prefix="drill-copy") as pool:
        results = list(pool.map(ensure, enumerate(sources.values())))
    launched = sum(1 for _, new in results if new)
    if launched:
        log(f"launched {launched} drill cop{'y' if launched == 1 else 'ies'} in {compute.region}")
    return tuple(copy for copy, _ in results), launched
