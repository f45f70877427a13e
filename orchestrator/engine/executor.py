"""Run a checked runbook: steps in parallel where needs and tiers allow, every change journaled.

The semantics are those of docs/runbooks.md; the choices that document leaves open:

- Scheduling happens on the calling (main) thread; steps run on a bounded ``ThreadPoolExecutor``. A step
  starts when it is in the current tier and all its needs have ended. A tier starts once every step of the
  tiers before it has ended and no ``on_error: fail`` step failed (such a failure stops the run anyway); a
  step that failed under ``on_error: continue`` lets the run go on, as the runbook asked.
- A step whose need failed (or was itself skipped for that reason) is skipped: its input is missing. A need
  skipped by ``when`` does not block.
- Attempts are retried by tenacity, configured from the step's ``retry`` (attempts, doubling backoff capped
  at ``max_backoff``), and only on ``Transient``: a ``StepResult`` marked ``retryable``, a ``Transient``
  raised by the action, or a timed-out attempt. Anything else fails the step at once.
- Timeouts: a thread cannot be killed, so the attempt's context carries the deadline and turns
  ``cancelled()`` true once it passes; an attempt that returns after its deadline has timed out, whatever
  it returned.
- Approvals: drills pass gates automatically and record "auto-approved (drill)"; otherwise ``--approve
  STEP`` / ``--approve-all`` approve; else the ``approver`` (a TTY prompt, asked on the main thread while
  running steps go on) decides; without one (non-TTY) the step fails naming the flag.
- Compensation runs after a failed run (an ``on_error: fail`` step failed) and at the end of every drill
  unless ``keep``: each succeeded step's ``compensate`` in the reverse order the steps ended, then
  ``spec.compensation`` in order. Compensations run once each (no retry); a failing one is recorded and the
  others still run. An interrupted run is not compensated: it can be resumed. A resumed run runs again every
  step whose ``compensate`` ran, since the rollback undid (or may have half undone) what it did.
- Ctrl-C (``KeyboardInterrupt`` on the main thread) stops new steps, sets the cancel flag running steps
  poll, waits for them, and records the run INTERRUPTED (exit 130).
- Secrets never reach the journal, the events or the outputs: every text is passed through ``redact``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from orchestrator.actions.base import ActionSpec, OutputValue, RunMode, StepResult, StepStatus
from orchestrator.actions.lookahead import SelectionLookahead, plan_of
from orchestrator.actions.registry import REGISTRY, ActionRegistry
from orchestrator.drill.scope import DrillScope
from orchestrator.engine.context import StepContext, StoreFactoryMaker, default_store_factory
from orchestrator.engine.events import RunEvent, RunObserver, ignore
from orchestrator.engine.journal import RunJournal, RunStatus, StepState
from orchestrator.engine.redact import env_references, named_secret_envs, redact, secrets_of
from orchestrator.errors import Cancelled, DrError, ExitCode, InvalidInput, LockLost, StateError, Transient
from orchestrator.runbook.fields import format_duration
from orchestrator.runbook.interpolate import ResolveContext, resolve_params
from orchestrator.runbook.loader import LoadedRunbook, load_runbook
from orchestrator.runbook.models import ActionCall, Step

_TERMINAL = frozenset({StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED})


_OTHER_MODE = "runs only in "


def other_mode_skip(when: str, mode: str) -> str:
    """The skip reason of a step whose ``when`` excludes this run's mode; the report recognises it by
    ``skipped_for_other_mode`` (journals keep the text), so the two are defined together."""
    return f"{_OTHER_MODE}{when} mode; this is a {mode}"


def skipped_for_other_mode(reason: str | None) -> bool:
    return (reason or "").startswith(_OTHER_MODE)


APPROVAL_POLL_S = 0.5
"""How often a waiting gate reads the journal for ``drctl approve``: a person notices no half-second delay."""

UNDONE = "undone"
"""The event kind journaled for a succeeded step once its ``compensate`` has run."""


def undone_steps(journal: RunJournal, run_id: str) -> frozenset[str]:
    """Steps whose success a rollback has since undone: succeeded, then compensated, and not run again."""
    steps = journal.steps(run_id)
    undone: set[str] = set()
    for event in journal.events(run_id):
        rec = steps.get(event.step_id or "")
        if event.kind == UNDONE and rec is not None and (rec.finished or "") <= event.at:
            undone.add(rec.step_id)
    return frozenset(undone)


class StepFailed(DrError):
    """An attempt failed in a way a retry will not fix."""


class AttemptFailed(Transient):
    """An attempt failed and the action said a later one may pass."""


class AttemptTimedOut(Transient):
    """An attempt ran past the step's ``timeout``; retried like any transient failure if attempts remain."""


@dataclass(frozen=True)
class RunOptions:
    mode: RunMode = "failover"
    approve: frozenset[str] = frozenset()
    approve_all: bool = False
    keep: bool = False
    max_parallel: int = 4
    approval_wait: timedelta | None = None
    """How long a gated step waits for ``drctl approve RUN STEP`` (from another terminal, or CI) before it fails;
    None: a gate not approved at launch or at the prompt fails at once."""


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: RunStatus
    steps: Mapping[str, StepState]

    @property
    def exit_code(self) -> ExitCode:
        return exit_code_of(self.status)


def exit_code_of(status: RunStatus) -> ExitCode:
    """0 succeeded (or still running, for ``status``), 130 interrupted, 1 failed or partially failed."""
    if status in (RunStatus.SUCCEEDED, RunStatus.RUNNING):
        return ExitCode.OK
    return ExitCode.INTERRUPTED if status == RunStatus.INTERRUPTED else ExitCode.FAILED


def runbook_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def param_overrides(params: Mapping[str, Any]) -> dict[str, str]:
    """Bound parameter values as ``-p`` text again, to reload a runbook on resume."""
    return {k: ("true" if v else "false") if isinstance(v, bool) else str(v) for k, v in params.items()}


@dataclass
class _Run:
    """The mutable state of one run, touched by the main thread and (outputs, order) by workers under lock."""

    run_id: str
    loaded: LoadedRunbook
    options: RunOptions
    secrets: frozenset[str]
    states: dict[str, StepState]
    outputs: dict[str, dict[str, OutputValue]]
    ended: list[str] = field(default_factory=list)
    """Succeeded steps in the order they ended: compensation runs in the reverse."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    failed_hard: bool = False
    failed_soft: bool = False
    drill: DrillScope | None = None
    lookahead: SelectionLookahead | None = None


class Executor:
    def __init__(
        self,
        journal: RunJournal,
        *,
        env: Mapping[str, str],
        registry: ActionRegistry = REGISTRY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        observer: RunObserver = ignore,
        store_factory: StoreFactoryMaker = default_store_factory,
        approver: Callable[[Step], bool] | None = None,
    ) -> None:
        """``approver`` asks a person about a gated step (the CLI passes a prompt only when stdin is a TTY);
        without one, a gate not approved by the options fails its step."""
        self._journal = journal
        self._env = dict(env)
        self._registry = registry
        self._clock = clock
        self._sleep = sleep
        self._observer = observer
        self._store_factory = store_factory
        self._approver = approver
        self._stop = threading.Event()

    # -- entry points ---------------------------------------------------------------------------------------

    def run(
        self,
        loaded: LoadedRunbook,
        path: Path,
        options: RunOptions,
        run_id: str | None = None,
        *,
        disaster_at: datetime | None = None,
    ) -> RunOutcome:
        """``disaster_at`` (aware): when the disaster struck, if not at the run's start; only journaled, for
        the report's RPO."""
        run_id = run_id or new_run_id()
        self._journal.start_run(
            run_id,
            str(path.resolve()),
            runbook_sha256(path),
            loaded.runbook.metadata.name,
            loaded.parameters,
            options.mode,
            disaster_at=None if disaster_at is None else disaster_at.isoformat(),
        )
        states = {s: StepState.PENDING for s in loaded.graph.steps}
        for step_id in states:
            self._journal.step_state(run_id, step_id, StepState.PENDING)
        run = _Run(run_id, loaded, options, self._secrets(loaded), states, {})
        return self._execute(run)

    def resume(self, run_id: str, options: RunOptions | None = None, stack: Any = None) -> RunOutcome:
        """Run again the steps of ``run_id`` that did not succeed, with the outputs of those that did."""
        record = self._journal.run(run_id)
        if record is None:
            raise InvalidInput(f"no run {run_id!r} in {self._journal.path}")
        if record.status == RunStatus.SUCCEEDED:
            raise InvalidInput(f"run {run_id} already succeeded; nothing to resume")
        path = Path(record.runbook_path)
        try:
            sha = runbook_sha256(path)
        except OSError as err:
            raise InvalidInput(f"cannot read {path} to resume run {run_id}: {err.strerror or err}") from err
        if sha != record.runbook_sha256:
            raise InvalidInput(
                f"{path} changed since run {run_id} started (sha256 {record.runbook_sha256[:12]} -> {sha[:12]}); "
                "resuming would mix two runbooks: start a new run instead"
            )
        loaded = load_runbook(path, param_overrides(record.params), stack)
        mode: RunMode = "drill" if record.mode == "drill" else "failover"
        options = replace(options or RunOptions(), mode=mode)
        done = self._journal.steps(run_id)
        undone = undone_steps(self._journal, run_id)
        states: dict[str, StepState] = {}
        outputs: dict[str, dict[str, OutputValue]] = {}
        for step_id in loaded.graph.steps:
            rec = done.get(step_id)
            if rec is not None and rec.status == StepState.SUCCEEDED and step_id not in undone:
                states[step_id] = StepState.SUCCEEDED
                outputs[step_id] = rec.outputs
            else:
                states[step_id] = StepState.PENDING
                self._journal.step_state(run_id, step_id, StepState.PENDING)
        ended = sorted((s for s in states if states[s] == StepState.SUCCEEDED), key=lambda s: done[s].finished or "")
        self._journal.reopen_run(run_id)
        run = _Run(run_id, loaded, options, self._secrets(loaded), states, outputs, ended)
        todo = len(states) - len(ended)
        again = f" ({len(undone)} of them undone by the rollback)" if undone else ""
        self._emit(run, "resumed", f"{len(ended)} steps already succeeded; running the other {todo}{again}")
        return self._execute(run)

    # -- the schedule ---------------------------------------------------------------------------------------

    def _secrets(self, loaded: LoadedRunbook) -> frozenset[str]:
        calls: list[ActionCall] = [*loaded.runbook.spec.steps, *loaded.runbook.spec.compensation]
        calls += [s.compensate for s in loaded.runbook.spec.steps if s.compensate is not None]
        referenced: set[str] = set()
        for call in calls:
            dumped = call.with_.model_dump(by_alias=True)
            referenced |= env_references(dumped) | named_secret_envs(dumped)
        return secrets_of(self._env, referenced)

    def _drill_scope(self, run: _Run) -> DrillScope:
        record = self._journal.run(run.run_id)
        started = record.started if record is not None else ""

        def note(kind: str, location: str, resource_id: str, detail: Mapping[str, Any]) -> None:
            self._journal.record_resource(run.run_id, kind, location, resource_id, detail)
            self._emit(run, "created", f"{kind} {resource_id} in {location} (undone by the drill's cleanup)")

        return DrillScope.of(run.run_id, started, run.loaded.stack, note)

    def _execute(self, run: _Run) -> RunOutcome:
        self._stop.clear()  # one executor may run again (a resume) after an interrupted run
        if run.options.mode == "drill":
            run.drill = self._drill_scope(run)
        run.lookahead = self._lookahead(run)
        graph = run.loaded.graph
        mode = run.options.mode
        for step_id, step in graph.steps.items():
            if run.states[step_id] == StepState.PENDING and not step.runs_in(mode):
                self._set(run, step_id, StepState.SKIPPED, other_mode_skip(step.when, mode))
        interrupted = False
        running: dict[Future[None], str] = {}
        pool = ThreadPoolExecutor(max_workers=max(1, run.options.max_parallel), thread_name_prefix="step")
        try:
            while True:
                if not run.failed_hard:
                    for step_id in self._ready(run, running):
                        self._launch(run, step_id, pool, running)
                if not running:
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    running.pop(future)
                    future.result()  # the worker records its own failures; this surfaces journal errors
        except KeyboardInterrupt:
            interrupted = True
            self._stop.set()
            self._emit(run, "interrupted", "Ctrl-C: no new steps; waiting for the running ones to stop")
            self._drain(running)
        except LockLost:
            # Another run may hold the lock now: stop every step that polls, record nothing (the journal is
            # fenced), and leave the run resumable once the lock is ours again.
            self._stop.set()
            self._drain(running)
            raise
        finally:
            pool.shutdown(wait=True)
            run.lookahead.close()
        if interrupted:
            for step_id, state in run.states.items():
                if state in (StepState.PENDING, StepState.RUNNING):
                    self._journal.step_state(run.run_id, step_id, StepState.INTERRUPTED, error="run interrupted")
            status = RunStatus.INTERRUPTED
        else:
            for step_id, state in run.states.items():
                if state == StepState.PENDING:  # never started: the run stopped at a failure
                    self._set(run, step_id, StepState.SKIPPED, "not started: the run failed")
            status = (
                RunStatus.FAILED
                if run.failed_hard
                else RunStatus.PARTIALLY_FAILED
                if run.failed_soft
                else RunStatus.SUCCEEDED
            )
            if run.failed_hard or (mode == "drill" and not run.options.keep):
                self._compensate(run)
        self._journal.finish_run(run.run_id, status)
        self._emit(run, "finished", f"run {status.value}")
        return RunOutcome(run.run_id, status, dict(run.states))

    def _drain(self, running: dict[Future[None], str]) -> None:
        """Wait for running steps after Ctrl-C; a second Ctrl-C is ignored so their ends still get recorded."""
        while running:
            try:
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                continue
            for future in finished:
                running.pop(future)

    def _ready(self, run: _Run, running: Mapping[Future[None], str]) -> Iterator[str]:
        graph = run.loaded.graph
        states = run.states
        for tier in graph.tiers:
            members = [s for s in graph.steps.values() if s.tier == tier]
            for step in members:
                if states[step.id] != StepState.PENDING:
                    continue
                if any(states[n] not in _TERMINAL for n in step.needs):
                    continue
                blocked = [n for n in step.needs if states[n] == StepState.FAILED or self._skipped_by_failure(run, n)]
                if blocked:
                    self._set(run, step.id, StepState.SKIPPED, f"needs {blocked[0]!r}, which did not succeed")
                    run.failed_soft = True
                    continue
                yield step.id
            if any(states[s.id] not in _TERMINAL for s in members):
                return  # the tier barrier: later tiers wait until this one has ended

    def _skipped_by_failure(self, run: _Run, step_id: str) -> bool:
        step = run.loaded.graph.steps[step_id]
        return run.states[step_id] == StepState.SKIPPED and step.runs_in(run.options.mode)

    def _launch(self, run: _Run, step_id: str, pool: ThreadPoolExecutor, running: dict[Future[None], str]) -> None:
        step = run.loaded.graph.steps[step_id]
        if step.approval == "required":
            given = self._journal.approval(run.run_id, step_id)
            if run.options.mode == "drill":
                self._emit(run, "approval", "auto-approved (drill)", step_id)
            elif run.options.approve_all or step_id in run.options.approve:
                flag = "--approve-all" if run.options.approve_all else f"--approve {step_id}"
                self._emit(run, "approval", f"approved by {flag}", step_id)
            elif given is not None:
                self._emit(run, "approval", given.describe(), step_id)
            elif run.options.approval_wait is not None:
                # Waiting happens on a worker, so the rest of the run goes on while a person is found.
                self._set(
                    run, step_id, StepState.RUNNING, f"waiting for approval: drctl approve {run.run_id} {step_id}"
                )
                running[pool.submit(self._await_approval, run, step, run.options.approval_wait)] = step_id
                return
            elif self._approver is not None and self._approver(step):
                self._emit(run, "approval", "approved at the prompt", step_id)
            else:
                asked = "was not approved at the prompt" if self._approver is not None else "needs approval"
                message = (
                    f"{asked}: rerun with --approve {step_id} (or --approve-all) once a person agrees, "
                    f"or with --wait-for-approval to wait for drctl approve"
                )
                self._set(run, step_id, StepState.FAILED, message)
                self._failed(run, step)
                return
        self._set(run, step_id, StepState.RUNNING, "started")
        running[pool.submit(self._step, run, step)] = step_id

    def _await_approval(self, run: _Run, step: Step, wait_for: timedelta) -> None:
        """Poll the journal for ``drctl approve`` until it comes, the wait ends, or the run is interrupted (the
        step is then left running, and recorded interrupted with the others)."""
        deadline = self._clock() + wait_for.total_seconds()
        while (given := self._journal.approval(run.run_id, step.id)) is None:
            if self._stop.is_set():
                return
            if self._clock() >= deadline:
                message = (
                    f"no approval came in {format_duration(wait_for)}: drctl approve {run.run_id} {step.id} "
                    f"once a person agrees, then drctl resume {run.run_id}"
                )
                self._set(run, step.id, StepState.FAILED, message)
                self._failed(run, step)
                return
            self._stop.wait(APPROVAL_POLL_S)
        self._emit(run, "approval", given.describe(), step.id)
        self._step(run, step)

    def _failed(self, run: _Run, step: Step) -> None:
        if step.on_error == "continue":
            run.failed_soft = True
        else:
            run.failed_hard = True

    # -- one step -------------------------------------------------------------------------------------------

    def _step(self, run: _Run, step: Step) -> None:
        try:
            self._step_body(run, step)
        finally:
            if run.lookahead is not None:
                run.lookahead.ended(step.id)

    def _step_body(self, run: _Run, step: Step) -> None:
        try:
            outputs = self._attempts(run, step)
        except StateError:
            raise
        except DrError as err:
            self._set(run, step.id, StepState.FAILED, str(err))
            self._failed(run, step)
            return
        except Exception as err:  # noqa: BLE001 - a bug in an action must fail its step, not hang the run
            self._set(run, step.id, StepState.FAILED, f"internal error: {type(err).__name__}: {err}")
            self._failed(run, step)
            return
        clean = {k: redact(v, run.secrets) if isinstance(v, str) else v for k, v in outputs.items()}
        with run.lock:
            run.outputs[step.id] = clean
            run.ended.append(step.id)
            run.states[step.id] = StepState.SUCCEEDED
        self._journal.step_succeeded(run.run_id, step.id, clean)
        self._emit(run, "succeeded", json.dumps(clean, sort_keys=True) if clean else "done", step.id)

    def _attempts(self, run: _Run, step: Step) -> Mapping[str, OutputValue]:
        waits = step.retry.waits()

        def backoff(state: RetryCallState) -> float:
            return waits[min(state.attempt_number, len(waits)) - 1].total_seconds() if waits else 0.0

        retrying = Retrying(
            stop=stop_after_attempt(step.retry.attempts),
            wait=backoff,
            retry=retry_if_exception_type(Transient),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda s: self._emit(
                run, "retry", f"attempt {s.attempt_number} failed; retrying in {backoff(s):g}s", step.id
            ),
        )
        result: Mapping[str, OutputValue] = retrying(self._journaled_attempt, run, step)
        return result

    def _journaled_attempt(self, run: _Run, step: Step) -> Mapping[str, OutputValue]:
        if self._stop.is_set():
            raise StepFailed("run interrupted before this attempt")
        number = self._journal.start_attempt(run.run_id, step.id)
        if run.lookahead is not None:
            run.lookahead.starting(step.id)
        try:
            outputs = self._attempt(run, step.id, step, step.timeout)
        except Exception as err:
            self._journal.finish_attempt(run.run_id, step.id, number, "failed", redact(str(err), run.secrets))
            raise
        self._journal.finish_attempt(run.run_id, step.id, number, "succeeded", None)
        return outputs

    def _attempt(
        self, run: _Run, step_id: str, call: ActionCall, timeout: timedelta | None, *, undoing: bool = False
    ) -> Mapping[str, OutputValue]:
        """One attempt of ``call``; raises on failure (``Transient`` when a retry may help)."""
        started = self._clock()
        try:
            result = self._call(run, step_id, call, timeout, undoing=undoing)
        except Cancelled:
            # An action that polls ``cancelled()`` stops by raising; past the deadline that is a timeout
            # (retried if attempts remain), otherwise the run was interrupted and the error stands.
            if timeout is None or self._clock() - started < timeout.total_seconds():
                raise
            result = StepResult(StepStatus.TIMED_OUT)
        if timeout is not None and self._clock() - started >= timeout.total_seconds():
            result = StepResult(StepStatus.TIMED_OUT)
        return _outputs_of(result, call.action, timeout, run.secrets)

    def _call(
        self, run: _Run, step_id: str, call: ActionCall, timeout: timedelta | None, *, undoing: bool = False
    ) -> StepResult:
        """``undoing``: a compensation, which never uses or asks for a lookup ahead (its parameters are not the
        step's, and the run's lookups have ended)."""
        spec: ActionSpec[Any] | None = self._registry.get(call.action)
        runner = spec.run if spec is not None else None
        if spec is None or runner is None:
            raise StepFailed(f"action {call.action!r} cannot run yet (no implementation)")
        with run.lock:
            steps = {k: dict(v) for k, v in run.outputs.items()}
        params = resolve_params(call.with_, self._resolve_context(run, steps))
        ctx = StepContext(
            step_id=step_id,
            mode=run.options.mode,
            env=self._env,
            stack=run.loaded.stack,
            deadline=None if timeout is None else self._clock() + timeout.total_seconds(),
            stop=self._stop,
            clock=self._clock,
            sink=lambda message: self._emit(run, "log", message, step_id),
            sleep=self._sleep,
            store_factory=self._store_factory,
            run_id=run.run_id,
            drill=run.drill,
            lookahead=None if undoing else run.lookahead,
        )
        return runner(params, ctx)

    def _resolve_context(self, run: _Run, steps: Mapping[str, Mapping[str, OutputValue]]) -> ResolveContext:
        return ResolveContext(
            params=run.loaded.parameters,
            stack=run.loaded.stack,
            steps=steps,
            env=self._env,
            run={"id": run.run_id, "mode": run.options.mode},
        )

    def _lookahead(self, run: _Run) -> SelectionLookahead:
        """The run's lookups ahead (``orchestrator.actions.lookahead``): each ``compute.start`` whose parameters
        need no other step's outputs can be looked up while the tier before it runs."""
        graph = run.loaded.graph
        before_run = self._resolve_context(run, {})
        steps: dict[str, tuple[str, int, Any]] = {}
        for wave in graph.waves:
            for step in wave.steps:
                params: Any = None
                pending = run.states[step.id] == StepState.PENDING  # on a resume, not the steps already done
                if step.action == "compute.start" and step.runs_in(run.options.mode) and pending:
                    try:
                        params = resolve_params(step.with_, before_run)
                    except Exception:  # noqa: BLE001 - planning is optional: the step resolves (and reports) it when it runs
                        params = None  # it reads another step's outputs, most often
                steps[step.id] = (step.action, wave.number, params)
        return SelectionLookahead(*plan_of(steps), clock=self._clock)

    # -- compensation ---------------------------------------------------------------------------------------

    def _compensate(self, run: _Run) -> None:
        graph = run.loaded.graph
        self._emit(run, "compensate", "undoing the run")
        for step_id in reversed(run.ended):
            step = graph.steps[step_id]
            if step.compensate is not None:
                self._undo(run, step, step.compensate, f"compensate {step_id}")
                # Journaled whether or not the undo worked: either way the step's effect can no longer be
                # trusted to be in place, so a resume must run the step again (see ``undone_steps``).
                self._emit(run, UNDONE, "undone by the run's compensation; a resume runs it again", step_id)
        for i, call in enumerate(run.loaded.runbook.spec.compensation, 1):
            self._undo(run, None, call, f"spec.compensation[{i}]")

    def _undo(self, run: _Run, step: Step | None, call: ActionCall, label: str) -> None:
        try:
            self._attempt(run, step.id if step else "compensation", call, None, undoing=True)
        except Exception as err:  # noqa: BLE001 - one failed undo must not stop the others; it is recorded
            self._emit(run, "compensate", f"{label} ({call.action}) failed: {redact(str(err), run.secrets)}")
            return
        self._emit(run, "compensate", f"{label} ({call.action}) done")

    # -- recording ------------------------------------------------------------------------------------------

    def _set(self, run: _Run, step_id: str, state: StepState, message: str) -> None:
        message = redact(message, run.secrets)
        with run.lock:
            run.states[step_id] = state
        error = message if state == StepState.FAILED else None
        self._journal.step_state(run.run_id, step_id, state, error=error)
        self._emit(run, state.value, message, step_id)

    def _emit(self, run: _Run, kind: str, message: str, step_id: str | None = None) -> None:
        message = redact(message, run.secrets)
        self._journal.event(run.run_id, kind, message, step_id)
        self._observer(RunEvent(run.run_id, kind, message, step_id))


def _outputs_of(
    result: StepResult, action: str, timeout: timedelta | None, secrets: frozenset[str]
) -> Mapping[str, OutputValue]:
    """The outputs of a successful attempt, or the exception that classifies its failure for tenacity."""
    if result.status == StepStatus.SUCCEEDED:
        return result.outputs
    if result.status == StepStatus.TIMED_OUT:
        if timeout is not None:
            raise AttemptTimedOut(f"timed out after {format_duration(timeout)}")
        raise AttemptTimedOut(redact(result.message or f"{action} timed out", secrets))
    message = redact(result.message or f"{action} failed", secrets)
    raise AttemptFailed(message) if result.retryable else StepFailed(message)
