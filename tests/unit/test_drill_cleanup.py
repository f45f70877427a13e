"""A drill's cleanup (``Cleaner``) with a real run journal and in-memory providers, and the orphan sweep
(``find_leftovers``) that decides whose leftovers may be removed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.drill.cleanup import Cleaner, Providers, Removal
from orchestrator.drill.orphans import DrillLeftovers, find_leftovers
from orchestrator.drill.scope import TAG_RUN, TAG_STARTED
from orchestrator.engine.journal import DrillResource, RunJournal, RunStatus
from orchestrator.errors import Transient
from orchestrator.providers.dns import ChangeResult, RecordSet, fqdn
from orchestrator.providers.factory import StoreFactory
from tests.support.fake_compute import FakeCompute
from tests.unit.test_dns_actions import ZONE, FakeDns

RUN = "20261126T120000Z-abcdef12"
OTHER_RUN = "20261126T110000Z-11111111"
STARTED = "2026-11-26T12:00:00+00:00"
REGION, OTHER_REGION = "eu-west-1", "us-west-2"
NAME = "app.drill.example"


@dataclass
class FlakyDns(FakeDns):
    """``FakeDns`` whose next changes raise the queued errors."""

    failures: list[Exception] = field(default_factory=list)

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    def point(self, zone: str, name: str, type: str, values: tuple[str, ...], ttl: int) -> ChangeResult:
        self._maybe_fail()
        return super().point(zone, name, type, values, ttl)

    def remove(self, zone: str, name: str, type: str) -> ChangeResult:
        self._maybe_fail()
        return super().remove(zone, name, type)


@dataclass
class World:
    journal: RunJournal
    computes: dict[str, FakeCompute]
    dns: FlakyDns
    root: Path
    logs: list[str] = field(default_factory=list)

    @property
    def compute(self) -> FakeCompute:
        return self.computes[REGION]

    def providers(self) -> Providers:
        return Providers(
            compute=lambda region: self.computes[region],
            dns=lambda: self.dns,
            stores=lambda: StoreFactory({}),
        )

    def cleaner(self) -> Cleaner:
        return Cleaner(self.journal, self.providers(), log=self.logs.append)

    def clean(self, regions: tuple[str, ...] = (REGION,)) -> list[Removal]:
        return self.cleaner().clean(RUN, regions)

    def copy(self, run_id: str = RUN, region: str = REGION, *, recorded: bool = True) -> str:
        """A running drill copy of ``run_id``, in the ledger unless ``recorded`` is false (a crash before it)."""
        tags = {TAG_RUN: run_id, TAG_STARTED: STARTED, "drctl:tier": "db"}
        iid = self.computes[region].add(state="running", subnet="subnet-drill-a", tags=tags)
        if recorded:
            self.journal.record_resource(run_id, "instance", region, iid, {"source": "i-standby"})
        return iid

    def ledger(self, run_id: str = RUN) -> dict[str, DrillResource]:
        return {r.resource_id: r for r in self.journal.resources(run_id)}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    journal = RunJournal(tmp_path / "state" / "runs.sqlite")
    try:
        yield World(
            journal, {REGION: FakeCompute(REGION), OTHER_REGION: FakeCompute(OTHER_REGION)}, FlakyDns(), tmp_path
        )
    finally:
        journal.close()


def outcomes(removals: list[Removal]) -> dict[str, str]:
    return {r.resource_id: r.outcome for r in removals}


def record_dns(world: World, previous: list[str] | None, ttl: int | None = 300) -> str:
    resource_id = f"{fqdn(NAME)} A"
    detail: dict[str, object] = {"previous": previous, "zone": ZONE, "name": NAME}
    if previous is not None:
        detail["ttl"] = ttl
    world.journal.record_resource(RUN, "dns-record", "ZFAKE", resource_id, detail)
    return resource_id


# -- instances ------------------------------------------------------------------------------------------------


def test_instances_in_the_ledger_are_terminated(world: World) -> None:
    a, b = world.copy(), world.copy()
    bystander = world.copy(OTHER_RUN)

    removals = world.clean()

    assert outcomes(removals) == {a: "removed", b: "removed"}
    assert {r.kind for r in removals} == {"instance"}
    assert (world.compute.state(a), world.compute.state(b)) == ("terminated", "terminated")
    assert world.compute.state(bystander) == "running"
    assert world.compute.called("terminate") == [(b, a)], "newest first"
    ledger = world.ledger()
    assert (ledger[a].outcome, ledger[b].outcome) == ("removed", "removed")
    assert ledger[a].cleaned is not None
    assert world.ledger(OTHER_RUN)[bystander].outcome is None


def test_a_tagged_instance_missing_from_the_ledger_is_swept_up(world: World) -> None:
    recorded = world.copy()
    lost = world.copy(recorded=False)
    far = world.copy(region=OTHER_REGION, recorded=False)

    removals = world.clean((REGION, OTHER_REGION))

    assert outcomes(removals) == {recorded: "removed", lost: "removed", far: "removed"}
    ledger = world.ledger()
    assert ledger[lost].detail == {"found_by": "tag"}
    assert (ledger[lost].location, ledger[far].location) == (REGION, OTHER_REGION)
    assert world.computes[OTHER_REGION].state(far) == "terminated"
    assert "cleanup: 2 tagged resource(s) were not in the ledger (a crash?); adding them" in world.logs


def test_the_sweep_alone_adds_what_it_finds(world: World) -> None:
    world.copy()
    lost = world.copy(recorded=False)
    assert world.cleaner().sweep(RUN, [REGION]) == 1
    assert world.cleaner().sweep(RUN, [REGION]) == 0
    assert world.ledger()[lost].outcome is None


def test_ledger_regions_are_swept_even_when_not_asked(world: World) -> None:
    world.copy(region=OTHER_REGION)
    lost = world.copy(region=OTHER_REGION, recorded=False)
    removals = world.clean((REGION,))
    assert outcomes(removals)[lost] == "removed"


def test_already_terminated_instances_are_already_gone(world: World) -> None:
    live, dead = world.copy(), world.copy()
    world.compute.set_state(dead, "terminated")
    removals = world.clean()
    assert outcomes(removals) == {live: "removed", dead: "already gone"}
    assert world.compute.called("terminate") == [(live,)]


def test_instances_the_provider_no_longer_knows_are_already_gone(world: World) -> None:
    live = world.copy()
    world.journal.record_resource(RUN, "instance", REGION, "i-long-gone", {})
    removals = world.clean()
    assert outcomes(removals) == {live: "removed", "i-long-gone": "already gone"}


def test_a_failed_terminate_fails_its_instances_and_a_second_clean_retries_them(world: World) -> None:
    a, b = world.copy(), world.copy()
    world.compute.fail("terminate", Transient("RequestLimitExceeded"))

    first = world.clean()

    assert outcomes(first) == {a: "failed", b: "failed"}
    assert all("RequestLimitExceeded" in r.note for r in first)
    assert world.ledger()[a].note == "RequestLimitExceeded"
    assert world.compute.state(a) == "running"

    second = world.clean()
    assert outcomes(second) == {a: "removed", b: "removed"}
    assert world.ledger()[a].note is None


def test_a_failing_sweep_still_undoes_the_ledger(world: World) -> None:
    a = world.copy()
    world.compute.fail("find", Transient("throttled"))
    removals = world.clean()
    assert outcomes(removals) == {a: "removed"}
    assert any("the tag sweep failed (throttled)" in line for line in world.logs)


# -- DNS and objects --------------------------------------------------------------------------------------------


def test_a_changed_record_is_restored(world: World) -> None:
    world.dns.records_by_key[(fqdn(NAME), "A")] = [RecordSet(fqdn(NAME), "A", 60, ("10.9.0.5",))]
    resource_id = record_dns(world, ["10.0.0.9", "10.0.0.10"], ttl=300)

    removals = world.clean()

    assert removals == [Removal("dns-record", "ZFAKE", resource_id, "restored")]
    assert world.dns.records_by_key[(fqdn(NAME), "A")] == [RecordSet(fqdn(NAME), "A", 300, ("10.0.0.9", "10.0.0.10"))]
    assert world.ledger()[resource_id].outcome == "restored"


def test_a_created_record_is_removed(world: World) -> None:
    world.dns.records_by_key[(fqdn(NAME), "A")] = [RecordSet(fqdn(NAME), "A", 60, ("10.9.0.5",))]
    resource_id = record_dns(world, None)
    removals = world.clean()
    assert removals == [Removal("dns-record", "ZFAKE", resource_id, "removed")]
    assert (fqdn(NAME), "A") not in world.dns.records_by_key


def test_a_record_removed_already_is_already_gone(world: World) -> None:
    resource_id = record_dns(world, None)
    assert world.clean() == [Removal("dns-record", "ZFAKE", resource_id, "already gone")]
    assert world.dns.submitted == []


def test_objects_under_the_restore_location_are_deleted(world: World) -> None:
    target = world.root / "drills" / RUN / "db"
    target.mkdir(parents=True)
    store = StoreFactory({}).open(str(target))
    store.write("dump/a.sql", io.BytesIO(b"alpha"))
    store.write("b.txt", io.BytesIO(b"bravo"))
    keep = world.root / "drills" / "keep.txt"
    keep.write_text("not the drill's")
    world.journal.record_resource(RUN, "objects", f"file://{target}", str(target), {})

    removals = world.clean()

    assert removals == [Removal("objects", f"file://{target}", str(target), "removed")]
    assert [info.key for info in store.list("")] == []
    assert not (target / "dump" / "a.sql").exists()
    assert keep.read_text() == "not the drill's"
    assert world.clean() == [], "removed resources are not undone again"


def test_an_emptied_restore_location_is_already_gone(world: World) -> None:
    target = world.root / "drills" / RUN / "db"
    target.mkdir(parents=True)
    world.journal.record_resource(RUN, "objects", f"file://{target}", str(target), {})
    assert outcomes(world.clean()) == {str(target): "already gone"}


def test_a_restore_location_never_created_is_already_gone(world: World) -> None:
    target = world.root / "drills" / RUN / "db"
    world.journal.record_resource(RUN, "objects", f"file://{target}", str(target), {})
    assert outcomes(world.clean()) == {str(target): "already gone"}


def test_an_unknown_kind_fails_with_a_note(world: World) -> None:
    world.journal.record_resource(RUN, "queue", REGION, "q-1", {})
    (removal,) = world.clean()
    assert (removal.outcome, removal.note) == ("failed", "no cleanup is known for a 'queue'; remove it by hand")


# -- order, failures, repeats ----------------------------------------------------------------------------------


def test_newest_first_dns_before_the_instances(world: World) -> None:
    copy = world.copy()
    target = world.root / "drills" / RUN
    target.mkdir(parents=True)
    (target / "x").write_text("x")
    world.journal.record_resource(RUN, "objects", f"file://{target}", str(target), {})
    record = record_dns(world, None)
    world.dns.records_by_key[(fqdn(NAME), "A")] = [RecordSet(fqdn(NAME), "A", 60, ("10.9.0.5",))]

    removals = world.clean()

    assert [(r.kind, r.resource_id) for r in removals] == [
        ("dns-record", record),
        ("objects", str(target)),
        ("instance", copy),
    ]


def test_one_failure_does_not_stop_the_others_and_a_second_clean_retries_only_it(world: World) -> None:
    a, b = world.copy(), world.copy()
    world.dns.records_by_key[(fqdn(NAME), "A")] = [RecordSet(fqdn(NAME), "A", 60, ("10.9.0.5",))]
    record = record_dns(world, ["10.0.0.9"])
    world.dns.failures.append(Transient("Route53 throttled the change"))

    first = world.clean()

    assert outcomes(first) == {record: "failed", a: "removed", b: "removed"}
    (failed,) = [r for r in first if r.outcome == "failed"]
    assert failed.note == "Route53 throttled the change"
    assert world.ledger()[record].outcome == "failed"
    assert world.dns.records_by_key[(fqdn(NAME), "A")][0].values == ("10.9.0.5",)

    second = world.clean()

    assert second == [Removal("dns-record", "ZFAKE", record, "restored")]
    assert world.dns.records_by_key[(fqdn(NAME), "A")][0].values == ("10.0.0.9",)
    assert len(world.compute.called("terminate")) == 1, "the removed instances are not touched again"
    assert {r.outcome for r in world.journal.resources(RUN)} == {"removed", "restored"}


def test_a_second_clean_after_success_does_nothing(world: World) -> None:
    world.copy()
    world.dns.records_by_key[(fqdn(NAME), "A")] = [RecordSet(fqdn(NAME), "A", 60, ("10.9.0.5",))]
    record_dns(world, ["10.0.0.9"])
    assert len(world.clean()) == 2
    submitted = list(world.dns.submitted)
    calls = len(world.compute.calls)

    assert world.clean() == []
    assert world.dns.submitted == submitted
    assert len(world.compute.called("terminate")) == 1
    assert [name for name, _ in world.compute.calls[calls:]] == ["find"], "only the sweep looks again"


def test_a_run_without_resources_cleans_nothing(world: World) -> None:
    assert world.clean() == []
    assert world.journal.resources(RUN) == []


# -- find_leftovers ---------------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
MIN_AGE = timedelta(hours=1)


def start_run(journal: RunJournal, run_id: str, status: RunStatus | None = None) -> None:
    journal.start_run(run_id, "/rb.yaml", "0" * 64, "drill", {}, "drill")
    if status is not None:
        journal.finish_run(run_id, status)


def leftover_copy(world: World, run_id: str, started: str | None, region: str = REGION) -> str:
    tags = {TAG_RUN: run_id} | ({TAG_STARTED: started} if started is not None else {})
    return world.computes[region].add(state="running", tags=tags)


def judge(world: World, live: set[str] | None = None) -> dict[str, DrillLeftovers]:
    # The region is given twice, as a stack's and a --region flag may both name it: it is searched once.
    found = find_leftovers(world.journal, world.providers(), [REGION, REGION], live or set(), MIN_AGE, NOW)
    assert len(found) == len({(item.run_id, item.region) for item in found}), "a region searched twice"
    return {item.run_id: item for item in found}


def test_a_live_run_is_left_alone(world: World) -> None:
    start_run(world.journal, "live")
    iid = leftover_copy(world, "live", (NOW - timedelta(hours=5)).isoformat())
    (item,) = judge(world, live={"live"}).values()
    assert item == DrillLeftovers("live", REGION, (iid,), (NOW - timedelta(hours=5)).isoformat(), item.verdict, False)
    assert item.verdict == "its drill is running on this host"


def test_a_running_run_that_is_not_live_crashed(world: World) -> None:
    start_run(world.journal, "crashed")
    ids = sorted(leftover_copy(world, "crashed", (NOW - timedelta(minutes=5)).isoformat()) for _ in range(2))
    item = judge(world)["crashed"]
    assert (item.orphan, item.resource_ids) == (True, tuple(ids))
    assert item.verdict == "its drill stopped without finishing (crashed or killed)"


def test_a_finished_run_leaves_orphans(world: World) -> None:
    start_run(world.journal, "done", RunStatus.SUCCEEDED)
    start_run(world.journal, "failed", RunStatus.FAILED)
    leftover_copy(world, "done", (NOW - timedelta(minutes=1)).isoformat())
    leftover_copy(world, "failed", (NOW - timedelta(minutes=1)).isoformat())
    found = judge(world)
    assert (found["done"].orphan, found["done"].verdict) == (True, "its drill ended (succeeded) without removing it")
    assert (found["failed"].orphan, found["failed"].verdict) == (True, "its drill ended (failed) without removing it")


def test_an_unknown_young_run_is_left_alone(world: World) -> None:
    leftover_copy(world, "young", (NOW - timedelta(minutes=59)).isoformat())
    item = judge(world)["young"]
    assert not item.orphan
    assert item.verdict.startswith("unknown drill younger than 1:00:00")


def test_an_unknown_old_run_is_an_orphan(world: World) -> None:
    leftover_copy(world, "old", (NOW - timedelta(hours=3)).isoformat())
    item = judge(world)["old"]
    assert item.orphan
    assert item.verdict == "unknown drill started 3:00:00 ago"


@pytest.mark.parametrize("started", [None, "not a time", "2026-11-26T10:00:00"])
def test_an_unknown_run_of_unknown_age_is_left_alone(world: World, started: str | None) -> None:
    leftover_copy(world, "ageless", started)
    item = judge(world)["ageless"]
    assert (item.orphan, item.started) == (False, started)
    assert "(or of unknown age)" in item.verdict


def test_leftovers_are_grouped_by_run_and_region(world: World) -> None:
    old = (NOW - timedelta(hours=2)).isoformat()
    here = leftover_copy(world, "old", old)
    there = leftover_copy(world, "old", old, OTHER_REGION)
    gone = leftover_copy(world, "gone", old)
    world.compute.set_state(gone, "terminated")
    untagged = world.compute.add(state="running", tags={"drctl:tier": "db"})
    found = find_leftovers(world.journal, world.providers(), [OTHER_REGION, REGION], set(), MIN_AGE, NOW)
    assert [(f.run_id, f.region, f.resource_ids) for f in found] == [
        ("old", REGION, (here,)),
        ("old", OTHER_REGION, (there,)),
    ]
    assert untagged not in {i for f in found for i in f.resource_ids}
