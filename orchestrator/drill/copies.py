"""Drill copies of standby instances: one new instance per standby, from the same launch template (when
the standby came from one), image and instance type, in the drill network, tagged with the drill's run id.

A drill must not start the real standby instances: they sit in the recovery network, next to production's
replicas, and a drill that fails halfway would leave them running. A copy proves the same thing (the image
boots, the tier comes up, the order holds) and is removed by the cleanup whatever happens.

Copies are launched in batches, not one by one: the standbys whose copies would be alike (same template,
image, type, drill subnet, security groups and tags but for ``Name``) get one RunInstances request for all of
their copies. A tier of fifty is then a request or two instead of fifty, which matters most on the day a region
fails, when EC2 throttles every account that is launching (its RunInstances bucket refills at a few
instances a second). Copies of one batch are interchangeable, so which copy stands for which standby is
bookkeeping: the ledger notes it, and the tags carry the batch, not the standby.

Idempotent per batch: the copies already tagged with this run id and the batch are counted first, so a
repeated step launches only the missing ones; each request carries a client token derived from the run, the
batch and what exists, so a request retried after EC2 accepted it starts nothing more.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from orchestrator.drill.scope import TAG_BATCH, TAG_RUN, TAG_STARTED, DrillScope
from orchestrator.errors import NotFound, Permanent, Transient
from orchestrator.providers.compute import Compute, InstanceInfo, Launched, LaunchSpec, launch_all, shortfall

TIER_TAG = "drctl:tier"
LAUNCH_THREADS = 8
"""Batches launched at once (a tier spread over three drill subnets is three batches)."""
MAX_TAG_VALUE = 256
"""EC2's limit on a tag value's length."""


@dataclass(frozen=True)
class Selected:
    sources: dict[str, InstanceInfo]
    """The selected instances that are not themselves drill copies (of this drill or an older one)."""
    earlier: dict[str, InstanceInfo] | None
    """This drill's copies the same lookup found, or None when it could not have found them all (by ids, or by a
    tag the copies do not keep): ``launch_copies`` then looks for them itself."""


def select_standbys(
    compute: Compute,
    ids: tuple[str, ...],
    tags: Mapping[str, str],
    scope: DrillScope,
    found: Mapping[str, InstanceInfo] | None = None,
) -> Selected:
    """The standbys to copy and, where one lookup can tell, this drill's copies of them from an earlier attempt:
    copies keep their standby's tags, so a selection by those tags finds both, and a tier costs one
    DescribeInstances before its launches instead of two. ``found`` is that lookup when it was made ahead."""
    if found is not None and not ids:
        infos = dict(found)
    else:
        infos = compute.describe(ids) if ids else compute.find_described(tags)
    earlier = {i: info for i, info in infos.items() if scope.owns(info.tags)} if finds_copies(ids, tags) else None
    return Selected(_sources(infos, tags), earlier)


def finds_copies(ids: tuple[str, ...], tags: Mapping[str, str]) -> bool:
    """Whether a selection also finds the copies of what it selects: by tags, none of which a copy rewrites."""
    return not ids and bool(tags) and not any(k in REWRITTEN or k.startswith("aws:") for k in tags)


def _sources(infos: Mapping[str, InstanceInfo], tags: Mapping[str, str]) -> dict[str, InstanceInfo]:
    if not infos:
        raise NotFound(f"no live instances tagged {', '.join(f'{k}={v}' for k, v in tags.items())} to copy")
    sources = {i: info for i, info in sorted(infos.items()) if TAG_RUN not in info.tags}
    if not sources:
        raise NotFound(f"only drill copies match {', '.join(f'{k}={v}' for k, v in tags.items())}: no standby to copy")
    return sources


REWRITTEN = frozenset({"Name", TAG_BATCH, TAG_RUN, TAG_STARTED})
"""Tags a copy does not keep from its standby as they were (besides AWS's own ``aws:`` ones)."""


def copy_tags(source: InstanceInfo, scope: DrillScope) -> dict[str, str]:
    """The source's own tags (not AWS-reserved ones), so the runbook's selections (``drctl:tier: db``) find the
    copy as they would the original, plus this drill's tags. Failover selections skip anything with a drill
    tag (``compute_start.select``), so a leftover copy is never taken for a standby."""
    tags = {k: v for k, v in source.tags.items() if not k.startswith("aws:") and k != TAG_BATCH}
    if "Name" in tags:
        tags["Name"] = f"{tags['Name']} (drill {scope.run_id})"
    return {**tags, **scope.tags()}


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


@dataclass(frozen=True)
class CopyBatch:
    """Standbys whose copies are alike, launched in one request: ``spec`` asks for one copy per source."""

    key: str
    spec: LaunchSpec
    sources: tuple[str, ...]


def plan_batches(sources: Mapping[str, InstanceInfo], scope: DrillScope) -> list[CopyBatch]:
    """Group the standbys by what their copies' launch would ask for, ``Name`` aside; in source order."""
    groups: dict[tuple[object, ...], list[tuple[InstanceInfo, LaunchSpec]]] = defaultdict(list)
    for index, source in enumerate(sources.values()):
        spec = copy_spec(source, index, scope)
        shared = tuple(sorted((k, v) for k, v in spec.tags.items() if k != "Name"))
        groups[(spec.template, spec.image, spec.instance_type, spec.subnet, spec.security_groups, shared)].append(
            (source, spec)
        )
    batches = []
    for shape, members in groups.items():
        key = hashlib.sha256(repr(shape).encode()).hexdigest()[:16]
        first = members[0][1]
        tags = {k: v for k, v in first.tags.items() if k != "Name"}
        name = _batch_name([s.tags["Name"] for s, _ in members if "Name" in s.tags], scope.run_id)
        if name is not None:
            tags["Name"] = name
        spec = replace(first, count=len(members), tags={**tags, TAG_BATCH: key})
        batches.append(CopyBatch(key, spec, tuple(s.id for s, _ in members)))
    return batches


def _batch_name(names: Sequence[str], run_id: str) -> str | None:
    """The copies' ``Name``: the standby's, or the first and last of a batch's, and the drill."""
    if not names:
        return None
    ordered = sorted(set(names))
    shown = ordered[0] if len(ordered) == 1 else f"{ordered[0]} .. {ordered[-1]} ({len(names)} standbys)"
    suffix = f" (drill {run_id})"
    return shown[: MAX_TAG_VALUE - len(suffix)] + suffix


def client_token(run_id: str, what: str, existing: int, partial: bool = False) -> str:
    """One token per launch request: the same run, batch (or step) and count of instances already there give
    the same token, so a repeat that cannot see the first request's instances yet (EC2 lists new instances
    late) gets those back instead of launching more."""
    digest = hashlib.sha256(f"{run_id}/{what}/{existing}/{'partial' if partial else 'all'}".encode()).hexdigest()[:40]
    return f"drctl-{digest}"


def launch_copies(
    compute: Compute,
    sources: Mapping[str, InstanceInfo],
    scope: DrillScope,
    log: Callable[[str], None],
    where: Mapping[str, str] | None = None,
    earlier_copies: Mapping[str, InstanceInfo] | None = None,
) -> tuple[tuple[str, ...], int]:
    """Ensure one copy per source; returns the copies' ids (sorted) and how many were launched now. ``where``
    (cloud, resource group) goes into each ledger entry, for the cleanup to reach the copy. ``earlier_copies``
    are this drill's live copies if the caller's lookup found them (``select_standbys``); None looks them up."""
    if not scope.subnets:
        raise Permanent(
            "a drill launches copies only into the isolated drill network, and none is known: "
            "pass --stack-outputs with drill_subnet_ids"
        )
    batches = plan_batches(sources, scope)
    # This drill's copies made by an earlier attempt, by batch: at most one lookup for the whole tier.
    earlier: dict[str, list[str]] = defaultdict(list)
    found = compute.find_described(scope.owner_tag()) if earlier_copies is None else earlier_copies
    for copy, info in sorted(found.items()):
        earlier[info.tags.get(TAG_BATCH, "")].append(copy)

    def ensure(batch: CopyBatch) -> tuple[list[str], int]:
        have = earlier.get(batch.key, [])[: len(batch.sources)]
        waiting = list(batch.sources[len(have) :])

        def record(copies: tuple[str, ...], timing: Mapping[str, str]) -> None:
            for copy in copies:
                source = waiting.pop(0) if waiting else ""
                detail = {"source": source, "batch": batch.key, **timing, **(where or {})}
                scope.record("instance", compute.region, copy, detail)

        new = launch_batch(compute, batch, len(have), scope.run_id, record, log) if waiting else []
        return [*have, *new], len(new)

    with ThreadPoolExecutor(max_workers=LAUNCH_THREADS, thread_name_prefix="drill-copy") as pool:
        results = list(pool.map(ensure, batches))
    launched = sum(n for _, n in results)
    if launched:
        requests = "one request" if len(batches) == 1 else f"{len(batches)} batches"
        log(f"launched {launched} drill cop{'y' if launched == 1 else 'ies'} in {compute.region} ({requests})")
    return tuple(sorted(c for copies, _ in results for c in copies)), launched


def launch_batch(
    compute: Compute,
    batch: CopyBatch,
    existing: int,
    run_id: str,
    launched: Launched,
    log: Callable[[str], None],
) -> list[str]:
    """Launch the batch's missing copies (all but ``existing``); each request's copies go to ``launched`` as
    soon as it returns. Capacity that stays short is ``Transient``: the step's retry launches the rest."""
    wanted = len(batch.sources) - existing

    def short(got: int, asked: int) -> None:
        log(shortfall(compute.region, got, asked, "drill copies"))

    def token(made: int, partial: bool) -> str:
        return client_token(run_id, batch.key, existing + made, partial)

    got = launch_all(compute, replace(batch.spec, count=wanted), token, launched, short)
    if len(got) < wanted:
        first = ", ".join(batch.sources[:3]) + (" ..." if len(batch.sources) > 3 else "")
        raise Transient(
            f"{compute.region} launched {existing + len(got)} of {len(batch.sources)} drill copies of {first} "
            "(short of capacity); retry the step: it launches only the missing copies"
        )
    return got
