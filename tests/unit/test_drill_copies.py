"""Drill copies of standby instances (``orchestrator.drill.copies``) and the ``DrillScope`` they read, against
the in-memory compute: one copy per standby in the drill network, tagged, recorded, and never twice."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import pytest

from orchestrator.drill.copies import LAUNCH_THREADS, TIER_TAG, copy_spec, copy_tags, launch_copies, standby_sources
from orchestrator.drill.scope import TAG_RUN, TAG_SOURCE, TAG_STARTED, DrillScope
from orchestrator.errors import NotFound, Permanent, Transient
from orchestrator.providers.compute import Compute, InstanceInfo, LaunchSpec
from orchestrator.stack_outputs import StackOutputs
from tests.support.drill import Ledger
from tests.support.fake_compute import FakeCompute

RUN = "20261126T120000Z-abcdef12"
STARTED = "2026-11-26T12:00:00+00:00"
REGION = "eu-west-1"
DRILL_SUBNETS = ("subnet-drill-a", "subnet-drill-b")
DRILL_GROUPS = {"db": "sg-drill-db", "web": "sg-drill-web"}


def scope_of(ledger: Ledger, *, subnets: tuple[str, ...] = DRILL_SUBNETS, run_id: str = RUN) -> DrillScope:
    return DrillScope(run_id, STARTED, subnets=subnets, security_groups=DRILL_GROUPS, record=ledger)


def standby(compute: FakeCompute, name: str, tier: str = "db", **extra: str) -> str:
    tags = {TIER_TAG: tier, "Name": name, "aws:cloudformation:stack-name": "dr-lab", "env": "recovery", **extra}
    return compute.add(image=f"ami-{tier}", instance_type="r6g.large", tags=tags)


@pytest.fixture
def compute() -> FakeCompute:
    return FakeCompute(REGION)


def test_the_fake_satisfies_the_protocol(compute: FakeCompute) -> None:
    assert isinstance(compute, Compute)


# -- launch_copies ----------------------------------------------------------------------------------------------


def test_one_copy_per_standby_in_the_drill_network(compute: FakeCompute) -> None:
    standbys = sorted(standby(compute, f"db-{n}") for n in range(3))
    ledger = Ledger()
    logs: list[str] = []
    sources = standby_sources(compute, (), {TIER_TAG: "db"})
    assert list(sources) == standbys

    copies, launched = launch_copies(compute, sources, scope_of(ledger), logs.append)

    assert launched == 3
    assert len(copies) == len(set(copies)) == 3
    assert not set(copies) & set(standbys)
    assert len(compute.launches) == 3
    for index, (source_id, copy_id) in enumerate(zip(standbys, copies, strict=True)):
        copy = compute.instance(copy_id)
        source = compute.instance(source_id)
        assert copy.state == "running"
        assert copy.image == "ami-db"
        assert copy.instance_type == "r6g.large"
        assert copy.subnet == DRILL_SUBNETS[index % 2], "copies go into the drill subnets in turn"
        assert copy.security_groups == ("sg-drill-db",)
        assert dict(copy.tags) == {
            TIER_TAG: "db",
            "Name": f"{source.tags['Name']} (drill {RUN})",
            "env": "recovery",
            TAG_RUN: RUN,
            TAG_STARTED: STARTED,
            TAG_SOURCE: source_id,
        }
    assert all(compute.state(s) == "stopped" for s in standbys), "the standbys are never started"
    assert compute.called("start") == []
    assert logs == [f"launched 3 drill copies in {REGION}"]


def test_every_launch_is_recorded_with_its_timing(compute: FakeCompute) -> None:
    standbys = sorted(standby(compute, f"db-{n}") for n in range(2))
    ledger = Ledger()
    copies, _ = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope_of(ledger), print)

    assert sorted((kind, where, iid) for kind, where, iid, _ in ledger.entries) == sorted(
        ("instance", REGION, c) for c in copies
    )
    by_copy = {iid: detail for _, _, iid, detail in ledger.entries}
    for source_id, copy_id in zip(standbys, copies, strict=True):
        detail = by_copy[copy_id]
        assert set(detail) == {"source", "launch_asked", "launch_returned"}
        assert detail["source"] == source_id
        asked = datetime.fromisoformat(detail["launch_asked"])
        returned = datetime.fromisoformat(detail["launch_returned"])
        assert asked.tzinfo is not None
        assert asked <= returned


def test_where_goes_into_every_ledger_entry(compute: FakeCompute) -> None:
    standby(compute, "db-0")
    ledger = Ledger()
    where = {"cloud": "azure", "resource_group": "rg-dr"}
    launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope_of(ledger), print, where)
    ((_, _, _, detail),) = ledger.entries
    assert (detail["cloud"], detail["resource_group"]) == ("azure", "rg-dr")


def test_a_single_copy_is_logged_in_the_singular(compute: FakeCompute) -> None:
    standby(compute, "db-0")
    logs: list[str] = []
    launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope_of(Ledger()), logs.append)
    assert logs == [f"launched 1 drill copy in {REGION}"]


def test_a_repeat_launches_nothing_and_returns_the_same_copies(compute: FakeCompute) -> None:
    for n in range(3):
        standby(compute, f"db-{n}")
    ledger = Ledger()
    scope = scope_of(ledger)
    first, launched = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)
    logs: list[str] = []
    again, relaunched = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, logs.append)

    assert (launched, relaunched) == (3, 0)
    assert again == first
    assert len(compute.launches) == 3
    assert len(ledger.entries) == 3, "nothing new to record"
    assert logs == []


def test_a_repeat_replaces_only_a_missing_copy(compute: FakeCompute) -> None:
    for n in range(3):
        standby(compute, f"db-{n}")
    scope = scope_of(Ledger())
    first, _ = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)
    compute.terminate([first[1]])

    again, launched = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)

    assert launched == 1
    assert (again[0], again[2]) == (first[0], first[2])
    assert again[1] not in first
    assert compute.instance(again[1]).tags[TAG_SOURCE] == compute.instance(first[1]).tags[TAG_SOURCE]


def test_a_failed_launch_leaves_a_repeat_to_finish_without_duplicates(compute: FakeCompute) -> None:
    standbys = [standby(compute, f"db-{n}") for n in range(4)]
    ledger = Ledger()
    scope = scope_of(ledger)
    compute.fail("launch", Transient("RunInstances throttled"), times=1)
    with pytest.raises(Transient, match="throttled"):
        launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)
    recorded = {iid for _, _, iid, _ in ledger.entries}
    assert recorded == set(compute.find({TAG_RUN: RUN})), "every copy that was launched is recorded"
    assert len(recorded) < len(standbys)

    copies, launched = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)

    assert launched == len(standbys) - len(recorded)
    for source in standbys:
        assert len(compute.find({TAG_RUN: RUN, TAG_SOURCE: source})) == 1
    assert {iid for _, _, iid, _ in ledger.entries} == set(copies)


def test_launches_overlap(compute: FakeCompute) -> None:
    """All of a pool's launches are in flight at once: each waits at a barrier only they can pass together.
    Launched one after another, the first would wait there alone and the barrier would break."""
    for n in range(LAUNCH_THREADS):
        standby(compute, f"db-{n}")
    barrier = threading.Barrier(LAUNCH_THREADS, timeout=10)

    def meet(spec: LaunchSpec) -> None:
        del spec
        barrier.wait()

    compute.on_launch = meet
    copies, launched = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope_of(Ledger()), print)
    assert launched == LAUNCH_THREADS
    assert len(set(copies)) == LAUNCH_THREADS


def test_many_standbys_get_one_distinct_copy_each(compute: FakeCompute) -> None:
    standbys = sorted(standby(compute, f"db-{n}") for n in range(3 * LAUNCH_THREADS + 1))
    copies, launched = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope_of(Ledger()), print)
    assert launched == len(standbys) == len(set(copies))
    assert [compute.instance(c).tags[TAG_SOURCE] for c in copies] == standbys


def test_without_drill_subnets_nothing_is_launched(compute: FakeCompute) -> None:
    standby(compute, "db-0")
    sources = standby_sources(compute, (), {TIER_TAG: "db"})
    with pytest.raises(Permanent, match="drill_subnet_ids") as caught:
        launch_copies(compute, sources, scope_of(Ledger(), subnets=()), print)
    assert "drill network" in str(caught.value)
    assert compute.launches == []


# -- standby_sources --------------------------------------------------------------------------------------------


def test_drill_copies_are_never_sources(compute: FakeCompute) -> None:
    real = standby(compute, "db-0")
    old = compute.add(state="running", tags={TIER_TAG: "db", TAG_RUN: "older-run", TAG_SOURCE: real})
    scope = scope_of(Ledger())
    (mine,), _ = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)
    assert compute.find({TIER_TAG: "db"}) == tuple(sorted((real, old, mine)))

    assert list(standby_sources(compute, (), {TIER_TAG: "db"})) == [real]
    assert list(standby_sources(compute, (real, old, mine), {})) == [real]
    again, launched = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)
    assert (again, launched) == ((mine,), 0)


def test_sources_by_ids_are_described(compute: FakeCompute) -> None:
    a, b = standby(compute, "db-0"), standby(compute, "web-0", tier="web")
    sources = standby_sources(compute, (b, a), {})
    assert list(sources) == sorted((a, b))
    assert sources[b].tags[TIER_TAG] == "web"
    assert sources[a].image == "ami-db"


def test_no_matching_standby_is_not_found(compute: FakeCompute) -> None:
    standby(compute, "db-0")
    with pytest.raises(NotFound, match="drctl:tier=none"):
        standby_sources(compute, (), {TIER_TAG: "none"})


def test_an_unknown_standby_id_is_not_found(compute: FakeCompute) -> None:
    with pytest.raises(NotFound, match="i-missing"):
        standby_sources(compute, ("i-missing",), {})


# -- copy_tags and copy_spec ----------------------------------------------------------------------------------


def info(**overrides: Any) -> InstanceInfo:
    base: dict[str, Any] = {
        "id": "i-src",
        "state": "stopped",
        "image": "ami-web",
        "instance_type": "c7g.xlarge",
        "subnet": "subnet-recovery-a",
        "tags": {"Name": "web-1", TIER_TAG: "web", "aws:autoscaling:groupName": "asg", "team": "sre"},
    }
    return InstanceInfo(**{**base, **overrides})


def test_copy_tags_keep_the_source_tags_but_aws_ones_and_add_the_drill_tags() -> None:
    assert copy_tags(info(), scope_of(Ledger())) == {
        "Name": f"web-1 (drill {RUN})",
        TIER_TAG: "web",
        "team": "sre",
        TAG_RUN: RUN,
        TAG_STARTED: STARTED,
        TAG_SOURCE: "i-src",
    }


def test_copy_tags_without_a_name_add_none() -> None:
    tags = copy_tags(info(tags={"team": "sre"}), scope_of(Ledger()))
    assert tags == {"team": "sre", TAG_RUN: RUN, TAG_STARTED: STARTED, TAG_SOURCE: "i-src"}


def test_a_source_cannot_override_the_drill_tags() -> None:
    """A source that is tagged like a drill (by hand, or an old copy passed by id) still gets this drill's tags."""
    tags = copy_tags(info(tags={TAG_RUN: "other", TAG_SOURCE: "i-other"}), scope_of(Ledger()))
    assert (tags[TAG_RUN], tags[TAG_SOURCE]) == (RUN, "i-src")


def test_copy_spec() -> None:
    spec = copy_spec(info(), 3, scope_of(Ledger()))
    assert spec.image == "ami-web"
    assert spec.template is None
    assert spec.instance_type == "c7g.xlarge"
    assert spec.subnet == "subnet-drill-b"
    assert spec.security_groups == ("sg-drill-web",)
    assert spec.count == 1
    assert spec.tags == copy_tags(info(), scope_of(Ledger()))


def test_copy_spec_of_a_tier_without_a_drill_group_uses_none() -> None:
    assert copy_spec(info(tags={TIER_TAG: "cache"}), 0, scope_of(Ledger())).security_groups == ()
    assert copy_spec(info(tags={}), 0, scope_of(Ledger())).security_groups == ()


def test_copy_spec_of_an_instance_without_an_image_is_permanent() -> None:
    with pytest.raises(Permanent, match="i-src reports no image"):
        copy_spec(info(image=None), 0, scope_of(Ledger()))


# -- DrillScope -------------------------------------------------------------------------------------------------


def test_scope_subnets_in_turn() -> None:
    scope = scope_of(Ledger(), subnets=("s-1", "s-2", "s-3"))
    assert [scope.subnet(i) for i in range(7)] == ["s-1", "s-2", "s-3", "s-1", "s-2", "s-3", "s-1"]
    assert scope_of(Ledger(), subnets=()).subnet(0) is None


def test_scope_security_group_by_tier() -> None:
    scope = scope_of(Ledger())
    assert scope.security_group("db") == ("sg-drill-db",)
    assert scope.security_group("cache") == ()
    assert scope.security_group(None) == ()
    assert scope.security_group("") == ()


def test_scope_owns_only_its_run() -> None:
    scope = scope_of(Ledger())
    assert scope.owns({TAG_RUN: RUN, "x": "y"})
    assert not scope.owns({TAG_RUN: "20261126T110000Z-00000000"})
    assert not scope.owns({})
    assert not scope.owns({"drctl:drill-run ": RUN})


def test_scope_tags() -> None:
    scope = scope_of(Ledger())
    assert scope.tags() == {TAG_RUN: RUN, TAG_STARTED: STARTED}
    assert scope.owner_tag() == {TAG_RUN: RUN}
    assert TAG_RUN == "drctl:drill-run"
    assert TAG_STARTED == "drctl:drill-started"
    assert TAG_SOURCE == "drctl:drill-source"


def test_scope_of_stack_outputs() -> None:
    stack = StackOutputs.model_validate(
        {
            "schema_version": 1,
            "stack": "lab",
            "primary_cloud": "aws",
            "recovery_cloud": "aws",
            "primary_region": "us-east-1",
            "recovery_region": "us-west-2",
            "recovery_network_id": "vpc-1",
            "recovery_subnet_ids": ["subnet-1"],
            "recovery_public_subnet_ids": [],
            "security_group_ids": {"db": "sg-1"},
            "drill_network_id": "vpc-2",
            "drill_subnet_ids": ["subnet-8", "subnet-9"],
            "drill_security_group_ids": {"db": "sg-8"},
            "image_ids": {},
            "standby_mode": "stopped_instances",
            "standby_tier_order": ["db"],
            "standby_instance_ids": {"db": ["i-1"]},
            "standby_template_ids": {},
            "dns_provider": "route53",
            "dns_zone_id": "Z1",
            "production_record_name": "app.example.com",
            "drill_dns_zone_id": "Z2",
            "drill_record_name": "app.drill.internal",
        }
    )
    ledger = Ledger()
    scope = DrillScope.of(RUN, STARTED, stack, ledger)
    assert scope.subnets == ("subnet-8", "subnet-9")
    assert dict(scope.security_groups) == {"db": "sg-8"}
    assert (scope.dns_zone, scope.dns_record) == ("Z2", "app.drill.internal")
    assert (scope.production_zone, scope.production_record) == ("Z1", "app.example.com")
    scope.record("instance", REGION, "i-1", {})
    assert ledger.entries == [("instance", REGION, "i-1", {})]

    bare = DrillScope.of(RUN, STARTED, None)
    assert (bare.subnets, dict(bare.security_groups), bare.dns_zone, bare.production_zone) == ((), {}, None, None)
    bare.record("instance", REGION, "i-1", {})  # the default recorder ignores it
