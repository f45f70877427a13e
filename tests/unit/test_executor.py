"""The executor against a fake action: order, tiers, parallelism, retries, timeouts, approvals, compensation,
resume, interruption. The fake is registered only for these tests; its behaviour is set per step id."""

from __future__ import annotations

import itertools
import json
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.actions.base import ActionContext, ActionParams, ActionSpec, StepResult, StepStatus, Touch
from orchestrator.actions.registry import REGISTRY
from orchestrator.engine.events import RunEvent
from orchestrator.engine.executor import Executor, RunOptions
from orchestrator.engine.journal import RunJournal, RunStatus, StepState
from orchestrator.errors import InvalidInput, LockLost, Permanent, StateError, Transient
from orchestrator.runbook.loader import load_runbook
from orchestrator.runbook.models import Step
from tests.support.clock import ManualClock


class FakeParams(ActionParams):
    tag: str = ""


Behaviour = Callable[[FakeParams, ActionContext], StepResult]


@dataclass
class Recorder:
    """Thread-safe log of (seq, kind, step, tag); ``seq`` is a global order, so "before" is exact."""

    entries: list[tuple[int, str, str, str]] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    _seq: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, kind: str, step: str, tag: str = "") -> None:
        with self._lock:
            self.entries.append((next(self._seq), kind, step, tag))

    def seq(self, kind: str, step: str) -> list[int]:
        return [s for s, k, st_, _ in self.entries if k == kind and st_ == step]

    def calls(self, step: str) -> int:
        return len(self.seq("start", step))


RECORDER = Recorder()


def fake_run(p: FakeParams, ctx: ActionContext) -> StepResult:
    RECORDER.note("start", ctx.step_id, p.tag)
    try:
        behaviour = RECORDER.behaviours.get(p.tag) or RECORDER.behaviours.get(ctx.step_id)
        return behaviour(p, ctx) if behaviour else StepResult(StepStatus.SUCCEEDED, {"value": p.tag or ctx.step_id})
    finally:
        RECORDER.note("end", ctx.step_id, p.tag)


FAKE = ActionSpec(
    name="fake",
    params=FakeParams,
    description="a test double",
    touches=lambda p: (Touch("runs", p.tag),),
    idempotent=True,
    outputs=frozenset({"value"}),
    run=fake_run,
)


@pytest.fixture(autouse=True)
def fake_action(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    monkeypatch.setitem(REGISTRY._specs, "fake", FAKE)
    RECORDER.entries.clear()
    RECORDER.behaviours.clear()
    return RECORDER


def write_runbook(directory: Path, steps: list[dict[str, Any]], **spec: Any) -> Path:
    doc = {"apiVersion": "drctl/v1", "kind": "Runbook", "metadata": {"name": "t"}, "spec": {"steps": steps, **spec}}
    path = directory / "rb.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


@dataclass
class Harness:
    directory: Path
    events: list[RunEvent] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    journal: RunJournal | None = None

    def executor(self, **kwargs: Any) -> Executor:
        if self.journal is None:
            self.journal = RunJournal(self.directory / "runs.sqlite")
        kwargs.setdefault("env", {})
        kwargs.setdefault("sleep", self.sleeps.append)
        return Executor(self.journal, observer=self.events.append, **kwargs)

    def run(self, steps: list[dict[str, Any]], options: RunOptions | None = None, **spec: Any) -> Any:
        path = write_runbook(self.directory, steps, **spec)
        return self.executor().run(load_runbook(path), path, options or RunOptions())

    def messages(self, kind: str, step: str | None = None) -> list[str]:
        return [e.message for e in self.events if e.kind == kind and (step is None or e.step_id == step)]


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def step(step_id: str, **kw: Any) -> dict[str, Any]:
    return {"id": step_id, "action": "fake", **kw}


# -- order, tiers and parallelism -----------------------------------------------------------------------------


@st.composite
def graphs(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 7))
    tiers = sorted(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))
    steps = []
    for i in range(n):
        earlier = [f"s{j}" for j in range(i) if tiers[j] <= tiers[i]]
        needs = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        steps.append(step(f"s{i}", tier=tiers[i], needs=needs))
    return steps


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graphs())
def test_needs_and_tiers_are_respected_and_first_wave_runs_concurrently(steps: list[dict[str, Any]]) -> None:
    RECORDER.entries.clear()  # hypothesis runs every example within one use of the fixture
    RECORDER.behaviours.clear()
    first_tier = min(s["tier"] for s in steps)
    first_wave = [s["id"] for s in steps if s["tier"] == first_tier and not s["needs"]]
    # Every step of the first wave waits for all the others to arrive: a serial executor would break the
    # barrier (timeout) and fail the run, so success proves they overlapped.
    barrier = threading.Barrier(len(first_wave), timeout=10)

    def meet(p: FakeParams, ctx: ActionContext) -> StepResult:
        barrier.wait()
        return StepResult(StepStatus.SUCCEEDED, {"value": "x"})

    RECORDER.behaviours.update(dict.fromkeys(first_wave, meet))
    with tempfile.TemporaryDirectory() as d:
        h = Harness(Path(d))
        outcome = h.run(steps, RunOptions(max_parallel=len(steps)))
        assert h.journal is not None
        h.journal.close()
    assert outcome.status == RunStatus.SUCCEEDED, h.events
    by_id = {s["id"]: s for s in steps}
    for s in steps:
        (start,) = RECORDER.seq("start", s["id"])
        for need in s["needs"]:
            assert RECORDER.seq("end", need)[0] < start, f"{s['id']} started before its need {need} ended"
        for other in steps:
            if other["tier"] < s["tier"]:
                assert RECORDER.seq("end", other["id"])[0] < start, "tier barrier crossed"
    starts = [RECORDER.seq("start", s)[0] for s in first_wave]
    ends = [RECORDER.seq("end", s)[0] for s in first_wave]
    assert max(starts) < min(ends), "first-wave steps did not overlap"
    assert set(by_id) == {e[2] for e in RECORDER.entries}


def test_concurrency_is_bounded(harness: Harness) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    def count(p: FakeParams, ctx: ActionContext) -> StepResult:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if running == 2:
                gate.set()
        gate.wait(10)  # hold the first two until both are in, so the bound is what limits the third
        with lock:
            running -= 1
        return StepResult(StepStatus.SUCCEEDED)

    RECORDER.behaviours.update({f"s{i}": count for i in range(5)})
    outcome = harness.run([step(f"s{i}") for i in range(5)], RunOptions(max_parallel=2))
    assert outcome.status == RunStatus.SUCCEEDED
    assert peak == 2


# -- retries and timeouts ---------------------------------------------------------------------------------------


def flaky(failures: int, error: Exception) -> Behaviour:
    left = [failures]

    def behaviour(p: FakeParams, ctx: ActionContext) -> StepResult:
        if left[0] > 0:
            left[0] -= 1
            raise error
        return StepResult(StepStatus.SUCCEEDED, {"value": "ok"})

    return behaviour


def test_transient_errors_are_retried_with_the_steps_backoff(harness: Harness) -> None:
    RECORDER.behaviours["a"] = flaky(2, Transient("throttled"))
    retry = {"attempts": 4, "backoff": "10s", "max_backoff": "15s"}
    outcome = harness.run([step("a", retry=retry)])
    assert outcome.status == RunStatus.SUCCEEDED
    assert RECORDER.calls("a") == 3
    assert harness.sleeps == [10.0, 15.0]
    assert harness.journal is not None
    assert harness.journal.steps(outcome.run_id)["a"].attempts == 3


def test_permanent_errors_and_plain_failures_are_not_retried(harness: Harness) -> None:
    RECORDER.behaviours["a"] = flaky(5, Permanent("access denied"))
    RECORDER.behaviours["b"] = lambda p, ctx: StepResult(StepStatus.FAILED, message="bad", retryable=False)
    steps = [step("a", retry={"attempts": 5}, on_error="continue"), step("b", retry={"attempts": 5})]
    outcome = harness.run(steps)
    assert RECORDER.calls("a") == 1
    assert RECORDER.calls("b") == 1
    assert outcome.status == RunStatus.FAILED
    assert harness.sleeps == []


def test_retryable_result_is_retried_until_attempts_run_out(harness: Harness) -> None:
    RECORDER.behaviours["a"] = lambda p, ctx: StepResult(StepStatus.FAILED, message="busy", retryable=True)
    outcome = harness.run([step("a", retry={"attempts": 3})])
    assert RECORDER.calls("a") == 3
    assert outcome.status == RunStatus.FAILED
    assert harness.journal is not None
    assert harness.journal.steps(outcome.run_id)["a"].error == "busy"


def test_timeout_fails_the_step_and_the_action_sees_its_deadline(harness: Harness) -> None:
    clock = ManualClock()
    seen: list[bool] = []

    def slow(p: FakeParams, ctx: ActionContext) -> StepResult:
        assert ctx.deadline == clock.now + 5
        assert not ctx.cancelled()
        clock.now += 6  # the work took longer than the timeout
        seen.append(ctx.cancelled())
        return StepResult(StepStatus.SUCCEEDED)

    RECORDER.behaviours["a"] = slow
    path = write_runbook(harness.directory, [step("a", timeout="5s")])
    outcome = harness.executor(clock=clock).run(load_runbook(path), path, RunOptions())
    assert seen == [True]
    assert outcome.status == RunStatus.FAILED
    assert harness.journal is not None
    assert harness.journal.steps(outcome.run_id)["a"].error == "timed out after 5s"


# -- on_error, when, approvals --------------------------------------------------------------------------------


def test_on_error_continue_goes_on_and_ends_partially_failed(harness: Harness) -> None:
    RECORDER.behaviours["a"] = flaky(1, Permanent("nope"))
    steps = [step("a", on_error="continue"), step("b", needs=["a"]), step("c"), step("d", tier=2)]
    outcome = harness.run(steps)
    assert outcome.status == RunStatus.PARTIALLY_FAILED
    assert outcome.exit_code == 1
    assert outcome.steps == {
        "a": StepState.FAILED,
        "b": StepState.SKIPPED,
        "c": StepState.SUCCEEDED,
        "d": StepState.SUCCEEDED,
    }
    assert RECORDER.calls("b") == 0


def test_when_filters_by_mode_and_a_skipped_need_does_not_block(harness: Harness) -> None:
    outcome = harness.run([step("a", when="drill"), step("b", needs=["a"])], RunOptions(mode="failover"))
    assert outcome.status == RunStatus.SUCCEEDED
    assert outcome.steps["a"] == StepState.SKIPPED
    assert RECORDER.calls("a") == 0
    assert RECORDER.calls("b") == 1


def test_drill_auto_approves_and_records_it(harness: Harness) -> None:
    outcome = harness.run([step("a", approval="required")], RunOptions(mode="drill"))
    assert outcome.status == RunStatus.SUCCEEDED
    assert harness.messages("approval", "a") == ["auto-approved (drill)"]


def test_failover_gate_without_approval_fails_naming_the_flag(harness: Harness) -> None:
    outcome = harness.run([step("a", approval="required")])
    assert outcome.status == RunStatus.FAILED
    assert RECORDER.calls("a") == 0
    assert harness.journal is not None
    error = harness.journal.steps(outcome.run_id)["a"].error
    assert error is not None
    assert "--approve a" in error


def test_failover_gate_passes_with_approve(harness: Harness) -> None:
    outcome = harness.run([step("a", approval="required")], RunOptions(approve=frozenset({"a"})))
    assert outcome.status == RunStatus.SUCCEEDED
    assert harness.messages("approval", "a") == ["approved by --approve a"]


def test_failover_gate_asks_the_approver(harness: Harness) -> None:
    asked: list[str] = []

    def approver(s: Step) -> bool:
        asked.append(s.id)
        return s.id == "yes"

    path = write_runbook(harness.directory, [step("yes", approval="required"), step("no", approval="required")])
    outcome = harness.executor(approver=approver).run(load_runbook(path), path, RunOptions())
    assert sorted(asked) == ["no", "yes"]
    assert outcome.steps["yes"] == StepState.SUCCEEDED
    assert outcome.steps["no"] == StepState.FAILED
    assert harness.messages("approval", "yes") == ["approved at the prompt"]


def test_a_waiting_gate_runs_once_drctl_approve_records_an_approval(harness: Harness) -> None:
    """The gate waits on a worker while other steps go on; an approval written to the journal (as ``drctl
    approve`` does from another process) lets it run, and the run's events say who approved."""
    path = write_runbook(harness.directory, [step("gate", approval="required"), step("other")])
    harness.executor()  # opens the harness's journal
    assert harness.journal is not None
    journal = harness.journal

    def approve_once_waiting(event: RunEvent) -> None:
        harness.events.append(event)
        if event.step_id == "gate" and event.message.startswith("waiting for approval"):
            # From another thread, as another process would: the gate must notice it by reading the journal.
            threading.Thread(
                target=journal.approve, args=(event.run_id, "gate", "alice", "alice@ops-1", "change 42")
            ).start()

    executor = Executor(journal, env={}, observer=approve_once_waiting, sleep=harness.sleeps.append)
    options = RunOptions(approval_wait=timedelta(minutes=5))
    outcome = executor.run(load_runbook(path), path, options)
    assert outcome.status == RunStatus.SUCCEEDED
    assert RECORDER.calls("gate") == 1
    (message,) = harness.messages("approval", "gate")
    assert message.startswith("approved by alice (from alice@ops-1) at ")
    assert message.endswith("with drctl approve: change 42")


def test_a_waiting_gate_fails_when_no_approval_comes_in_time(harness: Harness) -> None:
    outcome = harness.run([step("gate", approval="required")], RunOptions(approval_wait=timedelta(milliseconds=50)))
    assert outcome.status == RunStatus.FAILED
    assert RECORDER.calls("gate") == 0
    assert harness.journal is not None
    error = harness.journal.steps(outcome.run_id)["gate"].error or ""
    assert f"no approval came in 50ms: drctl approve {outcome.run_id} gate" in error


def test_an_approval_recorded_after_a_failed_gate_is_taken_at_resume(harness: Harness) -> None:
    outcome = harness.run([step("gate", approval="required")])
    assert outcome.status == RunStatus.FAILED
    assert harness.journal is not None
    harness.journal.approve(outcome.run_id, "gate", "bob@ops-2", "bob@ops-2", None)
    resumed = harness.executor().resume(outcome.run_id)
    assert resumed.status == RunStatus.SUCCEEDED
    assert RECORDER.calls("gate") == 1
    assert harness.messages("approval", "gate")[-1].startswith("approved by bob@ops-2 at ")


def test_a_run_whose_lock_is_lost_stops_and_records_nothing_more(harness: Harness) -> None:
    """The journal is fenced by the lock: once the lease is lost the run raises LockLost, starts no further
    step, and stops the running ones through ``cancelled()``."""
    lost = threading.Event()

    def fence() -> None:
        if lost.is_set():
            raise LockLost("lost the run lock s3://b/locks/x.json (fencing token 3): taken over; this run stopped")

    def lose_the_lock(p: FakeParams, ctx: ActionContext) -> StepResult:
        lost.set()
        return StepResult(StepStatus.SUCCEEDED, {"value": "a"})

    RECORDER.behaviours["a"] = lose_the_lock
    path = write_runbook(harness.directory, [step("a"), step("b", needs=["a"])])
    executor = harness.executor()
    assert harness.journal is not None
    harness.journal.fence(fence)
    with pytest.raises(LockLost, match="fencing token 3"):
        executor.run(load_runbook(path), path, RunOptions())
    assert RECORDER.calls("b") == 0
    harness.journal.fence(None)
    (run,) = harness.journal.runs()
    assert run.status == RunStatus.RUNNING  # not marked finished by a run that no longer holds the lock
    assert harness.journal.steps(run.run_id)["a"].status == StepState.RUNNING


# -- compensation ---------------------------------------------------------------------------------------------


def undo(step_id: str) -> dict[str, Any]:
    return {"action": "fake", "with": {"tag": f"undo-{step_id}:${{steps.{step_id}.outputs.value}}"}}


def runs_of(step_id: str) -> int:
    """How often the step itself ran: its compensate runs under the same step id, tagged ``undo-``."""
    return sum(
        1 for _, kind, s, tag in RECORDER.entries if kind == "start" and s == step_id and not tag.startswith("undo")
    )


def undo_tags() -> list[str]:
    return [tag for _, kind, _, tag in sorted(RECORDER.entries) if kind == "start" and tag.startswith("undo")]


def test_failure_compensates_in_reverse_completion_order_then_spec_compensation(harness: Harness) -> None:
    RECORDER.behaviours["d"] = flaky(1, Permanent("broken"))
    steps = [
        step("a", compensate=undo("a")),
        step("b", needs=["a"], compensate=undo("b")),
        step("c", needs=["b"]),
        step("d", needs=["c"]),
    ]
    compensation = [{"action": "fake", "with": {"tag": "undo-all"}}]
    outcome = harness.run(steps, compensation=compensation)
    assert outcome.status == RunStatus.FAILED
    assert undo_tags() == ["undo-b:b", "undo-a:a", "undo-all"]


def test_drill_is_undone_at_the_end_unless_kept(harness: Harness) -> None:
    outcome = harness.run([step("a", compensate=undo("a"))], RunOptions(mode="drill"))
    assert outcome.status == RunStatus.SUCCEEDED
    assert undo_tags() == ["undo-a:a"]
    RECORDER.entries.clear()
    harness.run([step("a", compensate=undo("a"))], RunOptions(mode="drill", keep=True))
    assert undo_tags() == []


def test_successful_failover_is_not_compensated(harness: Harness) -> None:
    harness.run([step("a", compensate=undo("a"))])
    assert undo_tags() == []


# -- resume and interruption ----------------------------------------------------------------------------------


class CrashingJournal(RunJournal):
    """Dies (as a kill would) when ``step`` is recorded as succeeded."""

    crash_on = "b"

    def step_succeeded(self, run_id: str, step_id: str, outputs: Mapping[str, Any]) -> None:
        if step_id == self.crash_on:
            raise StateError("simulated crash")
        super().step_succeeded(run_id, step_id, outputs)


def test_resume_after_a_crash_runs_only_what_did_not_succeed(tmp_path: Path) -> None:
    steps = [
        step("a"),
        step("b", needs=["a"], with_={}),
        step("c", needs=["b"]),
    ]
    steps[1].pop("with_")
    steps[1]["with"] = {"tag": "${steps.a.outputs.value}"}
    path = write_runbook(tmp_path, steps)
    journal = CrashingJournal(tmp_path / "runs.sqlite")
    with pytest.raises(StateError):
        Executor(journal, env={}).run(load_runbook(path), path, RunOptions(), run_id="r1")
    journal.close()
    assert (RECORDER.calls("a"), RECORDER.calls("c")) == (1, 0)

    journal2 = RunJournal(tmp_path / "runs.sqlite")
    assert journal2.run("r1") is not None
    outcome = Executor(journal2, env={}).resume("r1")
    assert outcome.status == RunStatus.SUCCEEDED
    assert RECORDER.calls("a") == 1, "a succeeded before the crash and must not run again"
    assert [tag for _, kind, s, tag in RECORDER.entries if kind == "start" and s == "b"] == ["a", "a"]
    assert RECORDER.calls("c") == 1
    assert journal2.run("r1").status == RunStatus.SUCCEEDED  # type: ignore[union-attr]


def test_resume_after_a_rollback_runs_again_what_the_rollback_undid(harness: Harness) -> None:
    """a and b succeeded and were compensated when c failed; c' (no compensate) was never undone. A resume
    must launch a and b again, not trust their journaled success, and keep c's sibling's outputs."""
    RECORDER.behaviours["c"] = flaky(1, Permanent("broken once"))
    steps = [
        step("a", compensate=undo("a")),
        step("b", needs=["a"], compensate=undo("b")),
        step("kept", needs=["a"]),
        step("c", needs=["b", "kept"]),
    ]
    outcome = harness.run(steps)
    assert outcome.status == RunStatus.FAILED
    assert undo_tags() == ["undo-b:b", "undo-a:a"]

    resumed = harness.executor().resume(outcome.run_id)
    assert resumed.status == RunStatus.SUCCEEDED
    assert (runs_of("a"), runs_of("b"), runs_of("kept"), runs_of("c")) == (2, 2, 1, 2)
    assert any("2 of them undone by the rollback" in m for m in harness.messages("resumed"))


def test_a_step_run_again_after_its_rollback_counts_only_its_newest_undo(harness: Harness) -> None:
    """Each resume that fails again undoes a again, so each resume runs it again; one that succeeds leaves it
    trusted: the undo events are compared with the step's newest success, not merely counted."""
    RECORDER.behaviours["c"] = flaky(2, Permanent("broken twice"))
    first = harness.run([step("a", compensate=undo("a")), step("c", needs=["a"])])
    assert first.status == RunStatus.FAILED
    assert harness.executor().resume(first.run_id).status == RunStatus.FAILED
    assert harness.executor().resume(first.run_id).status == RunStatus.SUCCEEDED
    assert (runs_of("a"), runs_of("c")) == (3, 3)


def test_resume_refuses_a_changed_runbook(harness: Harness) -> None:
    RECORDER.behaviours["a"] = flaky(1, Permanent("x"))
    outcome = harness.run([step("a")])
    path = harness.directory / "rb.yaml"
    path.write_text(path.read_text() + "\n# edited\n")
    with pytest.raises(InvalidInput, match="changed since run"):
        harness.executor().resume(outcome.run_id)


def test_ctrl_c_stops_new_steps_waits_for_running_ones_and_records_interrupted(harness: Harness) -> None:
    a_running = threading.Event()

    def until_cancelled(p: FakeParams, ctx: ActionContext) -> StepResult:
        a_running.set()
        while not ctx.cancelled():
            threading.Event().wait(0.01)  # poll, as a long action does; the cancel flag is the synchronisation
        return StepResult(StepStatus.FAILED, message="stopped")

    RECORDER.behaviours["a"] = until_cancelled

    def interrupt_on_b(event: RunEvent) -> None:
        harness.events.append(event)
        if event.step_id == "b" and event.kind == "running":
            assert a_running.wait(10)
            raise KeyboardInterrupt

    path = write_runbook(harness.directory, [step("a"), step("b"), step("c", needs=["a"])])
    journal = RunJournal(harness.directory / "runs.sqlite")
    # b may be launched before a runs; launch order follows the file, so a is submitted first.
    outcome = Executor(journal, env={}, observer=interrupt_on_b).run(load_runbook(path), path, RunOptions())
    assert outcome.status == RunStatus.INTERRUPTED
    assert outcome.exit_code == 130
    assert RECORDER.calls("c") == 0
    assert RECORDER.seq("end", "a"), "the running step was waited for"
    assert journal.run(outcome.run_id).status == RunStatus.INTERRUPTED  # type: ignore[union-attr]
