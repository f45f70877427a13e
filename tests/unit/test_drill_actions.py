"""The actions' drill behaviour, through their ``run`` functions with in-memory providers: compute steps act only
on this drill's instances (and a failover never adopts a drill's), DNS changes go to the drill record after the
ledger notes what it held, and a drill restores only into a place of its own."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.actions import (
    backup_restore,
    compute_launch,
    compute_start,
    compute_stop,
    compute_terminate,
    compute_wait_healthy,
    dns_failover,
)
from orchestrator.actions.base import StepStatus
from orchestrator.drill.copies import TIER_TAG, client_token
from orchestrator.drill.scope import TAG_BATCH, TAG_RUN, TAG_STARTED, DrillScope
from orchestrator.engine.context import StepContext
from orchestrator.engine.executor import Executor, RunOptions
from orchestrator.engine.journal import RunJournal, RunStatus
from orchestrator.errors import NotFound, Permanent, Transient
from orchestrator.providers import aws_ec2, choice
from orchestrator.providers.compute import LaunchSpec
from orchestrator.providers.dns import ChangeResult, RecordSet, fqdn
from orchestrator.providers.factory import StoreFactory
from orchestrator.runbook.loader import load_runbook
from tests.support.drill import Ledger
from tests.support.fake_compute import FakeCompute
from tests.unit.test_dns_actions import FakeDns

RUN = "20261126T120000Z-abcdef12"
OTHER_RUN = "20261125T080000Z-99999999"
STARTED = "2026-11-26T12:00:00+00:00"
REGION = "eu-west-1"

PROD_ZONE, PROD_ZONE_ID = "example.com.", "ZPROD"
PROD_NAME = "app.example.com"
DRILL_ZONE, DRILL_ZONE_ID = "drill.example.", "ZDRILL"
DRILL_NAME = "app.drill.example"


def drill_scope(ledger: Ledger, **overrides: Any) -> DrillScope:
    fields: dict[str, Any] = {
        "subnets": ("subnet-drill-a", "subnet-drill-b"),
        "security_groups": {"db": "sg-drill-db", "web": "sg-drill-web"},
        "dns_zone": DRILL_ZONE_ID,
        "dns_record": DRILL_NAME,
        "production_zone": PROD_ZONE_ID,
        "production_record": PROD_NAME,
        "record": ledger,
        **overrides,
    }
    return DrillScope(RUN, STARTED, **fields)


def no_sleep(seconds: float) -> None:
    raise AssertionError(f"nothing here should wait, yet {seconds}s were asked for")


def context(
    scope: DrillScope | None, *, logs: list[str] | None = None, store_factory: Any = None, step_id: str = "s"
) -> StepContext:
    extra: dict[str, Any] = {"store_factory": store_factory} if store_factory is not None else {}
    return StepContext(
        step_id=step_id,
        mode="drill" if scope is not None else "failover",
        env={},
        stack=None,
        deadline=None,
        stop=threading.Event(),
        clock=time.monotonic,
        sink=(logs if logs is not None else []).append,
        sleep=no_sleep,
        run_id=RUN,
        drill=scope,
        **extra,
    )


@pytest.fixture
def compute(monkeypatch: pytest.MonkeyPatch) -> FakeCompute:
    fake = FakeCompute(REGION)
    monkeypatch.setattr(aws_ec2, "compute_for", lambda env, region=None: fake)
    return fake


def standby(compute: FakeCompute, tier: str = "db", state: str = "stopped") -> str:
    return compute.add(state=state, image=f"ami-{tier}", tags={TIER_TAG: tier, "Name": f"{tier}-standby"})


def drill_copy(compute: FakeCompute, run_id: str, tier: str = "db", state: str = "running") -> str:
    tags = {TIER_TAG: tier, TAG_RUN: run_id, TAG_STARTED: STARTED, TAG_BATCH: "0123456789abcdef"}
    return compute.add(state=state, subnet="subnet-drill-a", tags=tags)


def ids_of(output: object) -> set[str]:
    return set(str(output).split(",")) - {""}


# -- compute.start ------------------------------------------------------------------------------------------


def test_start_in_a_drill_launches_copies_and_never_starts_the_standbys(compute: FakeCompute) -> None:
    standbys = sorted(standby(compute) for _ in range(2))
    ledger = Ledger()
    params = compute_start.Params.model_validate({"tags": {TIER_TAG: "db"}})

    result = compute_start.run(params, context(drill_scope(ledger)))

    assert result.status is StepStatus.SUCCEEDED, result.message
    copies = ids_of(result.outputs["instance_ids"])
    assert len(copies) == 2
    assert not copies & set(standbys)
    assert compute.called("start") == []
    assert [compute.state(s) for s in standbys] == ["stopped", "stopped"]
    assert {detail["source"] for _, _, _, detail in ledger.entries} == set(standbys)
    assert {compute.instance(c).subnet for c in copies} == {"subnet-drill-a", "subnet-drill-b"}
    assert result.outputs["count"] == 2
    assert result.outputs["states"] == ",".join(f"{c}=running" for c in sorted(copies))
    first = str(result.outputs["instance_ids"]).split(",")[0]
    assert result.outputs["private_ip"] == compute.instance(first).private_ip
    assert sorted((k, where, iid) for k, where, iid, _ in ledger.entries) == sorted(
        ("instance", REGION, c) for c in copies
    )


@pytest.mark.parametrize("size", [5, 50])
def test_start_in_a_drill_is_a_few_calls_whatever_the_tier_size(compute: FakeCompute, size: int) -> None:
    """One selection (which also sees earlier copies), one launch per drill subnet, one wait."""
    for _ in range(size):
        standby(compute)
    params = compute_start.Params.model_validate({"tags": {TIER_TAG: "db"}})
    result = compute_start.run(params, context(drill_scope(Ledger())))
    assert result.outputs["count"] == size
    assert [name for name, _ in compute.calls] == ["find_described", "launch", "launch", "wait"]


def test_start_in_a_drill_twice_launches_once(compute: FakeCompute) -> None:
    standby(compute)
    ledger = Ledger()
    params = compute_start.Params.model_validate({"tags": {TIER_TAG: "db"}})
    first = compute_start.run(params, context(drill_scope(ledger)))
    again = compute_start.run(params, context(drill_scope(ledger)))
    assert again.status is StepStatus.SUCCEEDED
    assert again.outputs["instance_ids"] == first.outputs["instance_ids"]
    assert len(compute.launches) == 1
    assert len(ledger.entries) == 1


def test_start_in_a_drill_by_standby_ids_copies_them(compute: FakeCompute) -> None:
    a, b = standby(compute), standby(compute, tier="web")
    params = compute_start.Params.model_validate({"ids": [a, b]})
    ledger = Ledger()
    result = compute_start.run(params, context(drill_scope(ledger)))
    copies = ids_of(result.outputs["instance_ids"])
    assert {detail["source"] for _, _, _, detail in ledger.entries} == {a, b}
    assert {compute.instance(c).security_groups for c in copies} == {("sg-drill-db",), ("sg-drill-web",)}
    assert compute.called("start") == []


def test_start_in_a_drill_without_a_drill_network_launches_nothing(compute: FakeCompute) -> None:
    standby(compute)
    params = compute_start.Params.model_validate({"tags": {TIER_TAG: "db"}})
    with pytest.raises(Permanent, match="drill_subnet_ids"):
        compute_start.run(params, context(drill_scope(Ledger(), subnets=())))
    assert compute.launches == []
    assert compute.called("start") == []


def test_start_in_a_drill_finding_only_drill_copies_is_not_found(compute: FakeCompute) -> None:
    drill_copy(compute, OTHER_RUN, state="stopped")
    params = compute_start.Params.model_validate({"tags": {TIER_TAG: "db"}})
    with pytest.raises(NotFound, match="drctl:tier=db"):
        compute_start.run(params, context(drill_scope(Ledger())))


def test_failover_start_by_tags_skips_a_leftover_drill_copy(compute: FakeCompute) -> None:
    real = standby(compute)
    leftover = drill_copy(compute, OTHER_RUN, state="stopped")
    params = compute_start.Params.model_validate({"tags": {TIER_TAG: "db"}})

    result = compute_start.run(params, context(None))

    assert result.status is StepStatus.SUCCEEDED, result.message
    assert result.outputs["instance_ids"] == real
    assert compute.called("start") == [(real,)]
    assert (compute.state(real), compute.state(leftover)) == ("running", "stopped")


def test_failover_start_finding_only_drill_copies_is_not_found(compute: FakeCompute) -> None:
    drill_copy(compute, OTHER_RUN, state="stopped")
    params = compute_start.Params.model_validate({"tags": {TIER_TAG: "db"}})
    with pytest.raises(NotFound, match=r"drill copies excluded"):
        compute_start.run(params, context(None))
    assert compute.called("start") == []


# -- wait_healthy, stop, terminate ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estate:
    production: str
    mine: str
    other_drill: str


@pytest.fixture
def estate(compute: FakeCompute) -> Estate:
    """A running production db, this drill's copy of it, and a copy another drill left behind."""
    return Estate(
        production=standby(compute, state="running"),
        mine=drill_copy(compute, RUN),
        other_drill=drill_copy(compute, OTHER_RUN),
    )


def test_wait_healthy_in_a_drill_sees_only_its_instances(compute: FakeCompute, estate: Estate) -> None:
    params = compute_wait_healthy.Params.model_validate({"tags": {TIER_TAG: "db"}})
    result = compute_wait_healthy.run(params, context(drill_scope(Ledger())))
    assert result.status is StepStatus.SUCCEEDED, result.message
    assert result.outputs["instance_ids"] == estate.mine
    assert result.outputs["private_ip"] == compute.instance(estate.mine).private_ip


def test_wait_healthy_in_a_failover_skips_drill_copies(compute: FakeCompute, estate: Estate) -> None:
    params = compute_wait_healthy.Params.model_validate({"tags": {TIER_TAG: "db"}})
    result = compute_wait_healthy.run(params, context(None))
    assert result.outputs["instance_ids"] == estate.production


def test_wait_healthy_in_a_drill_refuses_ids_it_did_not_launch(compute: FakeCompute, estate: Estate) -> None:
    params = compute_wait_healthy.Params.model_validate({"ids": [estate.mine, estate.production]})
    with pytest.raises(Permanent, match=f"a drill acts only on instances it launched, and {estate.production} is"):
        compute_wait_healthy.run(params, context(drill_scope(Ledger())))
    own = compute_wait_healthy.Params.model_validate({"ids": [estate.mine]})
    assert compute_wait_healthy.run(own, context(drill_scope(Ledger()))).outputs["instance_ids"] == estate.mine


def test_stop_in_a_drill_by_tags_stops_only_its_instances(compute: FakeCompute, estate: Estate) -> None:
    params = compute_stop.Params.model_validate({"tags": {TIER_TAG: "db"}})
    result = compute_stop.run(params, context(drill_scope(Ledger())))
    assert result.status is StepStatus.SUCCEEDED, result.message
    assert result.outputs["instance_ids"] == estate.mine
    assert compute.called("stop") == [(estate.mine,)]
    assert [compute.state(i) for i in (estate.production, estate.mine, estate.other_drill)] == [
        "running",
        "stopped",
        "running",
    ]


def test_stop_in_a_drill_refuses_another_drills_instance(compute: FakeCompute, estate: Estate) -> None:
    params = compute_stop.Params.model_validate({"ids": [estate.other_drill, estate.production]})
    with pytest.raises(Permanent, match="are not among them") as caught:
        compute_stop.run(params, context(drill_scope(Ledger())))
    assert estate.other_drill in str(caught.value)
    assert estate.production in str(caught.value)
    assert compute.called("stop") == []


def test_failover_stop_by_tags_skips_drill_copies(compute: FakeCompute, estate: Estate) -> None:
    params = compute_stop.Params.model_validate({"tags": {TIER_TAG: "db"}})
    result = compute_stop.run(params, context(None))
    assert result.outputs["instance_ids"] == estate.production
    assert compute.called("stop") == [(estate.production,)]


def test_terminate_in_a_drill_by_tags_terminates_only_its_instances(compute: FakeCompute, estate: Estate) -> None:
    params = compute_terminate.Params.model_validate({"tags": {TIER_TAG: "db"}})
    result = compute_terminate.run(params, context(drill_scope(Ledger())))
    assert result.status is StepStatus.SUCCEEDED, result.message
    assert result.outputs["instance_ids"] == estate.mine
    assert compute.called("terminate") == [(estate.mine,)]
    assert (compute.state(estate.production), compute.state(estate.other_drill)) == ("running", "running")

    again = compute_terminate.run(params, context(drill_scope(Ledger())))
    assert (again.status, again.outputs["count"]) == (StepStatus.SUCCEEDED, 0)
    assert compute.called("terminate") == [(estate.mine,)]


def test_terminate_in_a_drill_refuses_production_ids(compute: FakeCompute, estate: Estate) -> None:
    params = compute_terminate.Params.model_validate({"ids": [estate.production]})
    with pytest.raises(Permanent, match=f"{estate.production} is not among them"):
        compute_terminate.run(params, context(drill_scope(Ledger())))
    assert compute.called("terminate") == []
    assert compute.state(estate.production) == "running"


def test_terminate_in_a_drill_by_its_own_ids(compute: FakeCompute, estate: Estate) -> None:
    params = compute_terminate.Params.model_validate({"ids": [estate.mine]})
    result = compute_terminate.run(params, context(drill_scope(Ledger())))
    assert result.outputs["states"] == f"{estate.mine}=terminated"


def test_failover_terminate_by_tags_skips_drill_copies(compute: FakeCompute, estate: Estate) -> None:
    params = compute_terminate.Params.model_validate({"tags": {TIER_TAG: "db"}})
    result = compute_terminate.run(params, context(None))
    assert result.outputs["instance_ids"] == estate.production
    assert (compute.state(estate.mine), compute.state(estate.other_drill)) == ("running", "running")


# -- compute.launch -------------------------------------------------------------------------------------------

LAUNCH_TAGS = {"drctl-step": "restore-web", TIER_TAG: "web"}


def launch_params(**extra: Any) -> compute_launch.Params:
    doc = {
        "image": "ami-web",
        "subnet": "subnet-prod-a",
        "security_groups": ["sg-prod-web"],
        "count": 2,
        "tags": LAUNCH_TAGS,
        **extra,
    }
    return compute_launch.Params.model_validate(doc)


def test_launch_in_a_drill_goes_into_the_drill_network_with_the_drill_tags(compute: FakeCompute) -> None:
    ledger = Ledger()
    result = compute_launch.run(launch_params(), context(drill_scope(ledger), step_id="restore-web"))

    assert result.status is StepStatus.SUCCEEDED, result.message
    (spec,) = compute.launches
    assert spec == LaunchSpec(
        image="ami-web",
        subnet="subnet-drill-a",
        security_groups=("sg-drill-web",),
        count=2,
        tags={**LAUNCH_TAGS, TAG_RUN: RUN, TAG_STARTED: STARTED},
        client_token=client_token(RUN, "restore-web", 0),
    )
    launched = ids_of(result.outputs["instance_ids"])
    assert (result.outputs["launched"], result.outputs["reused"]) == (2, 0)
    assert sorted((kind, where, iid) for kind, where, iid, _ in ledger.entries) == sorted(
        ("instance", REGION, i) for i in launched
    )
    assert all(detail["step"] == "restore-web" and "launch_asked" in detail for *_, detail in ledger.entries)


def test_launch_short_of_capacity_asks_again_for_the_rest(compute: FakeCompute) -> None:
    compute.capacity = 3
    result = compute_launch.run(launch_params(count=7), context(drill_scope(Ledger()), step_id="restore-web"))
    assert result.status is StepStatus.SUCCEEDED, result.message
    assert [(spec.count, spec.at_least) for spec in compute.launches] == [(7, None), (7, 1), (4, 1), (1, 1)]
    assert result.outputs["launched"] == 7


def test_launch_whose_capacity_stays_short_fails_transient_and_a_retry_adds_only_the_rest(
    compute: FakeCompute,
) -> None:
    compute.capacity = 1
    with pytest.raises(Transient, match=r"launched 4 of the 7 missing instance\(s\)"):
        compute_launch.run(launch_params(count=7), context(drill_scope(Ledger())))
    compute.capacity = None
    again = compute_launch.run(launch_params(count=7), context(drill_scope(Ledger())))
    assert (again.outputs["launched"], again.outputs["reused"]) == (3, 4)


def test_launch_in_a_drill_takes_drill_subnet_and_groups_when_given(compute: FakeCompute) -> None:
    params = launch_params(drill_subnet="subnet-drill-z", drill_security_groups=["sg-drill-x", "sg-drill-y"])
    compute_launch.run(params, context(drill_scope(Ledger())))
    (spec,) = compute.launches
    assert (spec.subnet, spec.security_groups) == ("subnet-drill-z", ("sg-drill-x", "sg-drill-y"))


def test_launch_in_a_drill_without_a_drill_subnet_is_refused(compute: FakeCompute) -> None:
    with pytest.raises(Permanent, match="drill_subnet_ids"):
        compute_launch.run(launch_params(), context(drill_scope(Ledger(), subnets=())))
    assert compute.launches == []


def test_launch_in_a_drill_counts_only_its_own_instances(compute: FakeCompute) -> None:
    production = compute.add(state="running", tags=LAUNCH_TAGS)
    ledger = Ledger()
    first = compute_launch.run(launch_params(), context(drill_scope(ledger)))
    again = compute_launch.run(launch_params(), context(drill_scope(ledger)))

    assert (first.outputs["launched"], first.outputs["reused"]) == (2, 0)
    assert production not in ids_of(first.outputs["instance_ids"])
    assert (again.outputs["launched"], again.outputs["reused"]) == (0, 2)
    assert again.outputs["instance_ids"] == first.outputs["instance_ids"]
    assert len(ledger.entries) == 2


def test_failover_launch_uses_the_subnet_as_written(compute: FakeCompute) -> None:
    result = compute_launch.run(launch_params(count=1), context(None))
    assert result.status is StepStatus.SUCCEEDED
    (spec,) = compute.launches
    assert (spec.subnet, spec.security_groups, dict(spec.tags)) == ("subnet-prod-a", ("sg-prod-web",), LAUNCH_TAGS)


def test_failover_launch_never_adopts_a_leftover_drill_instance(compute: FakeCompute) -> None:
    leftover = compute.add(state="running", subnet="subnet-drill-a", tags={**LAUNCH_TAGS, TAG_RUN: OTHER_RUN})
    result = compute_launch.run(launch_params(count=1), context(None))
    assert leftover not in ids_of(result.outputs["instance_ids"])
    assert (result.outputs["launched"], result.outputs["reused"]) == (1, 0)


# -- dns.failover -------------------------------------------------------------------------------------------


@dataclass
class ZonedDns(FakeDns):
    """``FakeDns`` with two zones, each known by name or id, noting every change into a shared log."""

    log: list[str] = field(default_factory=list)
    zones: dict[str, str] = field(default_factory=lambda: {PROD_ZONE: PROD_ZONE_ID, DRILL_ZONE: DRILL_ZONE_ID})

    def zone_id(self, zone: str) -> str:
        if zone in self.zones.values():
            return zone
        if fqdn(zone) in self.zones:
            return self.zones[fqdn(zone)]
        raise NotFound(f"no hosted zone named {zone}")

    def promote(self, zone: str, name: str, type: str, set_identifier: str) -> ChangeResult:
        self.log.append(f"promote {fqdn(name)}")
        return super().promote(zone, name, type, set_identifier)

    def point(self, zone: str, name: str, type: str, values: tuple[str, ...], ttl: int) -> ChangeResult:
        self.log.append(f"point {fqdn(name)}")
        return super().point(zone, name, type, values, ttl)

    def remove(self, zone: str, name: str, type: str) -> ChangeResult:
        self.log.append(f"remove {fqdn(name)}")
        return super().remove(zone, name, type)


PROD_RECORDS = [
    RecordSet(fqdn(PROD_NAME), "A", 60, ("10.0.0.1",), "primary", "PRIMARY", "hc-1"),
    RecordSet(fqdn(PROD_NAME), "A", 60, ("10.0.0.2",), "recovery", "SECONDARY"),
]


@dataclass(frozen=True)
class DnsWorld:
    dns: ZonedDns
    ledger: Ledger


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> DnsWorld:
    ledger = Ledger()
    dns = ZonedDns(
        {
            (fqdn(PROD_NAME), "A"): list(PROD_RECORDS),
            (fqdn(DRILL_NAME), "A"): [RecordSet(fqdn(DRILL_NAME), "A", 300, ("10.0.0.9",))],
        },
        log=ledger.order,
    )
    monkeypatch.setattr(choice, "route53_service", lambda env: dns)
    return DnsWorld(dns, ledger)


def failover_params(**extra: Any) -> dns_failover.Params:
    doc = {"zone": PROD_ZONE, "name": PROD_NAME, "type": "A", "recovery": "recovery", **extra}
    return dns_failover.Params.model_validate(doc)


def test_failover_in_a_drill_points_the_drill_record_and_notes_it_first(world: DnsWorld) -> None:
    result = dns_failover.run(failover_params(drill_endpoint="10.9.0.5"), context(drill_scope(world.ledger)))

    assert result.status is StepStatus.SUCCEEDED, result.message
    assert world.ledger.order == ["record dns-record", f"point {fqdn(DRILL_NAME)}"]
    assert world.ledger.entries == [
        (
            "dns-record",
            DRILL_ZONE_ID,
            f"{fqdn(DRILL_NAME)} A",
            {
                "previous": ["10.0.0.9"],
                "ttl": 300,
                "zone": DRILL_ZONE_ID,
                "name": DRILL_NAME,
                "provider": "route53",
                "resource_group": None,
            },
        )
    ]
    assert world.dns.records_by_key[(fqdn(DRILL_NAME), "A")] == [RecordSet(fqdn(DRILL_NAME), "A", 60, ("10.9.0.5",))]
    assert world.dns.records_by_key[(fqdn(PROD_NAME), "A")] == PROD_RECORDS, "production is untouched"
    assert (result.outputs["previous"], result.outputs["new"], result.outputs["changed"]) == (
        "10.0.0.9",
        "10.9.0.5",
        True,
    )


def test_failover_in_a_drill_of_an_absent_record_notes_none(world: DnsWorld) -> None:
    del world.dns.records_by_key[(fqdn(DRILL_NAME), "A")]
    dns_failover.run(failover_params(drill_endpoint="10.9.0.5"), context(drill_scope(world.ledger)))
    ((_, _, _, detail),) = world.ledger.entries
    assert detail["previous"] is None
    assert "ttl" not in detail
    assert world.dns.records_by_key[(fqdn(DRILL_NAME), "A")][0].values == ("10.9.0.5",)


def test_failover_in_a_drill_uses_drill_zone_and_name_params_over_the_stack(world: DnsWorld) -> None:
    world.dns.records_by_key[(fqdn("db.drill.example"), "A")] = []
    params = failover_params(drill_zone=DRILL_ZONE, drill_name="db.drill.example", drill_endpoint="10.9.0.7")
    dns_failover.run(params, context(drill_scope(world.ledger, dns_zone=None, dns_record=None)))
    ((kind, location, resource_id, detail),) = world.ledger.entries
    assert (kind, location, resource_id) == ("dns-record", DRILL_ZONE_ID, "db.drill.example. A")
    assert (detail["zone"], detail["name"]) == (DRILL_ZONE, "db.drill.example")
    assert world.dns.records_by_key[(fqdn("db.drill.example"), "A")][0].values == ("10.9.0.7",)


def test_failover_in_a_drill_takes_endpoint_when_no_drill_endpoint(world: DnsWorld) -> None:
    params = dns_failover.Params.model_validate({"zone": PROD_ZONE, "name": PROD_NAME, "type": "A", "endpoint": "e1"})
    dns_failover.run(params, context(drill_scope(world.ledger)))
    assert world.dns.records_by_key[(fqdn(DRILL_NAME), "A")][0].values == ("e1",)
    assert world.dns.records_by_key[(fqdn(PROD_NAME), "A")] == PROD_RECORDS


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dns_zone": None}, "drill_zone and drill_name"),
        ({"dns_record": None}, "drill_zone and drill_name"),
        ({"dns_zone": PROD_ZONE_ID}, "is production's"),
        ({"dns_record": "APP.example.com."}, "is production's"),
    ],
)
def test_failover_in_a_drill_refuses_an_unknown_or_production_record(
    world: DnsWorld, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(Permanent, match=message):
        dns_failover.run(failover_params(drill_endpoint="10.9.0.5"), context(drill_scope(world.ledger, **overrides)))
    assert world.ledger.entries == []
    assert world.dns.submitted == []


def test_failover_in_a_drill_refuses_a_production_drill_zone_param(world: DnsWorld) -> None:
    params = failover_params(drill_zone=PROD_ZONE_ID, drill_endpoint="10.9.0.5")
    with pytest.raises(Permanent, match="is production's"):
        dns_failover.run(params, context(drill_scope(world.ledger)))
    assert world.dns.submitted == []


def test_failover_in_a_drill_refuses_the_production_zone_by_name(world: DnsWorld) -> None:
    params = failover_params(drill_zone=PROD_ZONE, drill_name="drill-check.example.com", drill_endpoint="10.9.0.5")
    with pytest.raises(Permanent, match="is production's"):
        dns_failover.run(params, context(drill_scope(world.ledger)))
    assert world.dns.submitted == []


def test_failover_in_a_drill_refuses_without_an_endpoint(world: DnsWorld) -> None:
    with pytest.raises(Permanent, match="drill_endpoint"):
        dns_failover.run(failover_params(), context(drill_scope(world.ledger)))
    assert world.ledger.entries == []
    assert world.dns.submitted == []
    assert world.dns.records_by_key[(fqdn(DRILL_NAME), "A")][0].values == ("10.0.0.9",)


# -- backup.restore ---------------------------------------------------------------------------------------------


@dataclass
class Stores:
    """A store factory maker noting each use into the ledger's log."""

    order: list[str]

    def __call__(self, env: Mapping[str, str]) -> StoreFactory:
        self.order.append("store factory")
        return StoreFactory(dict(env))


def test_restore_in_a_drill_refuses_a_target_without_the_run_id(tmp_path: Path) -> None:
    ledger = Ledger()
    stores = Stores(ledger.order)
    params = backup_restore.Params.model_validate({"set": str(tmp_path / "vault"), "target": str(tmp_path / "db")})
    with pytest.raises(Permanent, match=r"does not contain the run id: write the target with \$\{run.id\}"):
        backup_restore.run(params, context(drill_scope(ledger), store_factory=stores))
    assert ledger.order == [], "refused before any store was opened or anything recorded"


def test_restore_in_a_drill_records_its_target_before_opening_a_store(tmp_path: Path) -> None:
    ledger = Ledger()
    target = f"file://{tmp_path}/drills/{RUN}/db"
    params = backup_restore.Params.model_validate({"set": str(tmp_path / "no-vault"), "target": target})
    with pytest.raises(NotFound):
        backup_restore.run(params, context(drill_scope(ledger), store_factory=Stores(ledger.order)))
    assert ledger.order[:2] == ["record objects", "store factory"]
    assert ledger.entries == [("objects", f"file://{tmp_path}/drills/{RUN}/db", target, {})]


def test_drill_restore_into_a_run_id_target_through_the_executor(tmp_path: Path) -> None:
    """``${run.id}`` in the target resolves at run time; the restore lands there and is in the ledger."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("alpha")
    vault = tmp_path / "vault"
    target = f"{tmp_path}/drills/${{run.id}}/db"
    steps = [
        {"id": "copy", "action": "backup.copy", "with": {"from": str(source), "to": str(vault), "mode": "full"}},
        {"id": "restore", "action": "backup.restore", "needs": ["copy"], "with": {"set": str(vault), "target": target}},
    ]
    doc = {"apiVersion": "drctl/v1", "kind": "Runbook", "metadata": {"name": "t"}, "spec": {"steps": steps}}
    path = tmp_path / "rb.yaml"
    path.write_text(json.dumps(doc))
    journal = RunJournal(tmp_path / "state" / "runs.sqlite")
    try:
        env = {"DRCTL_STATE_DIR": str(tmp_path / "state")}
        outcome = Executor(journal, env=env).run(load_runbook(path), path, RunOptions(mode="drill"))
        assert outcome.status == RunStatus.SUCCEEDED, journal.steps(outcome.run_id)
        restored = tmp_path / "drills" / outcome.run_id / "db"
        assert (restored / "a.txt").read_text() == "alpha"
        ((resource),) = journal.resources(outcome.run_id)
        assert (resource.kind, resource.location, resource.resource_id) == (
            "objects",
            f"file://{restored}",
            str(restored),
        )
        assert resource.outcome is None
    finally:
        journal.close()
