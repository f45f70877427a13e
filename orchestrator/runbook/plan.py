"""What a run of a validated runbook would do, wave by wave, without doing any of it.

Targets are shown as the runbook writes them (``$${`` included), with ``${stack.NAME}`` replaced when stack
outputs are given.
``${env.VAR}`` is never replaced: planning must not read, let alone print, secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from orchestrator.actions.base import Touch
from orchestrator.runbook.graph import DEFAULT_ESTIMATE, CriticalPath, worst_case
from orchestrator.runbook.interpolate import InterpolationError, parse_template, stack_value, substitute
from orchestrator.runbook.loader import LoadedRunbook
from orchestrator.runbook.models import ActionCall, ParamValue, Provider, Step
from orchestrator.stack_outputs import StackOutputs


@dataclass(frozen=True)
class PlannedCall:
    action: str
    touches: tuple[Touch, ...]


@dataclass(frozen=True)
class PlannedStep:
    id: str
    action: str
    description: str
    tier: int
    wave: int
    needs: tuple[str, ...]
    when: str
    approval: bool
    on_error: str
    timeout: timedelta | None
    attempts: int
    idempotent: bool
    worst_case: timedelta
    touches: tuple[Touch, ...]
    compensate: PlannedCall | None


@dataclass(frozen=True)
class PlannedWave:
    number: int
    tier: int
    steps: tuple[PlannedStep, ...]


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    source: str
    parameters: Mapping[str, ParamValue]
    rto: timedelta | None
    rpo: timedelta | None
    providers: tuple[tuple[str, str], ...]
    tiers: tuple[int, ...]
    waves: tuple[PlannedWave, ...]
    critical_path: CriticalPath
    default_estimate: timedelta
    compensation: tuple[PlannedCall, ...]

    @property
    def steps(self) -> tuple[PlannedStep, ...]:
        return tuple(s for w in self.waves for s in w.steps)

    @property
    def approvals(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.steps if s.approval)

    @property
    def within_rto(self) -> bool | None:
        return None if self.rto is None else self.critical_path.duration <= self.rto

    def as_dict(self) -> dict[str, object]:
        """The plan as JSON-ready data; durations in seconds."""

        def seconds(value: timedelta | None) -> float | None:
            return None if value is None else value.total_seconds()

        def touches(items: tuple[Touch, ...]) -> list[dict[str, str]]:
            return [{"access": t.access, "target": t.target} for t in items]

        def call(c: PlannedCall | None) -> dict[str, object] | None:
            return None if c is None else {"action": c.action, "touches": touches(c.touches)}

        return {
            "runbook": self.name,
            "description": self.description,
            "file": self.source,
            "parameters": dict(self.parameters),
            "objectives": {"rto_s": seconds(self.rto), "rpo_s": seconds(self.rpo)},
            "providers": dict(self.providers),
            "tiers": list(self.tiers),
            "waves": [
                {
                    "wave": w.number,
                    "tier": w.tier,
                    "steps": [
                        {
                            "id": s.id,
                            "action": s.action,
                            "description": s.description,
                            "needs": list(s.needs),
                            "when": s.when,
                            "approval": "required" if s.approval else "none",
                            "on_error": s.on_error,
                            "timeout_s": seconds(s.timeout),
                            "attempts": s.attempts,
                            "idempotent": s.idempotent,
                            "worst_case_s": seconds(s.worst_case),
                            "touches": touches(s.touches),
                            "compensate": call(s.compensate),
                        }
                        for s in w.steps
                    ],
                }
                for w in self.waves
            ],
            "approvals": list(self.approvals),
            "critical_path": {
                "steps": list(self.critical_path.steps),
                "worst_case_s": seconds(self.critical_path.duration),
                "estimated_steps": list(self.critical_path.estimated),
                "default_estimate_s": seconds(self.default_estimate),
                "within_rto": self.within_rto,
            },
            "compensation": [call(c) for c in self.compensation],
            "changes_made": False,
        }


def make_plan(loaded: LoadedRunbook, default_estimate: timedelta = DEFAULT_ESTIMATE) -> Plan:
    runbook, graph = loaded.runbook, loaded.graph
    show = _Shower(loaded.stack)
    waves = tuple(
        PlannedWave(w.number, w.tier, tuple(_step(s, w.number, show, default_estimate) for s in w.steps))
        for w in graph.waves
    )
    return Plan(
        name=runbook.metadata.name,
        description=runbook.metadata.description,
        source=loaded.source,
        parameters=loaded.parameters,
        rto=runbook.spec.objectives.rto,
        rpo=runbook.spec.objectives.rpo,
        providers=tuple((name, _provider(p, show)) for name, p in runbook.spec.providers.items()),
        tiers=graph.tiers,
        waves=waves,
        critical_path=graph.critical_path(default_estimate),
        default_estimate=default_estimate,
        compensation=tuple(_call(c, show) for c in runbook.spec.compensation),
    )


def _step(step: Step, wave: int, show: _Shower, default_estimate: timedelta) -> PlannedStep:
    return PlannedStep(
        id=step.id,
        action=step.action,
        description=step.description or step.spec.description,
        tier=step.tier,
        wave=wave,
        needs=step.needs,
        when=step.when,
        approval=step.approval == "required",
        on_error=step.on_error,
        timeout=step.timeout,
        attempts=step.retry.attempts,
        idempotent=step.spec.idempotent,
        worst_case=worst_case(step, default_estimate),
        touches=_call(step, show).touches,
        compensate=_call(step.compensate, show) if step.compensate else None,
    )


def _call(call: ActionCall, show: _Shower) -> PlannedCall:
    touches = call.spec.touches_of(call.with_)
    return PlannedCall(call.action, tuple(Touch(t.access, show(t.target)) for t in touches))


def _provider(provider: Provider, show: _Shower) -> str:
    fields = provider.model_dump(exclude={"type"}, exclude_none=True)
    return " ".join([provider.type, *(f"{k}={show(str(v))}" for k, v in fields.items())])


class _Shower:
    """Text as shown in a plan: stack references replaced when outputs are known, all else as written."""

    def __init__(self, stack: StackOutputs | None) -> None:
        self._stack = stack

    def __call__(self, text: str) -> str:
        stack = self._stack
        if stack is None:
            return text
        try:
            shown = substitute(
                parse_template(text), lambda r: stack_value(stack, r) if r.namespace == "stack" else None
            )
        except InterpolationError:
            return text  # validation already proved every reference; this is only display
        return str(shown)
