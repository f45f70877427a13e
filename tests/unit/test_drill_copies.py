"""Drill copies of standby instances (``orchestrator.drill.copies``) and the ``DrillScope`` they read, against
the in-memory compute: one copy per standby in the drill network, tagged, recorded, and never twice."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import pytest

from orchestrator.drill.copies import (
    LAUNCH_THREADS,
    MAX_TAG_VALUE,
    TIER_TAG,
    client_token,
    copy_spec,
    copy_tags,
    finds_copies,
    launch_copies,
    plan_batches,
    select_standbys,
)
from orchestrator.drill.scope import TAG_BATCH, TAG_RUN, TAG_STARTED, DrillScope
from orchestrator.errors import NotFound, Permanent, ShortOfCapacity, Transient
from orchestrator.providers.compute import MAX_CLIENT_TOKEN, Compute, InstanceInfo, LaunchSpec
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


def standby_sources(compute: FakeCompute, ids: tuple[str, ...], tags: dict[str, str]) -> dict[str, InstanceInfo]:
    return select_standbys(compute, ids, tags, scope_of(Ledger())).sources


@pytest.fixture
def compute() -> FakeCompute:
    return FakeCompute(REGION)


def test_the_fake_satisfies_the_protocol(compute: FakeCompute) -> None:
    assert isinstance(compute, Compute)


# -- launch_copies ----------------------------------------------------------------------------------------------


def copy_of(compute: FakeCompute, tier: str = "db") -> tuple[tuple[str, ...], int]:
    return launch_copies(compute, standby_sources(compute, (), {TIER_TAG: tier}), scope_of(Ledger()), print)


def sources_in(ledger: Ledger) -> dict[str, str]:
    """Copy id -> the standby it stands for, as the ledger notes it."""
    return {iid: detail["source"] for _, _, iid, detail in ledger.entries}


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
    assert sorted(sources_in(ledger).values()) == standbys, "each standby has its copy in the ledger"
    # Copies go into the drill subnets in turn: standbys 0 and 2 in the first, 1 in the second, one request each.
    asked = sorted((spec.subnet, spec.count) for spec in compute.launches)
    assert asked == [(DRILL_SUBNETS[0], 2), (DRILL_SUBNETS[1], 1)]
    by_source = {source: compute.instance(copy) for copy, source in sources_in(ledger).items()}
    for index, source_id in enumerate(standbys):
        copy = by_source[source_id]
        assert copy.state == "running"
        assert copy.image == "ami-db"
        assert copy.instance_type == "r6g.large"
        assert copy.subnet == DRILL_SUBNETS[index % 2]
        assert copy.security_groups == ("sg-drill-db",)
        batch = copy.tags[TAG_BATCH]
        name = f"db-0 .. db-2 (2 standbys) (drill {RUN})" if index % 2 == 0 else f"db-1 (drill {RUN})"
        assert dict(copy.tags) == {
            TIER_TAG: "db",
            "Name": name,
            "env": "recovery",
            TAG_RUN: RUN,
            TAG_STARTED: STARTED,
            TAG_BATCH: batch,
        }
    assert len({c.tags[TAG_BATCH] for c in by_source.values()}) == 2
    assert all(compute.state(s) == "stopped" for s in standbys), "the standbys are never started"
    assert compute.called("start") == []
    assert logs == [f"launched 3 drill copies in {REGION} (2 batches)"]


@pytest.mark.parametrize("size", [5, 50])
def test_a_tier_takes_the_same_few_calls_whatever_its_size(compute: FakeCompute, size: int) -> None:
    """The selection, one lookup of earlier copies and one request per drill subnet, at 5 standbys as at 50."""
    for n in range(size):
        standby(compute, f"db-{n:02d}")
    compute.calls.clear()
    copies, launched = copy_of(compute)
    assert launched == len(copies) == size
    assert [name for name, _ in compute.calls] == ["find_described", "find_described", "launch", "launch"]


def test_a_selection_by_tags_finds_the_earlier_copies_too_so_a_tier_is_one_lookup(compute: FakeCompute) -> None:
    for n in range(10):
        standby(compute, f"db-{n}")
    scope = scope_of(Ledger())
    chosen = select_standbys(compute, (), {TIER_TAG: "db"}, scope)
    assert chosen.earlier == {}
    compute.calls.clear()
    first, _ = launch_copies(compute, chosen.sources, scope, print, earlier_copies=chosen.earlier)
    assert [name for name, _ in compute.calls] == ["launch", "launch"]

    again = select_standbys(compute, (), {TIER_TAG: "db"}, scope)
    assert again.earlier is not None
    assert sorted(again.earlier) == sorted(first), "the copies keep the tier tag, so the selection sees them"
    assert sorted(again.sources) == sorted(chosen.sources), "and never takes them for standbys"
    compute.calls.clear()
    repeat, launched = launch_copies(compute, again.sources, scope, print, earlier_copies=again.earlier)
    assert (repeat, launched) == (first, 0)
    assert compute.calls == []


@pytest.mark.parametrize(
    ("ids", "tags"),
    [
        (("i-given",), {}),
        ((), {"Name": "db-0"}),
        ((), {TIER_TAG: "db", "aws:autoscaling:groupName": "asg"}),
        ((), {TAG_RUN: RUN}),
    ],
)
def test_a_selection_that_cannot_see_the_copies_leaves_the_lookup_to_launch_copies(
    ids: tuple[str, ...], tags: dict[str, str]
) -> None:
    """By ids, or by a tag a copy does not keep as it was, a selection misses the copies: finds_copies says so."""
    assert not finds_copies(ids, tags)
    assert finds_copies((), {TIER_TAG: "db", "env": "recovery"})


def test_standbys_that_differ_beyond_their_name_are_separate_batches(compute: FakeCompute) -> None:
    standby(compute, "db-0")
    standby(compute, "db-1", role="primary")
    standby(compute, "db-2")
    scope = scope_of(Ledger(), subnets=(DRILL_SUBNETS[0],))
    batches = plan_batches(standby_sources(compute, (), {TIER_TAG: "db"}), scope)
    assert sorted(b.spec.count for b in batches) == [1, 2]
    assert len({b.key for b in batches}) == 2
    primary = next(b for b in batches if b.spec.count == 1)
    assert primary.spec.tags["role"] == "primary"
    assert primary.spec.tags["Name"] == f"db-1 (drill {RUN})"


def test_a_batch_key_is_stable_and_names_are_clipped_to_ec2s_limit(compute: FakeCompute) -> None:
    for n in range(3):
        standby(compute, f"{'x' * 300}-{n}")
    scope = scope_of(Ledger(), subnets=(DRILL_SUBNETS[0],))
    sources = standby_sources(compute, (), {TIER_TAG: "db"})
    (batch,) = plan_batches(sources, scope)
    assert plan_batches(sources, scope)[0].key == batch.key, "a repeat finds the batch again"
    name = batch.spec.tags["Name"]
    assert len(name) == MAX_TAG_VALUE
    assert name.endswith(f" (drill {RUN})")


def test_every_launch_is_recorded_with_its_timing(compute: FakeCompute) -> None:
    standbys = sorted(standby(compute, f"db-{n}") for n in range(2))
    ledger = Ledger()
    copies, _ = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope_of(ledger), print)

    assert sorted((kind, where, iid) for kind, where, iid, _ in ledger.entries) == sorted(
        ("instance", REGION, c) for c in copies
    )
    assert sorted(sources_in(ledger).values()) == standbys
    for _, _, iid, detail in ledger.entries:
        assert set(detail) == {"source", "batch", "launch_asked", "launch_returned"}
        assert detail["batch"] == compute.instance(iid).tags[TAG_BATCH]
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
    assert logs == [f"launched 1 drill copy in {REGION} (one request)"]


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
    assert len(compute.launches) == 2
    assert len(ledger.entries) == 3, "nothing new to record"
    assert logs == []


def test_a_repeat_replaces_only_a_missing_copy(compute: FakeCompute) -> None:
    for n in range(3):
        standby(compute, f"db-{n}")
    scope = scope_of(Ledger())
    first, _ = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)
    lost = first[1]
    compute.terminate([lost])

    again, launched = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)

    assert launched == 1
    (new,) = set(again) - set(first)
    assert set(again) == set(first) - {lost} | {new}
    assert compute.instance(new).tags[TAG_BATCH] == compute.instance(lost).tags[TAG_BATCH]
    assert compute.launches[-1].count == 1


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
    assert len(compute.find({TAG_RUN: RUN})) == len(standbys) == len(copies)
    assert {iid for _, _, iid, _ in ledger.entries} == set(copies)
    assert sorted(sources_in(ledger).values()) == sorted(standbys)


def test_short_capacity_launches_the_rest_in_further_requests(compute: FakeCompute) -> None:
    standbys = [standby(compute, f"db-{n}") for n in range(10)]
    compute.capacity = 4
    ledger = Ledger()
    logs: list[str] = []
    scope = scope_of(ledger, subnets=(DRILL_SUBNETS[0],))
    copies, launched = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, logs.append)

    assert launched == len(copies) == 10
    # All at once first (refused: EC2 launches nothing then), then what there is, request by request.
    assert [(spec.count, spec.at_least) for spec in compute.launches] == [(10, None), (10, 1), (6, 1), (2, 1)]
    assert len({spec.client_token for spec in compute.launches}) == 4, "each request is a new one"
    assert sorted(sources_in(ledger).values()) == sorted(standbys)
    assert logs[:3] == [
        f"{REGION} cannot launch 10 drill copies at once (short of capacity); launching what there is",
        f"{REGION} launched 4 of 10 drill copies in one request (short of capacity); asking for the rest",
        f"{REGION} launched 4 of 6 drill copies in one request (short of capacity); asking for the rest",
    ]


def test_capacity_that_stays_short_is_transient_and_a_repeat_launches_the_rest(compute: FakeCompute) -> None:
    standbys = [standby(compute, f"db-{n}") for n in range(8)]
    compute.capacity = 1
    ledger = Ledger()
    scope = scope_of(ledger, subnets=(DRILL_SUBNETS[0],))
    with pytest.raises(Transient, match=r"launched 4 of 8 drill copies .* retry the step"):
        launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)
    assert len(ledger.entries) == 4, "what was launched is recorded for the cleanup"

    compute.capacity = None
    copies, launched = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)
    assert (launched, len(copies)) == (4, 8)
    assert sorted(sources_in(ledger).values()) == sorted(standbys)


def test_no_capacity_at_all_is_short_of_capacity(compute: FakeCompute) -> None:
    standby(compute, "db-0")
    compute.capacity = 0
    ledger = Ledger()
    with pytest.raises(ShortOfCapacity):
        launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope_of(ledger), print)
    assert ledger.entries == []


def test_a_repeated_request_gets_the_first_requests_copies_back(compute: FakeCompute) -> None:
    """A step repeated before EC2 lists the first attempt's copies sends the same client token, and EC2 answers
    it with those copies rather than launching a second set (the fake does as EC2 documents)."""
    for n in range(3):
        standby(compute, f"db-{n}")
    scope = scope_of(Ledger(), subnets=(DRILL_SUBNETS[0],))
    first, _ = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)
    for copy in first:  # as if the listing did not show them yet
        compute.set_state(copy, "terminated")
    again, _ = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)
    assert again == first
    assert compute.launches[0].client_token == compute.launches[1].client_token


def test_client_tokens_fit_ec2_and_differ_by_run_batch_and_progress() -> None:
    token = client_token(RUN, "0123456789abcdef", 0)
    assert token == client_token(RUN, "0123456789abcdef", 0)
    assert 0 < len(token) <= MAX_CLIENT_TOKEN
    assert token.isascii()
    batch = "0123456789abcdef"
    others = {
        client_token("other-run", batch, 0),
        client_token(RUN, "fedcba9876543210", 0),
        client_token(RUN, batch, 1),
        client_token(RUN, batch, 0, partial=True),
    }
    assert token not in others
    assert len(others) == 4


def test_batches_overlap(compute: FakeCompute) -> None:
    """The batches of a tier are in flight at once: each waits at a barrier only they can pass together.
    Launched one after another, the first would wait there alone and the barrier would break."""
    subnets = tuple(f"subnet-drill-{n}" for n in range(LAUNCH_THREADS))
    for n in range(LAUNCH_THREADS):
        standby(compute, f"db-{n}")
    barrier = threading.Barrier(LAUNCH_THREADS, timeout=10)

    def meet(spec: LaunchSpec) -> None:
        del spec
        barrier.wait()

    compute.on_launch = meet
    scope = scope_of(Ledger(), subnets=subnets)
    copies, launched = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope, print)
    assert launched == LAUNCH_THREADS == len(compute.launches)
    assert len(set(copies)) == LAUNCH_THREADS


def test_many_standbys_get_one_distinct_copy_each(compute: FakeCompute) -> None:
    standbys = sorted(standby(compute, f"db-{n}") for n in range(3 * LAUNCH_THREADS + 1))
    ledger = Ledger()
    copies, launched = launch_copies(compute, standby_sources(compute, (), {TIER_TAG: "db"}), scope_of(ledger), print)
    assert launched == len(standbys) == len(set(copies))
    assert sorted(sources_in(ledger).values()) == standbys


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
    old = compute.add(state="running", tags={TIER_TAG: "db", TAG_RUN: "older-run", TAG_BATCH: "0123456789abcdef"})
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
    }


def test_copy_tags_without_a_name_add_none() -> None:
    tags = copy_tags(info(tags={"team": "sre"}), scope_of(Ledger()))
    assert tags == {"team": "sre", TAG_RUN: RUN, TAG_STARTED: STARTED}


def test_a_source_cannot_override_the_drill_tags() -> None:
    """A source that is tagged like a drill (by hand, or an old copy passed by id) still gets this drill's tags,
    and none of an old batch: its copies are batched afresh."""
    tags = copy_tags(info(tags={TAG_RUN: "other", TAG_BATCH: "0123456789abcdef"}), scope_of(Ledger()))
    assert tags[TAG_RUN] == RUN
    assert TAG_BATCH not in tags


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
    assert TAG_BATCH == "drctl:drill-batch"


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
