"""A drill's cleanup: remove everything the drill made, from two sources that cover each other's gaps.

- The ledger (``drill_resources`` in the run journal): each action notes what it made as soon as it exists,
  with what a change replaced (a DNS record's earlier values), so it can be put back, not merely deleted.
- The tags: every instance a drill launches carries ``drctl:drill-run=<run id>``. A process killed between a
  launch and its ledger entry leaves an instance only the tag can find; the sweep adds it to the ledger.
  An image copy carries the tag too, and its name ends in ``-drill-<run id>``: where the copy call cannot tag
  (LocalStack), a kill before the separate tagging call leaves a copy only its name finds.

Resources are undone newest first (DNS before the instances it pointed at), each independently: one that
fails is recorded as ``failed`` and the others still go; the next cleanup of the run tries it again. The
cleanup is idempotent: something already gone is ``already gone``, not an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.drill.scope import TAG_RUN, drill_image_name
from orchestrator.engine.journal import DrillResource, RunJournal
from orchestrator.errors import DrError, NotFound, Permanent
from orchestrator.providers.choice import compute_service, dns_service, ec2_service
from orchestrator.providers.compute import Compute, InstanceInfo
from orchestrator.providers.dns import Dns
from orchestrator.providers.factory import StoreFactory

TERMINATE_WAIT_S = 300.0
"""How long the cleanup waits for its instances to reach ``terminated`` before it calls them removed anyway
(terminating is irreversible once accepted; the wait only makes the report exact)."""

Outcome = str  # "removed" | "restored" (a changed record put back) | "already gone" | "failed"


@dataclass(frozen=True)
class Removal:
    kind: str
    location: str
    resource_id: str
    outcome: Outcome
    note: str = ""


class RegionCompute(Compute, Protocol):
    """The compute of one AWS region as the cleanup and the orphan sweep use it: instances, plus finding what
    carries a tag and removing image copies."""

    def tagged(self, key: str) -> dict[str, InstanceInfo]:
        """Live instances carrying tag ``key``, whatever its value."""
        ...

    def tagged_images(self, key: str, value: str | None = None) -> dict[str, dict[str, str]]:
        """This account's images carrying tag ``key`` (with ``value``, or any), with their tags."""
        ...

    def images_named(self, pattern: str) -> dict[str, str]:
        """This account's images whose name matches ``pattern`` (``*`` wildcards): id -> name."""
        ...

    def deregister_image(self, image: str) -> bool:
        """Deregister ``image``; False when it is already gone."""
        ...


@dataclass
class Providers:
    """How the cleanup reaches the clouds; tests hand in fakes."""

    compute: Callable[[str], RegionCompute]
    dns: Callable[[], Dns]
    stores: Callable[[], StoreFactory]
    azure_compute: Callable[[str, str], Compute] | None = None
    """``azure_compute(resource_group, location)``, for drill copies of Azure VMs."""
    azure_dns: Callable[[str], Dns] | None = None
    """``azure_dns(resource_group)``, for drill records in Azure DNS zones."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Providers:
        # The providers are chosen in one place; Azure's SDKs load only when a drill made something in Azure.
        return cls(
            compute=lambda region: ec2_service(env, region),
            dns=lambda: dns_service(env, "route53"),
            stores=lambda: StoreFactory(dict(env)),
            azure_compute=lambda group, location: compute_service(env, "azure", location, group),
            azure_dns=lambda group: dns_service(env, "azure_dns", group),
        )


class Cleaner:
    def __init__(
        self, journal: RunJournal, providers: Providers, *, log: Callable[[str], None] = lambda _: None
    ) -> None:
        self._journal = journal
        self._providers = providers
        self._log = log

    def sweep(self, run_id: str, regions: Iterable[str]) -> int:
        """Add to the ledger the run's tagged instances and images it does not hold yet; returns how many."""
        known = {(r.kind, r.location, r.resource_id) for r in self._journal.resources(run_id)}
        found: list[tuple[str, str, str]] = []
        for region in sorted(set(regions)):
            compute = self._providers.compute(region)
            found += [("instance", region, i) for i in compute.find({TAG_RUN: run_id})]
            images = {*compute.tagged_images(TAG_RUN, run_id), *compute.images_named(drill_image_name("*", run_id))}
            found += [("image", region, i) for i in sorted(images)]
        added = [f for f in found if f not in known]
        for kind, region, resource_id in added:
            self._journal.record_resource(run_id, kind, region, resource_id, {"found_by": "tag"})
        return len(added)

    def clean(self, run_id: str, regions: Iterable[str]) -> list[Removal]:
        """Undo every resource of ``run_id`` not yet removed; ``regions`` are swept for tagged instances too."""
        ledger = self._journal.resources(run_id)
        regions = {*regions, *(r.location for r in ledger if r.kind == "instance")}
        try:
            found = self.sweep(run_id, regions)
        except DrError as err:
            self._log(f"cleanup: the tag sweep failed ({err}); undoing what the ledger holds")
            found = 0
        if found:
            self._log(f"cleanup: {found} tagged resource(s) were not in the ledger (a crash?); adding them")
        todo = [r for r in reversed(self._journal.resources(run_id)) if r.outcome in (None, "failed")]
        removals: list[Removal] = []
        instances = [r for r in todo if r.kind == "instance"]
        for resource in todo:
            if resource.kind != "instance":
                removals.append(self._undo(resource))
        removals.extend(self._terminate(instances))
        return removals

    # -- one kind each ----------------------------------------------------------------------------------------

    def _undo(self, resource: DrillResource) -> Removal:
        try:
            if resource.kind == "dns-record":
                outcome = self._restore_record(resource)
            elif resource.kind == "objects":
                outcome = self._delete_objects(resource)
            elif resource.kind == "image":
                gone = self._providers.compute(resource.location).deregister_image(resource.resource_id)
                outcome = "removed" if gone else "already gone"
            else:
                return self._done(resource, "failed", f"no cleanup is known for a {resource.kind!r}; remove it by hand")
        except DrError as err:
            return self._done(resource, "failed", str(err))
        return self._done(resource, outcome)

    def _restore_record(self, resource: DrillResource) -> Outcome:
        detail = resource.detail
        zone, name = str(detail.get("zone", resource.location)), str(detail["name"])
        type_ = resource.resource_id.rsplit(" ", 1)[-1]
        dns = self._dns_of(detail)
        previous = detail.get("previous")
        if previous is None:
            result = dns.remove(zone, name, type_)
        else:
            ttl = detail.get("ttl")
            result = dns.point(zone, name, type_, tuple(str(v) for v in previous), int(ttl) if ttl else 60)
            return "restored" if result.changed else "already gone"
        return "removed" if result.changed else "already gone"

    def _dns_of(self, detail: Mapping[str, Any]) -> Dns:
        if detail.get("provider") not in ("azure_dns", "traffic_manager"):
            return self._providers.dns()
        group = str(detail.get("resource_group") or "")
        if self._providers.azure_dns is None or not group:
            raise Permanent("the drill record's Azure resource group is not in the ledger; restore it by hand")
        return self._providers.azure_dns(group)

    def _delete_objects(self, resource: DrillResource) -> Outcome:
        try:
            store = self._providers.stores().open(resource.resource_id)
            keys = [info.key for info in store.list("")]
        except NotFound:
            return "already gone"  # the restore failed before it created anything
        for key in keys:
            store.delete(key)
        return "removed" if keys else "already gone"

    def _compute_of(self, resource: DrillResource) -> Compute:
        group = str(resource.detail.get("resource_group") or "")
        if resource.detail.get("cloud") != "azure":
            return self._providers.compute(resource.location)
        if self._providers.azure_compute is None or not group:
            raise Permanent(f"Azure VM {resource.resource_id} has no resource group in the ledger; delete it by hand")
        return self._providers.azure_compute(group, resource.location)

    def _terminate(self, instances: list[DrillResource]) -> list[Removal]:
        by_place: dict[tuple[str, str, str], list[DrillResource]] = {}
        for resource in instances:
            cloud = str(resource.detail.get("cloud") or "aws")
            key = (cloud, str(resource.detail.get("resource_group") or ""), resource.location)
            by_place.setdefault(key, []).append(resource)
        removals: list[Removal] = []
        for _, resources in sorted(by_place.items()):
            ids = [r.resource_id for r in resources]
            try:
                compute = self._compute_of(resources[0])
                infos = _describe_known(compute, ids)
                live = [i for i, state in infos.items() if state not in ("terminated", "shutting-down")]
                if live:
                    compute.terminate(live)
                    compute.wait(live, "terminated", time.monotonic() + TERMINATE_WAIT_S)
            except DrError as err:
                removals += [self._done(r, "failed", str(err)) for r in resources]
                continue
            for r in resources:
                removals.append(self._done(r, "removed" if r.resource_id in live else "already gone"))
        return removals

    def _done(self, resource: DrillResource, outcome: Outcome, note: str = "") -> Removal:
        self._journal.resource_cleaned(
            resource.run_id, resource.kind, resource.location, resource.resource_id, outcome, note or None
        )
        where = f"{resource.kind} {resource.resource_id} in {resource.location}"
        self._log(f"cleanup: {where}: {outcome}" + (f" ({note})" if note else ""))
        return Removal(resource.kind, resource.location, resource.resource_id, outcome, note)


def _describe_known(compute: Compute, ids: list[str]) -> dict[str, str]:
    """Each instance's state; one EC2 no longer knows (terminated long ago) counts as terminated."""
    try:
        return {i: info.state for i, info in compute.describe(ids).items()}
    except NotFound:
        states: dict[str, str] = {}
        for i in ids:
            try:
                states.update({k: v.state for k, v in compute.describe([i]).items()})
            except NotFound:
                states[i] = "terminated"
        return states
