"""Looking up a later tier's instances while the tier before comes up (``orchestrator.actions.lookahead``).

First the rules on their own, with a fetch that records what it was asked and a clock the test moves; then
through the executor, with ``compute.start`` steps on an in-memory EC2 (``FakeCompute``): a lookup made ahead is
used when only read-only steps ran in between, and a step that may change instances makes the next tier look up
again, so it sees what that step launched.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator.actions import compute_start
from orchestrator.actions import lookahead as lookahead_module
from orchestrator.actions.lookahead import KEEPS_INSTANCES, MAX_AGE_S, Planned, SelectionLookahead
from orchestrator.actions.registry import REGISTRY
from orchestrator.engine.context import StepContext
from orchestrator.engine.executor import Executor, RunOptions, RunOutcome
from orchestrator.engine.journal import RunJournal, RunStatus
from orchestrator.providers import aws_ec2
from orchestrator.providers.compute import InstanceInfo
from orchestrator.runbook.loader import load_runbook
from tests.support.clock import ManualClock
from tests.support.fake_compute import FakeCompute

REGION = "eu-west-1"


def info(iid: str) -> InstanceInfo:
    return InstanceInfo(iid, "stopped", image="ami-1", subnet="subnet-1", tags={"tier": "b"}, instance_type="t3.micro")


class Fetches:
    """A fetch that answers one instance per call and notes the parameters it was asked for."""

    def __init__(self, error: Exception | None = None) -> None:
        self.asked: list[object] = []
        self.error = error

    def __call__(self, params: object) -> Mapping[str, InstanceInfo] | None:
        self.asked.append(params)
        if self.error is not None:
            raise self.error
        return None if params == "by-ids" else {f"i-{len(self.asked)}": info(f"i-{len(self.asked)}")}


Make = Callable[..., SelectionLookahead]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make(clock: ManualClock) -> Iterator[Make]:
    """``make(*planned, actions=...)``: steps a (wave 1), b (wave 2), c (wave 3) are compute.start unless
    ``actions`` says otherwise; b and c are planned unless ``planned`` says otherwise. Closed after the test."""
    made: list[SelectionLookahead] = []

    def build(*planned: Planned, actions: Mapping[str, str] | None = None) -> SelectionLookahead:
        kinds = {"a": "compute.start", "b": "compute.start", "c": "compute.start", **(actions or {})}
        waves = {"a": 1, "check": 1, "shell": 1, "b": 2, "c": 3}
        chosen = planned or (Planned("b", 2, "params-b"), Planned("c", 3, "params-c"))
        made.append(SelectionLookahead(chosen, kinds, waves, clock))
        return made[-1]

    yield build
    for ahead in made:
        ahead.close()


def test_the_next_waves_step_is_looked_up_once_the_writer_is_done_and_handed_over_once(
    make: Make, clock: ManualClock
) -> None:
    ahead, fetch = make(), Fetches()
    ahead.starting("a")
    ahead.wrote("a", fetch)
    clock.now += 2.5
    ahead.ended("a")
    ahead.starting("b")
    taken = ahead.take("b", "params-b")
    assert taken is not None
    assert set(taken.found) == {"i-1"}
    assert taken.age_s == pytest.approx(2.5)
    assert fetch.asked == ["params-b"], "only the next wave's step, not every later one"
    assert ahead.take("b", "params-b") is None, "a second attempt looks up for itself"


def test_read_only_steps_in_between_keep_the_lookup(make: Make) -> None:
    ahead, fetch = make(actions={"check": "http.check"}), Fetches()
    ahead.starting("a")
    ahead.wrote("a", fetch)
    ahead.starting("check")
    ahead.ended("check")
    ahead.starting("b")
    assert ahead.take("b", "params-b") is not None


@pytest.mark.parametrize("action", ["shell", "compute.launch", "compute.terminate", "some.future_action"])
def test_a_step_that_may_change_instances_starting_in_between_drops_the_lookup(make: Make, action: str) -> None:
    ahead, fetch = make(actions={"shell": action}), Fetches()
    ahead.starting("a")
    ahead.wrote("a", fetch)
    ahead.starting("shell")
    ahead.ended("shell")
    ahead.starting("b")
    assert ahead.take("b", "params-b") is None


def test_no_lookup_while_another_step_that_may_change_instances_is_running(make: Make) -> None:
    ahead, fetch = make(actions={"shell": "shell"}), Fetches()
    ahead.starting("shell")
    ahead.starting("a")
    ahead.wrote("a", fetch)
    assert fetch.asked == []
    ahead.starting("b")
    assert ahead.take("b", "params-b") is None


def test_a_retry_of_the_writer_drops_the_lookup_it_asked_for(make: Make) -> None:
    ahead, fetch = make(), Fetches()
    ahead.starting("a")
    ahead.wrote("a", fetch)
    ahead.starting("a")  # attempt 2: it may launch again after the lookup
    ahead.wrote("a", fetch)
    ahead.starting("b")
    assert ahead.take("b", "params-b") is None


def test_a_writer_on_its_next_attempt_counts_as_busy_again(make: Make) -> None:
    ahead, fetch = make(actions={"shell": "compute.start"}), Fetches()
    ahead.starting("a")
    ahead.starting("shell")
    ahead.wrote("a", fetch)  # the other writer is still at work: nothing is looked up
    ahead.starting("a")  # a's second attempt may launch again
    ahead.wrote("shell", fetch)
    assert fetch.asked == [], "a is at work again, so a lookup now could miss what it launches"


def test_an_old_lookup_is_not_used(make: Make, clock: ManualClock) -> None:
    ahead, fetch = make(), Fetches()
    ahead.starting("a")
    ahead.wrote("a", fetch)
    clock.now += MAX_AGE_S + 1
    ahead.starting("b")
    assert ahead.take("b", "params-b") is None


def test_a_failed_lookup_or_one_by_ids_leaves_the_step_to_look_up_for_itself(make: Make) -> None:
    for fetch, planned in (
        (Fetches(RuntimeError("RequestLimitExceeded")), Planned("b", 2, "params-b")),
        (Fetches(), Planned("b", 2, "by-ids")),
    ):
        ahead = make(planned)
        ahead.starting("a")
        ahead.wrote("a", fetch)
        ahead.starting("b")
        assert ahead.take("b", planned.params) is None
        assert len(fetch.asked) == 1


def test_a_step_already_started_is_not_looked_up(make: Make) -> None:
    ahead, fetch = make(), Fetches()
    ahead.starting("b")
    ahead.ended("b")
    ahead.starting("a")
    ahead.wrote("a", fetch)
    ahead.starting("c")
    assert ahead.take("c", "params-c") is not None
    assert fetch.asked == ["params-c"], "b had run already: the next one not yet begun is c"


def test_a_lookup_made_for_other_parameters_is_not_used(make: Make) -> None:
    ahead, fetch = make(), Fetches()
    ahead.starting("a")
    ahead.wrote("a", fetch)
    ahead.starting("b")
    assert ahead.take("b", "params-b but with another region") is None


def test_a_lookup_still_under_way_is_waited_for_only_briefly(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lookahead_module, "IN_FLIGHT_WAIT_S", 0.05)
    release = threading.Event()

    def stuck(params: object) -> Mapping[str, InstanceInfo] | None:
        release.wait(30)  # an EC2 call deep in its retries
        return {}

    ahead = make()
    try:
        ahead.starting("a")
        ahead.wrote("a", stuck)
        ahead.starting("b")
        began = time.monotonic()
        assert ahead.take("b", "params-b") is None
        assert time.monotonic() - began < 10, "the step went on to look up for itself"
    finally:
        release.set()


def test_after_the_run_nothing_is_looked_up_or_handed_over(make: Make) -> None:
    ahead, fetch = make(), Fetches()
    ahead.close()
    ahead.starting("a")
    ahead.wrote("a", fetch)  # a compensation's compute.start, say: it must not fail for want of a pool
    ahead.starting("b")
    assert ahead.take("b", "params-b") is None
    assert fetch.asked == []


def test_every_action_is_known_to_change_instances_or_not() -> None:
    """A new action must be placed on one side: an action wrongly called read-only would let a stale lookup
    through. The other side is listed here, so the test fails until a person decides."""
    changes = {"compute.launch", "compute.start", "compute.stop", "compute.terminate", "shell"}
    assert not changes & KEEPS_INSTANCES
    assert set(REGISTRY.names()) == changes | KEEPS_INSTANCES


def test_a_failover_start_looks_up_again_when_an_instance_selected_ahead_has_gone(
    compute: FakeCompute, clock: ManualClock
) -> None:
    old = compute.add(state="stopped", tags={"tier": "b"})
    params = compute_start.Params.model_validate({"tags": {"tier": "b"}, "wait": False})
    ahead = SelectionLookahead([Planned("start-b", 2, params)], {"start-a": "compute.start"}, {"start-a": 1}, clock)
    logs: list[str] = []
    ctx = StepContext(
        step_id="start-b",
        mode="failover",
        env={"AWS_REGION": REGION},
        stack=None,
        deadline=None,
        stop=threading.Event(),
        clock=time.monotonic,
        sink=logs.append,
        lookahead=ahead,
    )
    try:
        ahead.starting("start-a")
        ahead.wrote("start-a", lambda p: compute_start.look_up(p, ctx))
        compute.set_state(old, "terminated")  # replaced by hand while the tier before came up
        new = compute.add(state="stopped", tags={"tier": "b"})
        ahead.starting("start-b")
        result = compute_start.run(params, ctx)
    finally:
        ahead.close()
    assert any(m.startswith(compute_start.LOOKED_UP_AHEAD) for m in logs), logs
    assert any("looking up again" in m for m in logs), logs
    assert str(result.outputs["instance_ids"]) == new
    assert compute.state(new) == "running"


# -- through the executor ------------------------------------------------------------------------------------


@pytest.fixture
def compute(monkeypatch: pytest.MonkeyPatch) -> FakeCompute:
    fake = FakeCompute(REGION, launch_state="running")
    monkeypatch.setattr(aws_ec2, "compute_for", lambda env, region=None: fake)
    return fake


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[RunJournal]:
    opened = RunJournal(tmp_path / "state" / "runs.sqlite")
    try:
        yield opened
    finally:
        opened.close()


def start(step_id: str, tier: int, selects: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "action": "compute.start", "tier": tier, "with": {"tags": {"tier": selects}}, **extra}


def execute(tmp_path: Path, journal: RunJournal, steps: list[dict[str, Any]]) -> RunOutcome:
    """A failover of ``steps`` on the fake EC2."""
    doc = {"apiVersion": "drctl/v1", "kind": "Runbook", "metadata": {"name": "t"}, "spec": {"steps": steps}}
    path = tmp_path / "rb.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")
    env = {"DRCTL_STATE_DIR": str(tmp_path / "state"), "AWS_REGION": REGION}
    return Executor(journal, env=env, sleep=lambda _: None).run(load_runbook(path), path, RunOptions())


def run(tmp_path: Path, journal: RunJournal, steps: list[dict[str, Any]]) -> tuple[str, dict[str, list[str]]]:
    outcome = execute(tmp_path, journal, steps)
    assert outcome.status == RunStatus.SUCCEEDED, journal.steps(outcome.run_id)
    logs: dict[str, list[str]] = {}
    for event in journal.events(outcome.run_id):
        if event.step_id is not None and event.kind == "log":
            logs.setdefault(event.step_id, []).append(event.message)
    return outcome.run_id, logs


def started(journal: RunJournal, run_id: str, step_id: str) -> set[str]:
    outputs = journal.steps(run_id)[step_id].outputs
    return set(str(outputs["instance_ids"]).split(","))


def looked_up_ahead(logs: Mapping[str, list[str]], step_id: str) -> bool:
    return any(m.startswith(compute_start.LOOKED_UP_AHEAD) for m in logs.get(step_id, []))


def test_the_second_tier_uses_the_lookup_made_while_the_first_came_up(
    compute: FakeCompute, journal: RunJournal, tmp_path: Path
) -> None:
    a = compute.add(state="stopped", tags={"tier": "a"})
    b = compute.add(state="stopped", tags={"tier": "b"})
    steps = [
        start("start-a", 1, "a"),
        {"id": "pause-a", "action": "wait", "tier": 1, "needs": ["start-a"], "with": {"duration": "1s"}},
        start("start-b", 2, "b"),
    ]
    run_id, logs = run(tmp_path, journal, steps)
    assert looked_up_ahead(logs, "start-b"), logs
    assert not looked_up_ahead(logs, "start-a"), logs
    assert compute.state(a) == compute.state(b) == "running"
    assert started(journal, run_id, "start-b") == {b}
    assert len(compute.called("find_described")) == 2, "one lookup per tier, the second made ahead"


def test_a_launch_between_the_tiers_makes_the_second_tier_look_up_again_and_find_it(
    compute: FakeCompute, journal: RunJournal, tmp_path: Path
) -> None:
    compute.add(state="stopped", tags={"tier": "a"})
    b = compute.add(state="stopped", tags={"tier": "b"})
    launch = {"image": "ami-b", "subnet": "subnet-1", "tags": {"tier": "b", "role": "extra"}}
    steps = [
        start("start-a", 1, "a"),
        {"id": "launch-b", "action": "compute.launch", "tier": 1, "needs": ["start-a"], "with": launch},
        start("start-b", 2, "b"),
    ]
    run_id, logs = run(tmp_path, journal, steps)
    assert not looked_up_ahead(logs, "start-b"), logs
    (extra,) = set(compute.ids()) - {b} - set(started(journal, run_id, "start-a"))
    assert started(journal, run_id, "start-b") == {b, extra}, "the instance launched in between is selected too"


def test_a_compensation_that_starts_instances_runs_after_the_lookups_have_ended(
    compute: FakeCompute, journal: RunJournal, tmp_path: Path
) -> None:
    a = compute.add(state="running", tags={"tier": "a"})
    compute.add(state="stopped", tags={"tier": "b"})
    stop_a = {
        "id": "stop-a",
        "action": "compute.stop",
        "tier": 1,
        "with": {"tags": {"tier": "a"}},
        "compensate": {"action": "compute.start", "with": {"tags": {"tier": "a"}}},
    }
    fail = {"id": "fail", "action": "shell", "tier": 2, "with": {"command": "exit 1"}}
    outcome = execute(tmp_path, journal, [stop_a, fail, start("start-b", 3, "b")])
    assert outcome.status == RunStatus.FAILED
    undone = [e.message for e in journal.events(outcome.run_id) if e.kind == "compensate"]
    assert "compensate stop-a (compute.start) done" in undone, undone
    assert compute.state(a) == "running"
