"""The compute actions' ``run`` against LocalStack's EC2 through the real provider (``Ec2Compute``), with an
injected sleep so waits poll without waiting, plus a small fake for the TCP probe (LocalStack's instances have
no reachable address). Each action is run twice to show that a repeat is harmless."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.actions import (
    compute_launch,
    compute_start,
    compute_stop,
    compute_terminate,
    compute_wait_healthy,
    image_ensure,
)
from orchestrator.actions.base import ActionSpec, StepStatus
from orchestrator.actions.registry import REGISTRY
from orchestrator.drill.cleanup import Cleaner, Providers
from orchestrator.drill.orphans import find_leftovers
from orchestrator.drill.scope import TAG_RUN, TAG_STARTED, DrillScope, drill_image_name
from orchestrator.engine.context import StepContext
from orchestrator.engine.journal import RunJournal
from orchestrator.errors import NotFound
from orchestrator.providers import aws_ec2
from orchestrator.providers.aws_ec2 import Ec2Compute, ec2_client
from orchestrator.providers.compute import InstanceInfo, LaunchSpec, WaitResult, wait_for_state

REGION = "eu-west-1"
RECOVERY_REGION = "us-west-2"
AMI = "ami-760aaa0f"


@dataclass
class Sleeps:
    """An injected sleep: records each pause, never waits, and can cancel the run after ``limit`` pauses."""

    stop: threading.Event = field(default_factory=threading.Event)
    calls: list[float] = field(default_factory=list)
    limit: int = 1000

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if len(self.calls) >= self.limit:
            self.stop.set()


def _ctx(env: Mapping[str, str], sleeps: Sleeps, deadline: float | None = None) -> StepContext:
    return StepContext(
        step_id="s",
        mode="drill",
        env=dict(env),
        stack=None,
        deadline=deadline,
        stop=sleeps.stop,
        clock=time.monotonic,
        sink=lambda message: None,
        sleep=sleeps,
    )


@dataclass(frozen=True)
class Lab:
    env: dict[str, str]
    compute: Ec2Compute
    tag: dict[str, str]


@pytest.fixture
def lab(lab_env: dict[str, str]) -> Iterator[Lab]:
    env = {**lab_env, "AWS_DEFAULT_REGION": REGION}
    compute = aws_ec2.compute_for(env, REGION)
    tag = {"drctl-test": uuid.uuid4().hex[:12]}
    try:
        yield Lab(env, compute, tag)
    finally:
        live = compute.find(tag)
        if live:
            compute.terminate(live)


def _one(lab: Lab, tier: str) -> str:
    (iid,) = lab.compute.launch(LaunchSpec(image=AMI, instance_type="t3.micro", tags={**lab.tag, "tier": tier}))
    return iid


@pytest.mark.lab
def test_start_twice_by_tags(lab: Lab) -> None:
    iid = _one(lab, "db")
    lab.compute.stop([iid])
    assert lab.compute.wait([iid], "stopped", time.monotonic() + 30, lambda s: True).reached
    params = compute_start.Params.model_validate({"tags": {**lab.tag, "tier": "db"}, "region": REGION})
    for _ in range(2):
        result = compute_start.run(params, _ctx(lab.env, Sleeps()))
        assert result.status is StepStatus.SUCCEEDED, result.message
        assert result.outputs["instance_ids"] == iid
        assert result.outputs["states"] == f"{iid}=running"
        assert result.outputs["count"] == 1
        assert set(result.outputs) == compute_start.SPEC.outputs


@pytest.mark.lab
def test_stop_twice_by_ids(lab: Lab) -> None:
    iid = _one(lab, "web")
    params = compute_stop.Params.model_validate({"ids": [iid], "region": REGION})
    for _ in range(2):
        result = compute_stop.run(params, _ctx(lab.env, Sleeps()))
        assert result.status is StepStatus.SUCCEEDED, result.message
        assert result.outputs["states"] == f"{iid}=stopped"


@pytest.mark.lab
def test_start_of_unknown_tags_is_not_found(lab: Lab) -> None:
    params = compute_start.Params.model_validate({"tags": {**lab.tag, "tier": "none"}, "region": REGION})
    with pytest.raises(NotFound, match="tier=none"):
        compute_start.run(params, _ctx(lab.env, Sleeps()))


@pytest.mark.lab
def test_launch_twice_launches_once(lab: Lab) -> None:
    tags = {**lab.tag, "tier": "app"}
    params = compute_launch.Params.model_validate({"image": AMI, "count": 2, "tags": tags, "region": REGION})
    first = compute_launch.run(params, _ctx(lab.env, Sleeps()))
    second = compute_launch.run(params, _ctx(lab.env, Sleeps()))
    assert first.status is StepStatus.SUCCEEDED, first.message
    assert (first.outputs["launched"], first.outputs["reused"]) == (2, 0)
    assert second.status is StepStatus.SUCCEEDED, second.message
    assert (second.outputs["launched"], second.outputs["reused"]) == (0, 2)
    assert first.outputs["instance_ids"] == second.outputs["instance_ids"]
    assert lab.compute.find(tags) == tuple(str(first.outputs["instance_ids"]).split(","))
    assert set(first.outputs) == compute_launch.SPEC.outputs
    assert first.outputs["private_ip"]
    assert str(first.outputs["private_ip"]) in str(first.outputs["private_ips"]).split(",")


@pytest.mark.lab
def test_terminate_twice(lab: Lab) -> None:
    iid = _one(lab, "old")
    params = compute_terminate.Params.model_validate({"tags": {**lab.tag, "tier": "old"}, "region": REGION})
    first = compute_terminate.run(params, _ctx(lab.env, Sleeps()))
    assert first.status is StepStatus.SUCCEEDED, first.message
    assert first.outputs["states"] == f"{iid}=terminated"
    second = compute_terminate.run(params, _ctx(lab.env, Sleeps()))
    assert second.status is StepStatus.SUCCEEDED
    assert second.outputs["count"] == 0
    by_id = compute_terminate.run(
        compute_terminate.Params.model_validate({"ids": [iid], "region": REGION}), _ctx(lab.env, Sleeps())
    )
    assert by_id.status is StepStatus.SUCCEEDED


@pytest.mark.lab
def test_wait_healthy_passes_for_a_running_instance(lab: Lab) -> None:
    iid = _one(lab, "healthy")
    params = compute_wait_healthy.Params.model_validate({"ids": [iid], "region": REGION, "timeout": "1m"})
    result = compute_wait_healthy.run(params, _ctx(lab.env, Sleeps()))
    assert result.status is StepStatus.SUCCEEDED, result.message
    assert result.outputs["states"] == f"{iid}=running"


@pytest.mark.lab
def test_wait_healthy_times_out_on_a_stopped_instance_and_stops_when_cancelled(lab: Lab) -> None:
    iid = _one(lab, "sick")
    lab.compute.stop([iid])
    params = compute_wait_healthy.Params.model_validate(
        {"ids": [iid], "region": REGION, "timeout": "1m", "interval": "10s"}
    )
    sleeps = Sleeps(limit=3)
    result = compute_wait_healthy.run(params, _ctx(lab.env, sleeps))
    assert result.status is StepStatus.TIMED_OUT
    assert result.retryable
    assert "stopped" in result.message or "stopping" in result.message
    assert sleeps.calls == [10.0, 10.0, 10.0]
    past = _ctx(lab.env, Sleeps(), deadline=time.monotonic() - 1)
    assert compute_wait_healthy.run(params, past).status is StepStatus.TIMED_OUT


@pytest.mark.lab
def test_image_ensure_copies_once_then_finds_the_copy(lab: Lab) -> None:
    iid = _one(lab, "golden")
    source_client = lab.compute.client
    source = source_client.create_image(InstanceId=iid, Name=f"t-golden-{lab.tag['drctl-test']}")["ImageId"]
    dest = ec2_client(lab.env, RECOVERY_REGION)
    name = f"t-golden-copy-{lab.tag['drctl-test']}"
    params = image_ensure.Params.model_validate(
        {"image": source, "source_region": REGION, "region": RECOVERY_REGION, "name": name, "timeout": "1m"}
    )
    copies: set[str] = set()
    try:
        first = image_ensure.run(params, _ctx(lab.env, Sleeps()))
        copies.add(str(first.outputs["image_id"]))
        second = image_ensure.run(params, _ctx(lab.env, Sleeps()))
        copies.add(str(second.outputs["image_id"]))
        assert first.status is StepStatus.SUCCEEDED, first.message
        assert first.outputs["copied"] is True
        assert first.outputs["state"] == "available"
        assert first.outputs["image_id"] != source
        assert second.status is StepStatus.SUCCEEDED
        assert second.outputs["copied"] is False
        assert len(copies) == 1
        assert set(first.outputs) == image_ensure.SPEC.outputs
    finally:
        for copy in copies:
            dest.deregister_image(ImageId=copy)
        source_client.deregister_image(ImageId=source)


@pytest.mark.lab
def test_a_drill_copies_an_image_under_its_own_name_tagged_and_its_cleanup_deregisters_it(
    lab: Lab, tmp_path: Path
) -> None:
    iid = _one(lab, "golden")
    source = lab.compute.client.create_image(InstanceId=iid, Name=f"t-drill-src-{lab.tag['drctl-test']}")["ImageId"]
    dest = ec2_client(lab.env, RECOVERY_REGION)
    run_id = f"20261126T000000Z-{lab.tag['drctl-test'][:8]}"
    journal = RunJournal(tmp_path / "runs.sqlite")
    scope = DrillScope(run_id, "2026-11-26T00:00:00+00:00", record=lambda *a: journal.record_resource(run_id, *a))
    params = image_ensure.Params.model_validate(
        {"image": source, "source_region": REGION, "region": RECOVERY_REGION, "timeout": "1m"}
    )
    try:
        result = image_ensure.run(params, replace(_ctx(lab.env, Sleeps()), run_id=run_id, drill=scope))
        assert result.status is StepStatus.SUCCEEDED, result.message
        copy = str(result.outputs["image_id"])
        image = dest.describe_images(ImageIds=[copy])["Images"][0]
        assert image["Name"].endswith(f"-drill-{run_id}")
        assert {t["Key"]: t["Value"] for t in image.get("Tags", [])}[TAG_RUN] == run_id
        assert [(r.kind, r.location, r.resource_id) for r in journal.resources(run_id)] == [
            ("image", RECOVERY_REGION, copy)
        ]
        removals = Cleaner(journal, Providers.from_env(lab.env)).clean(run_id, [RECOVERY_REGION])
        assert [(r.kind, r.outcome) for r in removals] == [("image", "removed")]
        assert dest.describe_images(Filters=[{"Name": "image-id", "Values": [copy]}])["Images"] == []
    finally:
        journal.close()
        lab.compute.client.deregister_image(ImageId=source)


@pytest.mark.lab
def test_an_untagged_image_copy_named_after_its_drill_is_found_and_a_second_deregister_is_already_gone(
    lab: Lab, tmp_path: Path
) -> None:
    """A drill killed after CopyImage answered but before it tagged the copy (LocalStack ignores the call's
    TagSpecifications) leaves a copy only its name ties to the run; a cleanup killed after deregistering it,
    before noting so, meets ``InvalidAMIID.Unavailable`` on its next try, which is "already gone"."""
    iid = _one(lab, "golden")
    run_id = f"20250101T000000Z-{lab.tag['drctl-test'][:8]}"
    name = drill_image_name(f"t-killed-{lab.tag['drctl-test']}", run_id)
    image = lab.compute.client.create_image(InstanceId=iid, Name=name)["ImageId"]
    journal = RunJournal(tmp_path / "runs.sqlite")
    journal.start_run(run_id, "drill.yaml", "0" * 64, "killed-drill", {}, "drill")
    providers = Providers.from_env(lab.env)
    try:
        assert lab.compute.tagged_images(TAG_RUN).get(image) is None
        leftovers = find_leftovers(journal, providers, [REGION], set(), timedelta(hours=1), datetime.now(UTC))
        assert [item.resource_ids for item in leftovers if item.run_id == run_id] == [(image,)]
        assert all(item.orphan for item in leftovers if item.run_id == run_id)
        removals = Cleaner(journal, providers).clean(run_id, [REGION])
        assert [(r.kind, r.resource_id, r.outcome) for r in removals] == [("image", image, "removed")]
        assert lab.compute.deregister_image(image) is False  # deregistered already: gone, not an error
    finally:
        journal.close()
        with contextlib.suppress(Exception):
            lab.compute.client.deregister_image(ImageId=image)


@pytest.mark.lab
def test_an_image_copy_no_ledger_holds_is_found_by_its_tag_and_removed(lab: Lab, tmp_path: Path) -> None:
    iid = _one(lab, "golden")
    run_id = f"20250101T000000Z-{lab.tag['drctl-test'][:8]}"
    image = lab.compute.client.create_image(InstanceId=iid, Name=f"t-orphan-{lab.tag['drctl-test']}")["ImageId"]
    lab.compute.tag_resources([image], {TAG_RUN: run_id, TAG_STARTED: "2025-01-01T00:00:00+00:00"})
    # A sweep asks for its own run's images by tag value: another run's are not listed.
    assert image in lab.compute.tagged_images(TAG_RUN, run_id)
    assert image not in lab.compute.tagged_images(TAG_RUN, run_id + "-other")
    journal = RunJournal(tmp_path / "runs.sqlite")  # a journal that never heard of the run (another machine)
    providers = Providers.from_env(lab.env)
    try:
        leftovers = find_leftovers(journal, providers, [REGION], set(), timedelta(hours=1), datetime.now(UTC))
        mine = [item for item in leftovers if item.run_id == run_id]
        assert [(item.resource_ids, item.orphan) for item in mine] == [((image,), True)]
        removals = Cleaner(journal, providers).clean(run_id, [REGION])
        assert [(r.kind, r.resource_id, r.outcome) for r in removals] == [("image", image, "removed")]
        assert lab.compute.tagged_images(TAG_RUN).get(image) is None
    finally:
        journal.close()
        with contextlib.suppress(Exception):
            lab.compute.client.deregister_image(ImageId=image)


@pytest.mark.lab
def test_image_ensure_uses_an_image_already_in_the_region(lab: Lab) -> None:
    params = image_ensure.Params.model_validate({"image": AMI, "source_region": REGION, "region": RECOVERY_REGION})
    result = image_ensure.run(params, _ctx(lab.env, Sleeps()))
    assert result.status is StepStatus.SUCCEEDED
    assert (result.outputs["image_id"], result.outputs["copied"]) == (AMI, False)


# -- without the lab: parameters, and the TCP probe against a fake ----------------------------------------


class FakeCompute:
    """Just enough ``Compute`` for ``compute.wait_healthy``: fixed running instances at 127.0.0.1."""

    region = "local"

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = tuple(ids)

    def find(self, tags: Mapping[str, str]) -> tuple[str, ...]:
        return self.ids

    def find_described(self, tags: Mapping[str, str]) -> dict[str, InstanceInfo]:
        return self.describe(self.ids)

    def describe(self, ids: Sequence[str]) -> dict[str, InstanceInfo]:
        return {i: InstanceInfo(i, "running", private_ip="127.0.0.1") for i in ids}

    def status_ok(self, ids: Sequence[str]) -> dict[str, bool]:
        return dict.fromkeys(ids, True)

    def wait(self, ids: Sequence[str], state: str, deadline: float, sleep: Any = None) -> WaitResult:
        return wait_for_state(self, ids, state, deadline, sleep=sleep)  # type: ignore[arg-type]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeCompute:
    compute = FakeCompute(["i-1", "i-2"])
    monkeypatch.setattr(aws_ec2, "compute_for", lambda env, region=None: compute)
    return compute


@pytest.mark.usefixtures("fake")
def test_tcp_probe_reaches_every_instance() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        params = compute_wait_healthy.Params.model_validate({"tags": {"tier": "db"}, "tcp_port": port})
        result = compute_wait_healthy.run(params, _ctx({}, Sleeps()))
    assert result.status is StepStatus.SUCCEEDED, result.message
    assert result.outputs["instance_ids"] == "i-1,i-2"
    with socket.create_server(("127.0.0.1", 0)) as server:
        closed = server.getsockname()[1]
    params = compute_wait_healthy.Params.model_validate({"tags": {"tier": "db"}, "tcp_port": closed})
    sleeps = Sleeps(limit=2)
    result = compute_wait_healthy.run(params, _ctx({}, sleeps))
    assert result.status is StepStatus.TIMED_OUT
    assert f"refuses port {closed}" in result.message
    assert len(sleeps.calls) == 2


@pytest.mark.parametrize(
    ("module", "data", "message"),
    [
        (compute_start, {}, "either 'ids' or 'tags'"),
        (compute_stop, {"ids": ["i-1"], "tags": {"a": "b"}}, "either 'ids' or 'tags'"),
        (compute_launch, {"image": AMI, "tags": {}}, "'tags' must not be empty"),
        (compute_launch, {"tags": {"a": "b"}}, "'image' or 'template'"),
        (compute_wait_healthy, {"ids": ["i-1"], "tcp_port": 0}, "tcp_port"),
        (image_ensure, {"image": AMI, "region": "x"}, "source_region"),
    ],
)
def test_bad_params_are_refused(module: Any, data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        module.Params.model_validate(data)


MODULES = (compute_start, compute_stop, compute_launch, compute_terminate, compute_wait_healthy, image_ensure)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_modules_follow_the_action_conventions(module: Any) -> None:
    spec: ActionSpec[Any] = module.SPEC
    assert spec.params is module.Params
    assert spec.run is module.run
    assert spec.idempotent
    assert spec.description
    assert "\n" not in spec.description
    assert module.Params.model_config["extra"] == "forbid"
    assert module.Params.model_config["frozen"] is True
    assert "\nIdempotent:" in (module.__doc__ or "")
    assert "Not idempotent:" not in (module.__doc__ or "")
    assert "idempotent" in (module.run.__doc__ or "").lower()


def test_every_compute_action_is_registered() -> None:
    for module in MODULES:
        assert REGISTRY.get(module.SPEC.name) is module.SPEC


def test_touches_name_the_selection() -> None:
    params = compute_terminate.Params.model_validate({"tags": {"tier": "db"}, "region": "eu-west-1"})
    (touch,) = compute_terminate.SPEC.touches_of(params)
    assert str(touch) == "writes instances tagged tier=db in eu-west-1 (terminated, irreversibly)"


class LaggingCompute(FakeCompute):
    """Describes nothing for the first ``lag`` calls, as EC2 may right after a launch."""

    def __init__(self, ids: Sequence[str], lag: int) -> None:
        super().__init__(ids)
        self.lag = lag

    def describe(self, ids: Sequence[str]) -> dict[str, InstanceInfo]:
        if self.lag > 0:
            self.lag -= 1
            raise NotFound(f"{ids[0]}: does not exist")
        return super().describe(ids)


def waited_through(lag: int) -> tuple[WaitResult, list[float]]:
    """A wait for ``running`` over an instance EC2 does not list for ``lag`` polls, and the pauses it took."""
    sleeps: list[float] = []

    def sleep(seconds: float) -> bool:
        sleeps.append(seconds)
        return True

    compute = LaggingCompute(["i-1"], lag=lag)
    result = wait_for_state(compute, ["i-1"], "running", time.monotonic() + 600, sleep=sleep, missing_ok=True)  # type: ignore[arg-type]
    return result, sleeps


def test_wait_pauses_double_from_a_second_up_to_the_interval() -> None:
    result, sleeps = waited_through(lag=6)
    assert result.reached
    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_wait_polls_through_not_yet_visible_instances_only_when_asked() -> None:
    result, sleeps = waited_through(lag=2)
    assert result.reached
    assert result.states == {"i-1": "running"}
    assert sleeps == [1.0, 2.0], "the first polls come quickly"
    # Without missing_ok an instance EC2 does not list is an error at the first poll, before any pause.
    with pytest.raises(NotFound):
        wait_for_state(LaggingCompute(["i-1"], lag=1), ["i-1"], "running", time.monotonic() + 60)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown instance state"):
        wait_for_state(LaggingCompute(["i-1"], lag=0), ["i-1"], "asleep", time.monotonic())  # type: ignore[arg-type]
